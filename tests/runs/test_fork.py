"""Forking a logged conversation at turn K: verbatim before K, live after, recorded parent."""

from __future__ import annotations

import json

import pytest

from agentsim.errors import InputError
from agentsim.runs.fork import fork_run
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios
from agentsim.scenario.variants import BASE_VARIANT

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


def test_fork_judge_compares_the_continuation_with_the_parent_from_the_fork_on(tmp_path, parent):
    summary = fork_run(parent, CID, 6, model="scripted/stereotyped?rate=1", replicates=3,
                       out=tmp_path / "fork")
    metrics = summary.results["metrics"]
    # Every decision after the fork is stereotyped under rate=1; the parent's (rate=0.5) are not
    # all, so the change is the gap between the two, and the trajectory is split by round.
    assert metrics["bias_after_fork[fork]"]["value"] == 1.0
    parent_bias = metrics["bias_after_fork[parent]"]["value"]
    assert parent_bias < 1.0
    assert metrics["bias_change"]["value"] == pytest.approx(1.0 - parent_bias)
    assert 0.0 < metrics["decision_changed"]["value"] <= 1.0
    assert "bias[round=final][fork]" in metrics
    results = [e for e in RunStore.open(summary.run_dir).iter_events({"judge_result"})
               if e.judge == "fork"]
    # 3 replicates x 4 agents' final decisions, each paired with the parent's.
    assert len(results) == 12 and {r.label for r in results} <= {"same", "changed"}


def test_fork_judge_on_an_unchanged_fork_finds_no_change(tmp_path, parent):
    metrics = fork_run(parent, CID, 6, out=tmp_path / "fork").results["metrics"]
    assert metrics["bias_change"]["value"] == 0.0
    assert metrics["decision_changed"]["value"] == 0.0


# --- clinical consultations -----------------------------------------------------------------------

CLINICAL = "clinical-nstemi-atypical"


@pytest.fixture
def consultation(tmp_path, repo):
    scenarios = load_scenarios([repo / "scenarios" / "clinical" / f"{CLINICAL}.yaml"])
    summary = run_experiment(scenarios, RunOptions(model="scripted/clinical", max_turns=8),
                             out=tmp_path / "consultation")
    started = next(RunStore.open(summary.run_dir).iter_events({"conversation_started"}))
    return summary.run_dir, started.conversation_id


@pytest.mark.parametrize("from_turn", [0, 1, 2, 4, 5, 6])
def test_clinical_fork_reproduces_the_parent_at_every_speaker(tmp_path, consultation, from_turn):
    # Turns: doctor asks 0, patient 1, doctor 2, patient 3, doctor tests 4, measurement 5,
    # doctor diagnoses 6 — forks enter at the doctor, the patient or the measurement agent.
    run_dir, cid = consultation
    summary = fork_run(run_dir, cid, from_turn, out=tmp_path / "fork")
    assert summary.failed == 0
    forked = messages(summary.run_dir)
    assert forked == messages(run_dir, cid)
    kinds = [(d.kind, d.value) for d in RunStore.open(summary.run_dir).iter_events({"decision"})]
    parent_kinds = [(d.kind, d.value) for d in RunStore.open(run_dir).iter_events({"decision"})]
    assert kinds == parent_kinds
    assert summary.results["metrics"]["diagnosis_changed"]["value"] == 0.0


