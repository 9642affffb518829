"""Plan, run and judge an experiment: the Python API behind ``agentsim run``.

plan: scenarios × replicates → ConversationJobs (seeds derived from the run seed);
run: each job through its protocol's graph on an executor, every step logged to the run folder;
judge: registered judges read the log and write ``results.json``.
A failing conversation becomes an ``error`` event and the batch goes on.

The runner's parts live beside it and are importable from here: the options and the summary
(:mod:`agentsim.runs.options`), the model client and preflight (:mod:`agentsim.runs.clients`),
the plan and the manifest (:mod:`agentsim.runs.planning`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentsim._aio import run_sync
from agentsim.errors import AgentsimError, InputError, ModelError, RunStoreError
from agentsim.mitigations.base import resolve_arm
from agentsim.models.client import ModelClient, close_local_models
from agentsim.core.plan import Plan
from agentsim.core.jobs import ConversationJob
from agentsim.orchestrator.kernel import plugin_for
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.registry import REGISTRY, make_plugin, recorded_options
from agentsim.core.events import (
    ConversationFinished,
    ConversationStarted,
    ErrorEvent,
    RunFinished,
    RunStarted,
)
from agentsim.orchestrator.drawing import save_drawings
from agentsim.runs.clients import (  # noqa: F401  (the client's names, for runner's callers)
    RedactingCache,
    build_client,
    model_users,
    preflight,
    record_served,
    register_config_secrets,
)
from agentsim.runs.judging import conversation_outcomes, judge_run
from agentsim.runs.usage import Budget, SpendingStore, check_budget
from agentsim.runs.options import (  # noqa: F401  (the options' names, for runner's callers)
    TUPLE_OPTIONS,
    RunOptions,
    RunSummary,
    effective_concurrency,
    failure_limit,
)
from agentsim.runs.planning import (  # noqa: F401  (planning's names, for runner's callers)
    DEFAULT_CATALOGUE,
    EXECUTOR,
    ROLES,
    bias_conditions,
    build_plan,
    catalogue_for,
    check_roles,
    configured,
    executor_options,
    preset_options,
    judges_for,
    new_manifest,
    plan_jobs,
    variant_scenarios,
    variants_for,
)
from agentsim.core.store import (
    RunExistsError,
    RunLockedError,
    RunStore,
    check_run_dir,
    new_run_id,
)
from agentsim.scenario.biases import BiasCatalogue
from agentsim.scenario.schema import Scenario


async def run_conversation(job: ConversationJob, scenario: Scenario, client: ModelClient,
                           store: RunStore, run_id: str,
                           catalogue: BiasCatalogue | None = None,
                           prefix: Any = None) -> bool:
    """Run one conversation to its end; errors become events, never exceptions.

    ``prefix`` (forks) carries the parent's events before the fork turn, copied into this log
    under this conversation's ids, and the graph state to continue from.
    """
    ctx = ConversationContext(run_id=run_id, job=job, scenario=scenario, client=client,
                              emit=store.append, catalogue=catalogue,
                              mitigations=[m for m in resolve_arm(job.arm, job.mitigation_options)
                                           if m.supports(job.protocol)],
                              resume_state=prefix.state if prefix else None)
    plugin = plugin_for(job.protocol)
    store.append(ConversationStarted(
        **ctx.ids(), scenario_id=scenario.id, protocol=job.protocol, setting=job.setting,
        job=job.model_dump(), order=plugin.started_order(ctx)))
    for event in prefix.events if prefix else ():
        store.append(event.model_copy(update=ctx.ids(turn=event.turn, agent=event.agent)))
    try:
        state = await plugin.run(ctx)
    except (AgentsimError, Exception) as error:  # noqa: BLE001 - one failure must not stop a batch
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # the run is being interrupted: abandoned, not failed (resume runs it again)
        kind = error.kind if isinstance(error, ModelError) else None
        store.append(ErrorEvent(**ctx.ids(), error_type=type(error).__name__, message=str(error),
                                kind=kind))
        store.append(ConversationFinished(**ctx.ids(), ok=False))
        return False
    store.append(ConversationFinished(**ctx.ids(), ok=True, turns=int(state.get("turn", 0))))
    return True


@dataclass
class Execution:
    """What executing a plan did: the ok flag of each job (None: not run), and whether the
    failure limit stopped it early."""

    outcomes: list[bool | None]
    stopped: bool = False
    stop_reason: str | None = None  # "max_failures" or "max_cost" when it stopped early

    @property
    def not_run(self) -> int:
        """Jobs left unrun because the run stopped early."""
        return sum(1 for ok in self.outcomes if ok is None)


def executor_for(options: RunOptions) -> tuple[str, dict[str, Any]]:
    """The run's executor and its options: ``--executor`` (default local) with the run's
    concurrency, and for Ray the ``--ray-address``."""
    name = options.executor or EXECUTOR  # looked up in the registry, which imports its module
    given = executor_options(options)
    if options.ray_address is not None:
        if name != "ray":
            raise InputError("--ray-address applies to --executor ray only",
                             source="--ray-address")
        given["address"] = options.ray_address
    return name, given


def make_executor(options: RunOptions) -> Any:
    """The run's executor, its options checked (an InputError before anything is written)."""
    name, given = executor_for(options)
    return make_plugin("executor", name, given, source="--executor")


