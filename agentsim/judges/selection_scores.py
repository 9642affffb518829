"""Scores of rank, pick and rate answers: each option of a decision point gets a score in [0, 1].

pick → 1 if chosen else 0; rank → (n − rank) / (n − 1), n = the point's options, rank 1 = first;
rate → (r − low) / (high − low) on the point's scale. Options missing from an answer are left
out; an answer with no usable option (a pick of a non-option, a rank or rating out of range, a
value its typed model refuses) has no scores. Used by the ``selection`` judge.
"""

from __future__ import annotations

from agentsim.core.decisions import (
    DecisionModel,
    DecisionValueError,
    PickDecision,
    RankDecision,
    RateDecision,
    typed_decision,
    typed_value,
)
from agentsim.core.events import Decision
from agentsim.scenario.schema import Scenario
from agentsim.scenario.setup_schema import DecisionPoint

__all__ = ["compared_attribute", "decision_scores", "option_scores", "typed_scores"]


def option_scores(point: DecisionPoint, value: dict[str, str] | None) -> dict[str, float] | None:
    """Per-option scores in [0, 1] of one stored answer, or None when it is unusable."""
    try:
        return typed_scores(point, None if value is None else typed_value(point.type, value))
    except DecisionValueError:
        return None


def typed_scores(point: DecisionPoint, decision: DecisionModel | None) -> dict[str, float] | None:
    """Per-option scores in [0, 1] of one typed answer of the point's type, or None when it is
    unusable (none, another kind, a pick of a non-option, a rank or rating out of range)."""
    if isinstance(decision, PickDecision) and point.type == "pick":
        return ({o: float(o == decision.choice) for o in point.options}
                if decision.choice in point.options else None)
    if isinstance(decision, RankDecision) and point.type == "rank":
        given = {o: rank for o in point.options if (rank := decision.rank(o)) is not None}
    elif isinstance(decision, RateDecision) and point.type == "rate":
        given = {o: decision.ratings[o] for o in point.options if o in decision.ratings}
    else:
        return None
    low, high = (1, len(point.options)) if point.type == "rank" else point.scale
    if not given or any(not low <= v <= high for v in given.values()):
        return None
    if point.type == "rank":
        return {o: (high - v) / (high - 1) for o, v in given.items()}
    return {o: (v - low) / (high - low) for o, v in given.items()}


def decision_scores(point: DecisionPoint, event: Decision) -> dict[str, float] | None:
    """The scores of a decision event; a value that does not fit its kind counts as unparsed."""
    try:
        return typed_scores(point, typed_decision(event))
    except DecisionValueError:
        return None


def compared_attribute(scenario: Scenario, point: DecisionPoint) -> tuple[str | None, str]:
    """The point's attribute, else the one whose values differ among its options; or why not."""
    if point.attribute:
        return point.attribute, ""
    people = [scenario.persona(o) for o in point.options]
    keys = sorted({k for p in people for k in p.attributes})
    differing = [k for k in keys if len({p.attributes.get(k) for p in people}) > 1]
    if len(differing) == 1:
        return differing[0], ""
    return None, (f"options differ in several attributes ({', '.join(differing)}): set its "
                  "attribute" if differing else "its options differ in no attribute")
