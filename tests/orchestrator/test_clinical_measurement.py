"""The clinical measurement agent: a model given the case's findings by default (``--role
measurement=M``), the records clerk as an option; the published AgentClinic measurement prompts
rebuilt from the published code itself for every published case; the other published choices
as settings (strict moderator, the doctor seeing only the objective).

The scripted model plants its answers (as the measurement agent it answers what the records
clerk would); these tests check the machinery, never a model.
"""

from __future__ import annotations

import asyncio
import sys
import types
from pathlib import Path

import pytest

from agentsim.agents.clinical_parsing import describe_records, find_records
from agentsim.agents.clinical_prompts import measurement_messages
from agentsim.agents.clinical_texts import (
    NOT_AVAILABLE,
    PUBLISHED_MEASUREMENT_SYSTEM,
    PUBLISHED_MEASUREMENT_TURN,
)
from agentsim.core.jobs import ConversationJob
from agentsim.core.store import RunStore
from agentsim.models.base import ModelReply
from agentsim.models.client import ModelClient
from agentsim.orchestrator.clinical import Clinical, run_clinical
from agentsim.orchestrator.clinical_measurement import published_history
from agentsim.orchestrator.kernel import Utterance
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import Scenario, load_scenarios
from agentsim.scenario.agentclinic import load_agentclinic

NSTEMI = "clinical-nstemi-atypical"


def shipped(repo: Path, **protocol) -> list[tuple[Path, Scenario]]:
    ((path, scenario),) = load_scenarios([repo / "scenarios" / "clinical" / f"{NSTEMI}.yaml"])
    if protocol:
        data = scenario.model_dump()
        data["protocol"].update(protocol)
        scenario = Scenario.model_validate(data)
    return [(path, scenario)]


def run_log(tmp_path: Path, scenarios, **options) -> list:
    options.setdefault("model", "scripted/clinical")
    options.setdefault("max_turns", 8)
    summary = run_experiment(scenarios, RunOptions(backoff_s=0.001, **options),
                             out=tmp_path / "run")
    assert summary.failed == 0, summary.errors
    return [e for e in RunStore.open(summary.run_dir).iter_events(None)
            if e.conversation_id is not None]


def of(log: list, kind: str, purpose: str | None = None) -> list:
    if purpose is not None:
        return [e for e in log if e.type == "model_call" and e.purpose == purpose]
    return [e for e in log if e.type == "decision" and e.kind == kind]


def said(log: list, speaker: str) -> list[str]:
    return [e.content for e in log if e.type == "message" and e.speaker == speaker]


# --- the measurement agent is a model by default -------------------------------------------------


def test_the_measurement_model_reads_the_cases_findings(tmp_path, repo):
    scenarios = shipped(repo)
    case = scenarios[0][1].case
    log = run_log(tmp_path, scenarios)
    (call,) = of(log, "", purpose="measurement")
    assert call.agent == "measurement" and call.model == "scripted/clinical"
    system, user = (m["content"] for m in call.messages)
    # Every finding of the case is in the prompt, as the case holds it.
    for value in ("152/88", "0.42 ng/mL"):
        assert value in str(case.exam) + str(case.tests)
        assert value in system
    test = next(iter(case.tests))
    assert f"The doctor requests: {test}" in user
    # The scripted model answers what the records clerk would; the answer is said to the doctor.
    expected = describe_records(find_records(test, case.exam, case.tests))
    assert said(log, "Measurement") == [expected]
    (result,) = of(log, "test_result")
    assert result.value["in_case"] == "yes" and result.value["matched"] == test


def test_role_measurement_names_its_model(tmp_path, repo):
    log = run_log(tmp_path, shipped(repo), roles={"measurement": "scripted/clinical?trust=3"})
    assert [c.model for c in of(log, "", purpose="measurement")] == ["scripted/clinical?trust=3"]
    assert {c.model for c in of(log, "", purpose="doctor")} == {"scripted/clinical"}


