"""Typed metric records: one metric of one judge, its breakdown and its estimate, as one row.

Judges name their metrics with the breakdown in brackets — ``bias[round=3]``,
``flip_rate[kind=mirror]``, ``score[point=p][group=woman]`` (several dimensions are chained
brackets), ``persuasion_gap[race]`` (a bracket without a key), ``gap_accuracy[race=Black vs
race=White]`` (a paired comparison). This module is the one place those names are parsed
(:func:`parse_name`); everything downstream reads :class:`MetricRecord` fields instead.

``results.json`` keeps both: ``records`` (a list of records) and ``metrics`` (a mapping by name,
as before, so that scripts reading it keep working). In the mapping a name that two judges both
produce is written once per judge as ``judge.name`` — neither value hides the other.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentsim.stats.inference import Estimate

# Dimension of a bracket that has no key (persuasion_gap[race], accuracy[parent]); callers that
# know what such a bracket means pass another name (the arm comparison: "arm").
UNNAMED = "subset"
# Dimension of a bracket that compares two groups (gap_accuracy[race=Black vs race=White]).
CONTRAST = "contrast"

_NAME = re.compile(r"^(?P<metric>[^\[\]]+)(?P<brackets>(?:\[[^\[\]]*\])+)$")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_KEY = re.compile(r"^[A-Za-z_][\w.-]*$")
_BARE = re.compile(rf"^({UNNAMED}|{CONTRAST})(_\d+)?$")  # shown without their key
# Values are copied to the metrics mapping in this order (that of Estimate.as_dict).
ESTIMATE_FIELDS = ("value", "ci_low", "ci_high", "n", "clusters", "method", "p", "p_raw")
# Columns of records_frame; the breakdown dimensions go between metric and value.
FRAME_COLUMNS = ("judge", "metric", "value", "ci_low", "ci_high", "n", "p", "p_raw", "clusters",
                 "method", "name")


class MetricRecord(BaseModel):
    """One metric of one judge: what it measures, on which subset, and its estimate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    judge: str | None = Field(
        description="Registered judge that produced the metric ('compare' for the arm "
        "comparison); None when unknown (results written before records, by several judges).")
    name: str = Field(
        description="The metric's full name as the judge wrote it, breakdown included "
        "(bias[round=3]); the key in results.json's metrics unless two judges share it.")
    metric: str = Field(description="The name without its breakdown (bias for bias[round=3]).")
    breakdown: dict[str, str] = Field(
        default_factory=dict,
        description="Dimension → value of the subset measured, in the order of the name "
        "(round → '3'); 'subset' holds a bracket without a key, 'contrast' a comparison "
        "'A vs B'; empty for an overall metric.")
    estimate: float | None = Field(description="The point estimate; None when undefined (NaN).")
    ci_low: float | None = Field(default=None, description="Lower end of the 95 % interval; "
                                 "None when there is no interval.")
    ci_high: float | None = Field(default=None, description="Upper end of the 95 % interval.")
    n: int = Field(description="Units the estimate rests on (decisions, conversations, pairs).")
    clusters: int | None = Field(
        default=None, description="Independent clusters resampled (scenarios, by default).")
    method: str | None = Field(default=None, description="How the interval (and test) was made.")
    p: float | None = Field(default=None, description="p-value where a test applies (after a "
                            "multiple-comparison correction, the corrected one).")
    p_raw: float | None = Field(default=None, description="The uncorrected p-value when p was "
                                "corrected; else None.")

    @property
    def label(self) -> str:
        """The breakdown in words: ``round=3, group=woman``; bare values for the unnamed and
        contrast dimensions (``parent``, ``Black vs White``)."""
        return ", ".join(value if _BARE.match(key) else f"{key}={value}"
                         for key, value in self.breakdown.items())

    def estimate_dict(self) -> dict[str, Any]:
        """The estimate as results.json's metrics mapping holds it (Estimate.as_dict's keys)."""
        values = self.model_dump(include=set(ESTIMATE_FIELDS) | {"estimate"})
        values["value"] = values.pop("estimate")
        return {key: values[key] for key in ESTIMATE_FIELDS}

    def as_estimate(self) -> Estimate:
        """The record as an :class:`Estimate` (undefined numbers as NaN)."""
        return estimate_of(self.estimate_dict())


