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

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from agentsim.errors import RunStoreError
from agentsim.core.reader import RunView
from agentsim.core.jobs import ConversationJob
from agentsim.core.plan import Plan
from agentsim.runs.runner import (
    RunOptions,
    RunSummary,
    _note_run_dir,
    build_client,
    execute,
    finish_run,
    judges_for,
    preflight,
)
from agentsim.core.store import RunStore
from agentsim.runs.usage import check_budget
from agentsim.scenario.biases import BiasCatalogue


def stored_options(manifest: dict) -> RunOptions:
    """The run's options, rebuilt from its manifest."""
    return RunOptions.from_manifest(manifest)


def unfinished_jobs(store: RunStore,
                    retry_failed: bool = True) -> tuple[list[ConversationJob], int]:
    """(jobs still to run, jobs already done) of a stored run.

    A job is done when its last attempt finished successfully; with ``retry_failed`` off, a
    failed attempt counts as done too.
    """
    manifest = store.read_manifest()
    jobs = [ConversationJob.model_validate(job) for job in manifest.get("jobs", [])]
    if not jobs:
        raise RunStoreError(f"{store.run_dir}: the manifest lists no jobs to resume")
    outcome = {e.conversation_id: e.ok for e in store.iter_events({"conversation_finished"})}
    done = {cid for cid, ok in outcome.items() if ok or not retry_failed}
    remaining = [job for job in jobs if job.conversation_id not in done]
    return remaining, len(jobs) - len(remaining)


def resume_run(run_dir: Path, on_start: Callable[[int, int], None] | None = None,
               on_done: Callable[[ConversationJob, bool], None] | None = None,
               retry_failed: bool = True,
               on_warning: Callable[[str], None] | None = None,
               skip_bad_lines: bool = False, max_cost: float | None = None) -> RunSummary:
    """Finish a stored run: its unfinished and (with ``retry_failed``) failed conversations.

    ``on_start(remaining, already_done)`` is called before running. A run with nothing left to
    do is left as it is: its results are not judged again. The folder's lock is held from the
    start (a run still writing the folder, or another resume or judge, is refused), and only
    then is a partial last line cut. A damaged line elsewhere in the log stops the resume with
    its number, unless ``skip_bad_lines``. A fork's conversations continue from the parent's
    log again, as the fork began them. The run's spending limit (``--max-cost``) holds again,
    counting what the log already spent; ``max_cost`` replaces it (and is recorded in the
    manifest's options, for the next resume).
    """
    store = RunStore.open(run_dir, lock="agentsim resume", skip_bad_lines=skip_bad_lines)
    try:
        return _resume(store, on_start, on_done, retry_failed, on_warning, max_cost)
    finally:
        store.release()


def _resume(store: RunStore, on_start: Callable[[int, int], None] | None,
            on_done: Callable[[ConversationJob, bool], None] | None, retry_failed: bool,
            on_warning: Callable[[str], None] | None,
            max_cost: float | None = None) -> RunSummary:
    store.repair_tail()
    manifest = store.read_manifest()
    options = stored_options(manifest)
    if max_cost is not None:  # the user's new limit, over the run's own
        options = replace(options, max_cost=float(max_cost))
    remaining, done = unfinished_jobs(store, retry_failed)
    view = RunView(store)
    if on_start is not None:
        on_start(len(remaining), done)
    if not remaining and manifest.get("status") in ("finished", "incomplete") \
            and (store.run_dir / "results.json").exists():
        return summary_of(store)
    plan = resume_plan(manifest, remaining, view)
    client = build_client(options)
    if remaining:
        check_budget(options, client.resolver)  # a limit it could not count is refused
    execution = None
    if remaining:  # models and servers are checked before the folder changes
        checked = preflight(client, options, list(view.scenarios.values()))
        for warning in checked.warnings:
            if on_warning is not None:
                on_warning(warning)
    try:
        if remaining:
            store.update_manifest(status="running")
            if max_cost is not None:  # recorded: a later resume holds the same limit
                store.update_manifest(options={**(manifest.get("options") or {}),
                                               "max_cost": options.max_cost})
            execution = execute(store, plan, options, on_done, client=client)
        judges = manifest.get("judges") or judges_for(list(view.scenarios.values()), options)
        return finish_run(store, judges, execution)
    except BaseException as error:
        store.update_manifest(status="interrupted")
        _note_run_dir(error, store.run_dir)
        raise


def resume_plan(manifest: dict[str, Any], remaining: list[ConversationJob],
                view: RunView) -> Plan:
    """The plan of a resume: the remaining jobs, their scenarios as the run ran them, the
    stored catalogue and, in a fork, what each takes from its parent."""
    scenarios = {(job.scenario_id, job.variant): view.scenario_for(job.scenario_id, job.variant)
                 for job in remaining}
    stored_catalogue = manifest.get("bias_catalogue")
    catalogue = BiasCatalogue.model_validate(stored_catalogue) if stored_catalogue else None
    prefixes = {}
    if remaining and manifest.get("parent"):
        from agentsim.runs.fork import fork_prefixes

        prefixes = fork_prefixes(manifest, remaining, view)
    return Plan(tuple(remaining), scenarios, catalogue, prefixes, resumed=True)


def summary_of(store: RunStore) -> RunSummary:
    """The summary of a run that is already complete, from its results file."""
    results = store.read_results()
    manifest = store.read_manifest()
    return RunSummary(store.run_dir, results.get("conversations", 0), results.get("failed", 0),
                      results, results.get("errors", {}),
                      warnings=list(manifest.get("warnings") or []),
                      skipped_lines=(results.get("skipped_lines") or {}).get("count", 0))
