"""The settings of the built-in protocols as pydantic models (a scenario's ``protocol:``
mapping): the discussion and the clinical consultation (the custom setup's are in
:mod:`agentsim.scenario.setup_schema`), and :func:`settings_model`, which finds the settings
model of any protocol, built-in or registered. Part of the scenario schema
(:mod:`agentsim.scenario.schema` re-exports every name).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictInt, field_validator

from agentsim.scenario.discussion_settings import (  # noqa: F401  (re-exported)
    DiscussionProtocol,
    Setting,
    SpeakingOrder,
    discussion_metric_problems,
)
from agentsim.scenario.schema_base import ProtocolSettings
from agentsim.scenario.setup_schema import SetupProtocol


__all__ = ["BUILTIN_SETTINGS", "ClinicalProtocol", "DiscussionProtocol", "Setting",
           "SpeakingOrder", "discussion_metric_problems", "settings_model"]



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
    measurement: Literal["model", "records"] = Field(
        default="model",
        description="Who answers test requests: 'model' (the measurement role's model, given "
        "the case's findings, as published) or 'records' (a deterministic records clerk that "
        "returns the case's matching findings verbatim and 'not available in this case' for "
        "anything the case does not hold).",
    )
    moderator: Literal["lenient", "strict"] = Field(
        default="lenient",
        description="How the moderator's answer is read: 'lenient' (yes/no read tolerantly, "
        "JSON where supported) or 'strict' (as published: correct only when the answer, "
        "whitespace runs collapsed and lower-cased, is exactly 'yes').",
    )
    doctor_sees: Literal["patient", "objective"] = Field(
        default="patient",
        description="What the doctor is told up front: 'patient' (who the patient is, from "
        "the persona, and the objective) or 'objective' (the objective only, as published).",
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
