"""Headline metrics in plain words: one sentence beside each number.

A sentence states the estimate, its 95 % interval and n in the metric's own terms ("after the
discussion, bias rose by 0.12 [0.04, 0.20]") and says whether the interval excludes the value of
no effect; it never says more than the interval does.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentsim.core.metrics import MetricRecord

# metric → (what it is, the value of no effect or None, unit words for n, kind of number)
# kinds: "level" (a score or mean), "change" (a difference: rose / fell), "share" (a percentage)
HEADLINES: dict[str, tuple[str, float | None, str, str]] = {
    "bias_first": ("bias of first decisions (before any discussion)", 0.0, "decisions", "level"),
    "bias_reflected": ("bias after self-reflection", 0.0, "decisions", "level"),
    "bias_last": ("bias of last decisions", 0.0, "decisions", "level"),
    "escalation": ("from first to last decision, bias", 0.0, "decisions", "change"),
    "escalation_slope": ("per discussion round, bias", 0.0, "decisions", "change"),
    "self_correction_rate": ("stereotyped first decisions corrected after reflection", None,
                             "decisions", "share"),
    "flip_rate_placebo": ("decisions that changed under placebo variants", None, "pairs",
                          "share"),
    "excess_flip": ("decisions that changed beyond the placebo rate", 0.0, "pairs", "share"),
    "relative_decision_bias": ("decisions consistent with the stereotype", 0.5,
                               "decisions", "share"),
    "persuasion_gap": (("persuasion gap (one group's influence share minus the other's; the "
                        "notes say which)"), 0.0, "conversations", "level"),
    "accuracy": ("consultations diagnosed correctly", None, "consultations", "share"),
    "no_diagnosis_rate": ("consultations without a diagnosis", None, "consultations",
                          "share"),
    "gap_accuracy": ("accuracy between patient variants differs by", 0.0, "cases", "change"),
    "normalised_accuracy": ("accuracy under the bias over accuracy without it", 1.0, "cases",
                            "level"),
}
BIAS_SCALE = "(+1 fully stereotyped, −1 fully anti-stereotyped)"


@dataclass(frozen=True)
class Headline:
    """One headline number: its record and its sentence."""

    record: MetricRecord
    sentence: str


def _number(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    return f"{value:.0%}" if kind == "share" else f"{value:.3g}"


def _interval(record: MetricRecord, kind: str) -> str:
    if record.ci_low is None or record.ci_high is None:
        return "(no interval)"
    return f"[{_number(record.ci_low, kind)}, {_number(record.ci_high, kind)}]"


def verdict(record: MetricRecord, null: float | None) -> str:
    """Whether the interval excludes the value of no effect, in words ('' without one)."""
    if null is None or record.ci_low is None or record.ci_high is None:
        return ""
    if record.ci_low > null or record.ci_high < null:
        return f"the interval excludes {null:g}"
    return f"the interval includes {null:g}: no difference shown"


def sentence(record: MetricRecord, *, arm: str | None = None, control: str | None = None,
             label: str | None = None) -> str:
    """The plain-words sentence of one metric record (a delta of arm vs control when given)."""
    metric = record.metric.removeprefix("delta_")
    what, null, unit, kind = HEADLINES.get(metric, (label or metric.replace("_", " "), None,
                                                    "units", "level"))
    interval = _interval(record, kind)
    where = f" ({record.label})" if record.label and arm is None else ""
    if record.metric.startswith("delta_"):
        change = _change(record, kind, interval)
        text = f"Under {arm} (against {control}), {label or what} {change}"
        null = 0.0
    elif kind == "change":
        text = f"{what[0].upper()}{what[1:]}{where} {_change(record, 'level', interval)}"
    elif kind == "share":
        text = (f"{_number(record.estimate, kind)} {interval} of {what}{where}")
    else:
        scale = f" {BIAS_SCALE}" if metric.startswith("bias") else ""
        text = f"The {what}{where} was {_number(record.estimate, kind)} {interval}{scale}"
    extras = [f"n = {record.n} {unit}"]
    if record.p is not None:
        extras.append(f"p = {record.p:.2g}")
    said = verdict(record, null)
    if said:
        extras.append(said)
    return f"{text}; " + "; ".join(extras) + "."


def _change(record: MetricRecord, kind: str, interval: str) -> str:
    value = record.estimate
    if value is None:
        return "could not be estimated"
    if value == 0:
        return f"did not change (0 {interval})"
    if value > 0:
        return f"rose by {_number(value, kind)} {interval}"
    return f"fell by {_number(-value, kind)} (change {_number(value, kind)} {interval})"


def headlines(records: list[MetricRecord]) -> list[Headline]:
    """The headline records of a run (overall metrics of :data:`HEADLINES` and paired
    variant gaps), in the order of :data:`HEADLINES`."""
    order = {name: i for i, name in enumerate(HEADLINES)}
    chosen = [r for r in records if r.metric in HEADLINES
              and (not r.breakdown or r.metric in ("gap_accuracy", "normalised_accuracy"))]
    chosen.sort(key=lambda r: order[r.metric])
    return [Headline(r, sentence(r)) for r in chosen]