def test_a_request_the_case_does_not_hold_is_not_available(tmp_path, repo):
    ((path, scenario),) = shipped(repo)
    data = scenario.model_dump()
    data["case"]["tests"] = {}  # the scripted doctor then asks for a complete blood count
    log = run_log(tmp_path, [(path, Scenario.model_validate(data))])
    assert said(log, "Measurement") == [NOT_AVAILABLE]
    (result,) = of(log, "test_result")
    assert result.value == {"request": "Complete blood count", "matched": "", "in_case": "no"}


def test_the_records_clerk_is_an_option_without_a_model(tmp_path, repo):
    scenarios = shipped(repo, measurement="records")
    case = scenarios[0][1].case
    assert "measurement" not in Clinical().model_roles(scenarios[0][1])
    assert "measurement" in Clinical().model_roles(shipped(repo)[0][1])
    log = run_log(tmp_path, scenarios)
    assert of(log, "", purpose="measurement") == []
    test = next(iter(case.tests))
    assert said(log, "Measurement") == [describe_records(find_records(test, case.exam,
                                                                       case.tests))]


def test_model_and_clerk_give_the_same_metrics_on_the_scripted_model(tmp_path, repo):
    metrics = {}
    for mode in ("model", "records"):
        summary = run_experiment(shipped(repo, measurement=mode),
                                 RunOptions(model="scripted/clinical", max_turns=8,
                                            backoff_s=0.001), out=tmp_path / mode)
        metrics[mode] = {k: v["value"] for k, v in summary.results["metrics"].items()}
    assert metrics["model"] == metrics["records"]


# --- the published measurement agent, rebuilt from the published code -----------------------