def execute(store: RunStore, plan: Plan, options: RunOptions,
            on_done: Callable[[ConversationJob, bool], None] | None = None,
            client: ModelClient | None = None) -> Execution:
    """Run the ``plan``'s jobs into ``store`` on the run's executor (its options validated by
    the executor's options model and recorded in the manifest).

    An executor with ``run_plan`` (processes, ray) ships the jobs to its workers and appends
    their events here, a whole conversation at a time; the others run each job with a ``work``
    coroutine on this process's loop. Once more conversations than ``options.max_failures``
    allows have failed, or once the spend the log records reaches ``options.max_cost`` (US
    dollars, counted from the log's earlier calls too: see :mod:`agentsim.runs.usage`), no new
    conversation starts (those in flight finish); the rest stay for ``agentsim resume``.
    """
    run_id = store.run_id
    client = client or build_client(options)
    limit = failure_limit(options.max_failures, len(plan))
    executor = make_executor(options)
    record_executor(store, options)
    budget = Budget.of_run(store, options.max_cost, client.resolver)
    if budget is not None:  # every call appended is priced as it is logged
        store = SpendingStore(store, budget)  # type: ignore[assignment]
    store.append(RunStarted(run_id=run_id, planned=len(plan), resumed=plan.resumed))
    state: dict[str, Any] = {"failed": 0, "stopped": False, "reason": None}

    def count(ok: bool) -> None:
        if not ok:
            state["failed"] += 1
            if limit is not None and state["failed"] > limit:
                state["stopped"], state["reason"] = True, "max_failures"

    def should_stop() -> bool:
        if not state["stopped"] and budget is not None and budget.reached:
            state["stopped"], state["reason"] = True, "max_cost"
        return bool(state["stopped"])

    async def work(job: ConversationJob) -> bool | None:
        if should_stop():
            return None
        ok = await run_conversation(job, plan.scenario_of(job), client, store, run_id,
                                    plan.catalogue, plan.prefix_of(job))
        count(ok)
        return ok

    def done(job: ConversationJob, ok: bool | None) -> None:
        if ok is not None and on_done is not None:
            on_done(job, ok)

    def shipped_done(job: ConversationJob, ok: bool) -> None:
        count(ok)
        done(job, ok)

    try:
        if hasattr(executor, "run_plan"):
            outcomes = executor.run_plan(store, plan, options, client, shipped_done,
                                         should_stop)
        else:
            outcomes = run_sync(executor.run(list(plan.jobs), work, done))
    finally:
        close_local_models()
        client.cache is None or client.cache.flush()  # commit the run's answers to the cache
        if client.served:
            record_served(store, client.served)
    stopped = bool(state["stopped"])
    if state["reason"] == "max_cost" and all(ok is not None for ok in outcomes):
        stopped = False  # the limit was reached by the last conversations: none was left out
    return Execution(outcomes, stopped=stopped, stop_reason=state["reason"] if stopped else None)


def record_executor(store: RunStore, options: RunOptions) -> None:
    """Record the executor that runs (or resumes) the run, with every option, in the
    manifest's plugins."""
    name, given = executor_for(options)
    manifest = store.read_manifest()
    plugins = dict(manifest.get("plugins") or {})
    entry = {name: recorded_options(REGISTRY.get("executor", name), given)}
    if plugins.get("executor") != entry:
        store.update_manifest(plugins={**plugins, "executor": entry})


