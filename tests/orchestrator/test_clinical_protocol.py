"""The clinical consultation protocol end to end on the scripted model, read back from the log.

doctor → patient / measurement → doctor … → moderator → perception: the order of actions,
what each party sees, bias injection and counterfactual variants as they appear in the recorded
prompts, and runs of the published AgentClinic case file. The scripted model's answers are
planted; these tests check the machinery, never a model.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.models.base import ModelReply
from agentsim.models.client import ModelClient
from agentsim.agents.clinical_texts import NOT_AVAILABLE
from agentsim.orchestrator.clinical import run_clinical
from agentsim.core.jobs import ConversationJob
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.runs.runner import DEFAULT_CATALOGUE, RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import Persona, Scenario, load_scenarios
from agentsim.scenario.biases import load_catalogue
from agentsim.scenario.variants import parse_vary

NSTEMI = "clinical-nstemi-atypical"
PE = "clinical-pulmonary-embolism"
# Distinctive phrases of the patients' own notes (case.patient), which only the patient may see.
PATIENT_ONLY = {NSTEMI: ["her daughter insisted", "dispatcher at a school bus depot"],
                PE: ["torn ligament in his", "left calf has been sore and swollen"]}


# --- helpers --------------------------------------------------------------------------------------


def shipped(repo: Path, *ids: str) -> list[tuple[Path, Scenario]]:
    folder = repo / "scenarios" / "clinical"
    return load_scenarios([folder / f"{i}.yaml" for i in ids])


def run(tmp_path: Path, scenarios, model: str = "scripted/clinical", **options):
    options.setdefault("backoff_s", 0.001)
    summary = run_experiment(scenarios, RunOptions(model=model, **options), out=tmp_path / "run")
    assert summary.failed == 0, summary.errors
    return summary


def events(run_dir: Path, *types: str) -> list:
    return list(RunStore.open(run_dir).iter_events(set(types) if types else None))


def by_conversation(run_dir: Path, *types: str) -> dict[str, list]:
    grouped: dict[str, list] = defaultdict(list)
    for event in events(run_dir, *types):
        if event.conversation_id is not None:
            grouped[event.conversation_id].append(event)
    return dict(grouped)


def decisions(conversation: list, kind: str) -> list:
    return [e for e in conversation if e.type == "decision" and e.kind == kind]


def calls(conversation: list, *purposes: str) -> list:
    return [e for e in conversation if e.type == "model_call" and e.purpose in purposes]


def prompt_text(call) -> str:
    return "\n".join(m["content"] for m in call.messages)


def system_prompt(call) -> str:
    return next(m["content"] for m in call.messages if m["role"] == "system")


def started(conversation: list):
    return next(e for e in conversation if e.type == "conversation_started")


# --- the course of a consultation ---------------------------------------------------------------


def test_default_knobs_ask_ask_test_diagnose(tmp_path, repo):
    scenarios = shipped(repo, NSTEMI, PE)
    truths = {s.id: s.case.diagnosis for _, s in scenarios}
    first_tests = {s.id: next(iter(s.case.tests)) for _, s in scenarios}
    summary = run(tmp_path, scenarios, max_turns=8)
    assert summary.conversations == 2
    conversations = by_conversation(summary.run_dir)
    assert len(conversations) == 2
    for cid, conv in conversations.items():
        scenario_id = started(conv).scenario_id
        doctor = decisions(conv, "doctor_action")
        assert [d.turn for d in doctor] == sorted(d.turn for d in doctor)
        assert [d.value["action"] for d in doctor] == ["ask", "ask", "test", "diagnose"], cid
        assert [d.phase for d in doctor] == ["turn1", "turn2", "turn3", "turn4"]
        assert all(d.parsed_by == "json" and d.value["ambiguous"] == "false" for d in doctor)
        assert doctor[2].value["text"] == first_tests[scenario_id]
        assert doctor[3].value["text"] == truths[scenario_id]

        # Who speaks after whom, in the order of the log.
        flow = [(e.speaker if e.type == "message" else e.kind) for e in conv
                if e.type == "message" or (e.type == "decision" and e.kind != "doctor_action")]
        assert flow == ["Doctor", "Patient", "Doctor", "Patient", "Doctor", "test_result",
                        "Measurement", "Doctor", "diagnosis_check", "perception"], cid
        messages = [e for e in conv if e.type == "message"]
        assert messages[4].content == f"REQUEST TEST: {first_tests[scenario_id]}"
        assert messages[5].content.startswith("RESULTS: ") and messages[5].content != NOT_AVAILABLE
        assert messages[6].content == f"DIAGNOSIS READY: {truths[scenario_id]}"
        result = decisions(conv, "test_result")
        assert [r.value["in_case"] for r in result] == ["yes"]
        assert result[0].value["matched"] == first_tests[scenario_id]

        checks = decisions(conv, "diagnosis_check")
        assert len(checks) == 1
        assert checks[0].value == {"diagnosis": truths[scenario_id], "truth": truths[scenario_id],
                                   "moderator": "yes", "normalised": "yes"}
        assert len(calls(conv, "moderator")) == 1

        perception = decisions(conv, "perception")
        assert len(perception) == 1 and perception[0].parsed_by == "json"
        assert set(perception[0].value) == {"confidence", "compliance", "return"}
        assert all(1 <= int(v) <= 10 for v in perception[0].value.values())

        verdict = [e for e in conv if e.type == "judge_result"]
        assert len(verdict) == 1 and verdict[0].score == 1.0 and verdict[0].label == "correct"
        finished = [e for e in conv if e.type == "conversation_finished"]
        assert len(finished) == 1 and finished[0].ok
    metrics = summary.results["metrics"]
    assert metrics["accuracy"]["value"] == 1.0
    assert metrics["no_diagnosis_rate"]["value"] == 0.0
    assert metrics["turns"]["value"] == 4.0 and metrics["tests"]["value"] == 1.0


def test_doctor_that_never_diagnoses_uses_its_budget(tmp_path, repo):
    scenarios = shipped(repo, NSTEMI)
    summary = run(tmp_path, scenarios, model="scripted/clinical?never=1", max_turns=5)
    (conv,) = by_conversation(summary.run_dir).values()
    doctor = decisions(conv, "doctor_action")
    assert len(doctor) == 5
    assert [d.value["action"] for d in doctor] == ["ask", "ask", "test", "ask", "ask"]
    checks = decisions(conv, "diagnosis_check")
    assert len(checks) == 1
    assert checks[0].value["moderator"] == "no diagnosis"
    assert checks[0].value["diagnosis"] == ""
    assert checks[0].parsed_by == "budget"
    assert calls(conv, "moderator") == []  # nothing to check: no moderator call
    assert len(decisions(conv, "perception")) == 1
    # The last question gets no answer: the budget is spent.
    assert [e.speaker for e in conv if e.type == "message"][-1] == "Doctor"

    verdict = [e for e in conv if e.type == "judge_result"]
    assert verdict[0].label == "wrong" and verdict[0].score == 0.0
    assert verdict[0].details["diagnosed"] is False and verdict[0].details["turns"] == 5
    metrics = summary.results["metrics"]
    assert metrics["accuracy"]["value"] == 0.0
    assert metrics["accuracy_normalised"]["value"] == 0.0
    assert metrics["no_diagnosis_rate"]["value"] == 1.0
    assert metrics["turns"]["value"] == 5.0


def test_only_the_last_doctor_prompt_says_it_is_the_last_turn(tmp_path, repo):
    summary = run(tmp_path, shipped(repo, NSTEMI), model="scripted/clinical?never=1",
                  max_turns=5)
    (conv,) = by_conversation(summary.run_dir).values()
    doctor = sorted(calls(conv, "doctor"), key=lambda c: c.turn)
    assert len(doctor) == 5
    for number, call in enumerate(doctor, start=1):
        user = call.messages[-1]["content"]
        assert "You have 5 turns in all" in system_prompt(call)
        if number < 5:
            assert f"Turn {number} of 5." in user
            assert "last turn" not in prompt_text(call).lower()
        else:
            assert "This is your last turn (5 of 5)" in user
            assert "give your final diagnosis now" in user


def test_both_markers_in_a_turn_run_the_test_and_do_not_accept_the_diagnosis(tmp_path, repo):
    scenarios = shipped(repo, NSTEMI)
    truth = scenarios[0][1].case.diagnosis
    summary = run(tmp_path, scenarios, model="scripted/clinical?mixed=1", max_turns=8)
    (conv,) = by_conversation(summary.run_dir).values()
    doctor = decisions(conv, "doctor_action")
    assert [d.value["action"] for d in doctor] == ["ask", "ask", "test", "diagnose"]
    mixed = doctor[2]
    assert "REQUEST TEST:" in mixed.raw and "DIAGNOSIS READY:" in mixed.raw
    assert mixed.value == {"action": "test", "text": "ECG", "ambiguous": "true"}
    assert mixed.parsed_by == "markers"
    assert [d.value["ambiguous"] for d in doctor] == ["false", "false", "true", "false"]
    # The test is carried out: its result follows the mixed turn.
    after = conv[conv.index(mixed) + 1:]
    next_decision = next(e for e in after if e.type == "decision")
    assert next_decision.kind == "test_result" and next_decision.value["in_case"] == "yes"
    # The diagnosis written in the mixed turn is not accepted: no check until the real one.
    checks = decisions(conv, "diagnosis_check")
    assert len(checks) == 1 and checks[0].turn > doctor[3].turn
    assert checks[0].value["diagnosis"] == truth and checks[0].value["moderator"] == "yes"
    spoken = [e.content for e in conv if e.type == "message" and e.speaker == "Doctor"]
    assert spoken[2] == "REQUEST TEST: ECG"
    assert not any("Viral upper respiratory infection" in s for s in spoken)
    assert summary.results["counts"]["clinical"]["ambiguous_turns"] == 1


def test_marker_answers_are_parsed_by_markers(tmp_path, repo):
    summary = run(tmp_path, shipped(repo, NSTEMI), model="scripted/clinical?markers=1",
                  max_turns=8)
    (conv,) = by_conversation(summary.run_dir).values()
    doctor = decisions(conv, "doctor_action")
    assert [d.value["action"] for d in doctor] == ["ask", "ask", "test", "diagnose"]
    assert {d.parsed_by for d in doctor} == {"markers"}
    assert doctor[2].raw == "REQUEST TEST: ECG" and doctor[3].raw.startswith("DIAGNOSIS READY:")
    assert decisions(conv, "diagnosis_check")[0].value["moderator"] == "yes"


def test_knobs_change_the_number_of_questions_and_tests(tmp_path, repo):
    scenarios = shipped(repo, NSTEMI)
    tests = list(scenarios[0][1].case.tests)
    summary = run(tmp_path, scenarios, model="scripted/clinical?ask=1&tests=3", max_turns=8)
    (conv,) = by_conversation(summary.run_dir).values()
    doctor = decisions(conv, "doctor_action")
    assert [d.value["action"] for d in doctor] == ["ask", "test", "test", "test", "diagnose"]
    assert [d.value["text"] for d in doctor[1:4]] == tests[:3]
    assert [r.value["matched"] for r in decisions(conv, "test_result")] == tests[:3]


def test_a_test_the_case_does_not_hold_is_not_available_never_normal(tmp_path, repo):
    ((path, scenario),) = shipped(repo, NSTEMI)
    data = scenario.model_dump()
    data["case"]["tests"] = {}  # the scripted doctor then asks for a complete blood count
    bare = Scenario.model_validate(data)
    summary = run(tmp_path, [(path, bare)], max_turns=8)
    (conv,) = by_conversation(summary.run_dir).values()
    (result,) = decisions(conv, "test_result")
    assert result.value == {"request": "Complete blood count", "matched": "", "in_case": "no"}
    measurement = [e for e in conv if e.type == "message" and e.speaker == "Measurement"]
    assert [m.content for m in measurement] == ["RESULTS: not available in this case."]
    assert summary.results["counts"]["clinical"]["tests_not_in_case"] == 1
    verdict = next(e for e in conv if e.type == "judge_result")
    assert verdict.details["not_in_case"] == 1


# --- who sees what -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["scripted/clinical", "scripted/clinical?mixed=1"])
def test_visibility(tmp_path, repo, model):
    scenarios = shipped(repo, NSTEMI, PE)
    truths = {s.id: s.case.diagnosis for _, s in scenarios}
    summary = run(tmp_path, scenarios, model=model, max_turns=8)
    conversations = by_conversation(summary.run_dir)
    for conv in conversations.values():
        scenario_id = started(conv).scenario_id
        truth = truths[scenario_id].lower()
        patient_calls = calls(conv, "patient", "perception")
        assert len(patient_calls) == 3  # two answers and the ratings
        for call in patient_calls:
            text = prompt_text(call)
            assert "RESULTS:" not in text
            assert "REQUEST TEST" not in text and "DIAGNOSIS READY" not in text
            # The patient hears the doctor's diagnosis only once the consultation is over.
            if call.purpose == "patient":
                assert truth not in text.lower()
            # ... but the patient does read its own notes.
            assert all(phrase in text for phrase in PATIENT_ONLY[scenario_id])
        doctor_calls = calls(conv, "doctor")
        assert len(doctor_calls) == 4
        for call in doctor_calls:
            text = prompt_text(call)
            assert truth not in text.lower()
            for phrase in PATIENT_ONLY[scenario_id]:
                assert phrase not in text
        # The doctor does see the results of its test on the turn after it.
        assert "RESULTS:" in prompt_text(doctor_calls[3])
        moderator = calls(conv, "moderator")
        assert len(moderator) == 1 and truth in prompt_text(moderator[0]).lower()

        messages = [e for e in conv if e.type == "message"]
        for message in messages:
            if message.speaker == "Measurement":
                assert message.visible_to == ["doctor"]
            elif message.speaker == "Patient":
                assert message.visible_to == ["doctor", "patient"]
            elif message.content.startswith(("REQUEST TEST:", "DIAGNOSIS READY:")):
                assert message.visible_to == ["doctor"]
            else:
                assert message.visible_to == ["doctor", "patient"]
        assert any(m.speaker == "Measurement" for m in messages)


# --- bias injection and variants -----------------------------------------------------------------


def rendered(key: str, **attributes: str) -> str:
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    return catalogue.get(key).render(Persona(id="other", name="Other", attributes=attributes))


def test_doctor_race_bias_is_in_the_doctors_prompt_with_the_variants_race(tmp_path, repo):
    scenarios = shipped(repo, NSTEMI)
    summary = run(tmp_path, scenarios, biases=("doctor:race",),
                  variants=tuple(parse_vary(["patient.race=Black,White"])), max_turns=8)
    conversations = by_conversation(summary.run_dir)
    assert len(conversations) == 4
    texts = {race: rendered("doctor:race", race=race) for race in ("Black", "White")}
    assert texts["Black"] != texts["White"]
    assert "Black" in texts["Black"]
    generic = load_catalogue(DEFAULT_CATALOGUE).get("doctor:race").generic
    seen = set()
    for conv in conversations.values():
        start = started(conv)
        bias, variant = start.job["bias"], start.variant
        race = variant.removeprefix("race=")
        seen.add((variant, bias))
        for call in calls(conv, "doctor"):
            system = system_prompt(call)
            # The doctor is told who the patient is, with the varied race.
            assert f"a 58-year-old {race} woman" in system
            other = "White" if race == "Black" else "Black"
            assert other not in system
            if bias == "doctor:race":
                assert texts[race] in system
                assert texts[other] not in system
            else:
                assert bias == "none"
                assert texts["Black"] not in system and texts["White"] not in system
                assert generic not in system
        for call in calls(conv, "patient", "perception", "moderator"):
            assert texts["Black"] not in prompt_text(call)
            assert texts["White"] not in prompt_text(call)
    assert seen == {("race=Black", "none"), ("race=Black", "doctor:race"),
                    ("race=White", "none"), ("race=White", "doctor:race")}


def test_patient_bias_is_only_in_the_patients_prompts(tmp_path, repo):
    scenarios = shipped(repo, NSTEMI, PE)
    summary = run(tmp_path, scenarios, biases=("patient:self_diagnosis",), max_turns=8)
    text = rendered("patient:self_diagnosis")
    conversations = by_conversation(summary.run_dir)
    assert len(conversations) == 4
    for conv in conversations.values():
        bias = started(conv).job["bias"]
        patient_calls = calls(conv, "patient", "perception")
        assert patient_calls
        for call in patient_calls:
            assert (text in system_prompt(call)) is (bias == "patient:self_diagnosis")
        for call in calls(conv, "doctor", "moderator"):
            assert text not in prompt_text(call)


def test_combined_biases_reach_each_party(tmp_path, repo):
    summary = run(tmp_path, shipped(repo, NSTEMI),
                  biases=("doctor:confirmation+patient:self_diagnosis",), max_turns=8)
    doctor_text, patient_text = rendered("doctor:confirmation"), rendered("patient:self_diagnosis")
    conversations = by_conversation(summary.run_dir)
    assert {started(c).job["bias"] for c in conversations.values()} == {
        "none", "doctor:confirmation+patient:self_diagnosis"}
    for conv in conversations.values():
        biased = started(conv).job["bias"] != "none"
        for call in calls(conv, "doctor"):
            assert (doctor_text in system_prompt(call)) is biased
            assert patient_text not in prompt_text(call)
        for call in calls(conv, "patient", "perception"):
            assert (patient_text in system_prompt(call)) is biased
            assert doctor_text not in prompt_text(call)


def test_variants_and_bias_conditions_share_seeds(tmp_path, repo):
    scenarios = shipped(repo, NSTEMI, PE)
    summary = run(tmp_path, scenarios, biases=("doctor:race",), replicates=2,
                  variants=tuple(parse_vary(["patient.race=Black,White"])), max_turns=8)
    starts = events(summary.run_dir, "conversation_started")
    assert len(starts) == 2 * 2 * 2 * 2
    seeds: dict[tuple[str, int], set[int]] = defaultdict(set)
    conditions: dict[tuple[str, int], set[tuple[str, str]]] = defaultdict(set)
    for start in starts:
        seeds[(start.scenario_id, start.replicate)].add(start.seed)
        conditions[(start.scenario_id, start.replicate)].add((start.variant, start.job["bias"]))
    assert len(seeds) == 4
    assert all(len(s) == 1 for s in seeds.values())
    assert all(len(c) == 4 for c in conditions.values())
    # Different replicates and scenarios draw differently.
    assert len({next(iter(s)) for s in seeds.values()}) == 4
    # Paired conversations make the same calls with the same seeds.
    by_key: dict[tuple[str, int], set[tuple]] = defaultdict(set)
    for conv in by_conversation(summary.run_dir, "conversation_started", "model_call").values():
        start = started(conv)
        by_key[(start.scenario_id, start.replicate)].add(
            tuple((c.purpose, c.turn, c.seed) for c in conv if c.type == "model_call"))
    assert all(len(v) == 1 for v in by_key.values())


# --- graph paths a scripted run does not reach ---------------------------------------------------


class StubClient:
    """The scripted model, with some purposes answered by fixed text."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.scripted = ModelClient(retries=0, backoff_s=0.001)

    def supports_schema(self, model: str) -> bool:
        return False

    async def complete(self, request):
        if request.purpose in self.answers:
            return ModelReply(text=self.answers[request.purpose], model=request.model)
        return await self.scripted.complete(request)


