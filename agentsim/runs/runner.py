"""Plan, run and judge an experiment: the Python API behind ``agentsim run``.

plan: scenarios × replicates → ConversationJobs (seeds derived from the run seed);
run: each job through its protocol's graph on an executor, every step logged to the run folder;
judge: registered judges read the log and write ``results.json``.
A failing conversation becomes an ``error`` event and the batch goes on.
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsim import __version__
from agentsim.errors import AgentsimError, InputError
from agentsim.mitigations.base import resolve_arm
from agentsim.models.cache import DiskCache
from agentsim.models.client import ModelClient, check_model_name, close_local_models
from agentsim.models.names import DEFAULT_MODEL
from agentsim.orchestrator.jobs import ConversationJob, derive_seed
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.registry import REGISTRY
from agentsim.runs.events import (
    ConversationFinished,
    ConversationStarted,
    ErrorEvent,
    RunFinished,
    RunStarted,
)
from agentsim.orchestrator.drawing import save_drawings
from agentsim.runs.judging import PROTOCOL_JUDGES, conversation_outcomes, judge_run
from agentsim.runs.store import RunStore, new_run_id
from agentsim.scenario.biases import BiasCatalogue, load_catalogue
from agentsim.scenario.loader import scenario_hash, scenario_to_data
from agentsim.scenario.schema import ClinicalProtocol, Scenario, SetupProtocol
from agentsim.scenario.variants import Variant, apply_variant, declared_variants

ROLES = ("agent", "single", "judge", "moderator", "doctor", "patient", "measurement",
         "finetuned")
DEFAULT_CATALOGUE = Path(__file__).resolve().parents[2] / "scenarios" / "clinical" / "biases.yaml"


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
    retries: int = 3
    backoff_s: float = 0.5
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


@dataclass
class RunSummary:
    """What a finished run reports: where it is, how many conversations ran and failed, metrics."""

    run_dir: Path
    conversations: int
    failed: int
    results: dict[str, Any]
    errors: dict[str, int] = field(default_factory=dict)


def variants_for(scenario: Scenario, options: RunOptions) -> list[Variant]:
    """The variants a scenario runs as: --vary's, else the base and those the file declares."""
    return list(options.variants) if options.variants is not None else declared_variants(scenario)


def bias_conditions(scenario: Scenario, options: RunOptions) -> list[str]:
    """Bias conditions of a clinical scenario: the unbiased one, then each requested bias."""
    if not isinstance(scenario.protocol, ClinicalProtocol):
        return ["none"]
    return ["none", *(options.biases or scenario.protocol.biases)]


def plan_jobs(scenarios: Sequence[Scenario], options: RunOptions) -> list[ConversationJob]:
    """Expand scenarios × variants × bias conditions × replicates into jobs.

    The seed depends on the run seed, the scenario and the replicate only, so mitigation arms,
    variants and conditions of one scenario and replicate are paired: they share every draw.
    """
    models = {"default": options.model, **options.roles}
    jobs = []
    for scenario in scenarios:
        protocol = scenario.protocol
        common: dict[str, Any] = {"scenario_id": scenario.id, "protocol": protocol.name,
                                  "models": models, "temperature": options.temperature,
                                  "max_tokens": options.max_tokens, "probes": options.probes,
                                  "mitigation_options": options.mitigation_options}
        if isinstance(protocol, ClinicalProtocol):
            common["max_turns"] = options.max_turns or protocol.max_turns
        elif isinstance(protocol, SetupProtocol):
            common |= {"setting": "setup", "speaking_order": protocol.turns.policy,
                       "rounds": protocol.rounds if options.rounds is None else options.rounds}
        else:
            common |= {"setting": options.setting or protocol.setting,
                       "rounds": protocol.rounds if options.rounds is None else options.rounds,
                       "speaking_order": protocol.speaking_order}
        for replicate in range(options.replicates):
            seed = derive_seed(options.seed, scenario.id, replicate)
            for arm in options.arms:
                for variant in variants_for(scenario, options):
                    for bias in bias_conditions(scenario, options):
                        jobs.append(ConversationJob(**common, replicate=replicate, seed=seed,
                                                    variant=variant.id, bias=bias, arm=arm))
    return jobs


def judges_for(scenarios: Sequence[Scenario], options: RunOptions) -> tuple[str, ...]:
    """The judges of a run: the user's, else the default ones of each protocol present."""
    if options.judges is not None:
        return options.judges
    names: list[str] = []
    for scenario in scenarios:
        for name in PROTOCOL_JUDGES.get(scenario.protocol.name, ()):
            if name not in names:
                names.append(name)
    return tuple(names)


def variant_scenarios(scenarios: Sequence[Scenario],
                      options: RunOptions) -> dict[tuple[str, str], Scenario]:
    """Every (scenario id, variant id) → the scenario with the variant applied."""
    return {(s.id, v.id): apply_variant(s, v) for s in scenarios
            for v in variants_for(s, options)}


def catalogue_for(scenarios: Sequence[Scenario], options: RunOptions) -> BiasCatalogue | None:
    """The bias catalogue, when a clinical scenario is run with biases; checks every name."""
    wanted = {key for s in scenarios for cond in bias_conditions(s, options) if cond != "none"
              for key in cond.split("+")}
    if not wanted:
        return None
    catalogue = load_catalogue(options.bias_catalogue or DEFAULT_CATALOGUE)
    for key in sorted(wanted):
        catalogue.get(key)
    return catalogue


