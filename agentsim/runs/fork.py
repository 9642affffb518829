"""Forking a logged conversation at a turn: the turns before K come verbatim from the parent's
log, the rest is generated live — under another model, mitigation or persona attribute.

The event log is the source: the parent's messages and decisions before turn K are copied into
the new run (under the fork's ids, content unchanged), and the graph state at turn K — transcript,
each agent's latest decision, how far the discussion had got — is rebuilt from them, so the graph
continues exactly where the parent was. The new manifest records the parent run, conversation and
turn. Discussion conversations fork at turn 0 (a fresh start) or at any turn from the end of the
first round on (inside the first round the agents answer privately and in parallel, so there is
no single conversation state to continue from). Clinical consultations fork at any turn on which
the doctor, the patient or the measurement agent spoke; the continuation starts with that
speaker, and the doctor's budget counts the turns it already used.

The fork's manifest records its parent, and the ``fork`` judge compares the continuations with
the parent conversation from the fork on (see :mod:`agentsim.judges.fork_judge`).
"""

from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import Any

from agentsim.errors import InputError
from agentsim.core.reader import RunView
from agentsim.core.jobs import ConversationJob, derive_seed
from agentsim.core.manifest import Manifest, ParentRef, scenario_entry
from agentsim.core.plan import Plan, Prefix
from agentsim.core.events import EventBase
from agentsim.models.names import DEFAULT_MODEL
from agentsim.mitigations.base import resolve_arm
from agentsim.orchestrator.kernel import events_before, plugin_for
from agentsim.runs.runner import (
    RunOptions,
    RunSummary,
    _note_run_dir,
    build_client,
    create_run,
    execute,
    finish_run,
    judges_for,
    preflight,
)
from agentsim.core.store import RunStore, check_run_dir
from agentsim.scenario.biases import BiasCatalogue
from agentsim.scenario.schema import Scenario
from agentsim.scenario.variants import Change, Variant, apply_variant



def parse_sets(specs: list[str]) -> tuple[Change, ...]:
    """``--set persona.attr=value`` options as variant changes."""
    changes = []
    for spec in specs:
        target, sep, value = spec.partition("=")
        persona, dot, field = target.partition(".")
        if not sep or not dot or not persona or not field:
            raise InputError(f"expected PERSONA.FIELD=VALUE, got {spec!r}", source="--set")
        changes.append(Change(persona=persona, field=field, value=value))
    return tuple(changes)


def protocol_prefix(events: list[EventBase], job: ConversationJob, scenario: Scenario,
                    from_turn: int) -> Prefix:
    """The parent's events before ``from_turn`` and the state they leave (the protocol's)."""
    state = plugin_for(job.protocol).state_at(events, job, scenario, from_turn)
    return Prefix(events_before(events, from_turn) if state else [], state)


def _parent_events(parent: RunView, conversation_id: str) -> tuple[Any, list[EventBase]]:
    """The parent conversation's start event and its events (last attempt)."""
    started = {e.conversation_id: e  # failed conversations can be forked too
               for e in parent.store.iter_events({"conversation_started"})}
    if conversation_id not in started:
        known = ", ".join(sorted(started)[:5])
        raise InputError(f"no conversation {conversation_id!r} in the run (e.g. {known})",
                         source="--conversation")
    origin = started[conversation_id]
    if not plugin_for(origin.protocol).forkable:
        raise InputError(f"forking {origin.protocol} conversations is not supported (its "
                         "protocol cannot rebuild a state from a log)", source="--conversation")
    events = [e for e in parent.store.iter_events() if e.conversation_id == conversation_id]
    return origin, events


def fork_prefixes(manifest: dict[str, Any], jobs: list[ConversationJob],
                  view: RunView) -> dict[str, Prefix]:
    """The prefix of each of a fork's jobs, rebuilt from its parent's log (to resume a fork
    that was interrupted: its conversations start again from the fork turn)."""
    from agentsim.errors import RunStoreError

    info = manifest["parent"]
    try:
        parent = RunView(RunStore.open(Path(info["run_dir"]),
                                       skip_bad_lines=view.store.skip_bad_lines))
    except RunStoreError as error:
        raise RunStoreError(f"resuming a fork needs its parent run: {error}") from None
    origin, events = _parent_events(parent, info["conversation_id"])
    parent_job = ConversationJob.model_validate(origin.job)
    prefixes = {}
    for job in jobs:
        scenario = view.scenario_for(job.scenario_id, job.variant)
        prefixes[job.conversation_id] = protocol_prefix(
            events, parent_job, scenario, int(info["from_turn"]))
    return prefixes


