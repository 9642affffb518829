"""Comparison of mitigation arms: pairing by seed, planted differences, plots and the CLI.

The scripted model plants the difference: the control arm's agents decide with
``stereotyped?rate=0`` (balanced, hence neutral, decisions everywhere) and the ``finetuned`` arm's
with ``stereotyped?rate=1`` (fully stereotyped everywhere). Every shipped workplace scenario —
the uneven ones (1 man + 1 woman, 2 + 1, 3 + 2, an uncoded task) included — admits both a
balanced and a stereotyped fair-load assignment (checked below), so the paired difference in bias
score is exactly +1 on every unit. These tests check the comparison, never a model.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest

from agentsim.analysis.compare import compare_arms, parse_arms, split_name
from agentsim.analysis.forest import forest_plot
from agentsim.stats.inference import Estimate
from agentsim.cli.main import build_parser, main, run_options
from agentsim.errors import InputError
from agentsim.labels.assignment import extreme_assignments, label_holders, problem_for
from agentsim.core.reader import RunView
from agentsim.runs.runner import RunOptions, run_experiment, variant_scenarios
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios
from agentsim.scenario.variants import BASE_VARIANT

CONTROL_MODEL = "scripted/stereotyped?rate=0"
FINETUNED_MODEL = "scripted/stereotyped?rate=1"
_RUNS: dict[str, Path] = {}


@pytest.fixture
def planted(tmp_path_factory, workplace) -> Path:
    """One run of every shipped workplace scenario in arms none and finetuned, 2 replicates
    (made once and shared: the tests below only read it)."""
    if "planted" not in _RUNS:
        options = RunOptions(model=CONTROL_MODEL, roles={"finetuned": FINETUNED_MODEL},
                             arms=("none", "finetuned"), replicates=2, backoff_s=0.001)
        out = tmp_path_factory.mktemp("compare") / "run"
        summary = run_experiment(load_scenarios([workplace]), options, out=out)
        assert summary.failed == 0, summary.errors
        _RUNS["planted"] = summary.run_dir
    return _RUNS["planted"]


def view(run_dir: Path) -> RunView:
    return RunView(RunStore.open(run_dir))


def test_every_shipped_scenario_has_a_neutral_and_a_stereotyped_assignment(workplace):
    # The premise of the exact +1 below, uneven scenarios included.
    scenarios = [s for _, s in load_scenarios([workplace])]
    for (sid, vid), scenario in variant_scenarios(scenarios, RunOptions()).items():
        problem = problem_for(scenario)
        for kind, label in (("balanced", "neutral"), ("stereotyped", "stereotypical")):
            found = {label_holders(problem, h).label for h in extreme_assignments(problem, kind)}
            assert found == {label}, (sid, vid, kind)


def test_arms_share_seeds_and_variants(planted):
    started = list(RunStore.open(planted).iter_events({"conversation_started"}))
    arms: dict[tuple, set[str]] = defaultdict(set)
    seeds: dict[tuple, set[int]] = defaultdict(set)
    for event in started:
        arms[(event.scenario_id, event.variant, event.replicate)].add(event.arm)
        seeds[(event.scenario_id, event.replicate)].add(event.seed)
        assert event.job["arm"] == event.arm and event.job["seed"] == event.seed
    assert all(found == {"none", "finetuned"} for found in arms.values())
    # One seed per scenario and replicate, whatever the arm or the variant.
    assert all(len(found) == 1 for found in seeds.values())
    assert len(started) == 2 * len(arms)

    comparison = compare_arms(view(planted))
    counts = comparison["counts"]
    assert counts["seed_mismatches"] == 0
    assert counts["conversations"] == {"none": len(arms), "finetuned": len(arms)}
    # Every decision unit of one arm has its partner in the other.
    first = sum(1 for e in RunStore.open(planted).iter_events({"decision"})
                if e.arm == "none" and e.phase == "first")
    assert counts["pairs"]["bias_first"]["finetuned"] == first
    assert all(n == 0 for by_arm in counts["unmatched"].values() for n in by_arm.values())


def test_planted_difference_is_measured_exactly(planted):
    run = view(planted)
    comparison = compare_arms(run, control="none")
    metrics = comparison["metrics"]
    assert comparison["control"] == "none" and comparison["arms"] == ["none", "finetuned"]
    for phase in ("first", "last"):
        delta = metrics[f"delta_bias_{phase}[finetuned]"]
        assert delta.value == 1.0 and (delta.ci_low, delta.ci_high) == (1.0, 1.0)
        assert delta.clusters == len(run.scenarios) and "paired permutation" in delta.method
        assert "Holm" in delta.method and delta.p_raw is not None
        assert delta.p < 0.01 and delta.p >= delta.p_raw
        assert metrics[f"bias_{phase}[arm=none]"].value == 0.0
        assert metrics[f"bias_{phase}[arm=finetuned]"].value == 1.0
    # Both arms keep their score from first to last decision: no difference, p = 1.
    assert metrics["delta_escalation[finetuned]"].value == 0.0
    assert metrics["delta_escalation[finetuned]"].p == 1.0
    # Nothing fails to parse in either arm: no difference at all, p = 1.
    unparsed = metrics["delta_unparsed_rate[finetuned]"]
    assert unparsed.value == 0.0 and unparsed.p == 1.0 and "no differences" in unparsed.method
    # restaurant-reopening's mirror variant swaps every persona's gender: a fully stereotyped
    # decision must move every coded task (a flip), while the balanced set is the same for both
    # genders, so the seeded choice does not move. 1 scenario x 2 replicates x 4 agents x 2 phases.
    flips = metrics["delta_flip_rate[finetuned]"]
    assert flips.value == 1.0 and flips.n == 16
    # One scenario is one cluster: the sign-flip test (whose unit is the interval's) has
    # nothing to permute, so there is no p-value rather than one over the 16 pairs.
    assert flips.clusters == 1 and flips.p is None
    assert "delta_flip_rate_placebo[finetuned]" not in metrics
    assert metrics["flip_rate_placebo[arm=finetuned]"].value == 0.0
    # The control has no delta; no clinical consultations, so no quality deltas of that kind.
    assert not any(split_name(k)[1] == "none" for k in metrics if k.startswith("delta_"))
    assert "delta_accuracy[finetuned]" not in metrics
    # Every delta with a p-value is in the Holm family: all but the one-cluster flip rate.
    tested = [k for k, v in metrics.items() if v.p_raw is not None]
    assert set(tested) == {k for k in metrics if k.startswith("delta_")} - {
        "delta_flip_rate[finetuned]"}
    assert any("Holm-corrected over the 4 deltas" in note for note in comparison["notes"])


def test_paired_p_values_count_scenarios_not_pairs(tmp_path, workplace):
    # Three scenarios, every matched decision +1: the interval resamples the 3 scenarios, and so
    # does the test, which flips the sign of each scenario's total: exact p = 2 / 2**3. Counting
    # the dozens of pairs as independent would give a p near 0.
    names = ("office-product-launch", "school-open-day", "media-podcast-launch")
    options = RunOptions(model=CONTROL_MODEL, roles={"finetuned": FINETUNED_MODEL},
                         arms=("none", "finetuned"), replicates=2, variants=(BASE_VARIANT,),
                         backoff_s=0.001)
    scenarios = load_scenarios([workplace / f"{name}.yaml" for name in names])
    summary = run_experiment(scenarios, options, out=tmp_path / "run")
    assert summary.failed == 0, summary.errors
    metrics = compare_arms(view(summary.run_dir))["metrics"]
    for phase in ("first", "last"):
        delta = metrics[f"delta_bias_{phase}[finetuned]"]
        assert delta.value == 1.0 and delta.clusters == 3 and delta.n > 3 * 4
        assert delta.p_raw == pytest.approx(2 / 2**3)
        assert "sign-flip over 3 clusters, exact" in delta.method


def test_clinical_quality_deltas(tmp_path, repo):
    cases = [repo / "scenarios" / "clinical" / f"clinical-{c}.yaml"
             for c in ("celiac-disease", "graves-disease")]
    options = RunOptions(model="scripted/clinical",
                         roles={"finetuned": "scripted/clinical?correct=0&ask=4"},
                         arms=("none", "finetuned"), replicates=2, max_turns=8, backoff_s=0.001)
    summary = run_experiment(load_scenarios(cases), options, out=tmp_path / "run")
    metrics = compare_arms(view(summary.run_dir))["metrics"]
    accuracy, turns = metrics["delta_accuracy[finetuned]"], metrics["delta_turns[finetuned]"]
    # 2 cases x 2 replicates: every pair discordant (right → wrong), two more questions each.
    # Yes/no outcomes are tested on case totals too: two cases, both −2, give 2 / 2**2.
    assert (accuracy.value, accuracy.n) == (-1.0, 4)
    assert accuracy.p_raw == pytest.approx(0.5) and "sign-flip over 2 clusters" in accuracy.method
    assert (turns.value, turns.n) == (2.0, 4)
    # Two cases, both +2: the sign-flip over the two clusters gives 2 / 2**2, not 2 / 2**4.
    assert turns.p_raw == pytest.approx(0.5) and "sign-flip over 2 clusters" in turns.method
    assert metrics["turns[arm=none]"].value == 4.0 and metrics["accuracy[arm=none]"].value == 1.0


def test_a_control_outside_the_arms_is_an_error(tmp_path, workplace, planted, capsys):
    out = tmp_path / "run"
    code = main(["compare", str(workplace / "office-product-launch.yaml"), "--model",
                 "scripted/fair", "--arms", "debias_prompt,finetuned", "--out", str(out)])
    assert code == 2
    assert "control arm 'none' is not among the arms" in capsys.readouterr().err
    assert not out.exists()  # refused before anything ran
    assert main(["compare", str(workplace), "--arms", "none", "--out", str(out)]) == 2
    assert "compare needs two levels of a factor" in capsys.readouterr().err
    with pytest.raises(InputError, match="not in this run"):
        compare_arms(view(planted), control="debias_prompt")


def test_parse_arms_and_names():
    assert parse_arms(" none, debias_prompt ,a+b") == ("none", "debias_prompt", "a+b")
    with pytest.raises(InputError, match="given twice"):
        parse_arms("none,none")
    with pytest.raises(InputError, match="no arm"):
        parse_arms(" , ")
    assert split_name("delta_bias_first[a+b]") == ("delta_bias_first", "a+b")
    assert split_name("bias_first[arm=none]") == ("bias_first", "none")


def test_run_and_compare_share_the_run_options():
    shared = ["x.yaml", "--model", "scripted/fair", "--role", "finetuned=scripted/fair",
              "--replicates", "3", "--seed", "7", "--rounds", "1", "--vary",
              "patient.race=Black,White", "--max-turns", "5", "--probes"]
    parser = build_parser()
    run_args = parser.parse_args(["run", *shared])
    compare_args = parser.parse_args(["compare", *shared, "--arms", "none,finetuned"])
    arms = ("none", "finetuned")
    assert run_options(run_args, arms) == run_options(compare_args, arms)
    assert run_options(compare_args, arms).replicates == 3


def _png_and_svg(paths: list[Path], stem: Path) -> None:
    assert paths == [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"]
    png, svg = paths
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000
    assert b"<svg" in svg.read_bytes() and svg.stat().st_size > 1000


def test_forest_plot_writes_png_and_svg(tmp_path, planted):
    metrics = compare_arms(view(planted))["metrics"]
    deltas = {k: v for k, v in metrics.items() if k.startswith("delta_")}
    _png_and_svg(forest_plot(deltas, tmp_path / "plots" / "forest.v1"),
                 tmp_path / "plots" / "forest.v1")
    # Without an interval, without an estimate, and with nothing at all: still two files.
    odd = {"delta_turns[a]": Estimate(2.0, math.nan, math.nan, 1, 1, p=0.5),
           "delta_turns[b]": Estimate(math.nan, math.nan, math.nan, 0, 0, method="no data")}
    _png_and_svg(forest_plot(odd, tmp_path / "odd"), tmp_path / "odd")
    _png_and_svg(forest_plot({}, tmp_path / "empty"), tmp_path / "empty")


def test_compare_json_shape(tmp_path, workplace, capsys):
    out = tmp_path / "run"
    code = main(["compare", str(workplace / "office-product-launch.yaml"), "--model",
                 CONTROL_MODEL, "--role", f"finetuned={FINETUNED_MODEL}", "--arms",
                 "none,finetuned,debias_prompt", "--replicates", "2", "--out", str(out),
                 "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"run_dir", "conversations", "failed", "errors", "metrics", "counts",
                            "comparison", "plots", "failures", "not_run", "stopped",
                            "exit_status", "warnings", "parsing", "usage", "report"}
    assert payload["run_dir"] == str(out) and payload["conversations"] == 6
    comparison = payload["comparison"]
    assert set(comparison) == {"control", "controls", "arms", "levels", "metrics", "counts",
                               "notes"}
    assert comparison["controls"] == {"arm": "none"}
    assert comparison["arms"] == ["none", "finetuned", "debias_prompt"]
    delta = comparison["metrics"]["delta_bias_first[finetuned]"]
    assert set(delta) >= {"value", "ci_low", "ci_high", "n", "clusters", "p", "p_raw", "method"}
    assert delta["value"] == 1.0
    assert comparison["metrics"]["delta_bias_first[debias_prompt]"]["value"] == 0.0
    assert json.loads((out / "comparison.json").read_text()) == comparison
    assert payload["plots"] == [str(out / "forest.png"), str(out / "forest.svg")]
    _png_and_svg([Path(p) for p in payload["plots"]], out / "forest")


def test_compare_prints_a_table(tmp_path, workplace, capsys):
    out = tmp_path / "run"
    assert main(["compare", str(workplace / "office-product-launch.yaml"), "--model",
                 CONTROL_MODEL, "--arms", "none,debias_prompt", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "p (Holm)" in text and "debias_prompt" in text and "bias, first decision" in text
    assert str(out / "forest.png") in text.replace("\n", "")


def test_a_judge_defined_here_with_paired_measures_is_compared_without_other_edits(
        planted, monkeypatch):
    """The comparison knows no judge: a judge registered in this file that declares a paired
    measure is paired across arms like the built-ins, and gives the difference the log holds
    (here the length of each conversation's first message, checked unit by unit)."""
    from agentsim.core.outcomes import Outcomes, PairedMeasure
    from agentsim.registry import REGISTRY

    class FirstSpeakerLength:
        name = "first_speaker_length"
        description = "characters of each conversation's first message (a test judge)"
        paired = (PairedMeasure("first_length", "first message length", group="quality"),)

        async def judge(self, run):
            raise AssertionError("the comparison reads outcomes, not the judge's metrics")

        def outcomes(self, run):
            found, seen = Outcomes(), set()
            for event in run.events("message"):
                if event.conversation_id not in seen:
                    seen.add(event.conversation_id)
                    found.add("first_length", event.conversation_id, (), len(event.content))
            return found

    REGISTRY.get("judge", "assignment_bias")  # the built-ins first, then this one beside them
    monkeypatch.setitem(REGISTRY._items["judge"], "first_speaker_length", FirstSpeakerLength)
    run = view(planted)
    comparison = compare_arms(run)
    # The expected difference, computed here from the log by hand, unit by unit.
    first: dict[tuple, dict[str, int]] = defaultdict(dict)
    started = {e.conversation_id: e for e in run.events("conversation_started")}
    for event in run.events("message"):
        start = started[event.conversation_id]
        key = (start.scenario_id, start.variant, start.replicate)
        first[key].setdefault(start.arm, len(event.content))
    diffs = [by["finetuned"] - by["none"] for by in first.values()]
    delta = comparison["metrics"]["delta_first_length[finetuned]"]
    assert delta.n == len(diffs) == comparison["counts"]["pairs"]["first_length"]["finetuned"]
    assert delta.value == pytest.approx(sum(diffs) / len(diffs))
    assert "first_length[arm=none]" in comparison["metrics"]
    # Bias measures are listed before this quality measure, and the built-ins are unchanged.
    names = list(comparison["metrics"])
    assert names.index("delta_bias_first[finetuned]") < names.index("delta_first_length[finetuned]")
