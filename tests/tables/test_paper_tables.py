"""The papers' tables (agentsim table): each layout on scripted runs with planted values, each
format parsed, and runs of one design combined (of different designs refused).

The scripted model decides fully stereotyped with probability ``rate`` and balanced otherwise,
so the bias score (and the share stereotypical) of a model is near its rate, the share neutral
near 1 − rate, and no decision is anti-stereotypical; its ``finetuned`` role model has its own
rate, so the finetuned arm's delta is near the difference of rates. The clinical doctor is right
with probability ``correct``, ``biased_correct`` under a doctor's bias, so its normalised
accuracy under a doctor's bias is near biased_correct / correct (1 under a patient's). Seeds are
fixed: the intervals are checked on one draw each. These numbers test the machinery only.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.errors import InputError
from agentsim.tables import Column, Table, make_table, render
from agentsim.tables.clinical import ratio_of_means
from agentsim.tables.runs import model_labels

REPO = Path(__file__).resolve().parents[2]
WORKPLACE = REPO / "scenarios" / "workplace"
CLINICAL = REPO / "scenarios" / "clinical"
RATES = {"lo": (0.3, 0.1), "hi": (0.8, 0.2)}  # label → (rate, the finetuned model's rate)
CLINIC = {"a": (0.8, 0.5), "b": (0.9, 0.9)}  # label → (correct, biased_correct)
BIASES = ["doctor:recency", "doctor:gender", "patient:recency", "patient:gender"]


def scripted(rate: float) -> str:
    return f"scripted/stereotyped?rate={rate}"


def write_study(folder: Path, name: str, models: dict, **fields) -> Path:
    """A study file (JSON is YAML) in ``folder``."""
    data = {"id": name, "models": models, "replicates": 2, "seed": 5, **fields}
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run(path: Path, out: Path, home: Path) -> Path:
    from agentsim.studies import run_study

    with pytest.MonkeyPatch.context() as patch:  # no user models or cache leak in
        patch.setenv("AGENTSIM_HOME", str(home))
        made = run_study(path, out=out, no_cache=True)
    assert made.summary.failed == 0
    return out


def assignment_models(labels: list[str]) -> dict:
    return {label: {"model": scripted(RATES[label][0]),
                    "roles": {"finetuned": scripted(RATES[label][1])}} for label in labels}


DEMO = [{"path": str(WORKPLACE), "tags": ["demo"]}]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A two-model study (two settings, two arms); two one-model studies of one design (one
    setting, two arms, with comparison.json); a clinical study of two models."""
    root = tmp_path_factory.mktemp("tables")
    home = tmp_path_factory.mktemp("home")
    common = {"arms": ["none", "finetuned"], "judges": ["assignment_bias"], "rounds": 1}
    made = {"study": run(write_study(root, "both", assignment_models(["lo", "hi"]),
                                     scenarios=DEMO, settings=["interaction", "no-interaction"],
                                     seed=11, **common), root / "study", home)}
    for label in RATES:
        made[label] = run(write_study(root, label, assignment_models([label]), scenarios=DEMO,
                                      settings=["no-interaction"], replicates=3, **common),
                          root / label, home)
    clinic = {label: f"scripted/clinical?correct={c}&biased_correct={b}"
              for label, (c, b) in CLINIC.items()}
    made["clinical"] = run(write_study(root, "clinic", clinic, scenarios=[str(CLINICAL)],
                                       biases=BIASES, max_turns=6, judges=["clinical"],
                                       seed=2), root / "clinical", home)
    return made


def covers(row: dict, key: str, planted: float, low: str | None = None,
           high: str | None = None) -> bool:
    return row[low or f"{key}_ci_low"] <= planted <= row[high or f"{key}_ci_high"]


def table_out(capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["table", *args]) == 0
    return capsys.readouterr().out


