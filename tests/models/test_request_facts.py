"""A request's ``facts``: only an in-process provider's hook gives them, they never reach litellm
(not even as metadata), and they are part of the cache key only when present."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from agentsim.core.jobs import ConversationJob
from agentsim.models.base import ModelRequest
from agentsim.models.cache import DiskCache, cache_key
from agentsim.models.client import ModelClient, cached_as
from agentsim.models.facts import conversation_facts, facts_hook
from agentsim.scenario import load_scenarios
from agentsim.testing import scripted

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
HOSTED = ModelRequest(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                      seed=7, replicate=0)


def launch_facts() -> tuple[object, dict]:
    ((_, scenario),) = load_scenarios([LAUNCH])
    job = ConversationJob(scenario_id=scenario.id, seed=1, models={"default": "scripted/fair"})
    return scenario, conversation_facts("scripted", scenario, job)


def recoded(facts: dict) -> dict:
    """The same conversation's facts with every task coded for one group."""
    problem = facts["problem"]
    return {**facts, "problem": {**problem, "task_code": ["woman"] * len(problem["tasks"])}}


def test_only_a_registered_provider_with_the_hook_has_one():
    assert facts_hook("scripted") is scripted.conversation_facts
    assert facts_hook("openai") is None and facts_hook("local") is None
    assert facts_hook("") is None
    scenario, facts = launch_facts()
    assert conversation_facts("openai", scenario, None) is None
    assert facts["problem"]["attribute"] == "gender"
    assert json.loads(json.dumps(facts)) == facts  # JSON-able: it is part of the cache key


def test_a_request_without_facts_keeps_the_key_it_always_had():
    # Keys computed before requests had facts: caches of hosted models stay valid.
    assert cache_key(HOSTED) == \
        "1f4d82dcacd4655688b05be630d0da2d1f1650fdd4ac98b1eb6f463964357f1e"
    assert cache_key(HOSTED, "https://api.example/v1") == \
        "d0ae58c637b0dd2f898f277acc028a3628e0703843e5e0b1b5749f1c7f5b6bf1"


def test_facts_are_in_the_key_when_present_and_the_call_context_is_not():
    _, facts = launch_facts()
    with_facts = dataclasses.replace(HOSTED, facts=facts)
    assert cache_key(with_facts) != cache_key(HOSTED)
    # Other facts (another task coding, another case) are another answer of the scripted model.
    other = recoded(facts)
    assert cache_key(dataclasses.replace(HOSTED, facts=other)) != cache_key(with_facts)
    assert cache_key(dataclasses.replace(with_facts, context={"phase": "final"})) == \
        cache_key(with_facts)


def test_the_client_keys_a_hosted_call_without_facts_and_a_scripted_one_with_them(tmp_path):
    _, facts = launch_facts()
    client = ModelClient(retries=0, cache=DiskCache(tmp_path))
    hosted = dataclasses.replace(HOSTED, facts=facts)
    assert cached_as(hosted, client.endpoint(HOSTED.model)) == HOSTED  # the key it always had
    planted = ModelRequest(model="scripted/stereotyped?rate=1", purpose="decision", seed=3,
                           messages=[{"role": "user", "content": "Assign the tasks."}],
                           facts=facts)
    assert cached_as(planted, client.endpoint(planted.model)) is planted
    first = asyncio.run(client.complete(planted))
    again = asyncio.run(client.complete(planted))
    assert not first.cached and again.cached and again.text == first.text
    # Facts that plant another answer are not served the cached one.
    other = recoded(facts)
    assert not asyncio.run(client.complete(dataclasses.replace(planted, facts=other))).cached


def test_facts_never_reach_litellm_yet_a_scripted_model_behind_it_reads_them(monkeypatch):
    from agentsim.models import _litellm

    scenario, facts = launch_facts()
    request = ModelRequest(model="scripted/stereotyped?rate=1", purpose="decision", seed=3,
                           messages=[{"role": "user", "content": "Assign the tasks."}],
                           context={"phase": "first"}, facts=facts)
    sent: list[dict] = []
    original = _litellm.litellm.acompletion

    async def spy(**kwargs):
        sent.append(kwargs)
        return await original(**kwargs)

    monkeypatch.setattr(_litellm.litellm, "acompletion", spy)
    direct = asyncio.run(ModelClient(retries=0).complete(request))
    routed = asyncio.run(ModelClient(retries=0, via_litellm=True).complete(request))
    assert routed.text == direct.text
    assert json.loads(direct.text)["assignments"]  # a planted decision: it needed the facts
    (kwargs,) = sent
    assert kwargs["metadata"] == {"agentsim_context": {"phase": "first", "purpose": "decision"},
                                  "agentsim_attempt": 1}
    assert _litellm.SENDING.get() is None  # nothing is left behind after the call
    hosted_kwargs, _ = _litellm.call_kwargs(
        ModelClient().endpoint("openai/gpt-4o-mini"),
        dataclasses.replace(request, model="openai/gpt-4o-mini"), 10)
    assert "metadata" not in hosted_kwargs
    assert json.dumps(facts["names"]) not in json.dumps(hosted_kwargs, default=str)
