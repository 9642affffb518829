"""The committed example run (made with the embedded model) stays readable and re-judgeable."""

from __future__ import annotations

import json
import shutil

from agentsim.runs.judging import rejudge
from agentsim.core.store import RunStore

EXAMPLE = "runs/examples/cofounders-smollm2"


def test_rejudging_the_example_reproduces_its_results(tmp_path, repo):
    run_dir = tmp_path / "example"
    shutil.copytree(repo / EXAMPLE, run_dir)
    committed = json.loads((run_dir / "results.json").read_text())
    results, _ = rejudge(run_dir)
    assert results["metrics"] == committed["metrics"]
    store = RunStore.open(run_dir)
    calls = list(store.iter_events({"model_call"}))
    assert calls and {c.model for c in calls} == {"local/smollm2-135m-instruct"}
    assert any(d.phase == "probe" for d in store.iter_events({"decision"}))
