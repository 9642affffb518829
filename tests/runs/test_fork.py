"""Forking a logged conversation at turn K: verbatim before K, live after, recorded parent."""

from __future__ import annotations

import json

import pytest

from agentsim.errors import InputError
from agentsim.runs.fork import fork_run
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.runs.store import RunStore
from agentsim.scenario import load_scenarios

CID = "office-product-launch.base.none.r0"


@pytest.fixture
def parent(tmp_path, workplace):
    scenarios = load_scenarios([workplace / "office-product-launch.yaml"])
    summary = run_experiment(scenarios, RunOptions(model="scripted/stereotyped?rate=0.5",
                                                   rounds=2), out=tmp_path / "parent")
    return summary.run_dir


def messages(run_dir, cid=None):
    return [(m.turn, m.speaker, m.phase, m.content) for m in
            RunStore.open(run_dir).iter_events({"message"})
            if cid is None or m.conversation_id == cid]


def test_unchanged_fork_reproduces_the_parent(tmp_path, parent):
    summary = fork_run(parent, CID, 6, out=tmp_path / "fork")
    assert summary.failed == 0
    original, forked = messages(parent, CID), messages(summary.run_dir)
    # The first turns are the parent's, verbatim; with the same model and seed the rest is too.
    assert forked == original
    manifest = json.loads((summary.run_dir / "manifest.json").read_text())
    assert manifest["parent"]["conversation_id"] == CID and manifest["parent"]["from_turn"] == 6


def test_fork_under_another_model_keeps_the_prefix_and_changes_the_rest(tmp_path, parent):
    summary = fork_run(parent, CID, 6, model="scripted/stereotyped?rate=1", replicates=2,
                       out=tmp_path / "fork")
    original = messages(parent, CID)
    store = RunStore.open(summary.run_dir)
    ids = sorted({e.conversation_id for e in store.iter_events({"conversation_finished"})})
    assert len(ids) == 2
    for cid in ids:
        forked = messages(summary.run_dir, cid)
        assert [m for m in forked if m[0] < 6] == [m for m in original if m[0] < 6]
        calls = [c for c in store.iter_events({"model_call"}) if c.conversation_id == cid]
        live = [c for c in calls if c.turn >= 6]
        assert live and all(c.model == "scripted/stereotyped?rate=1" for c in live)
        assert all(c.model == "scripted/stereotyped?rate=0.5" for c in calls if c.turn < 6)
    finals = [d for d in store.iter_events({"decision"}) if d.phase == "final"]
    assert finals and summary.results["metrics"]["bias_last"]["value"] == 1.0


def test_set_changes_a_persona_after_the_fork(tmp_path, parent):
    summary = fork_run(parent, CID, 4, sets=["emily.gender=man"], out=tmp_path / "fork")
    calls = [c for c in RunStore.open(summary.run_dir).iter_events({"model_call"})]
    assert calls and summary.conversations == 1
    manifest = json.loads((summary.run_dir / "manifest.json").read_text())
    assert manifest["variants"]["office-product-launch"][0]["changes"][0]["value"] == "man"


def test_bad_forks_are_clear_errors(tmp_path, parent):
    with pytest.raises(InputError, match="no conversation"):
        fork_run(parent, "nope", 4, out=tmp_path / "a")
    with pytest.raises(InputError, match="private first decisions"):
        fork_run(parent, CID, 2, out=tmp_path / "b")
