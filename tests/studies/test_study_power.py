"""``agentsim study power``: the simulated sign-flip test equals the tool's, the variance
components are recovered, the tables and the recommendation follow the design, bad input is
one line and exit 2, and — the validation — studies of the recommended size, run on the
scripted model and analysed by the tool's own test, detect a planted effect about as often as
the power says.

The scripted model plants the effect (``stereotyped?rate=R&final=F``: escalation ≈ F − R):
these tests check the machinery, never a model.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from agentsim.cli.main import main
from agentsim.errors import InputError
from agentsim.stats.clusters import sign_flip_test
from agentsim.studies.power import study_power
from agentsim.studies.power_model import (
    Components,
    estimate_components,
    sign_flip_pvalues,
    simulate_power,
)

WORKPLACE = Path(__file__).resolve().parents[2] / "scenarios" / "workplace"
RATE, FINAL = 0.3, 0.52  # planted escalation 0.22: a recommendation of a few replicates
MODEL = f"scripted/stereotyped?rate={RATE}&final={FINAL}"
STUDY = f"""id: planted-escalation
scenarios: [{WORKPLACE}]
models: {{{{m: "{MODEL}"}}}}
settings: [interaction]
variants: none
judges: [assignment_bias]
replicates: {{replicates}}
rounds: 1
seed: 5
primary: {{{{metric: escalation, effect: {round(FINAL - RATE, 6)}}}}}
"""
STATED = ["--sd-between", "0", "--sd-within", "0.68", "--units-per-conversation", "3.6875"]


def write_study(folder: Path, replicates: int = 2, text: str | None = None) -> Path:
    """A study file in ``folder``."""
    path = folder / "study.yaml"
    path.write_text(text if text is not None else STUDY.format(replicates=replicates))
    return path


def run_scripted(out: Path, replicates: int, seed: int) -> Path:
    """A run of the study's design (one scripted model, 16 scenarios, no variants)."""
    from agentsim.runs.runner import RunOptions, run_experiment
    from agentsim.scenario import load_scenarios
    from agentsim.scenario.variants import BASE_VARIANT

    options = RunOptions(model=MODEL, replicates=replicates, seed=seed, rounds=1, cache=False,
                         backoff_s=0.001, judges=("assignment_bias",),
                         variants=(BASE_VARIANT,), settings=("interaction",),
                         study_models={"m": {"model": MODEL}})
    run_experiment(load_scenarios([str(WORKPLACE)]), options, out=out)
    return out


def test_vectorised_sign_flip_is_the_tools_test() -> None:
    rng = np.random.default_rng(3)
    for k in (4, 7, 12, 13):  # enumerated: equal to the last bit
        totals = rng.integers(-3, 6, size=(5, k)).astype(float)
        assert list(sign_flip_pvalues(totals)) == [sign_flip_test(t)[0] for t in totals]
    # Monte Carlo (9999 other draws each): a two-sided p's SE is at most 2·0.5/√9999 = 0.01
    totals = rng.normal(0.4, 1, size=(5, 16))
    mine, tools = sign_flip_pvalues(totals), [sign_flip_test(t)[0] for t in totals]
    assert np.allclose(mine, tools, atol=0.04)


def test_simulated_power_equals_the_tools_test_on_the_same_draws() -> None:
    components = Components(sd_between=0.1, sd_within=0.6, units_per_conversation=4)
    conv = np.ones(10)
    rng = np.random.default_rng(11)
    draws = rng.standard_normal((2, 200, 10))
    fast = simulate_power(0.15, components, conv, 2, 0.05, draws=draws)
    c, m = conv * 2, 4
    totals = np.round(c * m * (0.15 + 0.1 * draws[0]) + np.sqrt(c * m * 0.36) * draws[1])
    slow = np.mean([sign_flip_test(t)[0] <= 0.05 for t in totals])
    assert fast == slow
    assert 0.3 < fast < 0.9


