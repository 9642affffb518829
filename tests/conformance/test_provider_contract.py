"""Every registered in-process model provider through its contract
(agentsim/models/base.py ``InProcessProvider``): it answers a request for a name it serves —
the same answer to the same request, directly and through the model client — and rejects a
name it does not serve with ModelNameError, itself and when the client checks the name.
"""

from __future__ import annotations

import asyncio

import pytest

from agentsim.errors import ModelNameError
from agentsim.models.base import ModelRequest
from agentsim.models.client import ModelClient, check_model_name
from agentsim.models.names import parse_model_name
from agentsim.registry import REGISTRY
from conformance.cases import names

# A model name each provider serves (which profiles or models a provider has is its own
# business; a new provider adds its line here).
SERVES = {"scripted": "scripted/fair"}


def served(provider: str) -> str:
    if provider not in SERVES:
        pytest.fail(f"provider {provider!r}: add a model name it serves to SERVES")
    return SERVES[provider]


def request(model: str) -> ModelRequest:
    return ModelRequest(model=model, purpose="chat", seed=7, messages=[
        {"role": "system", "content": "You are a helpful colleague."},
        {"role": "user", "content": "Who should lead the project?"}])


@pytest.mark.parametrize("provider", names("provider"))
def test_answers_a_request(provider):
    """A non-empty text, the same for the same request, and the same through the client."""
    model = served(provider)
    plugin = REGISTRY.get("provider", provider)
    check_model_name(model)
    first = asyncio.run(plugin.respond(parse_model_name(model), request(model)))
    again = asyncio.run(plugin.respond(parse_model_name(model), request(model)))
    assert isinstance(first, str) and first.strip()
    assert again == first
    reply = asyncio.run(ModelClient(retries=0, backoff_s=0.0).complete(request(model)))
    assert reply.text == first


@pytest.mark.parametrize("provider", names("provider"))
def test_rejects_a_name_it_does_not_serve(provider):
    """An unknown name under the provider's prefix is a ModelNameError naming it."""
    bad = f"{provider}/no-such-model-anywhere"
    with pytest.raises(ModelNameError, match="no-such-model-anywhere"):
        REGISTRY.get("provider", provider).check_name(parse_model_name(bad))
    with pytest.raises(ModelNameError, match="no-such-model-anywhere"):
        check_model_name(bad)
