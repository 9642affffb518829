"""Conversation jobs: one fully specified, hashable, picklable unit of work, and seed derivation."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentsim.models.names import DEFAULT_MODEL


def derive_seed(*parts: object) -> int:
    """A 31-bit seed derived from any parts (run seed, conversation id, turn, ...).

    Every random choice in agentsim draws from a generator seeded this way, so a conversation is
    reproducible on its own, whatever else ran in the same batch.
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class ConversationJob(BaseModel):
    """Everything needed to run one conversation, and nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario_id: str = Field(description="Scenario to run (resolved from the run's scenarios).")
    protocol: str = Field(default="discussion", description="Registered protocol name.")
    setting: str = Field(default="interaction", description="Protocol setting.")
    rounds: int = Field(default=2, description="Discussion rounds.")
    speaking_order: str = Field(default="shuffled", description="Speaking order policy.")
    replicate: int = Field(default=0, description="Replicate number (0-based).")
    seed: int = Field(description="Conversation seed, derived from the run seed and the job.")
    variant: str = Field(default="base", description="Counterfactual variant id.")
    arm: str = Field(default="none", description="Mitigation arm.")
    model_label: str | None = Field(
        default=None, description="A study's short name of the models this job runs with "
        "(a cell's model factor); None outside a study.")
    bias: str = Field(
        default="none",
        description="Injected bias condition (clinical): 'none' or 'role:name[+role:name]'.",
    )
    max_turns: int | None = Field(default=None, description="Doctor turn budget (clinical).")
    mitigation_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Keyword options per mitigation name.")
    probes: bool = Field(default=False, description="Probe every agent's current decision after "
                         "each round, as side calls that are not part of the conversation.")
    models: dict[str, str] = Field(
        default_factory=lambda: {"default": DEFAULT_MODEL},
        description="Model per role or persona id; 'default' is the fallback.",
    )
    temperature: float = Field(default=0.7, description="Sampling temperature of every call.")
    max_tokens: int = Field(default=200, description="Token limit of every call.")
    top_p: float | None = Field(default=None, description="Nucleus sampling of every call; "
                                "None: not sent.")

    def __hash__(self) -> int:
        # Frozen, but its mappings (models, options) are not hashable: hash the canonical JSON.
        return hash(self.model_dump_json())

    @property
    def conversation_id(self) -> str:
        """Readable id, unique within a run: scenario.variant.arm[.bias][.model.setting].rN
        (a study's jobs name their cell's model and setting)."""
        bias = "" if self.bias == "none" else f".{self.bias}"
        cell = "" if self.model_label is None else f".{self.model_label}.{self.setting}"
        return f"{self.scenario_id}.{self.variant}.{self.arm}{bias}{cell}.r{self.replicate}"

    @property
    def cell(self) -> dict[str, str]:
        """The factors that tell this job's cell of a design: model (a study's label, else
        'default'), setting and arm."""
        return {"model": self.model_label or "default", "setting": self.setting,
                "arm": self.arm}

    def model_for(self, *keys: str) -> str:
        """The model of the first key that has one (persona id, then role), else the default."""
        for key in keys:
            if key in self.models:
                return self.models[key]
        return self.models.get("default", DEFAULT_MODEL)
