"""The agentclinic2024 preset against the published code itself.

A scripted run of one published MedQA case under ``--preset agentclinic2024``, unbiased and with
a published doctor bias and a published patient bias (the published bias catalogue); then the
published loop (agentclinic.py:622-659) is replayed with the published agent classes, loaded
from the anchors with their model calls stubbed to answer what the logged run answered, and
every prompt the published agents build (doctor, patient, measurement, moderator) must equal the
logged one. The scripted model tests the machinery only; nothing here is a finding about bias.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.core.store import RunStore
# The published agentclinic.py, loaded with its API clients stubbed out (a fixture).
from tests.orchestrator.test_clinical_measurement import published  # noqa: F401

CATALOGUE = Path(__file__).resolve().parents[2] / "agentsim" / "scenario" / "data" / \
    "biases_agentclinic2024.yaml"
BIASES = ("doctor:confirmation", "patient:self_diagnosis")


def run_preset(anchors: Path, out: Path, model: str = "scripted/clinical?markers=1",
               *extra: str) -> Path:
    """A scripted run of MedQA case 0 under the preset, unbiased and with each of BIASES."""
    args = ["run", str(anchors / "agentclinic" / "agentclinic_medqa.jsonl"), "--cases", "0",
            "--model", model, "--preset", "agentclinic2024", "--out", str(out), "--no-cache",
            *extra]
    for bias in BIASES:
        args += ["--bias", bias]
    assert main(args) == 0
    # The preset selects the published bias texts (no --bias-catalogue given).
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["bias_catalogue"]["catalogue"] == "agentclinic2024"
    assert manifest["options"]["bias_catalogue"] == str(CATALOGUE)
    return out


@pytest.fixture
def preset_run(anchors, tmp_path):
    return run_preset(anchors, tmp_path / "run")


def replay(published: dict, record: dict, bias: str, replies: list[str],
           total_inferences: int = 20) -> list[tuple]:
    """The published loop (agentclinic.py:600-659) on ``record``, every model answering the
    logged run's answer in order; returns each call's (system prompt, prompt)."""
    calls: list[tuple[str, str]] = []
    answers = iter(replies)
    published["query_model"] = lambda model, prompt, system, **_: (
        calls.append((system, prompt)) or next(answers))
    role, _, name = bias.partition(":")
    scenario = published["ScenarioMedQA"](record)
    meas = published["MeasurementAgent"](scenario, backend_str="gpt4")
    patient = published["PatientAgent"](scenario, backend_str="gpt4",
                                        bias_present=name if role == "patient" else None)
    doctor = published["DoctorAgent"](scenario, backend_str="gpt4", max_infs=total_inferences,
                                      bias_present=name if role == "doctor" else None)
    pi_dialogue = ""
    for inf in range(total_inferences):
        if inf == total_inferences - 1:
            pi_dialogue += "This is the final question. Please provide a diagnosis.\n"
        doctor_dialogue = doctor.inference_doctor(pi_dialogue, image_requested=False)
        if "DIAGNOSIS READY" in doctor_dialogue:
            published["compare_results"](doctor_dialogue, scenario.diagnosis_information(),
                                         "gpt4", None)
            break
        if "REQUEST TEST" in doctor_dialogue:
            pi_dialogue = meas.inference_measurement(doctor_dialogue)
            patient.add_hist(pi_dialogue)
        else:
            pi_dialogue = patient.inference_patient(doctor_dialogue)
            meas.add_hist(pi_dialogue)
    return calls


def compare(run: Path, anchors: Path, published: dict, total_inferences: int = 20) -> int:
    """Compare every logged doctor, patient, measurement and moderator prompt of ``run`` with
    the replayed published agents'; the number of prompts compared."""
    file = anchors / "agentclinic" / "agentclinic_medqa.jsonl"
    record = json.loads(file.read_text().splitlines()[0])
    store = RunStore.open(run)
    jobs = {e.conversation_id: e.job["bias"]
            for e in store.iter_events({"conversation_started"})}
    assert sorted(jobs.values()) == sorted(["none", *BIASES])
    purposes, compared = {"doctor", "patient", "measurement", "moderator"}, 0
    for conversation, bias in jobs.items():
        calls = [e for e in store.iter_events({"model_call"})
                 if e.conversation_id == conversation and e.purpose in purposes]
        assert all(c.temperature == 0.05 and c.max_tokens == 200 and not c.structured
                   for c in calls)
        ours = [tuple(m["content"] for m in c.messages) for c in calls]
        theirs = replay(published, record, bias, [c.response for c in calls],
                        total_inferences)
        assert ours == theirs, bias
        compared += len(ours)
    return compared


def test_every_logged_prompt_is_the_published_agents_prompt(preset_run, anchors, published):
    """Two questions, a test, a diagnosis: per consultation 4 doctor, 2 patient, 1 measurement
    and 1 moderator prompts."""
    assert compare(preset_run, anchors, published) == 3 * 8


def test_the_last_turn_notice_and_the_question_count(anchors, published, tmp_path):
    """Four turns, the last one told it is the final question (agentclinic.py:630-631)."""
    run = run_preset(anchors, tmp_path / "run", "scripted/clinical?markers=1&ask=9",
                     "--max-turns", "4")
    assert compare(run, anchors, published, total_inferences=4) == 3 * 8
    last = "This is the final question. Please provide a diagnosis.\nNow please continue"
    told: dict[str, list[bool]] = {}
    for e in RunStore.open(run).iter_events({"model_call"}):
        if e.purpose == "doctor":
            told.setdefault(e.conversation_id, []).append(last in e.messages[1]["content"])
    assert list(told.values()) == [[False, False, False, True]] * 3


def test_the_published_moderator_reading_is_strict(preset_run):
    store = RunStore.open(preset_run)
    checks = [e for e in store.iter_events({"decision"}) if e.kind == "diagnosis_check"]
    assert checks and all(e.parsed_by == "strict" for e in checks)


def test_a_clinical_prompt_file_changes_the_prompts(anchors, tmp_path):
    """The shipped clinical prompt file, edited and passed with --prompts, is what runs."""
    from agentsim.resources import asset_path

    text = asset_path("agentsim.scenario", "prompts", "clinical.yaml").read_text()
    assert "Answer only Yes or No." in text
    edited = tmp_path / "mine.yaml"
    edited.write_text(text.replace("Answer only Yes or No.", "Say Yes or No."))
    out = tmp_path / "run"
    assert main(["run", str(anchors / "agentclinic" / "agentclinic_medqa.jsonl"), "--cases",
                 "0", "--model", "scripted/clinical", "--prompts", str(edited), "--out",
                 str(out), "--no-cache"]) == 0
    moderator = [e for e in RunStore.open(out).iter_events({"model_call"})
                 if e.purpose == "moderator"]
    assert moderator and all(e.messages[0]["content"].endswith("Say Yes or No.")
                             for e in moderator)
