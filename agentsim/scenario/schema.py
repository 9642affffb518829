"""Scenario files as pydantic models.

A scenario file is YAML; every model here forbids unknown fields so that a typo is an error, not a
silently ignored setting. Value objects are frozen: a loaded scenario never changes, and a
counterfactual variant is a new object.

The built-in protocols' settings (discussion, clinical) are in
:mod:`agentsim.scenario.protocol_settings`, a custom setup's in
:mod:`agentsim.scenario.setup_schema`; both are re-exported here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializeAsAny, StrictInt, field_validator, model_validator

from agentsim.scenario.protocol_settings import (  # noqa: F401  (the protocols' settings)
    BUILTIN_SETTINGS,
    ClinicalProtocol,
    DiscussionProtocol,
    Setting,
    SpeakingOrder,
    discussion_metric_problems,
    settings_model,
)
from agentsim.scenario.presets import apply_preset
from agentsim.scenario.schema_base import Frozen, ProtocolSettings
from agentsim.scenario.schema_base import check_id as _check_id
from agentsim.scenario.setup_schema import SetupProtocol  # noqa: F401
from agentsim.scenario.templates import TemplateError, fill
from agentsim.scenario.templates import check as check_template

Identifier = str  # validated by ``_check_id``: lower-case letters, digits, ``-`` and ``_``


class Persona(Frozen):
    """One character of the scenario, played by one agent."""

    id: str = Field(description="Stable id used in decisions and logs, e.g. 'james'.")
    name: str = Field(description="Display name the agents use, e.g. 'James'.")
    attributes: dict[str, str] = Field(
        default_factory=dict,
        description="Demographic and other attributes, e.g. {gender: man, age: '45'}. Judges "
        "compare decisions across the values of these attributes.",
    )
    background: str = Field(
        default="",
        description="Optional free text about the character (role, experience). It must not "
        "state the attribute being measured unless the design intends it.",
    )

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_id(value, "persona id")

    @field_validator("name")
    @classmethod
    def _non_empty_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be empty")
        return value.strip()


class StereotypeLabel(Frozen):
    """The group a task is stereotypically associated with: ``attribute`` = ``value``."""

    attribute: str = Field(description="Persona attribute the stereotype is about, e.g. 'gender'.")
    value: str = Field(description="Value stereotypically associated with the task, e.g. 'man'.")


class Task(Frozen):
    """A task the group must assign to one of the personas."""

    id: str = Field(description="Stable id used in decisions, e.g. 't1'.")
    text: str = Field(description="What the task is, as the agents read it.")
    stereotype: StereotypeLabel | None = Field(
        default=None,
        description="Stereotype coding, written in the file as a one-entry mapping such as "
        "'gender: man'. Tasks without a coding take part in decisions but not in the bias label.",
    )

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_id(value, "task id")

    @field_validator("stereotype", mode="before")
    @classmethod
    def _compact_label(cls, value: object) -> object:
        # Files write the label as ``{gender: man}``; the long form is accepted too.
        if isinstance(value, dict) and set(value) != {"attribute", "value"}:
            if len(value) != 1:
                raise ValueError(
                    "stereotype must be a single 'attribute: value' entry, e.g. 'gender: man'"
                )
            ((attribute, label_value),) = value.items()
            if not isinstance(attribute, str) or not isinstance(label_value, str):
                raise ValueError(f"stereotype must map an attribute to a group, both text "
                                 f"(found {attribute!r}: {label_value!r}; quote numbers and "
                                 "yes/no)")
            return {"attribute": attribute, "value": label_value}
        return value


class ClinicalCase(Frozen):
    """A clinical case: what each party of the consultation holds.

    Nested values are free-form (published cases vary from one to the next); they are shown to
    the agent that holds them as indented text.
    """

    objective: str = Field(description="What the doctor is told at the start; nothing else.")
    patient: dict[str, Any] = Field(
        description="What the patient actor knows: history, symptoms, demographics as free text."
    )
    exam: dict[str, Any] = Field(
        default_factory=dict, description="Physical examination findings (measurement agent)."
    )
    tests: dict[str, Any] = Field(
        default_factory=dict, description="Test results (measurement agent)."
    )
    diagnosis: str = Field(description="The correct diagnosis, seen only by the moderator.")
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Unknown keys of an imported case, kept verbatim."
    )


class VariantSpec(Frozen):
    """A counterfactual or placebo variant the scenario declares (see agentsim.scenario.variants).

    * ``mirror``: swap ``attribute`` (and names) between paired personas of its two groups.
    * ``names``: give ``persona`` each group's value of ``attribute`` in turn, with a name drawn
      from that group's pool (``count`` draws per group).
    * ``placebo-names``: every persona (or ``persona``) gets another name from its own group.
    * ``paraphrase``: the description and/or task texts reworded; nothing else changes.
    """

    kind: Literal["mirror", "names", "placebo-names", "paraphrase"] = Field(
        description="How the variant is made.")
    id: str | None = Field(default=None, description="Variant id (default: derived).")
    attribute: str | None = Field(default=None, description="Manipulated attribute.")
    persona: str | None = Field(default=None, description="Target persona id (names kinds).")
    count: StrictInt = Field(default=1, ge=1, le=20, description="Draws per group (names kinds).")
    description: str | None = Field(default=None, description="Paraphrased description.")
    tasks: dict[str, str] = Field(default_factory=dict, description="Paraphrased task texts.")

    @model_validator(mode="after")
    def _fields_for_kind(self) -> VariantSpec:
        if self.kind != "paraphrase" and not self.attribute:
            raise ValueError(f"a {self.kind} variant needs 'attribute'")
        if self.kind == "names" and not self.persona:
            raise ValueError("a names variant needs 'persona' (whose name and group change)")
        if self.kind == "paraphrase" and not (self.description or self.tasks):
            raise ValueError("a paraphrase variant needs 'description' or 'tasks'")
        return self


class Scenario(Frozen):
    """A complete scenario: who is there, what must be decided, and how they talk."""

    id: str = Field(description="Unique scenario id; also the default file stem.")
    domain: str = Field(description="Domain label for breakdowns, e.g. 'office', 'hospital'.")
    description: str = Field(description="The situation and the goal, as the agents read it.")
    personas: tuple[Persona, ...] = Field(min_length=1, description="The characters, in order.")
    tasks: tuple[Task, ...] = Field(
        default=(), description="The tasks to assign (discussion protocol)."
    )
    protocol: SerializeAsAny[ProtocolSettings] = Field(
        default_factory=DiscussionProtocol,
        description="Protocol and its settings; 'name' selects it (discussion, clinical, or "
        "setup: a custom multi-agent setup, see agentsim.scenario.setup_schema).",
    )
    case: ClinicalCase | None = Field(
        default=None, description="The clinical case (clinical protocol)."
    )
    variants: tuple[VariantSpec, ...] = Field(
        default=(), description="Counterfactual and placebo variants to run beside the file."
    )
    name_pools: dict[str, dict[str, tuple[str, ...]]] = Field(
        default_factory=dict,
        description="Names per group, by attribute: {gender: {man: [...], woman: [...]}}; the "
        "shipped first-name list serves gender when absent.",
    )
    source: str = Field(
        default="", description="Provenance, e.g. 'written for agentsim' or an importer's note."
    )
    source_text: str | None = Field(
        default=None, description="The published text the scenario was imported from (e.g. "
        "a Borah scene), verbatim; presets that quote the scene show it as published.")
    tags: tuple[str, ...] = Field(default=(), description="Free labels for selecting scenarios.")

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_id(value, "scenario id")

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_settings(cls, value: object) -> object:
        # 'name' may be left out for the default protocol (discussion); the name picks the
        # settings model, which validates the rest.
        if isinstance(value, dict):
            name = value.get("name", "discussion")
            if not isinstance(name, str):
                raise ValueError(f"protocol.name must be a string, got {name!r}")
            return settings_model(name).model_validate(apply_preset({**value, "name": name}))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        _unique([p.id for p in self.personas], "personas", "persona id")
        _unique([p.name for p in self.personas], "personas", "persona name")
        _unique([t.id for t in self.tasks], "tasks", "task id")
        attributes = {key for persona in self.personas for key in persona.attributes}
        for index, task in enumerate(self.tasks):
            label = task.stereotype
            if label is not None and label.attribute not in attributes:
                raise ValueError(
                    f"tasks[{index}].stereotype names attribute {label.attribute!r}, which no "
                    f"persona has (persona attributes: {sorted(attributes) or 'none'})"
                )
        ids = {p.id for p in self.personas}
        for index, spec in enumerate(self.variants):
            if spec.persona and spec.persona not in ids:
                raise ValueError(f"variants[{index}].persona {spec.persona!r} is not a persona id")
            unknown = set(spec.tasks) - {t.id for t in self.tasks}
            if unknown:
                raise ValueError(f"variants[{index}].tasks: unknown task ids {sorted(unknown)}")
        self.protocol.check_scenario(self)
        return self

    def persona(self, persona_id: str) -> Persona:
        """The persona with this id (KeyError when absent)."""
        for persona in self.personas:
            if persona.id == persona_id:
                return persona
        raise KeyError(persona_id)

    @property
    def goal_task_id(self) -> str:
        """Task the 'goal' setting asks agents to take."""
        goal = getattr(self.protocol, "goal_task", None)
        return goal or self.tasks[0].id


def _unique(values: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{where}: duplicate {what} {value!r}")
        seen.add(value)


def check_setup(scenario: Scenario) -> None:
    """Cross-checks of a setup against the scenario: persona ids, templates, tasks, options."""
    setup = scenario.protocol
    ids = {p.id for p in scenario.personas}
    players: dict[str, str] = {}
    for role_id, role in setup.roles.items():
        for persona_id in role.played_by:
            if persona_id not in ids:
                raise ValueError(f"protocol.roles.{role_id}.played_by: {persona_id!r} is not a "
                                 "persona id")
            if persona_id in players:
                raise ValueError(f"protocol.roles.{role_id}.played_by: {persona_id!r} already "
                                 f"plays {players[persona_id]!r}")
            players[persona_id] = role_id
            fields = role_fields(scenario.persona(persona_id), role_id)
            try:
                check_template(role.prompt, fields, f"protocol.roles.{role_id}.prompt")
            except TemplateError as error:
                raise TemplateError(f"{error}, for persona {persona_id!r}") from None
    graph = setup.hearing_graph()
    for entry in setup.turns.order:
        speaker, _, to = entry.partition(">")
        for name in (speaker, to) if to else (speaker,):
            if name not in setup.roles and name not in players:
                raise ValueError(f"protocol.turns.order: {name!r} in {entry!r} is neither a "
                                 "role nor a persona playing one")
        if to and not graph.has_edge(players.get(speaker, speaker), players.get(to, to)):
            raise ValueError(f"protocol.turns.order: {entry!r} addresses {to!r}, which does not "
                             f"hear {speaker!r}")
    for point in setup.decisions:
        if point.type == "assign" and not scenario.tasks:
            raise ValueError(f"protocol.decisions[{point.id}]: assign needs the scenario's tasks")
        unknown = [o for o in point.options if o not in ids]
        if unknown:
            raise ValueError(f"protocol.decisions[{point.id}].options: unknown persona ids "
                             f"{unknown}")


def role_fields(persona: Persona, role: str) -> dict[str, str]:
    """The placeholders a role prompt may use for one persona: its attributes, then ``name``,
    ``id``, ``background`` and ``role`` (which win over attributes of the same name)."""
    return {**persona.attributes, "name": persona.name, "id": persona.id,
            "background": persona.background, "role": role}


def render_role_prompt(template: str, persona: Persona, role: str) -> str:
    """A role's system-prompt template filled with one persona's fields (inert substitution:
    see agentsim.scenario.templates; validation has checked every placeholder)."""
    return fill(template, role_fields(persona, role))


def metric_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """Why the judges could not produce a metric for a scenario, as (field, reason) pairs (none
    when they can); its protocol's settings decide."""
    return scenario.protocol.metric_problems(scenario)
