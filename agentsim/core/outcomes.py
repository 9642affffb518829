"""Paired outcomes: one unit's value of one measure, which comparisons pair across conditions.

A comparison of conditions (mitigation arms today; models and settings are the same question)
needs, for every measure, the value of each *unit* — a decision, an agent's escalation, a
consultation — in each condition, so that a unit in one condition is paired with the same unit
in the other (same scenario, variant, injected bias, replicate and seed). Judges know their
measures; the comparison knows nothing of any judge. So a judge that supports comparison
declares its measures (:class:`PairedMeasure`) and yields :class:`UnitOutcome` values from the
log; :mod:`agentsim.analysis.compare` pairs them generically.

A unit is named by its conversation (whose identifiers, minus the condition, say which
conversation of another condition it pairs with) and ``within``: what identifies it inside the
conversation (e.g. the agent and the phase of a decision).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

__all__ = ["PairedMeasure", "UnitOutcome", "Outcomes"]


@dataclass(frozen=True)
class PairedMeasure:
    """A measure a judge offers for paired comparisons."""

    name: str
    """Short name; the comparison reports ``delta_<name>[A]`` and ``<name>[arm=A]``."""
    label: str
    """Human wording for tables and plots ("bias, first decision")."""
    binary: bool = False
    """A 0/1 outcome: its level per condition is a share (Wilson with a single cluster)."""
    tested: bool = True
    """False: reported as a level per condition only, no paired difference (a placebo)."""
    group: str = "bias"
    """"bias" or "quality": the comparison lists bias measures first."""
    note: str | None = None
    """A sentence the comparison adds to its notes when the measure is present."""


@dataclass(frozen=True)
class UnitOutcome:
    """The value of ``measure`` for one unit of one conversation."""

    measure: str
    conversation_id: str
    within: tuple[Hashable, ...]
    """What identifies the unit inside its conversation (agent, phase, ...); () for the
    conversation itself."""
    value: float


@dataclass
class Outcomes:
    """What a judge's ``outcomes(run)`` returns: the values and notes on what it left out."""

    values: list[UnitOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, measure: str, conversation_id: str, within: tuple[Hashable, ...],
            value: float) -> None:
        """Record one unit's value."""
        self.values.append(UnitOutcome(measure, conversation_id, within, float(value)))
