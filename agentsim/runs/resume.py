"""Resuming a run that was killed: finish only the conversations that did not finish.

Everything needed is in the run folder: the manifest holds every planned job, the scenarios as
they ran (with their variants and the bias catalogue) and the options; the log says which
conversations finished. A half-written last line (the process died mid-write) is cut first. A
conversation that had started but not finished is run again from its start, with the same seed;
readers then see only its last attempt (RunStore.iter_events), so the finished run holds each
planned conversation exactly once and, with a deterministic model, the same results as a run that
was never interrupted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentsim.errors import RunStoreError
from agentsim.judges.base import RunView
from agentsim.orchestrator.jobs import ConversationJob
from agentsim.runs.runner import RunOptions, RunSummary, execute, finish_run, judges_for
from agentsim.runs.store import RunStore
from agentsim.scenario.biases import BiasCatalogue

# Options stored as lists in JSON that RunOptions holds as tuples.
TUPLE_OPTIONS = {"arms", "biases", "judges"}


def stored_options(manifest: dict[str, Any]) -> RunOptions:
    """The run's options, rebuilt from its manifest."""
    fields = {f.name for f in dataclasses.fields(RunOptions)} - {"variants"}
    data = {k: v for k, v in (manifest.get("options") or {}).items() if k in fields}
    for key in TUPLE_OPTIONS & set(data):
        if data[key] is not None:
            data[key] = tuple(data[key])
    return RunOptions(**data)


def unfinished_jobs(store: RunStore) -> tuple[list[ConversationJob], int]:
    """(jobs still to run, jobs already finished) of a stored run."""
    manifest = store.read_manifest()
    jobs = [ConversationJob.model_validate(job) for job in manifest.get("jobs", [])]
    if not jobs:
        raise RunStoreError(f"{store.run_dir}: the manifest lists no jobs to resume")
    finished = {e.conversation_id for e in store.iter_events({"conversation_finished"})}
    remaining = [job for job in jobs if job.conversation_id not in finished]
    return remaining, len(jobs) - len(remaining)


def resume_run(run_dir: Path, on_start: Callable[[int, int], None] | None = None,
               on_done: Callable[[ConversationJob, bool], None] | None = None) -> RunSummary:
    """Finish a stored run; ``on_start(remaining, already_finished)`` before running."""
    store = RunStore.open(run_dir)
    store.repair_tail()
    manifest = store.read_manifest()
    options = stored_options(manifest)
    remaining, done = unfinished_jobs(store)
    view = RunView(store)
    scenarios = {(job.scenario_id, job.variant): view.scenario_for(job.scenario_id, job.variant)
                 for job in remaining}
    stored_catalogue = manifest.get("bias_catalogue")
    catalogue = BiasCatalogue.model_validate(stored_catalogue) if stored_catalogue else None
    if on_start is not None:
        on_start(len(remaining), done)
    store.update_manifest(status="running")
    if remaining:
        try:
            execute(store, remaining, scenarios, options, on_done, resumed=True,
                    catalogue=catalogue)
        except BaseException:
            store.update_manifest(status="interrupted")
            raise
    judges = manifest.get("judges") or judges_for(list(view.scenarios.values()), options)
    return finish_run(store, judges)
