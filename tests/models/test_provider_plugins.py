"""An in-process model provider registered by a plugin answers its model names like the scripted
one: no litellm, no network (the mock model of the tests is such a registered provider)."""

from __future__ import annotations

import asyncio

import pytest

from agentsim.errors import ModelNameError
from agentsim.models.base import ModelRequest
from agentsim.models.client import ModelClient, check_model_name
from agentsim.models.names import in_process_providers
from agentsim.registry import REGISTRY


class Echo:
    """Answers with the last message, upper-cased; refuses the name 'echo/bad'."""

    calls: list[str] = []

    def check_name(self, name):
        if name.name == "bad":
            raise ModelNameError("no such echo", source=name.raw)

    async def respond(self, name, request, attempt=1):
        Echo.calls.append(name.raw)
        return request.messages[-1]["content"].upper()


@pytest.fixture
def echo(monkeypatch):
    items = REGISTRY._items["provider"]  # the registry has no unregister: restore it after
    monkeypatch.setitem(items, "echo", Echo())
    Echo.calls = []
    return Echo


def test_a_registered_provider_is_called_in_process(echo):
    assert "echo" in in_process_providers()
    client = ModelClient(retries=0)
    assert client.resolver.resolve("echo/any").in_process
    reply = asyncio.run(client.complete(ModelRequest(
        model="echo/any", messages=[{"role": "user", "content": "hello"}])))
    assert reply.text == "HELLO" and echo.calls == ["echo/any"]
    assert reply.endpoint == "in-process"


def test_a_registered_provider_checks_its_names(echo):
    check_model_name("echo/fine")
    with pytest.raises(ModelNameError, match="no such echo"):
        check_model_name("echo/bad")
