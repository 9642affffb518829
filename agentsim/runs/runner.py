"""Plan, run and judge an experiment: the Python API behind ``agentsim run``.

plan: scenarios × replicates → ConversationJobs (seeds derived from the run seed);
run: each job through its protocol's graph on an executor, every step logged to the run folder;
judge: registered judges read the log and write ``results.json``.
A failing conversation becomes an ``error`` event and the batch goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsim.errors import AgentsimError, InputError, ModelError, RunStoreError
from agentsim.mitigations.base import resolve_arm
from agentsim.models.cache import DiskCache
from agentsim.models.client import ModelClient, close_local_models
from agentsim.models.endpoints import EndpointOverrides, EndpointResolver, ModelsConfig
from agentsim.models.names import DEFAULT_MODEL
from agentsim.models.preflight import Preflight, run_preflight
from agentsim.core.plan import Plan
from agentsim.core.jobs import ConversationJob
from agentsim.orchestrator.kernel import plugin_for
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.registry import REGISTRY
from agentsim.core.events import (
    ConversationFinished,
    ConversationStarted,
    ErrorEvent,
    RunFinished,
    RunStarted,
)
from agentsim.orchestrator.drawing import save_drawings
from agentsim.runs.judging import conversation_outcomes, judge_run
from agentsim.runs.planning import (  # noqa: F401  (planning's names, for runner's callers)
    DEFAULT_CATALOGUE,
    ROLES,
    bias_conditions,
    build_plan,
    catalogue_for,
    check_roles,
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
from agentsim.scenario.variants import Variant


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
    temperature: float = 0.7
    max_tokens: int = 200
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
TUPLE_OPTIONS = {"arms", "biases", "judges"}


@dataclass
class RunSummary:
    """What a finished run reports: where it is, how many conversations ran and failed, metrics.

    ``stopped`` is True when ``--max-failures`` ended the run early; ``not_run`` counts the
    conversations it left for ``agentsim resume``.
    """

    run_dir: Path
    conversations: int
    failed: int
    results: dict[str, Any]
    errors: dict[str, int] = field(default_factory=dict)
    stopped: bool = False
    not_run: int = 0
    warnings: list[str] = field(default_factory=list)
    skipped_lines: int = 0  # damaged log lines skipped (--skip-bad-lines)

    @property
    def exit_status(self) -> int:
        """0 when everything planned succeeded, 1 when conversations failed, 3 when the run
        was stopped early by --max-failures."""
        if self.stopped:
            return 3
        return 1 if self.failed or self.not_run else 0


class RedactingCache(DiskCache):
    """The disk cache with secrets removed from what it stores (a server may echo a key)."""

    def put(self, request: Any, answer: dict[str, Any], endpoint: str = "") -> None:
        from agentsim.models.client import redact

        if isinstance(answer.get("text"), str):
            answer = {**answer, "text": redact(answer["text"])}
        super().put(request, answer, endpoint)


def register_config_secrets(options: RunOptions) -> None:
    """Make the keys a models config or router list points to known to the redactor: the
    values of the variables they name (whatever the variable is called) and of key files."""
    import os

    from agentsim.models.client import register_secret

    for entry in ((options.models_config or {}).get("models") or {}).values():
        if not isinstance(entry, dict):
            continue
        if entry.get("api_key_env"):
            register_secret(os.environ.get(str(entry["api_key_env"])))
        if entry.get("api_key_file"):
            try:
                register_secret(Path(str(entry["api_key_file"])).expanduser()
                                .read_text("utf-8"))
            except (OSError, UnicodeDecodeError):
                pass  # preflight reports a key file it cannot read
    for item in options.router_list or ():
        for value in (item.get("litellm_params") or {}).values():
            if isinstance(value, str) and value.startswith("os.environ/"):
                register_secret(os.environ.get(value.removeprefix("os.environ/")))


def build_client(options: RunOptions) -> ModelClient:
    """The model client of a run: endpoints from the models config, the router list and the
    per-model options; the cache unless switched off."""
    register_config_secrets(options)
    overrides = {key: dict(value) for key, value in options.endpoint_options.items()}
    every = overrides.setdefault("*", {})
    if options.retries is not None:
        every.setdefault("retries", options.retries)
    if options.timeout is not None:
        every.setdefault("timeout", options.timeout)
    resolver = EndpointResolver(ModelsConfig.model_validate(options.models_config or {}),
                                options.router_list, EndpointOverrides(overrides))
    return ModelClient(backoff_s=options.backoff_s, seed=options.seed, resolver=resolver,
                       cache=RedactingCache(options.cache_dir) if options.cache else None)


def model_users(options: RunOptions, scenarios: Sequence[Scenario]) -> dict[str, list[str]]:
    """Model name → the roles and personas that use it (for warnings and the manifest)."""
    users: dict[str, list[str]] = {}
    for key, model in options.roles.items():
        users.setdefault(model, []).append(key)
    overridden = set(options.roles)
    rest = sorted({p.id for s in scenarios for p in s.personas} - overridden)
    users.setdefault(options.model, []).append(
        "every other agent" if overridden else "every agent")
    if rest and len(rest) <= 12 and overridden:
        users[options.model][-1] += f" ({', '.join(rest)})"
    return users


def preflight(client: ModelClient, options: RunOptions,
              scenarios: Sequence[Scenario]) -> Preflight:
    """Check and probe every model of the run before anything is written."""
    names = [options.model, *options.roles.values()]
    return asyncio.run(run_preflight(client.resolver, names,
                                     users=model_users(options, scenarios),
                                     probe_servers=options.probe))


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


@dataclass
class Execution:
    """What executing a plan did: the ok flag of each job (None: not run), and whether the
    failure limit stopped it early."""

    outcomes: list[bool | None]
    stopped: bool = False

    @property
    def not_run(self) -> int:
        """Jobs left unrun because the run stopped early."""
        return sum(1 for ok in self.outcomes if ok is None)


def execute(store: RunStore, plan: Plan, options: RunOptions,
            on_done: Callable[[ConversationJob, bool], None] | None = None,
            client: ModelClient | None = None) -> Execution:
    """Run the ``plan``'s jobs into ``store`` on the local executor.

    Once more conversations than ``options.max_failures`` allows have failed, no new
    conversation starts (those in flight finish); the rest stay for ``agentsim resume``.
    """
    run_id = store.run_id
    client = client or build_client(options)
    limit = failure_limit(options.max_failures, len(plan))
    store.append(RunStarted(run_id=run_id, planned=len(plan), resumed=plan.resumed))
    executor = REGISTRY.get("executor", "local")(concurrency=effective_concurrency(options))
    state = {"failed": 0, "stopped": False}

    async def work(job: ConversationJob) -> bool | None:
        if state["stopped"]:
            return None
        ok = await run_conversation(job, plan.scenario_of(job), client, store, run_id,
                                    plan.catalogue, plan.prefix_of(job))
        if not ok:
            state["failed"] += 1
            if limit is not None and state["failed"] > limit:
                state["stopped"] = True
        return ok

    def done(job: ConversationJob, ok: bool | None) -> None:
        if ok is not None and on_done is not None:
            on_done(job, ok)

    try:
        outcomes = asyncio.run(executor.run(list(plan.jobs), work, done))
    finally:
        close_local_models()
        if client.served:
            record_served(store, client.served)
    return Execution(outcomes, stopped=bool(state["stopped"]))


def record_served(store: RunStore, served: dict[str, dict[str, Any]]) -> None:
    """Add what servers reported about themselves (model name, fingerprint) to the manifest."""
    manifest = store.read_manifest()
    endpoints = manifest.get("endpoints") or {}
    for name, facts in served.items():
        endpoints.setdefault(name, {}).update(facts)
    store.update_manifest(endpoints=endpoints)


def effective_concurrency(options: RunOptions) -> int:
    """The user's --concurrency, else 1 when an in-process model is used, else 8.

    Calls to an in-process model are serialised anyway, and running one conversation at a time
    lets llama.cpp reuse each prompt's prefix from the previous call.
    """
    if options.concurrency:
        return options.concurrency
    models = [options.model, *options.roles.values()]
    return 1 if any(m.startswith("local/") for m in models) else 8


def run_experiment(scenarios: Sequence[tuple[Path, Scenario]], options: RunOptions,
                   out: Path | None = None, runs_root: Path = Path("runs"),
                   on_start: Callable[[int], None] | None = None,
                   on_done: Callable[[ConversationJob, bool], None] | None = None,
                   on_warning: Callable[[str], None] | None = None,
                   warnings: Sequence[str] = (),
                   finalize: Callable[[RunStore, RunSummary], Any] | None = None,
                   command: str = "agentsim run") -> RunSummary:
    """Plan, run and judge; the whole of ``agentsim run`` without the terminal.

    Everything that can be checked is checked before the run folder is made: scenarios, roles,
    mitigations, model names, keys, servers, the folder itself (``on_warning`` hears what the
    checks found, such as a model without structured output; ``warnings`` are the caller's own,
    recorded in the manifest and repeated by the summary). The process holds the run folder's
    lock from its creation to the end (``finalize(store, summary)`` runs before it is released:
    ``compare`` writes its comparison there). Any interruption (a signal, an error) leaves the
    status ``interrupted`` and a folder ``agentsim resume`` finishes.
    """
    plain = [s for _, s in scenarios]
    client = build_client(options)
    check_roles(options, plain, client.resolver)
    plan = build_plan(plain, options)
    failure_limit(options.max_failures, len(plan))
    if out is not None:
        check_run_dir(out)
    checked = preflight(client, options, plain)
    for warning in checked.warnings:
        if on_warning is not None:
            on_warning(warning)
    store = create_run(out, runs_root, lambda run_id: new_manifest(
        run_id, scenarios, options, plan.jobs, plan.catalogue, checked, warnings), command)
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
                                                            time.gmtime()))
    return RunSummary(store.run_dir, results["conversations"], results["failed"], results,
                      results["errors"], stopped=stopped, not_run=not_run,
                      warnings=list(manifest.get("warnings") or []),
                      skipped_lines=results["skipped_lines"]["count"])
