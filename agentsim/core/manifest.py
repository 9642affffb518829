"""The manifest of a run: what was run, with what, and how it went — one typed record.

Every run folder has ``manifest.json``, written when the folder is made and updated as the run
goes (status, endpoints the servers reported, the judges). :meth:`Manifest.new` is the one
constructor: ``agentsim run``, forks and imported transcripts all build their manifest with it,
so the three never disagree on a field. ``schema_version`` says which layout a reader has in
hand; manifests written before it existed read as version 0.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentsim._version import __version__
from agentsim.core.jobs import ConversationJob

SCHEMA_VERSION = 1


class ScenarioEntry(BaseModel):
    """One scenario of the run, as it ran (the file may have changed since)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Where it came from: a file, a fork or an import.")
    hash: str = Field(description="Hash of the scenario's data (agentsim.scenario.loader).")
    data: dict[str, Any] = Field(description="The scenario's data, to rebuild it exactly.")
    preset: str | None = Field(default=None, description="The preset it ran as, if any.")
    prompts_sha256: str | None = Field(
        default=None, description="sha256 of the prompts its protocol ran with (shipped, "
        "preset's and --prompts' together; the texts are in data.protocol.prompts over the "
        "shipped file of this agentsim version).")


class ParentRef(BaseModel):
    """The conversation a fork continues."""

    model_config = ConfigDict(extra="forbid")

    run_dir: str = Field(description="The parent run folder (absolute).")
    run_id: str = Field(description="The parent's run id.")
    conversation_id: str = Field(description="The conversation forked.")
    from_turn: int = Field(description="Turns before it came verbatim from the parent's log.")


class Manifest(BaseModel):
    """A run's manifest. Unknown fields are kept (``extra='allow'``): status updates and newer
    writers may add some, and a reader must not lose them when it writes the manifest back."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = Field(default=SCHEMA_VERSION, description="Layout of this record.")
    run_id: str = Field(description="The run's id (the folder's name by default).")
    created: str = Field(description="UTC time the run folder was made, ISO 8601.")
    status: str = Field(default="running", description="running, finished, incomplete, "
                        "stopped or interrupted.")
    source: str | None = Field(default=None, description="An imported run's origin.")
    agentsim_version: str = Field(default=__version__, description="Version that made it.")
    python: str = Field(default_factory=platform.python_version, description="Python version.")
    options: dict[str, Any] = Field(default_factory=dict, description="The run's options.")
    models: dict[str, str] = Field(default_factory=dict,
                                   description="Model per role; 'default' is the fallback.")
    endpoints: dict[str, Any] = Field(default_factory=dict,
                                      description="How each model was reached (no secrets).")
    warnings: list[str] = Field(default_factory=list, description="What the checks found.")
    judges: list[str] = Field(default_factory=list, description="Judges the run is scored by.")
    plugins: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict, description="Plugin kind → name → every option it ran with "
        "(validated by its options model; defaults included): the judges, the mitigations of "
        "the arms and the executor.")
    arms: list[str] = Field(default_factory=lambda: ["none"], description="Mitigation arms.")
    seed: int | None = Field(default=None, description="The run seed.")
    scenarios: dict[str, ScenarioEntry] = Field(description="Scenario id → as it ran.")
    variants: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="Scenario id → its variants.")
    bias_catalogue: dict[str, Any] | None = Field(default=None,
                                                  description="The catalogue of injected biases.")
    jobs: list[ConversationJob] = Field(description="Every conversation planned.")
    parent: ParentRef | None = Field(default=None, description="A fork's parent conversation.")

    @classmethod
    def new(cls, run_id: str, *, scenarios: Mapping[str, ScenarioEntry],
            jobs: Sequence[ConversationJob], **fields: Any) -> Manifest:
        """The manifest of a run being created now (its id, scenarios, jobs and any other
        field by name)."""
        return cls(run_id=run_id, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   scenarios=dict(scenarios), jobs=list(jobs), **fields)

    def to_json(self) -> dict[str, Any]:
        """The manifest as ``manifest.json`` holds it (optional top-level fields left unset are
        left out; the catalogue is always there, null when none is used)."""
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if v is not None or k == "bias_catalogue"}


def scenario_entry(path: str, scenario: Any) -> ScenarioEntry:
    """The manifest's record of one scenario as it runs."""
    from agentsim.scenario.loader import scenario_hash, scenario_to_data

    settings = scenario.protocol
    prompts = settings.prompt_set().sha256 if type(settings).prompt_spec else None
    return ScenarioEntry(path=str(path), hash=scenario_hash(scenario),
                         data=scenario_to_data(scenario), preset=settings.preset,
                         prompts_sha256=prompts)
