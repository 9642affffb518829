"""Metric records: names parsed once into breakdowns, clashing names kept apart, records that
survive JSON, and results written before records read alike."""

from __future__ import annotations

import json
import math

import pytest

from agentsim.core.metrics import (
    MetricRecord,
    estimate_of,
    keyed,
    metrics_of,
    parse_name,
    records_frame,
    records_from_results,
    records_of,
)
from agentsim.judges.base import JudgeOutput
from agentsim.stats.inference import Estimate

NAMES = [
    ("bias_first", "bias_first", {}),
    ("bias[round=3]", "bias", {"round": "3"}),
    ("flip_rate[kind=mirror]", "flip_rate", {"kind": "mirror"}),
    # Several dimensions: chained brackets, as the selection and fork judges write them.
    ("score[point=hire][attribute=gender][group=woman]", "score",
     {"point": "hire", "attribute": "gender", "group": "woman"}),
    ("selection_gap[point=p][round=final]", "selection_gap", {"point": "p", "round": "final"}),
    ("bias[round=2][parent]", "bias", {"round": "2", "subset": "parent"}),
    # A bracket without a key, and a paired comparison.
    ("persuasion_gap[race]", "persuasion_gap", {"subset": "race"}),
    ("gap_accuracy[race=Black vs race=White]", "gap_accuracy",
     {"contrast": "race=Black vs race=White"}),
    # Values keep their own '=' and ',' (variant ids, model names with knobs).
    ("accuracy[variant=race=Black,age=40]", "accuracy", {"variant": "race=Black,age=40"}),
    ("rubric_score[model=scripted/judge?score=3&x=1]", "rubric_score",
     {"model": "scripted/judge?score=3&x=1"}),
    ("agentic_share[speaker_gender=woman]", "agentic_share", {"speaker_gender": "woman"}),
    ("delta_bias_first[names:gender=woman#1]", "delta_bias_first",
     {"subset": "names:gender=woman#1"}),
    # A repeated dimension is kept, numbered; a malformed name is all metric.
    ("x[a][b]", "x", {"subset": "a", "subset_2": "b"}),
    ("odd[round=1", "odd[round=1", {}),
    ("odd]", "odd]", {}),
]


@pytest.mark.parametrize("name, metric, breakdown", NAMES, ids=[n for n, _, _ in NAMES])
def test_names_are_parsed_into_metric_and_breakdown(name, metric, breakdown):
    assert parse_name(name) == (metric, breakdown)
    assert list(parse_name(name)[1]) == list(breakdown)  # in the order of the name


def test_a_bracket_without_a_key_can_be_named_by_the_caller():
    assert parse_name("delta_bias_first[debias_prompt+ice]", unnamed="arm") == (
        "delta_bias_first", {"arm": "debias_prompt+ice"})
    assert parse_name("bias_first[arm=none]", unnamed="arm") == ("bias_first", {"arm": "none"})


def _estimate(value: float, n: int = 10, **extra) -> Estimate:
    return Estimate(value, value - 0.1, value + 0.1, n, 3, **extra)


def test_records_carry_the_estimate_and_the_mapping_keeps_the_old_names():
    metrics = {"bias_first": _estimate(0.25), "bias[round=1]": _estimate(0.5, p=0.01, p_raw=0.004),
               "escalation": Estimate(math.nan, math.nan, math.nan, 0, 0, method="no data")}
    records = records_of("trajectory", metrics)
    assert [r.name for r in records] == list(metrics)
    by_round = records[1]
    assert (by_round.judge, by_round.metric, by_round.breakdown) == ("trajectory", "bias",
                                                                     {"round": "1"})
    assert (by_round.estimate, by_round.n, by_round.clusters, by_round.p, by_round.p_raw) == (
        0.5, 10, 3, 0.01, 0.004)
    assert records[2].estimate is None and records[2].ci_low is None  # NaN is not a number
    # Without a clash the mapping is exactly what results.json held before records.
    assert metrics_of(records) == {name: e.as_dict() for name, e in metrics.items()}
    assert list(metrics_of(records)) == list(metrics)


