"""The settings of the built-in protocols as pydantic models (a scenario's ``protocol:``
mapping): the discussion and the clinical consultation (the custom setup's are in
:mod:`agentsim.scenario.setup_schema`), and :func:`settings_model`, which finds the settings
model of any protocol, built-in or registered. Part of the scenario schema
(:mod:`agentsim.scenario.schema` re-exports every name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, StrictInt, field_validator

from agentsim.scenario.schema_base import ProtocolSettings
from agentsim.scenario.setup_schema import SetupProtocol

if TYPE_CHECKING:
    from agentsim.scenario.schema import Scenario

__all__ = ["BUILTIN_SETTINGS", "ClinicalProtocol", "DiscussionProtocol", "Setting",
           "SpeakingOrder", "discussion_metric_problems", "settings_model"]

Setting = Literal["interaction", "no-interaction", "goal"]
SpeakingOrder = Literal["shuffled", "fixed", "shuffled-each-round"]


class DiscussionProtocol(ProtocolSettings):
    """Settings of the multi-agent task-assignment discussion (Borah & Mihalcea 2024)."""

    name: Literal["discussion"] = Field(default="discussion", description="Protocol name.")
    setting: Setting = Field(
        default="interaction",
        description="'interaction': private first decision, discussion, final decision; "
        "'no-interaction': one model assigns the tasks once; 'goal': like interaction, but each "
        "agent is first told privately to take the first task itself.",
    )
    rounds: StrictInt = Field(
        default=2, ge=0, le=20, description="Discussion rounds between first and last decision."
    )
    speaking_order: SpeakingOrder = Field(
        default="shuffled",
        description="'shuffled': one order per conversation drawn from its seed; 'fixed': the "
        "order of the personas in the file; 'shuffled-each-round': a new order every round.",
    )
    goal_task: str | None = Field(
        default=None,
        description="Task the 'goal' setting asks each agent to take (default: first).",
    )

    def check_scenario(self, scenario: Any) -> None:
        """A discussion needs tasks, and a goal task that is one of them."""
        if not scenario.tasks:
            raise ValueError("tasks: the discussion protocol needs at least one task")
        if self.goal_task is not None and self.goal_task not in {t.id for t in scenario.tasks}:
            raise ValueError(f"protocol.goal_task {self.goal_task!r} is not a task id")

    def metric_problems(self, scenario: Any) -> list[tuple[str, str]]:
        """One persona, or every persona in one group of a coded attribute."""
        return discussion_metric_problems(scenario)


class ClinicalProtocol(ProtocolSettings):
    """Settings of a doctor/patient consultation in the manner of AgentClinic."""

    name: Literal["clinical"] = Field(default="clinical", description="Protocol name.")
    max_turns: StrictInt = Field(
        default=20, ge=1, le=100,
        description="Doctor turns before the consultation ends; a test request uses a turn.",
    )
    biases: tuple[str, ...] = Field(
        default=(),
        description="Biases to inject, as 'role:bias' (e.g. 'doctor:race', "
        "'patient:self_diagnosis'), looked up in the bias catalogue.",
    )

    def check_scenario(self, scenario: Any) -> None:
        """A consultation needs a case and personas 'doctor' and 'patient'."""
        if scenario.case is None:
            raise ValueError("case: the clinical protocol needs a case")
        roles = {p.id for p in scenario.personas}
        if not {"doctor", "patient"} <= roles:
            raise ValueError("personas: the clinical protocol needs personas with ids 'doctor' "
                             f"and 'patient' (found {sorted(roles)})")

    @field_validator("biases")
    @classmethod
    def _role_and_name(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            role, _, name = value.partition(":")
            if role not in {"doctor", "patient"} or not name:
                raise ValueError(f"bias {value!r} must look like 'doctor:NAME' or 'patient:NAME'")
        return values


# The built-in protocols' settings, so that loading a scenario does not import the conversation
# graphs (LangGraph); any other name is looked up in the registry (a plugin's ``settings``).
BUILTIN_SETTINGS: dict[str, type[ProtocolSettings]] = {
    "discussion": DiscussionProtocol, "clinical": ClinicalProtocol, "setup": SetupProtocol}


def settings_model(name: str) -> type[ProtocolSettings]:
    """The settings model of the protocol ``name`` (ValueError naming the known ones)."""
    if name in BUILTIN_SETTINGS:
        return BUILTIN_SETTINGS[name]
    from agentsim.errors import PluginError
    from agentsim.registry import REGISTRY

    try:
        model = getattr(REGISTRY.get("protocol", name), "settings", None)
    except PluginError as error:
        raise ValueError(f"protocol.name: {error}") from None
    if not (isinstance(model, type) and issubclass(model, ProtocolSettings)):
        raise ValueError(f"protocol {name!r} declares no settings model (a ProtocolSettings "
                         "subclass)")
    return model


def discussion_metric_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """A discussion's problems: one persona, or every persona in one group of the attribute the
    tasks are coded on. Mirrors the group rule of the assignment-bias label (groups are the values
    personas have for the coded attribute); uneven designs (1 man, 3 women) are fine."""
    problems: list[tuple[str, str]] = []
    if len(scenario.personas) < 2:
        problems.append(("personas", f"a discussion needs at least two personas (found "
                         f"{len(scenario.personas)}): with one, nobody can be treated differently "
                         "and no bias metric can be computed"))
        return problems
    coded = sorted({t.stereotype.attribute for t in scenario.tasks if t.stereotype is not None})
    for attribute in coded:
        groups = sorted({p.attributes[attribute] for p in scenario.personas
                         if attribute in p.attributes})
        if len(groups) < 2:
            found = f"every persona with it is {groups[0]!r}" if groups else "no persona has it"
            problems.append(("personas", f"tasks are coded on {attribute!r} but {found}: the "
                             "bias label compares two groups, so give at least one persona "
                             "each group"))
    return problems
