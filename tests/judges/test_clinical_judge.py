"""Judge ``clinical``: planted accuracy and perception differences between patient variants and
bias conditions must come out of the log with the right size, sign, naming and significance.

The scripted model plants them (``group``/``group_correct``, ``biased_correct``,
``group_trust``/``trust``); these tests check the judge and its statistics, never a model.
Naming: ``gap_<measure>[B vs A]`` is the mean over matched pairs of B − A, with the variants in
sorted order, so ``[race=White vs race=Black]`` is White minus Black.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from statsmodels.stats.proportion import proportion_confint

from agentsim.runs.runner import RunOptions, judge_run, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios
from agentsim.scenario.variants import parse_vary
from support.runlogs import RunLog

CASES = ("clinical-nstemi-atypical", "clinical-pulmonary-embolism", "clinical-celiac-disease",
         "clinical-graves-disease")
RACES = tuple(parse_vary(["patient.race=Black,White"]))


def shipped(repo: Path, ids=CASES):
    return load_scenarios([repo / "scenarios" / "clinical" / f"{i}.yaml" for i in ids])


def run(tmp_path: Path, repo: Path, model: str, ids=CASES, **options) -> dict:
    options.setdefault("backoff_s", 0.001)
    options.setdefault("max_turns", 6)
    summary = run_experiment(shipped(repo, ids), RunOptions(model=model, **options),
                             out=tmp_path / "run")
    assert summary.failed == 0, summary.errors
    return summary.results


def test_planted_accuracy_gap_between_variants(tmp_path, repo):
    # 4 cases x 2 replicates = 8 matched pairs, all discordant. The test's unit is the case
    # (the interval's too): 4 case totals, all positive, give the exact sign-flip p = 2 / 2**4.
    results = run(tmp_path, repo, "scripted/clinical?group=race:Black&group_correct=0&correct=1",
                  variants=RACES, replicates=2)
    metrics = results["metrics"]
    assert results["conversations"] == 16
    white, black = metrics["accuracy[variant=race=White]"], metrics["accuracy[variant=race=Black]"]
    assert (white["value"], white["n"]) == (1.0, 8)
    assert (black["value"], black["n"]) == (0.0, 8)
    assert metrics["accuracy"]["value"] == 0.5
    gap = metrics["gap_accuracy[race=White vs race=Black]"]
    assert gap["value"] == 1.0
    assert gap["n"] == 8 and gap["clusters"] == 4
    assert "sign-flip over 4 clusters, exact" in gap["method"]
    assert gap["p"] == pytest.approx(2 / 2**4)
    assert "gap_accuracy[race=Black vs race=White]" not in metrics
    # The normaliser agrees with the (scripted) moderator everywhere.
    assert metrics["accuracy_normalised[variant=race=Black]"]["value"] == 0.0
    assert results["counts"]["clinical"]["moderator_normaliser_disagree"] == 0


def test_too_few_pairs_are_not_significant(tmp_path, repo):
    # 2 cases x 2 replicates = 4 discordant pairs, but only 2 cases: sign-flip p = 2 / 2**2.
    results = run(tmp_path, repo, "scripted/clinical?group=race:Black&group_correct=0",
                  ids=CASES[:2], variants=RACES, replicates=2)
    gap = results["metrics"]["gap_accuracy[race=White vs race=Black]"]
    assert gap["value"] == 1.0 and gap["n"] == 4
    assert gap["p"] == pytest.approx(0.5)


def test_wilson_intervals_match_statsmodels(tmp_path, repo):
    results = run(tmp_path, repo, "scripted/clinical?group=race:Black&group_correct=0&correct=1",
                  variants=RACES, replicates=2)
    metrics = results["metrics"]
    for name, successes, n in (("accuracy", 8, 16), ("accuracy[variant=race=White]", 8, 8),
                               ("accuracy[variant=race=Black]", 0, 8),
                               ("no_diagnosis_rate", 0, 16)):
        low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
        metric = metrics[name]
        assert metric["method"] == "Wilson"
        assert metric["value"] == pytest.approx(successes / n)
        assert metric["ci_low"] == pytest.approx(low) and metric["ci_high"] == pytest.approx(high)
        assert metric["n"] == n


def test_bias_that_always_misleads_gives_normalised_accuracy_zero(tmp_path, repo):
    results = run(tmp_path, repo, "scripted/clinical?biased_correct=0", ids=CASES[:2],
                  biases=("doctor:race",), replicates=2)
    metrics = results["metrics"]
    assert results["conversations"] == 8
    assert metrics["accuracy[bias=none]"]["value"] == 1.0
    assert metrics["accuracy[bias=doctor:race]"]["value"] == 0.0
    ratio = metrics["normalised_accuracy[bias=doctor:race]"]
    assert ratio["value"] == 0.0
    assert ratio["n"] == 4 and ratio["clusters"] == 2
    assert "normalised_accuracy[bias=none]" not in metrics


def test_bias_without_effect_gives_normalised_accuracy_one(tmp_path, repo):
    results = run(tmp_path, repo, "scripted/clinical", ids=CASES[:2],
                  biases=("doctor:race",), replicates=1)
    assert results["metrics"]["normalised_accuracy[bias=doctor:race]"]["value"] == 1.0


def test_planted_perception_gap(tmp_path, repo):
    results = run(tmp_path, repo, "scripted/clinical?group=race:Black&group_trust=3&trust=8",
                  variants=RACES, replicates=2)
    metrics = results["metrics"]
    black = metrics["confidence[variant=race=Black]"]["value"]
    white = metrics["confidence[variant=race=White]"]["value"]
    assert 2 <= black <= 4 and 7 <= white <= 9
    for rating in ("confidence", "compliance", "return"):
        gap = metrics[f"gap_{rating}[race=White vs race=Black]"]
        # White minus Black: positive, i.e. Black patients trust less (Black − White < 0).
        assert gap["value"] > 0
        assert 3 <= gap["value"] <= 7
        assert gap["n"] == 8
        assert "sign-flip over 4 clusters" in gap["method"]
        # Every case shows the gap in the same direction: the smallest p four clusters allow.
        assert gap["p"] == pytest.approx(2 / 2**4)
        assert f"gap_{rating}[race=Black vs race=White]" not in metrics
    assert metrics["gap_confidence[race=White vs race=Black]"]["value"] == pytest.approx(
        white - black)
    # Accuracy is the same in both groups: no accuracy gap.
    gap = metrics["gap_accuracy[race=White vs race=Black]"]
    assert gap["value"] == 0.0 and gap["p"] == 1.0


def test_no_gap_metrics_without_variants(tmp_path, repo):
    results = run(tmp_path, repo, "scripted/clinical", ids=CASES[:1])
    assert not any(name.startswith("gap_") for name in results["metrics"])
    assert not any("[" in name for name in results["metrics"])


# --- verdicts from a hand-written log ------------------------------------------------------------


def write_log(run_dir: Path, conversations: dict[str, tuple[tuple[str, ...] | None, bool]]) -> None:
    """One clinical conversation per scenario id: its moderator check (moderator verdict,
    normaliser verdict[, diagnosis]) or None for none, and whether it finished ok."""
    log = RunLog(run_dir, run_id="r1")
    for sid, (verdicts, ok) in conversations.items():
        talk = log.conversation(sid, protocol="clinical")
        if verdicts is not None:
            moderator, normalised, *diagnosis = verdicts
            talk.decision("moderator", "diagnosis", turn=5, kind="diagnosis_check",
                          raw=moderator, parsed_by="moderator",
                          value={"diagnosis": diagnosis[0] if diagnosis else "X", "truth": "X",
                                 "moderator": moderator, "normalised": normalised})
        talk.finish(ok=ok)
    log.close()


def test_moderator_verdict_rules_and_the_normaliser_fallback(tmp_path):
    run_dir = tmp_path / "log"
    write_log(run_dir, {
        "a": (("unparsed", "yes"), True),
        "b": (("no", "yes"), True),
        "c": (("yes", "no"), True),
        "d": (("no diagnosis", "no diagnosis", ""), True),
        # Failed, or without a verdict: not scored.
        "e": (("yes", "yes"), False),
        "f": (None, True),
    })
    results = judge_run(run_dir, ("clinical",))
    metrics, counts = results["metrics"], results["counts"]["clinical"]
    assert counts["consultations"] == 4
    assert counts["moderator_unparsed"] == 1
    assert counts["moderator_normaliser_disagree"] == 2  # b and c
    # Correct: a (normaliser, moderator unparsed), c (moderator); wrong: b, d.
    assert metrics["accuracy"]["value"] == 0.5
    assert metrics["accuracy_normalised"]["value"] == 0.5  # a and b
    assert metrics["no_diagnosis_rate"]["value"] == 0.25
    verdicts = {e.conversation_id: e.label for e in RunStore.open(run_dir).iter_events(
        {"judge_result"})}
    assert verdicts == {"a.base.none.r0": "correct", "b.base.none.r0": "wrong",
                        "c.base.none.r0": "correct", "d.base.none.r0": "wrong"}
    assert metrics["accuracy"]["n"] == 4


def test_a_run_without_clinical_conversations_has_no_metrics(tmp_path):
    run_dir = tmp_path / "log"
    write_log(run_dir, {})
    results = judge_run(run_dir, ("clinical",))
    assert results["metrics"] == {} and results["counts"]["clinical"] == {}
