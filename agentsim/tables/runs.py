"""The run folders of a table: opened, checked to share one design, their models labelled.

A table may gather several run folders, e.g. one per model made on different days. Their rows
compare only when the runs drew the same conversations: the same scenarios (by hash), variants,
replicates, seed, presets and prompts, rounds, settings, arms and injected biases. Runs that
differ in any of these are refused with one message naming what differs. Each run's rows are
labelled by its model: a study's own labels, else the model the run ran (its ``--model``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentsim.core.log_stream import cell_of
from agentsim.core.run_files import RESULTS
from agentsim.core.store import RunStore
from agentsim.errors import InputError
from agentsim.runs.judging import design_cells

COMPARISON = "comparison.json"  # agentsim.analysis.compare.COMPARISON_FILE


@dataclass
class RunInput:
    """One run folder of a table: its store, manifest, results and comparison (None when the
    run has none), and the label of each of its models in the table."""

    path: Path
    store: RunStore
    manifest: dict[str, Any]
    results: dict[str, Any] | None
    comparison: dict[str, Any] | None
    labels: dict[str, str]

    def label(self, model: str) -> str:
        """The table's label of the run's model ``model`` (a cell's model: a study's label,
        'default' outside a study)."""
        return self.labels.get(model, model)

    def need_results(self, layout: str) -> dict[str, Any]:
        """The run's results.json, or a clear error saying how to make it."""
        if self.results is None:
            raise InputError(f"no {RESULTS} (the run was never judged), which the {layout} "
                             f"layout reads; judge it first: agentsim judge {self.path}",
                             source=str(self.path))
        return self.results

    def cells(self) -> list[tuple[str, str, str]]:
        """The cells of its design (model, setting, arm), in plan order."""
        return [tuple(c) for c in design_cells(self.manifest)] or [("default", "", "none")]


def _json(store: RunStore, name: str) -> dict[str, Any] | None:
    path = store.run_dir / name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not readable as JSON ({error})", source=str(path)) from None
    return data if isinstance(data, dict) else None


def open_runs(paths: Sequence[str | Path]) -> list[RunInput]:
    """Open every run folder, check that their designs match and label their models."""
    if not paths:
        raise InputError("no run folder given", source="RUN")
    runs = []
    for path in paths:
        store = RunStore.open(path)
        manifest = store.read_manifest()
        runs.append(RunInput(Path(path), store, manifest, _json(store, RESULTS),
                             _json(store, COMPARISON), {}))
    if len({run.store.run_dir.resolve() for run in runs}) < len(runs):
        raise InputError("the same run folder is given twice", source="RUN")
    check_designs(runs)
    seen: dict[str, Path] = {}
    for run in runs:
        run.labels = model_labels(run.manifest)
        for label in dict.fromkeys(run.labels.values()):
            if label in seen and len(runs) > 1:
                raise InputError(f"{seen[label]} and {run.path} both have the model {label!r}: "
                                 "a table holds each model once (give one run per model)")
            seen[label] = run.path
    return runs


def model_labels(manifest: dict[str, Any]) -> dict[str, str]:
    """Cell model → its label: a study's labels as they are; outside a study ('default') the
    model its agents ran."""
    labels: dict[str, str] = {}
    for job in manifest.get("jobs") or ():
        model = cell_of(job)[0]
        if model == "default":
            labels[model] = str((job.get("models") or {}).get("default")
                                or (manifest.get("options") or {}).get("model") or model)
        else:
            labels.setdefault(model, model)
    return labels or {"default": str((manifest.get("options") or {}).get("model", "default"))}


def design_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """What must be equal for two runs' rows to compare: name → value (JSON data)."""
    options = manifest.get("options") or {}
    cells = design_cells(manifest)
    catalogue = manifest.get("bias_catalogue") or {}
    return {
        "scenarios (by hash)": {sid: entry.get("hash")
                                for sid, entry in (manifest.get("scenarios") or {}).items()},
        "variants": manifest.get("variants") or {},
        "replicates": options.get("replicates"),
        "seed": manifest.get("seed", options.get("seed")),
        "preset": options.get("preset"),
        "prompts": options.get("prompts"),
        "rounds": options.get("rounds"),
        "max_turns": options.get("max_turns"),
        "settings": sorted({cell[1] for cell in cells}),
        "arms": list(manifest.get("arms") or options.get("arms") or ["none"]),
        "biases": sorted({str(job.get("bias") or "none") for job in manifest.get("jobs") or ()}),
        "bias catalogue": catalogue.get("catalogue") if isinstance(catalogue, dict) else None,
    }


def _difference(name: str, first: Any, second: Any) -> str:
    if name == "scenarios (by hash)":
        changed = sorted(k for k in set(first) & set(second) if first[k] != second[k])
        only = sorted(set(first) ^ set(second))
        parts = [f"{', '.join(changed[:3])} changed" if changed else "",
                 f"{', '.join(only[:3])} in one only" if only else ""]
        return f"scenarios ({'; '.join(p for p in parts if p)})"
    if name == "variants":
        changed = sorted(k for k in set(first) | set(second) if first.get(k) != second.get(k))
        return f"variants (of {', '.join(changed[:3])})"
    return f"{name} ({_short(first)} vs {_short(second)})"


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def check_designs(runs: Sequence[RunInput]) -> None:
    """Refuse runs whose designs differ, naming the first pair that does and how."""
    if len(runs) < 2:
        return
    reference = design_of(runs[0].manifest)
    for run in runs[1:]:
        other = design_of(run.manifest)
        differ = [_difference(name, reference[name], other[name])
                  for name in reference if reference[name] != other[name]]
        if differ:
            raise InputError(f"{runs[0].path} and {run.path} do not share one design, so their "
                             f"rows would not compare: {'; '.join(differ)}")
