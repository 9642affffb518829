"""Scenario files as pydantic models.

A scenario file is YAML; every model here forbids unknown fields so that a typo is an error, not a
silently ignored setting. Value objects are frozen: a loaded scenario never changes, and a
counterfactual variant is a new object.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Identifier = str  # validated by ``_check_id``: lower-case letters, digits, ``-`` and ``_``


def _check_id(value: str, what: str) -> str:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    if not value or not set(value) <= allowed or not value[0].isalnum():
        raise ValueError(
            f"{what} {value!r} must be lower-case letters, digits, '-' or '_', starting with a "
            "letter or digit"
        )
    return value


class Frozen(BaseModel):
    """Base of every scenario model: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
            return {"attribute": str(attribute), "value": str(label_value)}
        return value


Setting = Literal["interaction", "no-interaction", "goal"]
SpeakingOrder = Literal["shuffled", "fixed", "shuffled-each-round"]


class DiscussionProtocol(Frozen):
    """Settings of the multi-agent task-assignment discussion (Borah & Mihalcea 2024)."""

    name: Literal["discussion"] = Field(default="discussion", description="Protocol name.")
    setting: Setting = Field(
        default="interaction",
        description="'interaction': private first decision, discussion, final decision; "
        "'no-interaction': one model assigns the tasks once; 'goal': like interaction, but each "
        "agent is first told privately to take the first task itself.",
    )
    rounds: int = Field(
        default=2, ge=0, le=20, description="Discussion rounds between first and last decision."
    )
    speaking_order: SpeakingOrder = Field(
        default="shuffled",
        description="'shuffled': one order per conversation drawn from its seed; 'fixed': the "
        "order of the personas in the file; 'shuffled-each-round': a new order every round.",
    )
    goal_task: str | None = Field(
        default=None, description="Task the 'goal' setting asks each agent to take (default: first)."
    )


class Scenario(Frozen):
    """A complete scenario: who is there, what must be decided, and how they talk."""

    id: str = Field(description="Unique scenario id; also the default file stem.")
    domain: str = Field(description="Domain label for breakdowns, e.g. 'office', 'hospital'.")
    description: str = Field(description="The situation and the goal, as the agents read it.")
    personas: tuple[Persona, ...] = Field(min_length=1, description="The characters, in order.")
    tasks: tuple[Task, ...] = Field(min_length=1, description="The tasks to assign.")
    protocol: DiscussionProtocol = Field(
        default_factory=DiscussionProtocol, description="Protocol and its settings."
    )
    source: str = Field(
        default="", description="Provenance, e.g. 'written for agentsim' or an importer's note."
    )
    tags: tuple[str, ...] = Field(default=(), description="Free labels for selecting scenarios.")

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_id(value, "scenario id")

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
        goal = self.protocol.goal_task
        if goal is not None and goal not in {t.id for t in self.tasks}:
            raise ValueError(f"protocol.goal_task {goal!r} is not a task id")
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
        return self.protocol.goal_task or self.tasks[0].id


def _unique(values: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{where}: duplicate {what} {value!r}")
        seen.add(value)
