"""Counterfactual variants: the same scenario with only named persona fields changed.

A variant is a list of changes (persona id, field, value), where field is ``name`` or an
attribute. Variants of one scenario share their seeds and replicate numbers (the seed is derived
from the scenario and replicate, never the variant), so every measure can be paired across them.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from agentsim.errors import InputError
from agentsim.scenario.schema import Frozen, Scenario

BASE = "base"


class Change(Frozen):
    """Set ``field`` (``name`` or an attribute) of persona ``persona`` to ``value``."""

    persona: str = Field(description="Persona id.")
    field: str = Field(description="'name' or an attribute name.")
    value: str = Field(description="New value.")


class Variant(Frozen):
    """A named counterfactual variant."""

    id: str = Field(description="Variant id, e.g. 'race=Black'.")
    changes: tuple[Change, ...] = Field(default=(), description="What differs from the file.")


def apply_variant(scenario: Scenario, variant: Variant) -> Scenario:
    """The scenario with the variant's changes applied (validated again)."""
    if not variant.changes:
        return scenario
    data = scenario.model_dump()
    ids = [p["id"] for p in data["personas"]]
    for change in variant.changes:
        if change.persona not in ids:
            raise InputError(
                f"variant {variant.id!r}: scenario {scenario.id!r} has no persona "
                f"{change.persona!r} (personas: {', '.join(ids)})", source="--vary")
        persona = data["personas"][ids.index(change.persona)]
        if change.field == "name":
            persona["name"] = change.value
        else:
            persona["attributes"] = {**persona["attributes"], change.field: change.value}
    return Scenario.model_validate(data)


def parse_vary(specs: Sequence[str]) -> list[Variant]:
    """Variants from ``--vary persona.field=v1,v2`` options (several options: all combinations).

    ``--vary patient.race=Black,White`` gives variants 'race=Black' and 'race=White'.
    """
    variants = [Variant(id=BASE)]
    for spec in specs:
        target, sep, values = spec.partition("=")
        persona, dot, field = target.partition(".")
        options = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not dot or not persona or not field or not options:
            raise InputError(f"expected PERSONA.FIELD=VALUE[,VALUE...], got {spec!r}",
                             source="--vary")
        label = field if field != "name" else f"{persona}.name"
        variants = [
            Variant(
                id=(f"{v.id}," if v.id != BASE else "") + f"{label}={value}",
                changes=(*v.changes, Change(persona=persona, field=field, value=value)),
            )
            for v in variants
            for value in options
        ]
    return variants
