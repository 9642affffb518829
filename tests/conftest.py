"""Shared fixtures: paths to the repository, the shipped scenarios and the published anchors."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ANCHORS = REPO.parent / "shared" / "anchors"


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture
def workplace() -> Path:
    """The shipped workplace scenarios folder."""
    return REPO / "scenarios" / "workplace"


@pytest.fixture
def anchors() -> Path:
    """The published reference data (skips the test when it is not beside the checkout)."""
    if not ANCHORS.is_dir():
        pytest.skip(f"published anchors not found at {ANCHORS}")
    return ANCHORS


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own empty cache of model calls, so tests never see each other's, and
    its own agentsim home, so registered models never leak from or into the user's."""
    monkeypatch.setenv("AGENTSIM_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))
    monkeypatch.setenv("AGENTSIM_HOME", str(tmp_path_factory.mktemp("agentsim-home")))


# ---- model servers on 127.0.0.1 (tests/support) -------------------------------------------------
# The helpers live in tests/support (imported as `support.*`); tests/ goes on sys.path so that
# they import under any pytest import mode (the default one already puts it there).
import sys as _sys  # noqa: E402

if str(REPO / "tests") not in _sys.path:
    _sys.path.insert(0, str(REPO / "tests"))

from support.runlogs import runlog  # noqa: E402,F401  (hand-built run logs for judge tests)


def _llama_server_or_skip():
    from support.llama_server import LlamaServer, server_available

    reason = server_available()
    if reason is not None:
        pytest.skip(f"llama-cpp-python's server is not available ({reason}); "
                    "install the test extra: pip install 'llama-cpp-python[server]'")
    return LlamaServer


@pytest.fixture(scope="session")
def llama_server():
    """One llama-cpp-python OpenAI-compatible server (embedded SmolLM2) for the whole session,
    at ``llama_server.base_url`` (``http://127.0.0.1:PORT/v1``) as model ``llama_server.alias``.
    A test that stops or kills it must ``start()`` it again."""
    server_class = _llama_server_or_skip()
    server = server_class(alias="smollm2")
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture(scope="session")
def llama_server_pair():
    """Two independent llama servers (aliases ``smollm2-a`` and ``smollm2-b``), started only
    when a test asks for them, kept for the rest of the session."""
    server_class = _llama_server_or_skip()
    servers = []
    try:
        for alias in ("smollm2-a", "smollm2-b"):
            servers.append(server_class(alias=alias).start())
        yield tuple(servers)
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def stub_server():
    """A running stub of model APIs on 127.0.0.1 (tests/support/stub_server.py), new per test;
    its knobs (text, schema_support, rate_limit_per_s, stall_s, echo, require_key, fail_next)
    can be changed while it runs."""
    from support.stub_server import StubServer

    with StubServer() as server:
        yield server