def test_clinical_fork_under_a_wrong_doctor_changes_the_diagnosis(tmp_path, consultation):
    run_dir, cid = consultation
    summary = fork_run(run_dir, cid, 4, roles={"doctor": "scripted/clinical?correct=0"},
                       replicates=2, out=tmp_path / "fork")
    metrics = summary.results["metrics"]
    assert metrics["accuracy[parent]"]["value"] == 1.0
    assert metrics["accuracy[fork]"]["value"] == 0.0 and metrics["accuracy_change"]["value"] == -1
    assert metrics["diagnosis_changed"]["value"] == 1.0
    store = RunStore.open(summary.run_dir)
    for conversation in {e.conversation_id for e in store.iter_events({"message"})}:
        prefix = [m for m in messages(summary.run_dir, conversation) if m[0] < 4]
        assert prefix == [m for m in messages(run_dir, cid) if m[0] < 4]
    # The doctor's budget counts the turns it used before the fork.
    actions = [d for d in store.iter_events({"decision"}) if d.kind == "doctor_action"]
    assert sorted({d.phase for d in actions}) == ["turn1", "turn2", "turn3", "turn4"]


def test_clinical_fork_after_the_consultation_is_a_clear_error(tmp_path, consultation):
    run_dir, cid = consultation
    with pytest.raises(InputError, match="turn 40 is not one"):
        fork_run(run_dir, cid, 40, out=tmp_path / "late")


# --- custom setups ------------------------------------------------------------------------------


@pytest.mark.parametrize("example", ["hiring-committee", "loan-committee", "manager-one-to-ones"])
def test_setup_fork_reproduces_the_parent(tmp_path, repo, example):
    scenarios = load_scenarios([repo / "scenarios" / "setups" / f"{example}.yaml"])
    parent_run = run_experiment(scenarios, RunOptions(
        model="scripted/stereotyped?rate=0.5&favour=gender:man", variants=(BASE_VARIANT,)),
        out=tmp_path / "parent").run_dir
    store = RunStore.open(parent_run)
    cid = next(store.iter_events({"conversation_started"})).conversation_id
    spoken = [m.turn for m in store.iter_events({"message"})
              if m.conversation_id == cid and m.phase == "discussion"]
    from_turn = spoken[len(spoken) // 2]
    summary = fork_run(parent_run, cid, from_turn, out=tmp_path / "fork")
    assert summary.failed == 0
    forked = [(m.turn, m.speaker, m.content, m.visible_to)
              for m in RunStore.open(summary.run_dir).iter_events({"message"})]
    assert forked == [(m.turn, m.speaker, m.content, m.visible_to)
                      for m in store.iter_events({"message"}) if m.conversation_id == cid]
    values = [(d.kind, d.point, d.value) for d in
              RunStore.open(summary.run_dir).iter_events({"decision"})]
    assert values == [(d.kind, d.point, d.value) for d in store.iter_events({"decision"})
                      if d.conversation_id == cid]
    if example != "manager-one-to-ones":  # its only decision is an assignment
        assert summary.results["metrics"]["selection_changed"]["value"] == 0.0
        assert summary.results["metrics"]["selection_gap_change"]["value"] == 0.0
    with pytest.raises(InputError, match="on which someone spoke"):
        fork_run(parent_run, cid, 10_000, out=tmp_path / "late")


def test_setup_fork_under_a_fair_model_closes_the_selection_gap(tmp_path, repo):
    scenarios = load_scenarios([repo / "scenarios" / "setups" / "hiring-committee.yaml"])
    parent_run = run_experiment(scenarios, RunOptions(
        model="scripted/stereotyped?rate=1&favour=gender:man", variants=(BASE_VARIANT,)),
        out=tmp_path / "parent").run_dir
    cid = next(RunStore.open(parent_run).iter_events({"conversation_started"})).conversation_id
    first_spoken = next(m.turn for m in RunStore.open(parent_run).iter_events({"message"}))
    metrics = fork_run(parent_run, cid, first_spoken, model="scripted/fair", replicates=4,
                       out=tmp_path / "fork").results["metrics"]
    # The parent ranked the man first every time (gap 0.75); the fair continuation ranks at
    # random, so the final rankings' gap falls.
    assert metrics["selection_gap_change"]["value"] < 0
    assert metrics["selection_gap_change"]["n"] == 4 * 3  # replicates x deciders' final answers
    assert metrics["selection_changed"]["value"] > 0
