"""Counterfactual and placebo variants: the same scenario with only named fields changed.

A variant is a list of changes (persona id, field, value). ``field`` is ``name`` or an attribute
of the persona; with persona ``*`` it is ``description`` or ``task:<id>`` (paraphrases). Variants
come from ``--vary`` on the command line or from the scenario's ``variants`` (see
:class:`~agentsim.scenario.schema.VariantSpec`). Variants of one scenario form its variant group:
they share seeds and replicate numbers (the seed is derived from the scenario and replicate, never
the variant), and persona ids (slots) stay fixed, so every decision can be paired across them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from pydantic import Field, ValidationError

from agentsim.errors import InputError
from agentsim.scenario.schema import Frozen, Scenario, VariantSpec

BASE = "base"
SCENARIO_WIDE = "*"


class Change(Frozen):
    """Set ``field`` of persona ``persona`` (or of the scenario, persona '*') to ``value``."""

    persona: str = Field(description="Persona id, or '*' for scenario text.")
    field: str = Field(description="'name', an attribute, 'description' or 'task:<id>'.")
    value: str = Field(description="New value.")


class Variant(Frozen):
    """A named variant of a scenario."""

    id: str = Field(description="Variant id, e.g. 'race=Black' or 'mirror'.")
    changes: tuple[Change, ...] = Field(default=(), description="What differs from the file.")
    kind: str = Field(default="base", description="base, vary, mirror, names, placebo-names, "
                      "paraphrase.")
    placebo: bool = Field(default=False, description="True when nothing that should matter "
                          "changes (a same-group name, a paraphrase).")


BASE_VARIANT = Variant(id=BASE)


def apply_variant(scenario: Scenario, variant: Variant) -> Scenario:
    """The scenario with the variant's changes applied (validated again)."""
    if not variant.changes:
        return scenario
    data = scenario.model_dump()
    ids = [p["id"] for p in data["personas"]]
    for change in variant.changes:
        if change.persona == SCENARIO_WIDE:
            if change.field == "description":
                data["description"] = change.value
            else:
                task_id = change.field.removeprefix("task:")
                for task in data["tasks"]:
                    if task["id"] == task_id:
                        task["text"] = change.value
            continue
        if change.persona not in ids:
            raise InputError(
                f"variant {variant.id!r}: scenario {scenario.id!r} has no persona "
                f"{change.persona!r} (personas: {', '.join(ids)})", source="--vary")
        persona = data["personas"][ids.index(change.persona)]
        if change.field == "name":
            persona["name"] = change.value
        else:
            persona["attributes"] = {**persona["attributes"], change.field: change.value}
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        from agentsim.scenario.loader import problems_from

        field, message = problems_from(error)[0]
        where = f"{field}: " if field else ""
        raise InputError(f"variant {variant.id!r} of scenario {scenario.id!r} is not a valid "
                         f"scenario: {where}{message}", source="--vary") from None


def parse_vary(specs: Sequence[str]) -> list[Variant]:
    """Variants from ``--vary persona.field=v1,v2`` options (several options: all combinations).

    ``--vary patient.race=Black,White`` gives variants 'race=Black' and 'race=White'.
    """
    variants = [BASE_VARIANT]
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
                id=(f"{v.id}," if v.id != BASE else "") + f"{label}={value}", kind="vary",
                changes=(*v.changes, Change(persona=persona, field=field, value=value)),
            )
            for v in variants
            for value in options
        ]
    return variants


@lru_cache(maxsize=1)
def _shipped_gender_pool() -> dict[str, tuple[str, ...]]:
    from agentsim.scenario.names import first_names

    pool: dict[str, list[str]] = {"man": [], "woman": []}
    for name, gender in sorted(first_names().items()):
        pool[gender].append(name.title())
    return {group: tuple(names) for group, names in pool.items()}


def name_pool(scenario: Scenario, attribute: str) -> dict[str, tuple[str, ...]]:
    """Names per group of ``attribute``: the scenario's pools, else the shipped gender list."""
    if attribute in scenario.name_pools:
        return scenario.name_pools[attribute]
    if attribute == "gender":
        return _shipped_gender_pool()
    raise InputError(f"scenario {scenario.id!r} declares no name pool for {attribute!r}",
                     source="name_pools")


def _draw(pool: Sequence[str], taken: set[str], rng: random.Random) -> str:
    free = [name for name in pool if name not in taken]
    if not free:
        raise InputError("name pool exhausted: add names to name_pools", source="name_pools")
    name = rng.choice(free)
    taken.add(name)
    return name


def _spec_variants(scenario: Scenario, spec: VariantSpec, index: int) -> list[Variant]:
    rng = random.Random(f"{scenario.id}:variant:{index}")  # the same names on every run
    prefix = spec.id or spec.kind
    attribute = spec.attribute or ""
    personas = list(scenario.personas)
    if spec.kind == "paraphrase":
        changes = [Change(persona=SCENARIO_WIDE, field=f"task:{t}", value=text)
                   for t, text in spec.tasks.items()]
        if spec.description:
            changes.append(Change(persona=SCENARIO_WIDE, field="description",
                                  value=spec.description))
        return [Variant(id=spec.id or f"paraphrase{index}", kind="paraphrase", placebo=True,
                        changes=tuple(changes))]
    if spec.kind == "mirror":
        values = sorted({p.attributes[attribute] for p in personas if attribute in p.attributes})
        if len(values) != 2:
            raise InputError(f"mirror needs two groups of {attribute!r} (found {values})",
                             source=f"{scenario.id}: variants[{index}]")
        first = [p for p in personas if p.attributes.get(attribute) == values[0]]
        second = [p for p in personas if p.attributes.get(attribute) == values[1]]
        changes = []
        for a, b in zip(first, second, strict=False):  # unpaired personas keep their place
            changes += [Change(persona=a.id, field="name", value=b.name),
                        Change(persona=a.id, field=attribute, value=values[1]),
                        Change(persona=b.id, field="name", value=a.name),
                        Change(persona=b.id, field=attribute, value=values[0])]
        return [Variant(id=prefix, kind="mirror", changes=tuple(changes))]
    pool = name_pool(scenario, attribute)
    taken = {p.name for p in personas}
    variants = []
    if spec.kind == "names":
        for group in sorted(pool):
            for draw in range(spec.count):
                name = _draw(pool[group], taken, rng)
                variants.append(Variant(
                    id=f"{prefix}:{attribute}={group}#{draw + 1}", kind="names",
                    changes=(Change(persona=spec.persona or "", field="name", value=name),
                             Change(persona=spec.persona or "", field=attribute, value=group))))
        return variants
    targets = [p for p in personas if spec.persona in (None, p.id)]
    for draw in range(spec.count):
        changes = []
        for persona in targets:
            group = persona.attributes.get(attribute)
            if group in pool:
                changes.append(Change(persona=persona.id, field="name",
                                      value=_draw(pool[group], taken, rng)))
        variants.append(Variant(id=f"{prefix}#{draw + 1}", kind="placebo-names", placebo=True,
                                changes=tuple(changes)))
    return variants


def declared_variants(scenario: Scenario) -> list[Variant]:
    """The base variant and every variant the scenario declares, with unique ids."""
    variants = [BASE_VARIANT]
    for index, spec in enumerate(scenario.variants):
        variants += _spec_variants(scenario, spec, index)
    ids = [v.id for v in variants]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"duplicate variant ids {duplicates}", source=f"{scenario.id}: variants")
    return variants