def test_a_name_two_judges_produce_is_prefixed_for_both():
    records = (records_of("assignment_bias", {"escalation": _estimate(0.1),
                                              "bias_first": _estimate(0.2)})
               + records_of("trajectory", {"escalation": _estimate(0.3),
                                           "bias[round=0]": _estimate(0.4)}))
    mapping = metrics_of(records)
    assert set(mapping) == {"assignment_bias.escalation", "trajectory.escalation", "bias_first",
                            "bias[round=0]"}
    assert mapping["assignment_bias.escalation"]["value"] == 0.1
    assert mapping["trajectory.escalation"]["value"] == 0.3  # neither overwrote the other
    assert keyed(records)["trajectory.escalation"].name == "escalation"


def test_a_record_survives_json():
    record = records_of("selection", {"score[point=p][group=woman]": _estimate(
        0.75, method="cluster bootstrap (BCa); Holm-corrected over 2 tests", p=0.03,
        p_raw=0.015)})[0]
    again = MetricRecord.model_validate_json(record.model_dump_json())
    assert again == record
    assert again.breakdown == {"point": "p", "group": "woman"}
    # ... and through a results file, as the judging writes it.
    results = json.loads(json.dumps({"records": [record.model_dump(mode="json")],
                                     "metrics": metrics_of([record])}))
    assert records_from_results(results) == [record]
    assert estimate_of(again.estimate_dict()) == record.as_estimate()


def test_undefined_numbers_survive_json_as_nan_estimates():
    record = records_of("x", {"m": Estimate(math.nan, math.nan, math.nan, 0, 0,
                                            method="no data")})[0]
    again = MetricRecord.model_validate_json(record.model_dump_json())
    assert again == record and again.estimate is None
    estimate = again.as_estimate()
    assert math.isnan(estimate.value) and estimate.method == "no data" and estimate.n == 0


def test_results_written_before_records_are_converted_with_the_same_parsing():
    metrics = {"bias_first": _estimate(0.2).as_dict(), "bias[round=1]": _estimate(0.4).as_dict()}
    one = records_from_results({"judges": ["trajectory"], "metrics": metrics})
    assert [(r.judge, r.metric, r.breakdown) for r in one] == [
        ("trajectory", "bias_first", {}), ("trajectory", "bias", {"round": "1"})]
    several = records_from_results({"judges": ["assignment_bias", "trajectory"],
                                    "metrics": metrics})
    assert {r.judge for r in several} == {None}  # merged over judges: unknown which
    assert metrics_of(several) == metrics


def test_judge_output_gives_its_records():
    output = JudgeOutput(metrics={"flip_rate[kind=mirror]": _estimate(0.1)})
    (record,) = output.records("counterfactual")
    assert (record.judge, record.metric, record.breakdown, record.label) == (
        "counterfactual", "flip_rate", {"kind": "mirror"}, "kind=mirror")


def test_the_frame_has_a_column_per_dimension():
    records = (records_of("trajectory", {"bias[round=1]": _estimate(0.1),
                                         "escalation_slope": _estimate(0.2)})
               + records_of("influence", {"persuasion_gap[race]": _estimate(0.3),
                                          "n[n=odd]": _estimate(0.4)}))
    frame = records_frame(records)
    assert list(frame.columns) == ["judge", "metric", "round", "subset", "by_n", "value",
                                   "ci_low", "ci_high", "n", "p", "p_raw", "clusters", "method",
                                   "name"]
    assert frame["round"][0] == "1" and frame["round"].isna().tolist() == [False, True, True,
                                                                          True]
    assert frame["subset"].tolist()[2] == "race" and frame["by_n"].tolist()[3] == "odd"
    assert frame["value"].tolist() == [0.1, 0.2, 0.3, 0.4]