def test_nested_components_are_recovered() -> None:
    rng = np.random.default_rng(0)
    values, scenarios, conversations = [], [], []
    for s in range(300):
        b = rng.normal(0, 0.3)
        for c in range(int(rng.integers(2, 8))):
            cc = rng.normal(0, 0.2)
            for _ in range(int(rng.integers(1, 6))):
                values.append(1 + b + cc + rng.normal(0, 0.5))
                scenarios.append(s)
                conversations.append(c)
    found = estimate_components(values, scenarios, conversations)
    assert found.sd_between == pytest.approx(0.3, abs=0.03)
    assert found.sd_conversation == pytest.approx(0.2, abs=0.03)
    assert found.sd_within == pytest.approx(0.5, abs=0.02)
    assert found.mean == pytest.approx(1.0, abs=0.05)


def test_stated_components_give_tables_and_the_fewest_replicates(tmp_path, capsys) -> None:
    study = write_study(tmp_path, replicates=1)
    assert main(["study", "power", str(study), *STATED, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["metric"], data["effect"], data["scenarios"], data["replicates"]) == (
        "escalation", 0.22, 16, 1)
    assert data["conversations_per_replicate"] == 16
    assert data["components"]["source"] == "stated"
    powers = {row["replicates"]: row["power"] for row in data["by_replicates"]}
    assert data["power"] == powers[1]
    assert 0.45 < powers[1] < 0.7
    assert 0.8 <= powers[2] < powers[3] < powers[4]
    assert data["recommended"] == {"replicates": 2, "scenarios": 16, "power": powers[2]}
    assert data["plateau"] == 1.0
    scenarios = {row["scenarios"]: row for row in data["by_scenarios"]}
    assert scenarios[5] == {"scenarios": 5, "power": 0.0, "reachable": False}
    assert scenarios[6]["reachable"] and scenarios[6]["power"] < scenarios[16]["power"]
    assert main(["study", "power", str(study), *STATED]) == 0
    text = capsys.readouterr().out
    assert "power 0." in text and "recommended: 16 scenarios × 2 replicate(s)" in text
    assert "the test cannot reach α" in text


def test_between_scenario_variation_calls_for_scenarios(tmp_path) -> None:
    # Scenario means spread widely: replicates cannot beat it, only scenarios raise power.
    result = study_power(write_study(tmp_path), sd_between=0.4, sd_within=0.3,
                         units_per_conversation=4)
    powers = [row["power"] for row in result.by_replicates]
    assert max(powers) <= result.plateau + 0.02 and result.plateau < 0.8
    assert result.recommended["replicates"] == 2
    assert result.recommended["scenarios"] > 16 and result.recommended["power"] >= 0.8
    assert any("caps the power" in note for note in result.notes)
    assert any("more scenarios needed" in note for note in result.notes)


def test_five_scenarios_cannot_reach_alpha(tmp_path) -> None:
    files = sorted(WORKPLACE.glob("*.yaml"))[:5]
    text = STUDY.format(replicates=2).replace(f"[{WORKPLACE}]",
                                              "[" + ", ".join(map(str, files)) + "]")
    result = study_power(write_study(tmp_path, text=text), sd_between=0, sd_within=0.68,
                         units_per_conversation=3.7)
    assert (result.scenarios, result.power, result.plateau) == (5, 0.0, 0.0)
    assert any("cannot reach p ≤ 0.05" in note and "2/2**5" in note for note in result.notes)
    assert result.recommended["scenarios"] >= 6  # 2/2**6 = 0.031 is the first reachable


def test_delta_between_models_is_planned_over_the_control_models_conversations(
        tmp_path) -> None:
    text = STUDY.format(replicates=3).replace(
        f'models: {{m: "{MODEL}"}}',
        'models: {lo: "scripted/stereotyped?rate=0.2", hi: "scripted/stereotyped?rate=0.4"}')
    text += "arms: [none, debias_prompt]\n"
    result = study_power(write_study(tmp_path, text=text), 0.1, metric="delta",
                         sd_between=0.05, sd_within=0.4, units_per_conversation=3.7,
                         family=4)
    assert result.analysed == "bias_last: model hi − control model lo"
    assert result.conversations_per_replicate == 32  # 16 scenarios × 2 arms, paired
    assert result.alpha == pytest.approx(0.0125)
    arm = study_power(write_study(tmp_path, text=text), 0.1, metric="delta",
                      compare="arm=debias_prompt", measure="bias_first", sd_between=0.05,
                      sd_within=0.4, units_per_conversation=3.7)
    assert arm.analysed == "bias_first: arm debias_prompt − control arm none"
    assert arm.power > result.power  # α not divided by 4


@pytest.mark.parametrize(("args", "source", "words"), [
    (["--sd-within", "0.5", "--units-per-conversation", "4"], "--effect", "no effect"),
    (["--effect", "0.2", "--sd-between", "0"], "--sd-within", "--units-per-conversation"),
    (["--effect", "0", *STATED], "--effect", "non-zero"),
    (["--effect", "0.2", "--sd-within", "-1", "--sd-between", "0",
      "--units-per-conversation", "2"], "--sd-within", "≥ 0"),
    (["--effect", "0.2", "--metric", "delta", *STATED], "study.yaml", "varies"),
    (["--effect", "0.2", "--pilot", "nowhere"], "--pilot", "no such run folder"),
    (["--effect", "0.2", "--alpha", "1.5", *STATED], "--alpha", "between 0 and 1"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, source, words) -> None:
    study = write_study(tmp_path, text=STUDY.format(replicates=2).replace(
        f"primary: {{metric: escalation, effect: {round(FINAL - RATE, 6)}}}\n", ""))
    with pytest.raises(InputError) as error:
        study_power(study, **_as_kwargs(args))
    assert source in (error.value.source or "") and words in error.value.message
    assert main(["study", "power", str(study), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_the_primary_effect_is_not_lent_to_another_metric(tmp_path) -> None:
    with pytest.raises(InputError, match="primary.effect is for escalation") as error:
        study_power(write_study(tmp_path), metric="bias_first", sd_between=0, sd_within=0.5,
                    units_per_conversation=4)
    assert error.value.source == "--effect"


def _as_kwargs(args: list[str]) -> dict[str, object]:
    """Command-line flags as study_power's keyword arguments."""
    out: dict[str, object] = {}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        name = flag.removeprefix("--").replace("-", "_")
        out[name] = value if name in ("metric", "pilot") else float(value)
    return out


@pytest.fixture(scope="module")
def pilot(tmp_path_factory) -> tuple[Path, Path]:
    """A study file and a pilot run of its design: 12 replicates, its own seed."""
    folder = tmp_path_factory.mktemp("power")
    return write_study(folder, replicates=1), run_scripted(folder / "pilot", 12, seed=101)


def test_pilot_components_are_estimated_and_reported(pilot, capsys) -> None:
    study, run = pilot
    assert main(["study", "power", str(study), "--pilot", str(run), "--json"]) == 0
    comps = json.loads(capsys.readouterr().out)["components"]
    assert (comps["scenarios"], comps["conversations"], comps["units"]) == (16, 192, 708)
    assert comps["units_per_conversation"] == pytest.approx(708 / 192)
    assert comps["mean"] == pytest.approx(FINAL - RATE, abs=0.05)
    # last − first of two independent planted decisions: variance F(1−R) + R(1−F) − D²
    planted = math.sqrt(FINAL * (1 - RATE) + RATE * (1 - FINAL) - (FINAL - RATE) ** 2)
    assert comps["sd_within"] == pytest.approx(planted, abs=0.06)
    assert comps["sd_between"] < 0.1
    assert main(["study", "power", str(study), "--pilot", str(run), "--sd-between",
                 "0.2"]) == 0
    assert "stated --sd-between" in capsys.readouterr().out


def test_delta_components_come_from_the_pilots_matched_differences(pilot, tmp_path) -> None:
    from agentsim.runs.runner import RunOptions, run_experiment
    from agentsim.scenario import load_scenarios
    from agentsim.scenario.variants import BASE_VARIANT

    low, high = "scripted/stereotyped?rate=0.2", "scripted/stereotyped?rate=0.5"
    text = STUDY.format(replicates=2).replace(f'models: {{m: "{MODEL}"}}',
                                              f'models: {{lo: "{low}", hi: "{high}"}}')
    study = write_study(tmp_path, text=text)
    with pytest.raises(InputError, match="needs both models 'lo' and 'hi'"):
        study_power(study, 0.2, metric="delta", pilot=pilot[1])  # the one-model pilot
    options = RunOptions(model=low, replicates=2, seed=9, rounds=1, cache=False,
                         backoff_s=0.001, judges=("assignment_bias",),
                         variants=(BASE_VARIANT,), settings=("interaction",),
                         study_models={"lo": {"model": low}, "hi": {"model": high}})
    run_experiment(load_scenarios([str(WORKPLACE)]), options, out=tmp_path / "pilot")
    result = study_power(study, 0.2, metric="delta", pilot=tmp_path / "pilot")
    comps = result.components
    assert (comps.scenarios, comps.units) == (16, 2 * 59)  # matched pairs of last decisions
    assert comps.mean == pytest.approx(0.3, abs=0.12)  # planted: 0.5 − 0.2
    # Paired draw for draw (same seed): one uniform decides both models, so the difference is
    # 1 with probability 0.3, else 0 — never negative, which the notes point out.
    assert comps.sd_within == pytest.approx(math.sqrt(0.3 * 0.7), abs=0.06)
    assert any("every value has one sign" in note for note in result.notes)
    assert result.analysed == "bias_last: model hi − control model lo"
    assert result.recommended["scenarios"] == 16 and result.recommended["power"] >= 0.8


def detection_rates(study: Path, pilot_run: Path, out: Path, studies: int,
                    ) -> tuple[object, dict[int, tuple[float, float, int]]]:
    """The recommendation from the pilot, then ``studies`` studies of the recommended size n*
    cut by replicate blocks out of one run of studies × n* replicates (each replicate has its
    own seed), each analysed by the tool's test (``paired_difference``: sign-flip of scenario
    totals); the same for studies of n* − 1 replicates. Size → (rate, predicted, studies)."""
    from agentsim.analysis.compare import collect_measures
    from agentsim.core.reader import RunView
    from agentsim.core.store import RunStore
    from agentsim.stats.inference import paired_difference

    result = study_power(study, pilot=pilot_run)
    best = result.recommended["replicates"]
    run_scripted(out, studies * best, seed=202)
    measures, _ = collect_measures(RunView(RunStore.open(out)))
    units = measures["escalation"].by_cell[("m", "interaction", "none")]
    predicted = {row["replicates"]: row["power"] for row in result.by_replicates}
    rates = {}
    for size in {best, max(1, best - 1)}:
        blocks = defaultdict(list)
        for unit, (value, scenario) in units.items():
            blocks[unit[3] // size].append((value, scenario))  # unit[3]: the replicate
        hits = [paired_difference([0.0] * len(rows), [v for v, _ in rows],
                                  [s for _, s in rows]).p <= 0.05 for rows in blocks.values()]
        rates[size] = (float(np.mean(hits)), predicted[size], len(hits))
    return result, rates


def within(rate: float, predicted: float, studies: int, z: float = 2.5) -> bool:
    """Whether a detection rate is within z binomial standard errors of the predicted power."""
    return abs(rate - predicted) <= z * math.sqrt(predicted * (1 - predicted) / studies)


def test_recommended_size_detects_the_planted_effect_at_the_stated_power(pilot,
                                                                          tmp_path) -> None:
    result, rates = detection_rates(*pilot, tmp_path / "runs", studies=50)
    best = result.recommended["replicates"]
    rate, predicted, studies = rates[best]
    assert studies == 50 and 0.7 <= rate <= 0.9 and within(rate, predicted, studies), rates
    # One replicate fewer falls short of the target, as predicted (100 studies of 1).
    assert rates[best - 1][1] < 0.8 and within(*rates[best - 1]), rates