def check_roles(options: RunOptions, scenarios: Sequence[Scenario]) -> None:
    """Every model name routes, and every --role key names a role or a persona."""
    known = set(ROLES)
    known |= {p.id for s in scenarios for p in s.personas}
    for key, model in {"--model": options.model, **options.roles}.items():
        if key != "--model" and key not in known:
            raise InputError(f"unknown role {key!r} (roles: {', '.join(sorted(ROLES))}, or a "
                             "persona id)", source="--role")
        check_model_name(model)
    for arm in options.arms:
        # Unknown mitigations, bad files and bad options fail before the run starts.
        resolve_arm(arm, options.mitigation_options)
        if "finetuned" in arm.split("+") and "finetuned" not in options.roles:
            raise InputError("the finetuned arm needs a model: --role finetuned=MODEL",
                             source="--role")


def new_manifest(run_id: str, scenarios: Sequence[tuple[Path, Scenario]], options: RunOptions,
                 jobs: Sequence[ConversationJob],
                 catalogue: BiasCatalogue | None = None) -> dict[str, Any]:
    """The manifest of a new run: resolved config, scenarios with hashes, models, seeds, jobs."""
    return {
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "status": "running",
        "agentsim_version": __version__,
        "python": platform.python_version(),
        "options": {k: v for k, v in options.__dict__.items() if k != "variants"},
        "models": {"default": options.model, **options.roles},
        "arms": list(options.arms),
        "seed": options.seed,
        "scenarios": {
            s.id: {"path": str(path), "hash": scenario_hash(s), "data": scenario_to_data(s)}
            for path, s in scenarios
        },
        "variants": {s.id: [v.model_dump() for v in variants_for(s, options)]
                     for _, s in scenarios},
        "bias_catalogue": catalogue.model_dump() if catalogue else None,
        "jobs": [job.model_dump() for job in jobs],
    }


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
                              mitigations=resolve_arm(job.arm, job.mitigation_options),
                              resume_state=prefix.state if prefix else None)
    from agentsim.orchestrator.discussion import speaking_order

    order = speaking_order(ctx, 1) if job.protocol == "discussion" else []
    store.append(ConversationStarted(
        **ctx.ids(), scenario_id=scenario.id, protocol=job.protocol, setting=job.setting,
        job=job.model_dump(), order=order))
    for event in prefix.events if prefix else ():
        store.append(event.model_copy(update=ctx.ids(turn=event.turn, agent=event.agent)))
    try:
        state = await REGISTRY.get("protocol", job.protocol)(ctx)
    except (AgentsimError, Exception) as error:  # noqa: BLE001 - one failure must not stop a batch
        store.append(ErrorEvent(**ctx.ids(), error_type=type(error).__name__, message=str(error)))
        store.append(ConversationFinished(**ctx.ids(), ok=False))
        return False
    store.append(ConversationFinished(**ctx.ids(), ok=True, turns=int(state.get("turn", 0))))
    return True


def execute(store: RunStore, jobs: Sequence[ConversationJob],
            scenarios: dict[tuple[str, str], Scenario], options: RunOptions,
            on_done: Callable[[ConversationJob, bool], None] | None = None,
            resumed: bool = False, catalogue: BiasCatalogue | None = None,
            prefixes: dict[str, Any] | None = None) -> list[bool]:
    """Run ``jobs`` into ``store`` on the local executor."""
    run_id = store.run_id
    client = ModelClient(retries=options.retries, backoff_s=options.backoff_s,
                         seed=options.seed,
                         cache=DiskCache(options.cache_dir) if options.cache else None)
    store.append(RunStarted(run_id=run_id, planned=len(jobs), resumed=resumed))
    executor = REGISTRY.get("executor", "local")(concurrency=effective_concurrency(options))

    async def work(job: ConversationJob) -> bool:
        scenario = scenarios[(job.scenario_id, job.variant)]
        prefix = (prefixes or {}).get(job.conversation_id)
        return await run_conversation(job, scenario, client, store, run_id, catalogue, prefix)

    try:
        return asyncio.run(executor.run(jobs, work, on_done))
    finally:
        close_local_models()


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
                   on_done: Callable[[ConversationJob, bool], None] | None = None) -> RunSummary:
    """Plan, run and judge; the whole of ``agentsim run`` without the terminal."""
    plain = [s for _, s in scenarios]
    check_roles(options, plain)
    jobs = plan_jobs(plain, options)
    by_variant = variant_scenarios(plain, options)
    catalogue = catalogue_for(plain, options)
    run_id = new_run_id()
    run_dir = out or runs_root / run_id
    store = RunStore.create(run_dir, new_manifest(run_id, scenarios, options, jobs, catalogue))
    for scenario in plain:  # the compiled graph and who hears whom, beside the log
        save_drawings(scenario, store.run_dir / "graphs")
    if on_start is not None:
        on_start(len(jobs))
    try:
        execute(store, jobs, by_variant, options, on_done, catalogue=catalogue)
    except BaseException:
        store.update_manifest(status="interrupted")
        raise
    return finish_run(store, judges_for(plain, options))


def finish_run(store: RunStore, judges: Sequence[str]) -> RunSummary:
    """Close a run: the run_finished event, the judges, the manifest's final status."""
    conversations, failed, _ = conversation_outcomes(store)
    store.append(RunFinished(run_id=store.run_id, conversations=conversations, failed=failed))
    results = judge_run(store.run_dir, judges)
    store.update_manifest(status="finished", judges=list(judges),
                          finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return RunSummary(store.run_dir, results["conversations"], results["failed"], results,
                      results["errors"])
