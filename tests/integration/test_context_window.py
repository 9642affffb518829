"""A prompt that does not fit the model's context is one clear, permanent failure: the
embedded model (llama.cpp's 4,096 tokens) and a hosted model's ContextWindowExceededError alike
become a ModelError of kind ``context_window``, asked once, never retried."""

from __future__ import annotations

import pytest

from agentsim._aio import run_sync
from agentsim.errors import ModelError
from agentsim.models.base import ModelRequest
from agentsim.models.client import ModelClient
from agentsim.models.names import DEFAULT_MODEL

pytestmark = pytest.mark.integration


def test_the_embedded_model_reports_an_overlong_prompt_once():
    words = "assign the tasks fairly " * 1400  # about 5,600 tokens: past 4,096
    request = ModelRequest(model=DEFAULT_MODEL, messages=[{"role": "user", "content": words}],
                           max_tokens=16)
    with pytest.raises(ModelError) as error:
        run_sync(ModelClient().complete(request))
    assert error.value.kind == "context_window" and not error.value.retryable
    assert error.value.attempts == 1
    assert "lower max_tokens or rounds" in str(error.value)


def test_a_hosted_context_window_error_is_classified():
    import litellm

    from agentsim.models._litellm import classify

    refused = litellm.ContextWindowExceededError(
        message="This model's maximum context length is 8192 tokens", model="gpt-4",
        llm_provider="openai")
    found = classify(refused, "openai/gpt-4")
    assert found.kind == "context_window" and not found.retryable