def fork_run(parent_dir: Path, conversation_id: str, from_turn: int, *,
             model: str | None = None, roles: dict[str, str] | None = None,
             mitigation: str | None = None, sets: list[str] | None = None,
             replicates: int = 1, out: Path | None = None,
             runs_root: Path = Path("runs"), skip_bad_lines: bool = False) -> RunSummary:
    """Start a new run whose conversations continue ``conversation_id`` from ``from_turn``.

    The new folder is created exclusively and locked while the fork writes it; an interrupted
    fork is finished with ``agentsim resume`` (its conversations restart from the fork turn).
    """
    parent = RunView(RunStore.open(parent_dir, skip_bad_lines=skip_bad_lines))
    origin, events = _parent_events(parent, conversation_id)
    parent_job = ConversationJob.model_validate(origin.job)
    changes = parse_sets(sets or [])
    variant = Variant(id="fork" if changes else parent_job.variant, changes=changes,
                      kind="fork" if changes else "base")
    as_ran = parent.scenario_for(origin.scenario_id, parent_job.variant)
    scenario = apply_variant(as_ran, variant)
    prefix = protocol_prefix(events, parent_job, scenario, from_turn)
    models = {**parent_job.models, **({"default": model} if model else {}), **(roles or {})}
    jobs = [parent_job.model_copy(update={
        "replicate": r, "variant": variant.id, "models": models,
        "arm": mitigation or parent_job.arm,
        # A study's name of the parent's models no longer names them once they are replaced.
        "model_label": parent_job.model_label if models == parent_job.models else None,
        # Replicate 0 keeps the parent's seed, so an unchanged fork continues as the parent did.
        "seed": parent_job.seed if r == 0 else derive_seed(parent_job.seed, "fork", r)})
        for r in range(replicates)]
    # The parent's endpoints, limits and retries carry over; the fork's models replace its.
    options = dataclasses.replace(
        RunOptions.from_manifest(parent.manifest),
        model=models.get("default", DEFAULT_MODEL),
        roles={k: v for k, v in models.items() if k != "default"},
        # The fork runs its own jobs' one model set, not the parent study's factors.
        study_models=None, settings=None,
        concurrency=1 if any(m.startswith("local/") for m in models.values()) else 4)
    for job in jobs:  # a fork's mitigation and its options are checked before anything runs
        resolve_arm(job.arm, job.mitigation_options)
    if out is not None:
        check_run_dir(out)
    client = build_client(options)
    checked = preflight(client, options, [scenario])
    judges = parent.manifest.get("judges") or judges_for([scenario], options)
    judges = (*[j for j in judges if j != "fork"], "fork")

    def manifest_for(run_id: str) -> dict[str, Any]:
        return Manifest.new(
            run_id,
            parent=ParentRef(run_dir=str(Path(parent_dir).resolve()),
                             run_id=parent.manifest["run_id"], conversation_id=conversation_id,
                             from_turn=from_turn),
            options={**parent.manifest.get("options", {}), "replicates": replicates,
                     "model": options.model, "roles": options.roles,
                     "concurrency": options.concurrency},
            models=models, arms=sorted({j.arm for j in jobs}),
            seed=parent.manifest.get("seed"),
            # The scenario as the parent conversation ran it; the fork's changes are its variant.
            scenarios={scenario.id: scenario_entry(f"fork of {parent_dir}", as_ran)},
            variants={scenario.id: [variant.model_dump()]},
            bias_catalogue=parent.manifest.get("bias_catalogue"),
            jobs=jobs, judges=list(judges),
            endpoints=checked.manifest_entry(), warnings=checked.warnings).to_json()

    store = create_run(out, runs_root, manifest_for, "agentsim replay --from-turn")
    store.skip_bad_lines = skip_bad_lines  # the fork judge reads the parent the same way
    try:
        stored = parent.manifest.get("bias_catalogue")
        try:
            plan = Plan(tuple(jobs), {(scenario.id, variant.id): scenario},
                        BiasCatalogue.model_validate(stored) if stored else None,
                        prefixes={job.conversation_id: prefix for job in jobs})
            execution = execute(store, plan, options, client=client)
            return finish_run(store, judges, execution)
        except BaseException as error:
            store.update_manifest(status="interrupted")
            _note_run_dir(error, store.run_dir)
            raise
    finally:
        store.release()
