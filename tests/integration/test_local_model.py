"""The real path: the embedded SmolLM2-135M model through the whole pipeline (slow, offline).

These check that the local model answers through the one client with schema-constrained,
parseable decisions and a complete log; they assert nothing about its bias.
"""

from __future__ import annotations

import pytest

from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios

pytestmark = pytest.mark.integration


def test_one_conversation_on_the_local_model(tmp_path, workplace):
    scenarios = load_scenarios([workplace / "office-startup-cofounders.yaml"])
    summary = run_experiment(scenarios, RunOptions(rounds=1, seed=3), out=tmp_path / "run")
    assert summary.conversations == 1 and summary.failed == 0
    store = RunStore.open(summary.run_dir)
    calls = list(store.iter_events({"model_call"}))
    assert {c.model for c in calls} == {"local/smollm2-135m-instruct"}
    assert all(c.error is None and c.completion_tokens for c in calls)
    decisions = list(store.iter_events({"decision"}))
    assert len(decisions) == 4  # two agents, first and final
    # JSON-schema constrained decoding: every decision parses as JSON.
    assert all(d.value is not None and d.parsed_by == "json" for d in decisions)
    messages = [m for m in store.iter_events({"message"}) if m.phase == "discussion"]
    assert len(messages) == 2 and all(m.content for m in messages)
    assert "bias_first" in summary.results["metrics"]
