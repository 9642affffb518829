"""Decisions are written from their typed models, in one place: a value that does not fit its
kind fails where it is made (the emitter), never later in a judge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from agentsim.core.decisions import (DecisionValueError, DoctorActionDecision, PickDecision,
                                     decision_event, typed_decision)
from agentsim.core.jobs import ConversationJob
from agentsim.mitigations.base import Mitigation
from agentsim.models.client import ModelClient
from agentsim.orchestrator.runtime import ConversationContext, DecisionSpec, assignment_spec
from agentsim.scenario import load_scenarios

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"


def context(mitigations=()) -> tuple[ConversationContext, list]:
    ((_, scenario),) = load_scenarios([LAUNCH])
    job = ConversationJob(scenario_id=scenario.id, seed=5,
                          models={"default": "scripted/stereotyped?rate=1"})
    log: list = []
    ctx = ConversationContext(run_id="r", job=job, scenario=scenario,
                              client=ModelClient(retries=0), emit=log.append,
                              mitigations=list(mitigations))
    return ctx, log


def decide(ctx: ConversationContext, spec: DecisionSpec | None = None):
    agent = ctx.scenario.personas[0].id
    return asyncio.run(ctx.decide(agent=agent, role="agent", phase="first", turn=0,
                                  round_number=0, decision=spec,
                                  messages=[{"role": "user", "content": "Assign the tasks."}]))


class MistypedRevision(Mitigation):
    """Revises every decision into a value the log's dict type takes but that is no
    assignment: nobody is assigned anything."""

    name = "mistyped"

    async def after_decision(self, ctx, agent, phase, decision, messages):
        return {}


def test_a_decision_is_logged_from_its_typed_value():
    ctx, log = context()
    value = decide(ctx)
    (event,) = [e for e in log if e.type == "decision"]
    assert event.kind == "assignment" and event.value == value
    assert typed_decision(event).assignments == value


def test_a_mitigation_revision_that_does_not_fit_fails_at_the_emitter():
    ctx, log = context([MistypedRevision()])
    with pytest.raises(DecisionValueError, match="assignment"):
        decide(ctx)
    assert not [e for e in log if e.type == "decision"]  # nothing a judge would choke on


def test_a_parser_that_returns_a_plain_dict_fails_at_the_emitter():
    ctx, log = context()
    spec = assignment_spec(ctx.scenario)
    untyped = DecisionSpec(kind="assignment", schema=spec.schema,
                           parse=lambda text: (spec.parse(text)[0].assignments, "json"))
    with pytest.raises(TypeError, match="typed model"):
        decide(ctx, untyped)
    assert not [e for e in log if e.type == "decision"]


def test_the_event_writer_refuses_a_value_of_another_kind_or_an_unknown_kind():
    with pytest.raises(DecisionValueError, match="'pick' decision"):
        decision_event(PickDecision(choice="p1"), kind="rank", run_id="r", phase="x", raw="")
    with pytest.raises(DecisionValueError, match="unknown decision kind"):
        decision_event(None, kind="no_such_kind", run_id="r", phase="x", raw="")
    unparsed = decision_event(None, kind="pick", run_id="r", phase="x", raw="?")
    assert unparsed.kind == "pick" and unparsed.value is None


def test_a_mistyped_field_fails_where_the_model_is_built():
    with pytest.raises(ValidationError):
        DoctorActionDecision(action="wave", text="hello", ambiguous=False)
    with pytest.raises(ValidationError):
        DoctorActionDecision(action="ask", text="hello", ambiguous="false")  # strict: a bool
