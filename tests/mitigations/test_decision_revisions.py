"""How ConversationContext.decide logs a mitigation's second answer (agentsim.orchestrator.runtime
Revision): the decision keeps its phase and value, the revision is a decision of its own phase
right after it, and the conversation goes on from the revision (or from the decision when the
revision could not be parsed). A plain replacement keeps its old meaning."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agentsim.core.decisions import AssignmentDecision
from agentsim.core.jobs import ConversationJob
from agentsim.mitigations.base import Mitigation
from agentsim.models.client import ModelClient
from agentsim.orchestrator.runtime import ConversationContext, Revision
from agentsim.scenario import load_scenarios

LAUNCH = Path(__file__).resolve().parents[2] / "scenarios" / "workplace" / \
    "office-product-launch.yaml"
EVERYTHING_TO_DANIEL = {"t1": "daniel", "t2": "daniel", "t3": "daniel", "t4": "daniel"}


class AskAgain(Mitigation):
    """Answers every first decision again with a fixed revision."""

    name = "ask_again"
    revision_phase = "again"

    def __init__(self, revision: Revision) -> None:
        super().__init__()
        self.revision = revision
        self.saw_logged: list[int] = []

    async def after_decision(self, ctx, agent, phase, decision, messages):
        # The decision is already in the log when the revising mitigation runs.
        self.saw_logged.append(len([e for e in LOG if e.type == "decision"]))
        return self.revision if phase == "first" else None


class Replace(Mitigation):
    """The old kind of hook: a plain replacement."""

    name = "replace"

    async def after_decision(self, ctx, agent, phase, decision, messages):
        return EVERYTHING_TO_DANIEL


LOG: list = []


def decide(*mitigations):
    LOG.clear()
    ((_, scenario),) = load_scenarios([LAUNCH])
    job = ConversationJob(scenario_id=scenario.id, seed=5,
                          models={"default": "scripted/stereotyped?rate=1"})
    ctx = ConversationContext(run_id="r", job=job, scenario=scenario,
                              client=ModelClient(retries=0), emit=LOG.append,
                              mitigations=list(mitigations))
    value = asyncio.run(ctx.decide(agent="emily", role="agent", phase="first", turn=3,
                                   round_number=0,
                                   messages=[{"role": "user", "content": "Assign the tasks."}]))
    return value, [e for e in LOG if e.type == "decision"], ctx


def test_a_revision_is_its_own_decision_and_the_conversation_goes_on_from_it():
    mitigation = AskAgain(Revision("again", AssignmentDecision(assignments=EVERYTHING_TO_DANIEL),
                                   "all Daniel", parsed_by="text"))
    value, (first, again), ctx = decide(mitigation)
    assert mitigation.saw_logged == [1]
    assert first.phase == "first" and first.value != EVERYTHING_TO_DANIEL
    assert (again.phase, again.value, again.raw, again.parsed_by) == (
        "again", EVERYTHING_TO_DANIEL, "all Daniel", "text")
    assert (again.turn, again.round, again.agent) == (first.turn, first.round, first.agent)
    assert value == EVERYTHING_TO_DANIEL
    (change,) = [e for e in LOG if e.type == "mitigation_applied"]
    assert change.detail == {"phase": "first", "before": first.value,
                             "after": EVERYTHING_TO_DANIEL}
    assert ctx.decision_prompts[("emily", "first")][0]["content"] == "Assign the tasks."


def test_an_unparsed_revision_is_logged_and_the_decision_kept():
    value, (first, again), _ = decide(AskAgain(Revision("again", None, "??",
                                                        parse_error="no person assigned")))
    assert again.value is None and again.parse_error == "no person assigned"
    assert value == first.value
    assert not [e for e in LOG if e.type == "mitigation_applied"]


def test_a_plain_replacement_still_replaces_the_logged_decision():
    value, (only,), _ = decide(Replace())
    assert only.phase == "first" and only.value == value == EVERYTHING_TO_DANIEL
