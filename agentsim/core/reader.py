"""The reader of a stored run: its manifest, scenarios as they ran (variants applied) and events.

Judges, the arm comparison, fork, resume and the public API all read a run through this one
class; it never sees live objects, so re-judging a stored run is the path of judging a fresh one.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any

from agentsim.core.events import EventBase
from agentsim.core.store import RunStore
from agentsim.scenario.loader import parse_scenario
from agentsim.scenario.schema import Scenario
from agentsim.scenario.variants import BASE, Variant, apply_variant


class RunView:
    """Read-only access to a stored run for judges: its scenarios and its events."""

    def __init__(self, store: RunStore, roles: dict[str, str] | None = None) -> None:
        self.store = store
        self.roles = dict(roles or {})
        self._applied: dict[tuple[str, str | None], Scenario] = {}

    def model_for(self, role: str) -> str:
        """The model of a judge role ('judge', ...): --role at judging time, else the run's
        own role mapping, else the run's default model."""
        models = self.manifest.get("models") or {}
        from agentsim.models.names import DEFAULT_MODEL

        return self.roles.get(role) or models.get(role) or models.get("default", DEFAULT_MODEL)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The run's manifest."""
        return self.store.read_manifest()

    @cached_property
    def scenarios(self) -> dict[str, Scenario]:
        """Scenarios of the run, rebuilt from the manifest (the files may have changed since)."""
        return {
            sid: parse_scenario(entry["data"], f"{self.store.run_dir}/manifest.json#{sid}")
            for sid, entry in self.manifest["scenarios"].items()
        }

    @cached_property
    def variants(self) -> dict[tuple[str, str], Variant]:
        """(scenario id, variant id) → the variant, from the manifest."""
        stored = self.manifest.get("variants") or {}
        if isinstance(stored, list):  # runs made before variants were per scenario
            stored = {sid: stored for sid in self.manifest["scenarios"]}
        return {(sid, v["id"]): Variant.model_validate(v)
                for sid, items in stored.items() for v in items}

    def scenario_for(self, scenario_id: str, variant_id: str | None) -> Scenario:
        """The scenario as the conversation ran it: the file with its variant applied."""
        key = (scenario_id, variant_id)
        if key not in self._applied:  # applying validates a scenario: do it once per variant
            base = self.scenarios[scenario_id]
            variant = self.variants.get((scenario_id, variant_id or BASE))
            self._applied[key] = apply_variant(base, variant) if variant is not None else base
        return self._applied[key]

    def events(self, *types: str) -> Iterator[EventBase]:
        """Stream the run's events of the given types (all when none given), of conversations
        that finished successfully only: a failed conversation's partial decisions never enter
        a metric (the run's summary counts and explains the failures)."""
        return self.store.iter_events(set(types) if types else None, complete_only=True)
