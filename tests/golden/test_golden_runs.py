"""Golden runs: every shipped scenario folder on the scripted models with fixed seeds; their
metrics must not change unless a change means them to.

The recorded metrics (value, interval, n) are in ``tests/golden/*.json``. A change that alters
them on purpose re-records them with ``AGENTSIM_UPDATE_GOLDEN=1 pytest tests/golden`` and says
why in its commit. The scripted model tests the machinery; these numbers are not findings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import load_scenarios

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent
UPDATE = os.environ.get("AGENTSIM_UPDATE_GOLDEN") == "1"

# name → (scenario folder, options). Concurrency 1: results must not depend on the order in
# which conversations finish.
CASES = {
    "workplace-interaction": ("scenarios/workplace", {
        "model": "scripted/stereotyped?rate=0.4&final=0.7", "setting": "interaction",
        "rounds": 1, "seed": 11}),
    "workplace-no-interaction": ("scenarios/workplace", {
        "model": "scripted/stereotyped?rate=0.6", "setting": "no-interaction", "seed": 12}),
    "workplace-goal": ("scenarios/workplace", {
        "model": "scripted/stereotyped?rate=0.3&final=0.5", "setting": "goal", "rounds": 1,
        "seed": 13}),
    "clinical": ("scenarios/clinical", {
        "model": "scripted/clinical?correct=0.6", "max_turns": 6, "seed": 14,
        "biases": ("doctor:race",)}),
    "setups": ("scenarios/setups", {
        "model": "scripted/stereotyped?rate=0.5&favour=gender:man", "rounds": 1, "seed": 15}),
}


def digest(metrics: dict) -> dict:
    """What must stay equal: each metric's value, interval and n, rounded past float noise."""
    def rounded(x):
        return None if x is None else round(float(x), 9)

    return {name: {"value": rounded(m["value"]), "ci_low": rounded(m.get("ci_low")),
                   "ci_high": rounded(m.get("ci_high")), "n": m.get("n")}
            for name, m in sorted(metrics.items())}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_run(name, tmp_path):
    folder, options = CASES[name]
    scenarios = load_scenarios([REPO / folder])
    summary = run_experiment(scenarios, RunOptions(**options, concurrency=1, cache=False,
                                                   backoff_s=0.001), out=tmp_path / "run")
    assert summary.failed == 0, summary.errors
    got = {"conversations": summary.conversations, "metrics": digest(summary.results["metrics"])}
    path = GOLDEN / f"{name}.json"
    if UPDATE or not path.exists():
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        if not UPDATE:
            pytest.fail(f"recorded {path.name} for the first time; run again to compare")
    expected = json.loads(path.read_text())
    assert got["conversations"] == expected["conversations"]
    assert set(got["metrics"]) == set(expected["metrics"])
    changed = {k: (expected["metrics"][k], v) for k, v in got["metrics"].items()
               if v != expected["metrics"][k]}
    assert not changed, f"{len(changed)} metrics changed, e.g. {next(iter(changed.items()))}"
