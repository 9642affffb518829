"""Retries of model calls: transient ModelErrors only, Retry-After honoured, bugs raised at once.

A throwaway in-process provider stands in for the scripted one. It is put in the registry under
the name ``scripted`` because only ``local/`` and ``scripted/`` names are routed in-process
(``Endpoint.in_process``); a provider registered under a new name would be sent to litellm.
``monkeypatch`` puts the real scripted provider back afterwards, so no other test sees it.
"""

from __future__ import annotations

import asyncio

import pytest

from agentsim.errors import ModelError
from agentsim.models.base import ModelRequest
from agentsim.models.client import PERMANENT_KINDS, ModelClient
from agentsim.registry import REGISTRY


class Throwaway:
    """A provider that raises ``errors`` in turn (then answers), counting its calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def check_name(self, name) -> None:  # noqa: ANN001 - the provider protocol
        """Every name is fine."""

    async def respond(self, name, request, attempt) -> str:  # noqa: ANN001
        """Raise the next planted error, or answer once they are spent."""
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "an answer"


@pytest.fixture
def provider(monkeypatch):
    """Install a Throwaway (set its errors on the returned object) for the test only."""
    REGISTRY.get("provider", "scripted")  # import the built-in first, so it cannot overwrite it
    fake = Throwaway()
    monkeypatch.setitem(REGISTRY._items["provider"], "scripted", fake)
    return fake


def call(retries: int = 3, **client) -> str:
    request = ModelRequest(model="scripted/throwaway",
                           messages=[{"role": "user", "content": "hi"}])
    reply = asyncio.run(ModelClient(retries=retries, backoff_s=0.0, **client).complete(request))
    return reply.text


@pytest.mark.parametrize("bug", [TypeError("unhashable type: 'list'"), KeyError("choices"),
                                 AttributeError("'NoneType' object has no attribute 'text'")])
def test_a_bug_in_a_provider_is_raised_at_once_unchanged(provider, bug):
    provider.errors = [bug]
    with pytest.raises(type(bug)) as raised:
        call(retries=5)
    assert raised.value is bug  # the very exception: not wrapped, not a ModelError
    assert not isinstance(raised.value, ModelError)
    assert provider.calls == 1  # no retry


# rate_limit is retried too, but the limiter also slows the endpoint down for seconds after a
# 429 (tests/models/test_rate_limits.py); its backoff is checked in the Retry-After test below.
@pytest.mark.parametrize("kind", ["server", "timeout", "connection", "error"])
def test_transient_errors_are_retried_until_an_answer(provider, kind, monkeypatch):
    monkeypatch.setattr(ModelClient, "_delay", lambda self, attempt, error: 0.0)
    provider.errors = [ModelError("try again", model="m", kind=kind) for _ in range(2)]
    assert call(retries=3) == "an answer"
    assert provider.calls == 3


def test_transient_errors_give_up_after_the_retries(provider):
    provider.errors = [ModelError("down", model="m", kind="server") for _ in range(10)]
    with pytest.raises(ModelError) as raised:
        call(retries=2)
    assert provider.calls == 3 and raised.value.attempts == 3
    assert raised.value.kind == "server" and "failed after 3 attempts" in str(raised.value)


@pytest.mark.parametrize("kind", sorted(PERMANENT_KINDS))
def test_permanent_kinds_are_never_retried_even_if_marked_retryable(provider, kind):
    # The provider forgot retryable=False: the kind alone says the error will not go away.
    provider.errors = [ModelError("no", model="m", kind=kind, retryable=True)]
    with pytest.raises(ModelError) as raised:
        call(retries=4)
    assert provider.calls == 1
    assert raised.value.retryable is False and raised.value.kind == kind


def test_retry_after_is_a_floor_on_the_backoff(provider, monkeypatch):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("agentsim.models.client.asyncio.sleep", sleep)
    provider.errors = [ModelError("busy", model="m", kind="server", retry_after=7.5)]
    assert call(retries=1) == "an answer"
    assert provider.calls == 2 and slept and max(slept) >= 7.5
    client = ModelClient(backoff_s=0.0)
    limited = ModelError("slow down", model="m", kind="rate_limit", retry_after=3.0)
    assert client._delay(1, limited) >= 3.0
    assert client._delay(1, ModelError("busy", model="m", kind="server")) == 0.0


@pytest.mark.parametrize("bug", [TypeError("unhashable type: 'list'"), KeyError("choices")])
def test_a_bug_in_a_provider_called_through_litellm_is_not_a_lost_connection(provider, bug):
    # litellm wraps whatever its custom provider raises in APIConnectionError, which would be
    # retried as a lost connection; the wrapped bug must come out as itself, after one call.
    provider.errors = [bug]
    with pytest.raises(type(bug)) as raised:
        call(retries=5, via_litellm=True)
    assert raised.value is bug
    assert provider.calls == 1


def test_a_provider_model_error_through_litellm_keeps_its_kind(provider):
    # Unwrapped, a provider's permanent error is not retried: litellm's wrapper would have made
    # it a transient connection error, asked six times.
    provider.errors = [ModelError("no such model", model="m", kind="not_found",
                                  retryable=False)]
    with pytest.raises(ModelError) as raised:
        call(retries=5, via_litellm=True)
    assert raised.value.kind == "not_found" and provider.calls == 1


def test_a_transient_provider_error_through_litellm_is_still_retried(provider, monkeypatch):
    monkeypatch.setattr(ModelClient, "_delay", lambda self, attempt, error: 0.0)
    provider.errors = [ModelError("busy", model="m", kind="server")]
    assert call(retries=2, via_litellm=True) == "an answer"
    assert provider.calls == 2


def _wrapped(cause: BaseException):
    """litellm's APIConnectionError raised while handling ``cause``, as litellm raises it."""
    from agentsim.models import _litellm

    try:
        try:
            raise cause
        except BaseException:
            raise _litellm.litellm.APIConnectionError(message=str(cause), llm_provider="openai",
                                                      model="gpt-x")  # noqa: B904 - as litellm
    except _litellm.litellm.APIConnectionError as error:
        return error


def test_a_wrapped_network_error_stays_a_retried_connection_error():
    import httpx

    from agentsim.models._litellm import classify, wrapped_original

    lost = _wrapped(httpx.ConnectError("connection refused"))
    assert isinstance(lost.__context__, httpx.ConnectError)
    assert wrapped_original(lost) is None
    classified = classify(lost, "openai/gpt-x")
    assert classified.kind == "connection" and classified.retryable
    bug = _wrapped(TypeError("unhashable type: 'dict'"))
    assert wrapped_original(bug) is bug.__context__
    with pytest.raises(TypeError, match="unhashable"):
        classify(bug, "openai/gpt-x")