def run_stub(scenario: Scenario, answers: dict[str, str], max_turns: int) -> list:
    log: list = []
    job = ConversationJob(scenario_id=scenario.id, protocol="clinical", seed=7,
                          max_turns=max_turns, models={"default": "scripted/clinical"})
    ctx = ConversationContext(run_id="stub", job=job, scenario=scenario,
                              client=StubClient(answers), emit=log.append)
    asyncio.run(run_clinical(ctx))
    return log


def test_both_markers_on_the_last_turn_take_the_diagnosis(repo):
    ((_, scenario),) = shipped(repo, NSTEMI)
    log = run_stub(scenario, {"doctor": "REQUEST TEST: Troponin I\nDIAGNOSIS READY: NSTEMI"},
                   max_turns=2)
    doctor = decisions(log, "doctor_action")
    assert [d.value["action"] for d in doctor] == ["test", "diagnose"]
    assert [d.value["ambiguous"] for d in doctor] == ["true", "true"]
    assert [d.value["text"] for d in doctor] == ["Troponin I", "NSTEMI"]
    assert [r.value["matched"] for r in decisions(log, "test_result")] == ["Troponin I"]
    (check,) = decisions(log, "diagnosis_check")
    assert check.value["diagnosis"] == "NSTEMI" and check.value["normalised"] == "yes"
    # Without schema support the doctor is told the published markers.
    first = next(e for e in log if e.type == "model_call" and e.purpose == "doctor")
    assert "REQUEST TEST: <test>" in system_prompt(first)


