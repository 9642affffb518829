"""The settings of the built-in protocols as pydantic models (a scenario's ``protocol:``
mapping): the discussion and the clinical consultation (the custom setup's are in
:mod:`agentsim.scenario.setup_schema`), and :func:`settings_model`, which finds the settings
model of any protocol, built-in or registered. Part of the scenario schema
(:mod:`agentsim.scenario.schema` re-exports every name).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, field_validator

from agentsim.scenario.discussion_settings import (  # noqa: F401  (re-exported)
    DiscussionProtocol,
    Setting,
    SpeakingOrder,
    discussion_metric_problems,
)
from agentsim.scenario.prompt_files import PromptTemplate
from agentsim.scenario.schema_base import ProtocolSettings
from agentsim.scenario.setup_schema import SetupProtocol


__all__ = ["BUILTIN_SETTINGS", "CLINICAL_PROMPTS", "ClinicalProtocol", "DiscussionProtocol",
           "Setting", "SpeakingOrder", "discussion_metric_problems", "settings_model"]

# The placeholders of the clinical prompts (agentsim/scenario/prompts/clinical.yaml). Forms of
# the same things: agentsim's (dialogue as 'Speaker: text' lines, notes as indented text, biases
# each after a blank line) and the published code's (history: each question and answer followed
# by a blank line; question: the last answer the party was given; notes_repr and findings_repr:
# Python str() of the case's mappings; bias_text: the bias texts as they are).
_WHO = frozenset({"name", "patient", "doctor"})
_DOCTOR = _WHO | {"patient_line", "objective", "max_turns", "turn", "questions_asked", "how",
                  "biases", "bias_text"}
_HEARD = frozenset({"dialogue", "history", "question"})
_FINDINGS = frozenset({"findings", "findings_repr", "request", "doctor_turn", "dialogue",
                       "history"})
CLINICAL_PROMPTS: dict[str, PromptTemplate] = {
    "doctor_system": PromptTemplate("the doctor's system message", _DOCTOR),
    "doctor_patient_line": PromptTemplate("who the patient is (doctor_sees: patient)",
                                          frozenset({"patient"})),
    "doctor_how_json": PromptTemplate("how the doctor answers, JSON"),
    "doctor_how_text": PromptTemplate("how the doctor answers, text markers"),
    "doctor_turn": PromptTemplate("the doctor's user message",
                                  _HEARD | {"status", "turn", "max_turns"}),
    "doctor_status": PromptTemplate("the doctor's status before its last turn",
                                    frozenset({"turn", "max_turns"})),
    "doctor_status_last": PromptTemplate("the doctor's status on its last turn",
                                         frozenset({"turn", "max_turns"})),
    "empty_dialogue": PromptTemplate("{dialogue} before anything was said"),
    "probe": PromptTemplate("a private check of the doctor's leading diagnosis", _HEARD),
    "patient_system": PromptTemplate("the patient's system message",
                                     _WHO | {"notes", "notes_repr", "biases", "bias_text"}),
    "patient_turn": PromptTemplate("the patient's user message", _HEARD),
    "perception": PromptTemplate("the patient's ratings after the consultation",
                                 frozenset({"dialogue", "outcome", "questions", "diagnosis"})),
    "perception_outcome": PromptTemplate("{outcome} after a diagnosis", frozenset({"diagnosis"})),
    "perception_no_outcome": PromptTemplate("{outcome} without a diagnosis"),
    "moderator_system": PromptTemplate("the moderator's system message"),
    "moderator_turn": PromptTemplate("the moderator's question",
                                     frozenset({"truth", "diagnosis", "doctor_turn"})),
    "measurement_system": PromptTemplate("the measurement model's system message", _FINDINGS),
    "measurement_turn": PromptTemplate("the measurement model's user message", _FINDINGS),
    "no_requests": PromptTemplate("{dialogue} of the measurement model before any request"),
    "no_findings": PromptTemplate("{findings} of a case that holds none"),
    "not_available": PromptTemplate("the records clerk's answer when the case holds nothing"),
}


class ClinicalProtocol(ProtocolSettings):
    """Settings of a doctor/patient consultation in the manner of AgentClinic."""

    prompt_spec = CLINICAL_PROMPTS
    prompt_file = ("agentsim.scenario", "clinical.yaml")

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
    structured: StrictBool = Field(
        default=True, description="Constrain the doctor's, moderator's and probe's answers to "
        "JSON where the model supports it; False: text answers (as published).")
    # Sampling as the discussion's (the run's --temperature and --max-tokens win).
    temperature: StrictFloat | None = DiscussionProtocol.model_fields["temperature"]
    top_p: StrictFloat | None = DiscussionProtocol.model_fields["top_p"]
    max_tokens: StrictInt | None = DiscussionProtocol.model_fields["max_tokens"]

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
