"""A clinical consultation on the embedded SmolLM2-135M model (slow, offline).

One short consultation through the whole graph: it must finish, and the log must hold the doctor's
actions, the diagnosis check and the patient's ratings (or why they could not be read). Nothing
is asserted about the model's medicine or its bias.
"""

from __future__ import annotations

import pytest

from agentsim.models.names import DEFAULT_MODEL
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios

pytestmark = pytest.mark.integration


def test_one_consultation_on_the_local_model(tmp_path, repo):
    case = repo / "scenarios" / "clinical" / "clinical-nstemi-atypical.yaml"
    summary = run_experiment(load_scenarios([case]),
                             RunOptions(max_turns=3, replicates=1, seed=1, backoff_s=0.001),
                             out=tmp_path / "run")
    assert summary.conversations == 1 and summary.failed == 0, summary.errors
    store = RunStore.open(summary.run_dir)
    calls = list(store.iter_events({"model_call"}))
    assert {c.model for c in calls} == {DEFAULT_MODEL}
    assert all(c.error is None for c in calls)
    decisions = list(store.iter_events({"decision"}))

    doctor = [d for d in decisions if d.kind == "doctor_action"]
    assert 1 <= len(doctor) <= 3
    assert all(d.value["action"] in ("ask", "test", "diagnose") for d in doctor)

    (check,) = [d for d in decisions if d.kind == "diagnosis_check"]
    if doctor[-1].value["action"] == "diagnose":
        assert check.value["moderator"] in ("yes", "no", "unparsed")
        assert check.value["diagnosis"] == doctor[-1].value["text"]
    else:
        assert len(doctor) == 3
        assert check.value["moderator"] == "no diagnosis"

    (perception,) = [d for d in decisions if d.kind == "perception"]
    if perception.value is None:
        assert perception.parse_error
    else:
        assert set(perception.value) == {"confidence", "compliance", "return"}
        assert all(1 <= int(v) <= 10 for v in perception.value.values())

    metrics = summary.results["metrics"]
    assert metrics["accuracy"]["n"] == 1