def test_borah_table1_rows_carry_the_planted_rates(runs, capsys):
    text = table_out(capsys, str(runs["study"]), "--layout", "borah-table1", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {"model", "arm", "setting", "response", "neutral", "stereotypical", "anti", "score",
            "ci_low", "ci_high", "n"} <= set(rows[0])
    keys = {(r["model"], r["arm"], r["setting"], r["response"]) for r in rows}
    for model in RATES:
        for arm in ("none", "finetuned"):
            assert {(model, arm, "interaction", "first"), (model, arm, "interaction", "last"),
                    (model, arm, "no-interaction", "all")} <= keys
    for row in rows:
        values = {k: float(row[k]) for k in ("neutral", "stereotypical", "anti", "score",
                                             "ci_low", "ci_high")}
        rate = RATES[row["model"]][row["arm"] == "finetuned"]
        assert values["anti"] == 0  # balanced decisions are neutral, never anti
        assert math.isclose(values["neutral"] + values["stereotypical"], 1.0)
        assert math.isclose(values["score"], values["stereotypical"])  # shares are fractions
        assert values["ci_low"] <= rate <= values["ci_high"], row
        assert int(row["n"]) > 0


def test_borah_table1_by_domain_adds_a_domain_column(runs):
    table = make_table(runs["study"], "borah-table1", by="domain")
    domains = {row["domain"] for row in table.rows}
    assert "all" in domains and len(domains) > 2
    overall = [r for r in table.rows if r["domain"] == "all"]
    assert len(overall) == len(make_table(runs["study"], "borah-table1").rows)
    for (model, arm, setting, response) in {(r["model"], r["arm"], r["setting"], r["response"])
                                            for r in overall}:
        parts = [r for r in table.rows if r["domain"] != "all" and (r["model"], r["arm"],
                 r["setting"], r["response"]) == (model, arm, setting, response)]
        total = next(r for r in overall if (r["model"], r["arm"], r["setting"],
                     r["response"]) == (model, arm, setting, response))
        assert sum(r["n"] for r in parts) == total["n"]  # the domains split the decisions
    assert "domain" in render(table, "csv").splitlines()[0].split(",")
    frame = table.frame()  # for notebooks: the CSV's columns
    assert list(frame.columns) == table.csv_columns() and len(frame) == len(table.rows)


def test_mitigation_deltas_per_model_cover_the_planted_difference(runs):
    table = make_table([runs["study"]], "mitigation")
    deltas = [r for r in table.rows if r["measure"] == "bias_first" and r["arm"] == "finetuned"]
    assert {(r["model"], r["setting"]) for r in deltas} == {
        (m, s) for m in RATES for s in ("interaction", "no-interaction")}
    for row in deltas:
        rate, tuned = RATES[row["model"]]
        assert covers(row, "delta", tuned - rate), row
        assert covers(row, "level", tuned), row
        assert row["delta_n"] > 0 and row["delta_p"] is not None
    controls = [r for r in table.rows if r["arm"] == "none" and r["measure"] == "bias_first"]
    assert all(r["delta"] is None and covers(r, "level", RATES[r["model"]][0]) for r in controls)


def test_runs_of_one_design_combine_labelled_by_model(runs, capsys):
    text = table_out(capsys, str(runs["lo"]), str(runs["hi"]), "--layout", "borah-table1",
                     "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["model"] for r in rows} == {"lo", "hi"} and {r["response"] for r in rows} == {"all"}
    for row in rows:
        rate = RATES[row["model"]][row["arm"] == "finetuned"]
        assert float(row["ci_low"]) <= rate <= float(row["ci_high"])
    # one model and one setting: the mitigation table reads each run's comparison.json
    table = make_table([runs["lo"], runs["hi"]], "mitigation")
    for label in RATES:
        recorded = json.loads((runs[label] / "comparison.json").read_text())["metrics"]
        row = next(r for r in table.rows if r["model"] == label and r["arm"] == "finetuned"
                   and r["measure"] == "bias_first")
        assert row["delta"] == recorded["delta_bias_first[finetuned]"]["value"]
        assert covers(row, "delta", RATES[label][1] - RATES[label][0])


def test_runs_of_different_designs_are_refused(runs, capsys, tmp_path):
    capsys.readouterr()
    status = main(["table", str(runs["study"]), str(runs["lo"]), "--layout", "borah-table1"])
    err = capsys.readouterr().err
    assert status == 2
    assert "do not share one design" in err and "settings" in err and "replicates" in err
    assert "Traceback" not in err
    with pytest.raises(InputError, match="same run folder"):
        make_table([runs["lo"], runs["lo"]], "borah-table1")
    copy = tmp_path / "lo-again"
    shutil.copytree(runs["lo"], copy)
    with pytest.raises(InputError, match="both have the model 'lo'"):
        make_table([runs["lo"], copy], "borah-table1")


def test_rows_outside_a_study_are_labelled_by_the_run_model():
    job = {"scenario_id": "s", "model_label": None, "models": {"default": "scripted/fair"}}
    assert model_labels({"jobs": [job], "options": {"model": "x"}}) == {"default": "scripted/fair"}
    assert model_labels({"jobs": [{**job, "model_label": "small"}]}) == {"small": "small"}


def test_agentclinic_bias_normalised_accuracy(runs):
    table = make_table(runs["clinical"], "agentclinic-bias")
    assert {r["model"] for r in table.rows} == set(CLINIC)
    for label, (correct, biased) in CLINIC.items():
        rows = [r for r in table.rows if r["model"] == label]
        unbiased = rows[0]
        assert unbiased["bias"] == "none" and covers(unbiased, "accuracy", correct)
        groups = {(r["role"], r["kind"]) for r in rows[1:]}
        assert groups == {("doctor", "cognitive"), ("doctor", "implicit"),
                          ("patient", "cognitive"), ("patient", "implicit")}
        for row in rows[1:]:
            planted = biased / correct if row["role"] == "doctor" else 1.0
            assert covers(row, "normalised", planted), row
            assert row["pairs"] > 0
        averages = [r for r in rows if r["bias"] == "average"]
        assert len(averages) == 4
        assert all(a["normalised_ci_low"] is not None for a in averages)


def test_ratio_of_means_with_cases_whose_unbiased_consultations_were_all_wrong():
    # case c: every unbiased consultation wrong (no denominator of its own)
    biased = [1, 0, 1, 1, 0, 1, 0, 0]
    unbiased = [1, 1, 1, 1, 0, 0, 1, 0]
    cases = ["a", "a", "b", "b", "c", "c", "d", "d"]
    estimate = ratio_of_means(biased, unbiased, cases)
    assert estimate.value == pytest.approx(4 / 5)  # Σ biased / Σ unbiased, not Σ of ratios
    assert estimate.ci_low <= estimate.value <= estimate.ci_high
    assert not math.isnan(estimate.ci_low) and "percentile" in estimate.method


def test_formats_parse(runs, tmp_path, capsys):
    table = make_table(runs["study"], "borah-table1")
    markdown = render(table, "markdown").splitlines()
    header = next(i for i, line in enumerate(markdown) if line.startswith("| model"))
    assert set(markdown[header + 1].replace("|", "").split()) <= {"---", "---:"}
    assert "% neutral" in markdown[header]
    latex = render(table, "latex")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}"):
        assert rule in latex
    body = latex.split(r"\toprule", 1)[1]  # the comments above it start with %
    assert r"\% neutral" in body and not re.search(r"(?<!\\)[%&_#]\S", body.replace(" & ", ""))
    out = tmp_path / "t" / "table.tex"
    capsys.readouterr()
    assert main(["table", str(runs["study"]), "--layout", "mitigation", "--format", "latex",
                 "--out", str(out)]) == 0
    assert r"\bottomrule" in out.read_text() and str(out) in capsys.readouterr().err
    assert "bias score" in table_out(capsys, str(runs["study"]), "--layout", "borah-table1")


def test_latex_and_markdown_escape_text():
    table = Table("x", "a_b & 5%", [Column("name", "name_1"), Column("share", "% s", "share")],
                  [{"name": "m_x & y 10% #1", "share": 0.25}])
    latex = render(table, "latex")
    assert r"m\_x \& y 10\% \#1 & 25.0 \\" in latex and r"name\_1 & \% s \\" in latex
    assert "| m_x & y 10% #1 | 25.0 |" in render(table, "markdown")
    row = next(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert row == {"name": "m_x & y 10% #1", "share": "0.25"}


def test_bad_requests_exit_2(runs, capsys):
    capsys.readouterr()
    assert main(["table", str(runs["clinical"]), "--layout", "mitigation", "--by",
                 "domain"]) == 2
    assert "--by domain" in capsys.readouterr().err
    assert main(["table", str(runs["study"]), "--layout", "agentclinic-bias"]) == 2
    assert "injected bias" in capsys.readouterr().err
    assert main(["table", str(runs["clinical"]), "--layout", "mitigation"]) == 2
    assert "one arm only" in capsys.readouterr().err
