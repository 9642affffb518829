"""The study file: everything that defines a study, in one YAML file that is hashed into the
manifest of the run it makes.

A study crosses **models** (short name → a model, or a model with roles), **settings** and
**arms** (mitigations) over the same scenarios, variants, replicates and seeds; every cell is
paired with every other (:func:`agentsim.runs.planning.plan_jobs`). What a researcher
pre-registers goes here too: the hypotheses in words, the control of each factor and the
primary analysis the power calculation is about. Paths are relative to the study file's folder,
so a study runs the same from any working directory::

    id: borah2024-table1
    title: Borah & Mihalcea (2024), Table 1
    hypotheses: ["Bias rises after the discussion in every setting"]
    scenarios: [../workplace]                 # or {path: ..., tags: [...]}
    models:
      small: local/smollm2-135m-instruct
      judge-free: {model: openai/gpt-4o-mini, roles: {moderator: openai/gpt-4o}}
    settings: [interaction, no-interaction, goal]
    arms: [none]
    presets: [borah2024]
    replicates: 5
    seed: 2024
    primary: {metric: escalation, effect: 0.1}

Unknown fields are errors (``extra="forbid"``); numbers and switches are strict. The loader
(:mod:`agentsim.studies.loader`) reports every error with the file and the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, field_validator, model_validator

from agentsim.scenario.schema_base import Frozen, check_id

__all__ = ["SETTINGS", "METRICS", "ModelCell", "Primary", "ScenarioSource", "StudyFile"]

SETTINGS = ("interaction", "no-interaction", "goal")
# The measures a power calculation can be about: paired measures of the built-in judges.
METRICS = ("escalation", "bias_first", "bias_last", "delta")
Number = StrictInt | StrictFloat


class ScenarioSource(Frozen):
    """Scenarios of the study: a file or folder, optionally only those with some tags, or some
    cases of a ``.jsonl`` case file."""

    path: str = Field(description="A scenario file, a folder of them or a .jsonl case file, "
                      "relative to the study file's folder.")
    tags: list[str] = Field(default_factory=list,
                            description="Keep only scenarios carrying any of these tags.")
    cases: str | None = Field(default=None, description="Case indexes of a .jsonl file "
                              "('0-9,12').")
    limit: StrictInt | None = Field(default=None, ge=1,
                                    description="The first N cases of a .jsonl file.")


class ModelCell(Frozen):
    """One value of the model factor: the model of every agent and, optionally, of roles."""

    model: str = Field(description="A model name (provider/model, scripted/..., local/...) or "
                       "the name of an entry of the study's models config.")
    roles: dict[str, str] = Field(default_factory=dict,
                                  description="Role or persona id → model, over the study's "
                                  "roles.")


class Controls(Frozen):
    """The control level of each factor, which the others are compared with (default: the
    first model, the first setting, the first arm)."""

    model: str | None = None
    setting: str | None = None
    arm: str | None = None


class Primary(Frozen):
    """The pre-registered primary analysis: what ``agentsim study power`` computes the power
    for when no ``--metric``/``--effect`` is given."""

    metric: Literal["escalation", "bias_first", "bias_last", "delta"] = Field(
        default="escalation", description="escalation (last − first), bias_first, bias_last, "
        "or delta (the paired difference of bias_last between the compared cells).")
    effect: Number | None = Field(default=None, description="The smallest effect worth "
                                  "detecting, in the metric's units.")
    alpha: Number = Field(default=0.05, gt=0, lt=1, description="Two-sided level.")
    power: Number = Field(default=0.8, gt=0, lt=1, description="Power wanted.")


class StudyFile(Frozen):
    """A study: its factors (models, settings, arms), its scenarios and its design."""

    id: str = Field(description="The study's id (lower-case letters, digits, '-', '_').")
    title: str | None = Field(default=None, description="What it studies, in a line.")
    description: str | None = Field(default=None, description="Longer text: the question, "
                                    "the design, what would count as an answer.")
    hypotheses: list[str] = Field(default_factory=list,
                                  description="Hypotheses as pre-registered, in words.")
    scenarios: list[str | ScenarioSource] = Field(min_length=1, description="Scenario files, "
                                                  "folders or case files (relative paths).")
    models: dict[str, str | ModelCell] = Field(min_length=1, description="Short name → model "
                                               "(the model factor's levels).")
    roles: dict[str, str] = Field(default_factory=dict, description="Role → model for every "
                                  "model of the study (e.g. an LLM judge or a moderator).")
    models_config: str | None = Field(default=None, description="A models config file "
                                      "(endpoints, keys by variable, limits), relative path.")
    settings: list[Literal["interaction", "no-interaction", "goal"]] | None = Field(
        default=None, description="Discussion settings, each a level of the setting factor "
        "(default: each scenario file's own).")
    arms: list[str] = Field(default_factory=lambda: ["none"], min_length=1,
                            description="Mitigation arms ('none', 'self_reflection', "
                            "'a+b' for two together).")
    controls: Controls = Field(default_factory=Controls, description="The control level of "
                               "each factor.")
    presets: list[str] = Field(default_factory=list, description="Published protocols the "
                               "scenarios run as, at most one per protocol.")
    prompts: str | None = Field(default=None, description="A prompt file over the protocol's "
                                "prompts, relative path.")
    variants: Literal["declared", "none"] | list[str] = Field(
        default="declared", description="'declared' (the files' counterfactual variants), "
        "'none' (the scenarios as written) or PERSONA.FIELD=V1,V2 specs replacing them.")
    biases: list[str] = Field(default_factory=list, description="Injected bias conditions of "
                              "consultations (ROLE:NAME), each beside the unbiased one.")
    bias_catalogue: str | None = Field(default=None, description="A bias catalogue file, "
                                       "relative path (default: the shipped one).")
    judges: list[str] | None = Field(default=None, description="Judges (default: each "
                                     "protocol's).")
    mitigation_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Mitigation → its options.")
    replicates: StrictInt = Field(default=1, ge=1, le=10_000, description="Conversations per "
                                  "scenario, variant and condition in every cell.")
    seed: StrictInt = Field(default=0, ge=0, description="The study seed; every cell draws "
                            "the same seeds from it.")
    rounds: StrictInt | None = Field(default=None, ge=0, le=20, description="Discussion "
                                     "rounds (default: the files' or the preset's).")
    max_turns: StrictInt | None = Field(default=None, ge=1, le=100,
                                        description="Doctor turn budget of consultations.")
    temperature: Number | None = Field(default=None, ge=0, le=2,
                                       description="Sampling temperature.")
    max_tokens: StrictInt | None = Field(default=None, ge=1, description="Token limit of "
                                         "each answer.")
    probes: StrictBool = Field(default=False, description="Probe every agent's decision "
                               "after each round.")
    max_cost: Number | None = Field(default=None, gt=0, description="Stop starting "
                                    "conversations once the spend logged reaches this many "
                                    "US dollars (resumable).")
    primary: Primary | None = Field(default=None, description="The primary analysis.")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_id(value, "id")

    @field_validator("models")
    @classmethod
    def _labels(cls, value: dict[str, Any]) -> dict[str, Any]:
        for label in value:
            check_id(label, "model name")
        return value

    @field_validator("settings", "arms", "presets", "biases")
    @classmethod
    def _unique(cls, value: list[str] | None, info: Any) -> list[str] | None:
        if value is not None:
            repeated = sorted({item for item in value if value.count(item) > 1})
            if repeated:
                raise ValueError(f"given twice: {', '.join(repeated)}")
            if not value and info.field_name in ("settings", "arms"):
                raise ValueError("give at least one, or leave the field out")
        return value

    @model_validator(mode="after")
    def _controls(self) -> StudyFile:
        for factor, levels in (("model", list(self.models)), ("setting", self.settings),
                               ("arm", self.arms)):
            chosen = getattr(self.controls, factor)
            if chosen is not None and (levels is None or chosen not in levels):
                raise ValueError(f"controls.{factor}: {chosen!r} is not one of the study's "
                                 f"{factor}s ({', '.join(levels or ['none given'])})")
        return self

    def cell_models(self) -> dict[str, dict[str, Any]]:
        """Short name → {"model", "roles"} (the study's roles under each model's own)."""
        out = {}
        for label, entry in self.models.items():
            cell = ModelCell(model=entry) if isinstance(entry, str) else entry
            out[label] = {"model": cell.model, "roles": {**self.roles, **cell.roles}}
        return out

    def control_of(self, factor: str) -> str | None:
        """The control level of ``factor`` (model, setting, arm): the chosen one, else the
        first; None for the setting when the study sets none."""
        chosen = getattr(self.controls, factor)
        if chosen is not None:
            return chosen
        levels = {"model": list(self.models), "setting": self.settings, "arm": self.arms}
        return (levels[factor] or [None])[0]