@pytest.fixture
def published(anchors, monkeypatch):
    """The published agentclinic.py, loaded with its API clients stubbed out."""
    for name in ("anthropic", "openai", "replicate", "transformers"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["transformers"].pipeline = lambda *a, **k: None
    source = (anchors / "agentclinic" / "agentclinic.py").read_text()
    namespace: dict = {"__name__": "published_agentclinic"}
    exec(compile(source, "agentclinic.py", "exec"), namespace)  # noqa: S102 - read, not run
    return namespace


def test_published_measurement_prompts_for_every_published_case(anchors, published):
    """For every MedQA case: the published MeasurementAgent's system and user prompts, after a
    patient answer and an earlier test, equal agentsim's published templates filled in."""
    import json

    file = anchors / "agentclinic" / "agentclinic_medqa.jsonl"
    raw = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    scenarios, _ = load_agentclinic(file)
    calls: list[tuple[str, str]] = []
    published["query_model"] = lambda model, prompt, system, **_: (
        calls.append((system, prompt)) or "RESULTS: normal")
    for record, scenario in zip(raw, scenarios, strict=True):
        agent = published["MeasurementAgent"](published["ScenarioMedQA"](record))
        dialogue = [Utterance(agent="doctor", speaker="Doctor", content="Any pain?",
                              phase="consultation", round=None, audience=None),
                    Utterance(agent="patient", speaker="Patient", content="In my chest.",
                              phase="consultation", round=None, audience=None)]
        agent.add_hist("In my chest.")  # the published loop, line 657
        for request in ("Chest_X-Ray", "ECG"):
            turn = f"REQUEST TEST: {request}"
            agent.inference_measurement(turn)
            ours = measurement_messages(scenario.case, request=request, doctor_turn=turn,
                                        dialogue="", history=published_history(dialogue),
                                        system=PUBLISHED_MEASUREMENT_SYSTEM,
                                        turn=PUBLISHED_MEASUREMENT_TURN)
            assert [m["content"] for m in ours] == list(calls[-1]), scenario.id
            dialogue += [Utterance(agent="doctor", speaker="Doctor", content=turn,
                                   phase="consultation", round=None, audience=None),
                         Utterance(agent="measurement", speaker="Measurement",
                                   content="RESULTS: normal", phase="consultation",
                                   round=None, audience=None)]
    assert len(calls) == 2 * len(scenarios) == 214


# --- published choices as settings ---------------------------------------------------------------


def test_the_doctor_sees_only_the_objective_when_set(tmp_path, repo):
    default = of(run_log(tmp_path / "a", shipped(repo)), "", purpose="doctor")[0]
    assert "Your patient is" in default.messages[0]["content"]
    blind = of(run_log(tmp_path / "b", shipped(repo, doctor_sees="objective")), "",
               purpose="doctor")[0]
    system = blind.messages[0]["content"]
    assert "Your patient is" not in system and "58-year-old" not in system
    assert "Objective:" in system


def test_an_infant_is_described_as_one(tmp_path, anchors):
    file = anchors / "agentclinic" / "agentclinic_medqa.jsonl"
    log = run_log(tmp_path, load_scenarios([file], cases=[2]), max_turns=4)
    doctor = of(log, "", purpose="doctor")[0].messages[0]["content"]
    assert "Your patient is Patient, an 8-month-old boy." in doctor
    patient = of(log, "", purpose="patient")[0].messages[0]["content"]
    assert patient.startswith("You are Patient, an 8-month-old boy, a patient")


class Stub:
    """The scripted model, with some purposes answered by fixed text, without JSON schemas."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers, self.requests = answers, []
        self.scripted = ModelClient(retries=0, backoff_s=0.001)

    def supports_schema(self, model: str) -> bool:
        return False

    async def complete(self, request):
        self.requests.append(request)
        if request.purpose in self.answers:
            return ModelReply(text=self.answers[request.purpose], model=request.model)
        return await self.scripted.complete(request)


def run_stub(scenario: Scenario, answers: dict[str, str], max_turns: int = 6) -> tuple:
    log: list = []
    job = ConversationJob(scenario_id=scenario.id, protocol="clinical", seed=7,
                          max_turns=max_turns, models={"default": "scripted/clinical"})
    client = Stub(answers)
    ctx = ConversationContext(run_id="stub", job=job, scenario=scenario, client=client,
                              emit=log.append)
    asyncio.run(run_clinical(ctx))
    return log, client


@pytest.mark.parametrize(("answer", "strict", "lenient"), [
    ("Yes", "yes", "yes"), ("Yes.", "no", "yes"), ("yes, same disease", "no", "yes")])
def test_the_strict_moderator_wants_exactly_yes(repo, answer, strict, lenient):
    for mode, expected in (("strict", strict), ("lenient", lenient)):
        ((_, scenario),) = shipped(repo, moderator=mode)
        log, client = run_stub(scenario, {"moderator": answer})
        (check,) = of(log, "diagnosis_check")
        assert check.value["moderator"] == expected and check.value["normalised"] == "yes"
        (request,) = [r for r in client.requests if r.purpose == "moderator"]
        assert request.schema is None


def test_the_strict_moderator_is_never_asked_for_json(tmp_path, repo):
    log = run_log(tmp_path, shipped(repo, moderator="strict"))
    (call,) = of(log, "", purpose="moderator")
    assert call.structured is False and call.response == "Yes"
    assert of(log, "diagnosis_check")[0].value["moderator"] == "yes"


def test_a_measurement_model_no_conversation_would_call_is_refused(tmp_path, repo, capsys):
    """--role measurement=M with the records clerk: the model would never be asked."""
    from agentsim.cli.main import main

    case = repo / "scenarios" / "clinical" / "clinical-nstemi-atypical.yaml"
    text = case.read_text().replace("protocol:\n", "protocol:\n  measurement: records\n", 1)
    mine = tmp_path / "records.yaml"
    mine.write_text(text)
    assert "measurement: records" in mine.read_text()
    status = main(["run", str(mine), "--model", "scripted/clinical", "--role",
                   "measurement=scripted/clinical", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2 and "no conversation uses the measurement model" in err
    assert not (tmp_path / "run").exists()
