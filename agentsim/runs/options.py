"""The options of a run and what a finished run reports.

:class:`RunOptions` (what ``agentsim run`` was asked for, ``None`` meaning "as the scenario file
says"; rebuilt from a stored manifest for resumes, forks and judging), the two options read as
limits (:func:`failure_limit`, :func:`effective_concurrency`) and :class:`RunSummary`. Part of
the runner (:mod:`agentsim.runs.runner` re-exports every name).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsim.errors import InputError
from agentsim.models.names import DEFAULT_MODEL
from agentsim.scenario.variants import Variant

__all__ = ["TUPLE_OPTIONS", "RunOptions", "RunSummary", "effective_concurrency",
           "failure_limit"]


@dataclass(frozen=True)
class RunOptions:
    """Options of a run; ``None`` means 'as the scenario file says'."""

    model: str = DEFAULT_MODEL
    roles: dict[str, str] = field(default_factory=dict)
    setting: str | None = None
    rounds: int | None = None
    replicates: int = 1
    seed: int = 0
    concurrency: int | None = None
    temperature: float | None = None  # None: the protocol's (its preset's), else 0.7
    max_tokens: int | None = None  # None: the protocol's (its preset's), else 200
    preset: str | None = None  # a published protocol every scenario runs as (--preset)
    prompts: str | None = None  # a prompt file over the protocol's prompts (--prompts)
    retries: int | None = None  # None: each model's own (models config), else 8
    timeout: float | None = None  # seconds per call; None: each model's own, else 120
    backoff_s: float = 1.0
    models_config: dict[str, Any] | None = None  # a models config file's data (ModelsConfig)
    router_list: list[dict[str, Any]] | None = None  # a litellm Router model_list
    endpoint_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per model; '*'
    max_failures: str | None = None  # 'N' or 'P%': stop early once more conversations failed
    probe: bool = True  # probe servers for their structured-output mode before the run
    judges: tuple[str, ...] | None = None
    variants: tuple[Variant, ...] | None = None  # None: each scenario's declared variants
    biases: tuple[str, ...] = ()
    max_turns: int | None = None
    bias_catalogue: str | None = None
    probes: bool = False
    arms: tuple[str, ...] = ("none",)
    mitigation_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache: bool = True
    cache_dir: str | None = None
    executor: str = "local"  # where conversations run: local, processes, ray (--executor)
    ray_address: str | None = None  # the Ray the ray executor joins (--ray-address)
    # A study's factors (agentsim.studies): label → {"model": NAME, "roles": {ROLE: NAME}},
    # each a cell's models in place of model/roles; and the settings every discussion scenario
    # runs under, each a cell. None: the one model set and setting above.
    study_models: dict[str, dict[str, Any]] | None = None
    settings: tuple[str, ...] | None = None
    max_cost: float | None = None  # stop starting conversations once the spend reaches it

    def model_sets(self) -> list[tuple[str | None, dict[str, str]]]:
        """(label, role → model with 'default') of each model cell: a study's, else the run's
        one set, labelled None."""
        if not self.study_models:
            return [(None, {"default": self.model, **self.roles})]
        return [(label, {"default": entry["model"], **(entry.get("roles") or {})})
                for label, entry in self.study_models.items()]

    def all_models(self) -> list[str]:
        """Every model name any cell calls (each once, in order)."""
        names: list[str] = []
        for _, models in self.model_sets():
            names += [m for m in models.values() if m not in names]
        return names

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> RunOptions:
        """The options a stored run was made with."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"variants"}
        data = {k: v for k, v in (manifest.get("options") or {}).items() if k in fields}
        for key in TUPLE_OPTIONS & set(data):
            if data[key] is not None:
                data[key] = tuple(data[key])
        return cls(**data)


# Options stored as lists in JSON that RunOptions holds as tuples.
TUPLE_OPTIONS = {"arms", "biases", "judges", "settings"}


@dataclass
class RunSummary:
    """What a finished run reports: where it is, how many conversations ran and failed, metrics.

    ``stopped`` is True when ``--max-failures`` or ``--max-cost`` ended the run early
    (``stop_reason`` says which); ``not_run`` counts the conversations it left for
    ``agentsim resume``.
    """

    run_dir: Path
    conversations: int
    failed: int
    results: dict[str, Any]
    errors: dict[str, int] = field(default_factory=dict)
    stopped: bool = False
    not_run: int = 0
    stop_reason: str | None = None  # what stopped it: "max_failures" or "max_cost"
    warnings: list[str] = field(default_factory=list)
    skipped_lines: int = 0  # damaged log lines skipped (--skip-bad-lines)

    @property
    def exit_status(self) -> int:
        """0 when everything planned succeeded, 1 when conversations failed, 3 when the run
        was stopped early by --max-failures or --max-cost."""
        if self.stopped:
            return 3
        return 1 if self.failed or self.not_run else 0


def failure_limit(spec: str | None, planned: int) -> int | None:
    """How many failed conversations ``--max-failures`` tolerates (None: no limit)."""
    if spec is None:
        return None
    text = str(spec).strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1])
            if not 0 <= share <= 100:
                raise ValueError
            return int(planned * share / 100)
        count = int(text)
        if count < 0:
            raise ValueError
        return count
    except ValueError:
        raise InputError(f"expected a count (e.g. 5) or a share (e.g. 10%), got {spec!r}",
                         source="--max-failures") from None


def effective_concurrency(options: RunOptions) -> int:
    """The user's --concurrency, else 1 when an in-process model is used, else 8.

    Calls to an in-process model are serialised anyway, and running one conversation at a time
    lets llama.cpp reuse each prompt's prefix from the previous call.
    """
    if options.concurrency:
        return options.concurrency
    return 1 if any(m.startswith("local/") for m in options.all_models()) else 8