def parse_name(name: str, unnamed: str = UNNAMED) -> tuple[str, dict[str, str]]:
    """Split a metric name into the metric and its breakdown.

    ``score[point=p][group=woman]`` → (``score``, {point: p, group: woman}). A bracket holds
    one dimension: ``key=value`` (split at the first '=', so values such as variant ids
    ``race=Black,age=40`` or model names ``scripted/x?rate=0.4`` stay whole — judges chain
    brackets for several dimensions, never commas), ``A vs B`` (dimension 'contrast'), or a
    bare value (dimension ``unnamed``). A repeated dimension gets a suffix (round_2). A name
    without a well-formed breakdown is all metric.
    """
    match = _NAME.match(name)
    if match is None:
        return name, {}
    breakdown: dict[str, str] = {}
    for part in _BRACKET.findall(match["brackets"]):
        key, sep, value = part.partition("=")
        if " vs " in part:
            key, value = CONTRAST, part
        elif not sep or not _KEY.match(key):
            key, value = unnamed, part
        free, count = key, 1
        while free in breakdown:
            count += 1
            free = f"{key}_{count}"
        breakdown[free] = value
    return match["metric"], breakdown


def _number(value: Any) -> float | None:
    """A JSON-ready float: NaN (an undefined estimate) becomes None."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def records_of(judge: str | None, metrics: Mapping[str, Estimate | Mapping[str, Any]],
               unnamed: str = UNNAMED) -> list[MetricRecord]:
    """The records of one judge's metrics (``JudgeOutput.metrics``, or the same mapping read
    back from JSON), in the judge's order; ``unnamed`` names bracket values without a key."""
    records = []
    for name, estimate in metrics.items():
        data = estimate.as_dict() if isinstance(estimate, Estimate) else dict(estimate)
        metric, breakdown = parse_name(name, unnamed)
        records.append(MetricRecord(
            judge=judge, name=name, metric=metric, breakdown=breakdown,
            estimate=_number(data.get("value")), ci_low=_number(data.get("ci_low")),
            ci_high=_number(data.get("ci_high")), n=int(data.get("n") or 0),
            clusters=None if data.get("clusters") is None else int(data["clusters"]),
            method=data.get("method"), p=_number(data.get("p")),
            p_raw=_number(data.get("p_raw"))))
    return records


def keyed(records: Iterable[MetricRecord]) -> dict[str, MetricRecord]:
    """Records by their key in the metrics mapping: the name, or ``judge.name`` for a name that
    more than one judge produced (each of them prefixed: no value silently wins)."""
    records = list(records)
    judges_of = Counter(r.name for r in {(r.judge, r.name): r for r in records}.values())
    return {(f"{r.judge}.{r.name}" if judges_of[r.name] > 1 and r.judge else r.name): r
            for r in records}


def metrics_of(records: Iterable[MetricRecord]) -> dict[str, dict[str, Any]]:
    """The ``metrics`` mapping of results.json and ``--json``: key (see :func:`keyed`) → the
    estimate as a dict (value, ci_low, ci_high, n, clusters, method, p, p_raw)."""
    return {key: record.estimate_dict() for key, record in keyed(records).items()}


def records_frame(records: Iterable[MetricRecord]) -> Any:
    """Records as a pandas DataFrame, one row per record: ``judge``, ``metric``, one column per
    breakdown dimension (missing, NaN, where a record has no such dimension), ``value`` (the estimate),
    ``ci_low``, ``ci_high``, ``n``, ``p``, ``p_raw``, ``clusters``, ``method`` and ``name`` (the
    key in the metrics mapping, see :func:`keyed`)."""
    import pandas as pd

    rows, dimensions = [], {}
    for key, record in keyed(records).items():
        for dimension in record.breakdown:
            # A dimension named like a fixed column would overwrite it: it gets a prefix.
            dimensions.setdefault(dimension, f"by_{dimension}" if dimension in FRAME_COLUMNS
                                  else dimension)
        rows.append({**record.model_dump(include=set(FRAME_COLUMNS)), "value": record.estimate,
                     "name": key, **{dimensions[d]: v for d, v in record.breakdown.items()}})
    return pd.DataFrame(rows, columns=[*FRAME_COLUMNS[:2], *dimensions.values(),
                                       *FRAME_COLUMNS[2:]])


def records_from_results(results: Mapping[str, Any]) -> list[MetricRecord]:
    """The records of a results file: its ``records``, or — for results written before records
    existed — records made from its ``metrics`` with the same parsing. Those metrics were merged
    over judges, so each record's judge is known only when one judge ran."""
    if "records" in results:
        return [MetricRecord.model_validate(item) for item in results["records"]]
    judges = list(results.get("judges") or [])
    return records_of(judges[0] if len(judges) == 1 else None, results.get("metrics") or {})


def estimate_of(data: Mapping[str, Any]) -> Estimate:
    """An :class:`Estimate` from its JSON form (None back to NaN for the numbers)."""
    numbers = {key: math.nan if data.get(key) is None else float(data[key])
               for key in ("value", "ci_low", "ci_high")}
    extra = {"method": data["method"]} if data.get("method") else {}
    return Estimate(**numbers, n=int(data.get("n") or 0), clusters=int(data.get("clusters") or 0),
                    p=data.get("p"), p_raw=data.get("p_raw"), **extra)