def run_experiment(scenarios: Sequence[tuple[Path, Scenario]], options: RunOptions,
                   out: Path | None = None, runs_root: Path = Path("runs"),
                   on_start: Callable[[int], None] | None = None,
                   on_done: Callable[[ConversationJob, bool], None] | None = None,
                   on_warning: Callable[[str], None] | None = None,
                   warnings: Sequence[str] = (),
                   finalize: Callable[[RunStore, RunSummary], Any] | None = None,
                   command: str = "agentsim run",
                   manifest_fields: dict[str, Any] | None = None) -> RunSummary:
    """Plan, run and judge; the whole of ``agentsim run`` without the terminal.

    Everything that can be checked is checked before the run folder is made: scenarios, roles,
    mitigations, model names, keys, servers, the folder itself (``on_warning`` hears what the
    checks found, such as a model without structured output; ``warnings`` are the caller's own,
    recorded in the manifest and repeated by the summary). The process holds the run folder's
    lock from its creation to the end (``finalize(store, summary)`` runs before it is released:
    ``compare`` writes its comparison there). Any interruption (a signal, an error) leaves the
    status ``interrupted`` and a folder ``agentsim resume`` finishes. ``manifest_fields``: more
    fields of the manifest by name (a study's ``study``).
    """
    scenarios = configured(scenarios, options)  # --preset and --prompts, before any check
    options = preset_options(options)
    plain = [s for _, s in scenarios]
    client = build_client(options)
    check_roles(options, plain, client.resolver)
    check_budget(options, client.resolver)  # a limit must be countable before it is run
    plan = build_plan(plain, options)
    failure_limit(options.max_failures, len(plan))
    ready = getattr(make_executor(options), "check", None)  # before anything is written:
    if ready is not None:  # an unknown executor, a bad option, Ray not installed
        ready()
    if out is not None:
        check_run_dir(out)
    checked = preflight(client, options, plain)
    for warning in checked.warnings:
        if on_warning is not None:
            on_warning(warning)
    store = create_run(out, runs_root, lambda run_id: new_manifest(
        run_id, scenarios, options, plan.jobs, plan.catalogue, checked, warnings,
        **(manifest_fields or {})), command)
    try:
        for scenario in plain:  # the compiled graph and who hears whom, beside the log
            save_drawings(scenario, store.run_dir / "graphs")
        if on_start is not None:
            on_start(len(plan))
        try:
            execution = execute(store, plan, options, on_done, client=client)
            summary = finish_run(store, judges_for(plain, options), execution)
        except BaseException as error:
            store.update_manifest(status="interrupted")
            _note_run_dir(error, store.run_dir)
            raise
        if finalize is not None:
            finalize(store, summary)
        return summary
    finally:
        store.release()


def _note_run_dir(error: BaseException, run_dir: Path) -> None:
    """Tell the command line which run folder an interruption left resumable."""
    try:
        error.run_dir = run_dir  # type: ignore[attr-defined]
    except AttributeError:
        pass


def create_run(out: Path | None, runs_root: Path, manifest_for: Callable[[str], dict[str, Any]],
               command: str) -> RunStore:
    """Create a run folder holding its lock: ``out``, else ``runs_root/<new run id>``.

    Creation is exclusive, so two runs can never share a folder or a run id: into the same
    ``--out`` one of two simultaneous runs is refused; a default folder whose id is taken
    (two runs started in the same second drawing the same suffix) gets a new id.
    """
    for _ in range(20):
        run_id = new_run_id()
        try:
            return RunStore.create(out or runs_root / run_id, manifest_for(run_id),
                                   lock=command)
        except RunExistsError:
            if out is not None:
                raise
        except RunLockedError:
            if out is not None:
                raise
    raise RunStoreError(f"{runs_root}: could not find a free run id")


def finish_run(store: RunStore, judges: Sequence[str],
               execution: Execution | None = None) -> RunSummary:
    """Close a run: the run_finished event, the judges, the manifest's final status.

    Failed conversations are left out of every metric (judges see only conversations that
    finished); the status says whether everything planned succeeded.
    """
    conversations, failed, _ = conversation_outcomes(store)
    store.append(RunFinished(run_id=store.run_id, conversations=conversations, failed=failed))
    results = judge_run(store.run_dir, judges, store=store)
    stopped = bool(execution and execution.stopped)
    not_run = execution.not_run if execution else 0
    status = "stopped" if stopped else "incomplete" if results["failed"] or not_run \
        else "finished"
    manifest = store.update_manifest(status=status, judges=list(judges),
                                     finished=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                            time.gmtime()),
                                     usage=results.get("usage"),
                                     stop_reason=execution.stop_reason if stopped else None)
    return RunSummary(store.run_dir, results["conversations"], results["failed"], results,
                      results["errors"], stopped=stopped, not_run=not_run,
                      stop_reason=execution.stop_reason if execution and stopped else None,
                      warnings=list(manifest.get("warnings") or []),
                      skipped_lines=results["skipped_lines"]["count"])
