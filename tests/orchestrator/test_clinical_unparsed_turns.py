"""A doctor turn that is no action — a truncated JSON turn above all — is asked again once with
a new seed, as decisions are (DECISION_REASKS); still no action, it is logged as an unparsed
``doctor_action`` (value None, raw text, why), counted, spends the turn, and never reaches the
patient as a question. Read back from the log of scripted and stubbed consultations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agentsim.core.jobs import ConversationJob
from agentsim.core.store import RunStore
from agentsim.models.base import ModelReply
from agentsim.models.client import ModelClient
from agentsim.orchestrator.clinical import Clinical, run_clinical
from agentsim.orchestrator.runtime import DECISION_REASKS, ConversationContext
from agentsim.runs.parsing import parse_rates
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import Scenario, load_scenarios

NSTEMI = "clinical-nstemi-atypical"


def scenario_of(repo: Path) -> Scenario:
    ((_, scenario),) = load_scenarios([repo / "scenarios" / "clinical" / f"{NSTEMI}.yaml"])
    return scenario


def consultation(tmp_path: Path, repo: Path, model: str, max_turns: int = 8):
    summary = run_experiment([(Path("x.yaml"), scenario_of(repo))],
                             RunOptions(model=model, max_turns=max_turns, backoff_s=0.001),
                             out=tmp_path / "run")
    assert summary.failed == 0, summary.errors
    store = RunStore.open(summary.run_dir)
    return summary, store, [e for e in store.iter_events(None) if e.conversation_id]


def doctor_actions(log: list) -> list:
    return [e for e in log if e.type == "decision" and e.kind == "doctor_action"]


def test_a_cut_off_turn_is_asked_again_and_the_whole_answer_counts(tmp_path, repo):
    summary, _, log = consultation(tmp_path, repo, "scripted/clinical?cut=1")
    calls = [e for e in log if e.type == "model_call" and e.purpose == "doctor"]
    first = [c for c in calls if c.turn == 0]
    assert len(first) == 1 + DECISION_REASKS == 2
    assert first[0].response.startswith('{"action"') and not first[0].response.endswith("}")
    assert first[1].call_seed != first[0].call_seed  # a new attempt seed
    actions = doctor_actions(log)
    assert [a.value["action"] for a in actions] == ["ask", "ask", "test", "diagnose"]
    assert actions[0].raw == first[1].response  # the turn is the re-asked answer
    assert summary.results["metrics"]["accuracy"]["value"] == 1.0


def test_a_turn_still_cut_off_is_logged_counted_and_never_said(tmp_path, repo):
    summary, store, log = consultation(tmp_path, repo, "scripted/clinical?cut=2&recut=1")
    actions = doctor_actions(log)
    unparsed = [a for a in actions if a.value is None]
    assert [a.phase for a in unparsed] == ["turn1", "turn2"]
    for action in unparsed:
        assert action.parse_error and action.raw.startswith('{"action"')
    # The fragments (the scripted doctor's two questions, cut off) are said to no one: the
    # patient is never asked anything.
    messages = [e for e in log if e.type == "message"]
    assert not any(e.content.startswith("{") for e in messages)
    assert [m.speaker for m in messages] == ["Doctor", "Measurement", "Doctor"]
    assert not [e for e in log if e.type == "model_call" and e.purpose == "patient"]
    assert [a.value["action"] for a in actions if a.value] == ["test", "diagnose"]
    # Each unparsed turn spent a doctor turn (the scripted doctor's third turn is its test).
    assert [a.phase for a in actions if a.value] == ["turn3", "turn4"]
    assert parse_rates(store)["unparsed"] == 2
    # The clinical judge counts them, and they count as spent doctor turns.
    counts = summary.results["counts"]["clinical"]
    assert counts["doctor_unparsed"] == 2
    verdict = next(e for e in store.iter_events({"judge_result"}) if e.judge == "clinical")
    assert verdict.details["turns"] == 4


@pytest.mark.parametrize("fragment", ['{"action": "diagnose", "text": "Myasth',
                                      '{"action": "ask", "text": "Do you have any fe'])
def test_a_doctor_that_only_writes_fragments_spends_its_budget(repo, fragment):
    log: list = []
    job = ConversationJob(scenario_id=NSTEMI, protocol="clinical", seed=7, max_turns=3,
                          models={"default": "scripted/clinical"})

    class Stub:
        requests: list = []

        def supports_schema(self, model: str) -> bool:
            return False

        async def complete(self, request):
            self.requests.append(request)
            if request.purpose == "doctor":
                return ModelReply(text=fragment, model=request.model)
            return await ModelClient(retries=0).complete(request)

    client = Stub()
    ctx = ConversationContext(run_id="stub", job=job, scenario=scenario_of(repo), client=client,
                              emit=log.append)
    asyncio.run(run_clinical(ctx))
    actions = doctor_actions(log)
    assert [a.value for a in actions] == [None, None, None]
    assert len([r for r in client.requests if r.purpose == "doctor"]) == 3 * 2
    assert not [r for r in client.requests if r.purpose == "patient"]  # never a question
    assert not [e for e in log if e.type == "message"]
    (check,) = [e for e in log if e.type == "decision" and e.kind == "diagnosis_check"]
    assert check.value["moderator"] == "no diagnosis"


def test_a_fork_after_an_unparsed_turn_counts_it_in_the_budget(tmp_path, repo):
    _, _, log = consultation(tmp_path, repo, "scripted/clinical?cut=1&recut=1")
    patient = next(e for e in log if e.type == "message" and e.speaker == "Patient")
    events = [e for e in log if e.turn is None or e.turn <= patient.turn]
    state = Clinical().state_at(events, None, scenario_of(repo), patient.turn)
    assert state["doctor_turns"] == 2  # the unparsed turn and the question
    assert state["entry"] == "patient" and state["action"] == "ask"
