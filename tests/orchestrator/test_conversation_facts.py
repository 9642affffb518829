"""Facts a provider asks for about a conversation are taken once, from its own hook, and reach
only that provider's requests: production code computes none, real providers get none, and a
mitigation that needs a scenario fact computes it from the scenario."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentsim.core.jobs import ConversationJob
from agentsim.mitigations.anonymise import Anonymise
from agentsim.mitigations.base import Mitigation
from agentsim.mitigations.reflection import SelfReflection
from agentsim.models.base import ModelReply
from agentsim.models.client import ModelClient
from agentsim.orchestrator.clinical import run_clinical
from agentsim.orchestrator.discussion import run_discussion
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.scenario import load_scenarios
from agentsim.testing import scripted

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
CLINICAL = REPO / "scenarios" / "clinical" / "clinical-celiac-disease.yaml"
HOSTED = "openai/gpt-4o-mini"


class Recording:
    """Hosted models give every task to the first person listed, and answer anything else
    with a fixed line; scripted ones answer through the real client."""

    def __init__(self, scenario) -> None:
        self.scripted = ModelClient(retries=0, backoff_s=0.001)
        self.requests: list = []
        first = scenario.personas[0].name
        self.assignment = json.dumps({"assignments": {t.id: first for t in scenario.tasks}})

    def supports_schema(self, model: str) -> bool:
        return True

    async def complete(self, request):
        self.requests.append(request)
        if request.model.startswith("scripted/"):
            return await self.scripted.complete(request)
        text = self.assignment if request.purpose == "decision" else "I would rather not say."
        return ModelReply(text=text, model=request.model)


@pytest.fixture
def hook_calls(monkeypatch):
    """Counts the scripted provider's hook calls (the registered provider is the module)."""
    calls: list = []
    original = scripted.conversation_facts

    def counted(scenario, job):
        calls.append(job.conversation_id)
        return original(scenario, job)

    monkeypatch.setattr(scripted, "conversation_facts", counted)
    return calls


def context(path: Path, models: dict[str, str], mitigations=(), **job) -> ConversationContext:
    ((_, scenario),) = load_scenarios([path])
    job = ConversationJob(scenario_id=scenario.id, seed=7, models=models, **job)
    return ConversationContext(run_id="r", job=job, scenario=scenario, client=Recording(scenario),
                               emit=lambda event: None, mitigations=list(mitigations))


def test_a_real_providers_requests_carry_no_facts_and_no_scripted_fact_is_computed(hook_calls):
    ctx = context(LAUNCH, {"default": HOSTED}, [SelfReflection()], rounds=1, probes=True)
    asyncio.run(run_discussion(ctx))
    assert ctx.client.requests and all(r.facts is None for r in ctx.client.requests)
    assert {r.purpose for r in ctx.client.requests} >= {"decision", "probe", "reflection",
                                                        "discussion"}
    assert hook_calls == []
    # What remains in a request's context is the call's own generic metadata.
    keys = {key for r in ctx.client.requests for key in r.context}
    assert keys == {"phase", "agent", "round", "current", "reflection"}


def test_only_the_scripted_providers_requests_carry_its_facts_given_once(hook_calls):
    ctx = context(CLINICAL, {"default": HOSTED, "doctor": "scripted/clinical"},
                  protocol="clinical", max_turns=4)
    asyncio.run(run_clinical(ctx))
    by_model = {r.model: r.facts for r in ctx.client.requests}
    assert by_model[HOSTED] is None
    facts = by_model["scripted/clinical"]
    assert facts["truth"] == ctx.scenario.case.diagnosis and facts["biased"] is False
    # One hook call for the whole conversation, one facts object shared by its requests.
    assert hook_calls == [ctx.job.conversation_id]
    assert len({id(r.facts) for r in ctx.client.requests if r.facts is not None}) == 1
    assert {"truth", "tests", "patient"}.isdisjoint(
        key for r in ctx.client.requests for key in r.context)


class SwapToScripted(Mitigation):
    """Replaces the agents' model with a scripted one, as a fine-tuned-model arm would."""

    name = "swap"

    def model_for(self, ctx, role, model):
        return "scripted/fair" if role == "agent" else model


def test_a_model_a_mitigation_swaps_in_gets_its_providers_facts_on_first_use(hook_calls):
    ctx = context(LAUNCH, {"default": HOSTED}, mitigations=[SwapToScripted()], rounds=1)
    assert hook_calls == []  # the job names no scripted model
    asyncio.run(run_discussion(ctx))
    agents = [r for r in ctx.client.requests if r.model == "scripted/fair"]
    assert agents and all(r.facts is ctx.facts_for("scripted/fair") for r in agents)
    assert ctx.facts_for("scripted/fair")["problem"]["attribute"] == "gender"
    assert hook_calls == [ctx.job.conversation_id]


def test_anonymise_finds_the_measured_attribute_in_the_scenario_itself():
    ((_, scenario),) = load_scenarios([LAUNCH])
    assert Anonymise().hidden_discussion(SimpleNamespace(scenario=scenario)) == ["gender"]
    ((_, case),) = load_scenarios([CLINICAL])
    assert Anonymise().hidden_discussion(SimpleNamespace(scenario=case)) == []
