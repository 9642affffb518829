"""A guard for tests that talk to servers: no traffic may leave 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

LOOPBACK = {"127.0.0.1", "localhost", "::1", None, ""}


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch):
    """Refuse (and fail on) any connection or look-up that is not 127.0.0.1; every attempt,
    loopback too, is listed in the fixture's value."""
    attempts: list[object] = []
    seen: list[object] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        seen.append(address)
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            attempts.append(address)
            raise OSError(f"test guard: connection to {address!r} refused")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        seen.append(name)
        if name not in LOOPBACK:
            attempts.append(name)
            raise socket.gaierror(f"test guard: look-up of {name!r} refused")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield seen
    assert not attempts, f"traffic to outside 127.0.0.1 was attempted: {attempts}"
