"""Every shipped custom setup on the embedded SmolLM2-135M model (slow, offline): the real path
through the setup graph, schema-constrained structured answers and a complete log. These assert
nothing about the model's bias."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios
from agentsim.scenario.variants import BASE_VARIANT

pytestmark = pytest.mark.integration

SETUPS = Path(__file__).resolve().parents[2] / "scenarios" / "setups"


@pytest.mark.parametrize("example", sorted(p.stem for p in SETUPS.glob("*.yaml")))
def test_shipped_setup_on_the_local_model(tmp_path, example):
    scenarios = load_scenarios([SETUPS / f"{example}.yaml"])
    summary = run_experiment(scenarios, RunOptions(rounds=1, seed=5, variants=(BASE_VARIANT,)),
                             out=tmp_path / "run")
    assert summary.conversations == 1 and summary.failed == 0, summary.errors
    store = RunStore.open(summary.run_dir)
    calls = list(store.iter_events({"model_call"}))
    assert calls and {c.model for c in calls} == {"local/smollm2-135m-instruct"}
    assert all(c.error is None for c in calls)
    # Structured answers are JSON-schema constrained: every decision point's answer and every
    # moderator choice is valid JSON for its schema, whatever its content.
    structured = [c for c in calls if c.purpose in ("decision", "turn_choice", "stop_check")]
    assert structured and all(c.structured for c in structured)
    decisions = [d for d in store.iter_events({"decision"}) if d.point]
    assert decisions and all(d.raw for d in decisions)
    parsed = [d for d in decisions if d.value is not None]
    assert len(parsed) >= len(decisions) / 2, [d.parse_error for d in decisions]
    spoken = [m for m in store.iter_events({"message"}) if m.phase == "discussion"]
    assert spoken and all(m.content and m.visible_to for m in spoken)
