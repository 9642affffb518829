"""agentsim's in-process providers are real litellm custom providers.

The client calls them directly for speed; these tests prove that the same providers answer
through litellm, so that users of litellm (and the client with ``via_litellm=True``) reach them.
"""

from __future__ import annotations

import asyncio

from agentsim.models.base import ModelRequest
from agentsim.models.client import ModelClient


def test_scripted_model_answers_through_litellm():
    request = ModelRequest(model="scripted/clinical", messages=[{"role": "user", "content": "hi"}],
                           purpose="patient", seed=1)
    direct = asyncio.run(ModelClient().complete(request))
    routed = asyncio.run(ModelClient(via_litellm=True).complete(request))
    assert routed.text == direct.text and routed.text
    assert routed.completion_tokens == direct.completion_tokens


def test_litellm_sees_agentsim_providers():
    from agentsim.models import _litellm

    providers = {p["provider"] for p in _litellm.litellm.custom_provider_map}
    assert {"local", "scripted"} <= providers
    response = _litellm.litellm.completion(
        model="scripted/fair", messages=[{"role": "user", "content": "hello"}],
        metadata={"agentsim_context": {"purpose": "discussion"}})
    assert response.choices[0].message.content