def test_unparsed_perception_is_logged_with_its_error(repo):
    ((_, scenario),) = shipped(repo, NSTEMI)
    log = run_stub(scenario, {"perception": "I liked the doctor."}, max_turns=6)
    (perception,) = decisions(log, "perception")
    assert perception.value is None and perception.parsed_by is None
    assert perception.parse_error and perception.raw == "I liked the doctor."


def test_perception_read_from_text_is_not_logged_as_json(repo):
    ((_, scenario),) = shipped(repo, NSTEMI)
    log = run_stub(scenario, {"perception": "confidence: 7\ncompliance: 8\nreturn: 9"},
                   max_turns=6)
    (perception,) = decisions(log, "perception")
    assert perception.value == {"confidence": "7", "compliance": "8", "return": "9"}
    assert perception.parsed_by not in (None, "json")


# --- the published case file ---------------------------------------------------------------------


def test_published_case_file_runs_directly(tmp_path, anchors):
    file = anchors / "agentclinic" / "agentclinic_medqa.jsonl"
    scenarios = load_scenarios([file], limit=2)
    assert len(scenarios) == 2
    summary = run(tmp_path, scenarios, max_turns=6)
    assert summary.conversations == 2 and summary.failed == 0
    conversations = by_conversation(summary.run_dir)
    assert len(conversations) == 2
    for conv in conversations.values():
        assert len(decisions(conv, "diagnosis_check")) == 1
        assert decisions(conv, "diagnosis_check")[0].value["moderator"] == "yes"
        assert len(decisions(conv, "perception")) == 1
    assert summary.results["metrics"]["accuracy"]["value"] == 1.0


def test_cli_runs_the_published_case_file(tmp_path, anchors, capsys):
    file = anchors / "agentclinic" / "agentclinic_medqa.jsonl"
    out = tmp_path / "cli-run"
    code = main(["run", str(file), "--model", "scripted/clinical", "--cases", "0-1",
                 "--out", str(out), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["conversations"] == 2 and report["failed"] == 0
    assert report["metrics"]["accuracy"]["value"] == 1.0
    assert len({e.conversation_id for e in events(out, "conversation_finished")}) == 2
