"""Judging a stored run: judges read the log and write ``results.json``.

Judging is the same code for a fresh run and a stored one. Re-judging (``agentsim judge``) never
re-runs a conversation and never rewrites the log: it holds the folder's lock, judges, appends
this judging's verdicts, copies the previous ``results.json`` to ``results.<time>.json`` and only
then replaces ``results.json`` atomically, so a kill at any moment leaves the old results or the
new ones. With the same deterministic judges it reproduces the original numbers exactly
(bootstrap resampling is seeded). A damaged log (a corrupt or schema-invalid line) stops judging
with the line's number unless the store skips bad lines; what was skipped is counted in
``results.json`` (``skipped_lines``).

**Judging passes.** Every judging appends its per-unit verdicts (``judge_result`` events, with
the judges' rationales in their details), so the verdicts of every pass stay in the log. The
event has no field for a pass, so a pass is told by where its verdicts are. Every reader of the
log counts the verdicts after the last ``run_finished`` (:meth:`RunStore.iter_events`), so a
re-judge first restates ``run_finished`` (the run's counts, unchanged) and then appends its
verdicts: readers see the latest pass, as after a resume. ``results.json`` records its pass
(``judging_pass``: an id and the byte range of ``events.jsonl`` its verdicts fill), and
:func:`pass_verdicts` reads the verdicts of the pass whose results are in place — exact even when
a later judging was killed before it replaced ``results.json``. ``metrics`` and ``records`` in
``results.json``: see :mod:`agentsim.core.metrics`.

**Judges' model calls.** A judging pass builds one model client from the run's stored options
(:func:`judging_client`: the run's models config, router, per-model options, cache, retries),
so an LLM judge's calls get what the conversations' calls got. Judges reach it through the run
view and it records their calls (:mod:`agentsim.core.reader`); the pass appends them as
``model_call`` events before its verdicts, inside its byte range. They carry role ``judge`` and
no turn (:func:`agentsim.core.reader.is_judge_call`), so readers of a conversation's own calls
leave them out (:func:`agentsim.runs.parsing.parse_rates` counts decisions' calls only); a
frame or export of every ``model_call`` lists them with their role and purpose, as the run's
calls that they are.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentsim.core.events import EVENT_ADAPTER, JudgeResult, ModelCall, RunFinished
from agentsim.core.reader import RunView
from agentsim.core.store import EVENTS, RESULTS, LogLineError, RunStore
from agentsim.errors import RunStoreError
from agentsim.orchestrator.kernel import plugin_for
from agentsim._aio import run_sync
from agentsim.registry import REGISTRY, make_plugin, recorded_options, taken_options
from agentsim.runs.options import RunOptions, effective_concurrency
from agentsim.core.log_stream import FACTORS, cell_of, conversations
from agentsim.runs.parsing import ParseTally
from agentsim.runs.usage import UsageTally, run_prices
from agentsim.runs.run_summary import (  # noqa: F401  (re-exported: callers import them here)
    OutcomeTally,
    conversation_outcomes,
    failure_reasons,
)



def parse_judge_args(specs: Sequence[str],
                     source: str = "--judge-arg") -> dict[str, dict[str, Any]]:
    """``--judge-arg JUDGE:NAME=VALUE`` (or ``--mitigation-arg``) options as constructor
    keyword arguments per plugin.

    Values: 'true'/'false' → bool, numbers → int/float, 'a,b' → list (for panels), else text.
    """
    from agentsim.errors import InputError

    options: dict[str, dict[str, Any]] = {}
    for spec in specs:
        head, sep, raw = spec.partition("=")
        judge, colon, name = head.partition(":")
        if not sep or not colon or not judge or not name:
            raise InputError(f"expected PLUGIN:NAME=VALUE, got {spec!r}", source=source)
        value: Any = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        elif "," in raw:
            value = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            for kind in (int, float):
                try:
                    value = kind(raw)
                    break
                except ValueError:
                    continue
        options.setdefault(judge, {})[name] = value
    return options


def make_judge(name: str, options: dict[str, Any] | None = None) -> Any:
    """Instantiate a registered judge, its options validated by the judge's options model
    (:func:`agentsim.registry.options_model`); unknown or mistyped options are a clear error."""
    return make_plugin("judge", name, options, source="--judge-arg")


def preset_judge_options(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Judge options of the presets the run's scenarios ran as (judge → options); a judge two
    presets configure differently keeps its defaults, which the caller may override."""
    from agentsim.scenario.presets import load_preset

    found: dict[str, dict[str, Any]] = {}
    clashing: set[str] = set()
    for entry in (manifest.get("scenarios") or {}).values():
        name = entry.get("preset") if isinstance(entry, dict) else None
        try:
            preset = load_preset(name) if name else None
        except ValueError:  # a preset this version does not ship: its judges keep defaults
            continue
        for judge, given in (preset.judges.items() if preset else ()):
            if found.setdefault(judge, given) != given:
                clashing.add(judge)
    return {judge: given for judge, given in found.items() if judge not in clashing}


def judge_options(judges: Sequence[str],
                  options: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every option of each judge as this pass runs it (given ones over the defaults), as
    ``results.json`` records them."""
    return {name: recorded_options(REGISTRY.get("judge", name), (options or {}).get(name, {}))
            for name in judges}


class GatedClient:
    """The judging pass's client with at most ``limit`` calls in flight, whichever judge makes
    them: the driver owns the concurrency, so judges ask all their calls at once."""

    def __init__(self, client: Any, limit: int) -> None:
        self.client, self.limit = client, max(1, limit)
        self._gate: asyncio.Semaphore | None = None

    def supports_schema(self, model: str) -> bool:
        """Whether the model's answers can be constrained to a JSON schema."""
        return self.client.supports_schema(model)

    async def complete(self, request: Any) -> Any:
        """Answer ``request`` once a slot is free."""
        if self._gate is None:  # made in the loop that uses it
            self._gate = asyncio.Semaphore(self.limit)
        async with self._gate:
            return await self.client.complete(request)

    def __getattr__(self, name: str) -> Any:  # resolver, cache, ... of the wrapped client
        return getattr(self.client, name)


async def _judge_all(view: RunView, judges: Sequence[tuple[str, Any]],
                     summaries: Sequence[Any] = (),
                     group_by: Callable[[Any], Hashable] | None = None,
                     ) -> tuple[list[tuple[str, Any]], dict[Any, Any]]:
    """Every judge on the view; a judge that declares its protocols sees only their
    conversations. The streaming judges (a ``tally``) and the run's ``summaries`` (tallies
    fed every conversation, failed ones too) share one pass over the log, each judge's tally
    fed the successful conversations of its protocols; the other judges judge the view
    themselves, concurrently with the streaming judges' results.

    ``group_by(conversation)``: each judge also judges each group of conversations alone (the
    cells of a design: ``lambda c: c.cell``, see :func:`agentsim.core.log_stream.cell_of`;
    a cell and a domain, ...), in the same pass — a tally per judge and group — and the second
    value maps each group to its ``(judge, output)`` list; without it, that is empty."""
    views = [view.for_protocols(getattr(judge, "protocols", None)) for _, judge in judges]
    streaming = [i for i, (_, judge) in enumerate(judges) if hasattr(judge, "tally")]
    tallies = {i: judges[i][1].tally(views[i]) for i in streaming}
    cell_tallies: dict[tuple[str, ...], dict[int, Any]] = {}
    members: dict[tuple[str, ...], list[str]] = {}
    if tallies or summaries or group_by is not None:
        readers = [judges[i][1] for i in tallies] + list(summaries)
        reads = frozenset().union(*(reader.reads for reader in readers))
        # Prompts stay blob references unless a judge reads them (none of the built-ins).
        prompts = any(getattr(reader, "reads_prompts", False) for reader in readers)
        for conversation in conversations(view.store, reads, failed=True, resolve=prompts,
                                          views=shared_views(readers, reads)):
            for summary in summaries:
                summary.add(conversation)
            if not conversation.finished.ok:
                continue
            groups = [tallies]
            if group_by is not None:
                cell = group_by(conversation)
                members.setdefault(cell, []).append(conversation.id)
                if cell not in cell_tallies:
                    cell_tallies[cell] = {i: judges[i][1].tally(views[i]) for i in streaming}
                groups.append(cell_tallies[cell])
            for group in groups:
                for i, tally in group.items():
                    if views[i].allows(conversation.protocol):
                        tally.add(conversation)

    def results_of(group: dict[int, Any], only: list[str] | None) -> list[Any]:
        return [group[i].result() if i in group
                else judge.judge(views[i].for_conversations(only))
                for i, (_, judge) in enumerate(judges)]

    cells = sorted(members)
    pending = results_of(tallies, None)
    for cell in cells:
        pending += results_of(cell_tallies[cell], members[cell])
    outputs = await asyncio.gather(*pending)
    names = [name for name, _ in judges]
    per_cell = {cell: list(zip(names, outputs[(k + 1) * len(judges):(k + 2) * len(judges)],
                               strict=True)) for k, cell in enumerate(cells)}
    return list(zip(names, outputs[:len(judges)], strict=True)), per_cell


def grouped_metrics(run_dir: Path, group_by: Callable[[Any], Hashable],
                    judges: Sequence[str] | None = None,
                    options: dict[str, dict[str, Any]] | None = None,
                    ) -> dict[Any, dict[str, Any]]:
    """Each group's metrics (metric name → estimate as ``results.json`` holds them), the
    judges (default: the run's, with the options its results record, else the presets')
    judging each group of conversations alone: ``group_by(conversation)`` names the group
    (e.g. ``lambda c: (*c.cell, domain_of[c.scenario_id])``). One pass over the log; nothing is
    written. Groups sort by key."""
    from agentsim.core.metrics import metrics_of

    store = RunStore.open(run_dir)
    results = store.read_results() if (store.run_dir / RESULTS).exists() else {}
    names = tuple(judges or results.get("judges") or default_judges(store))
    given = {**preset_judge_options(store.read_manifest()), **(options or {})}
    recorded = results.get("judge_options") or {}
    made = [(name, make_judge(name, given.get(name) or taken_options(
        REGISTRY.get("judge", name), recorded.get(name)) or None)) for name in names]
    view = RunView(store)
    view.client = GatedClient(judging_client(view.manifest), judging_concurrency(view.manifest))
    _, groups = run_sync(_judge_all(view, made, (), group_by))
    return {key: metrics_of([r for name, output in groups[key] for r in output.records(name)])
            for key in sorted(groups)}


def design_cells(manifest: dict[str, Any]) -> list[tuple[str, ...]]:
    """The cells of a run's design (model, setting, arm), from its planned jobs, in plan
    order: one for a plain run, one per arm of a comparison, every combination of a study's."""
    return list(dict.fromkeys(cell_of(job) for job in manifest.get("jobs") or ()))


def cell_results(per_cell: dict[tuple[str, ...], Any],
                 counts: dict[tuple[str, ...], tuple[int, int]],
                 order: Sequence[tuple[str, ...]] = ()) -> list[dict[str, Any]]:
    """``results.json``'s ``cells``: each cell's factors, conversations (finished, failed) and
    the judges' metrics over its conversations alone, in ``order`` (the plan's), then any
    other cell the log holds."""
    from agentsim.core.metrics import metrics_of

    out = []
    for cell in dict.fromkeys([*order, *sorted(set(per_cell) | set(counts))]):
        outputs = per_cell.get(cell, [])
        records = [record for name, output in outputs for record in output.records(name)]
        finished, failed = counts.get(cell, (0, 0))
        out.append({**dict(zip(FACTORS, cell, strict=True)), "conversations": finished,
                    "failed": failed, "metrics": metrics_of(records)})
    return out


def shared_views(readers: Sequence[Any], reads: frozenset[str]) -> dict[str, Any]:
    """The types every reader of which reads through the same view (``views``, see
    :func:`agentsim.core.log_stream.conversations`): only those are read as views."""
    shared: dict[str, Any] = {}
    for kind in reads:
        seen = {getattr(reader, "views", {}).get(kind) for reader in readers
                if kind in reader.reads}
        if len(seen) == 1 and None not in seen:
            shared[kind] = seen.pop()
    return shared


def judge_run(run_dir: Path, judges: Sequence[str] = ("assignment_bias",),
              results_name: str = "results.json", append_events: bool = True,
              roles: dict[str, str] | None = None,
              options: dict[str, dict[str, Any]] | None = None,
              store: RunStore | None = None, write: bool = True,
              restate: bool = False, concurrency: int | None = None) -> dict[str, Any]:
    """Run judges on a stored run, append their model calls and verdicts (unless
    ``append_events`` is False), write (unless ``write`` is False) and return the results.
    LLM judges call models through the client of the run (:func:`judging_client`).

    Every judge has judged before the first verdict is appended, so a judge that fails leaves
    the log as it was. ``restate``: append ``run_finished`` before the verdicts (a re-judge; a
    finishing run has just appended it). ``store``: the open store to read (and append to), e.g.
    one that skips bad lines; by default the folder is opened afresh, and a damaged log raises
    LogLineError. ``concurrency``: judges' model calls in flight (default: the run's).
    A judge the caller gives no options gets those of the run's preset, if it names any
    (``borah2024``: the published bias rule).
    """
    from agentsim.core.metrics import metrics_of  # lazy: scipy, only when judging starts
    store = store or RunStore.open(run_dir)
    options = {**preset_judge_options(store.read_manifest()), **(options or {})}
    made = [(name, make_judge(name, options.get(name))) for name in judges]
    view = RunView(store, roles)
    # One client for the whole pass, bounded like the run's conversations were.
    view.client = GatedClient(judging_client(view.manifest, roles),
                              concurrency or judging_concurrency(view.manifest))
    outcome, parsing = OutcomeTally(), ParseTally()
    usage = UsageTally(run_prices(view.manifest))
    planned = design_cells(view.manifest)
    by_cell = len(planned) > 1
    outputs, per_cell = run_sync(_judge_all(view, made, (outcome, parsing, usage),
                                            (lambda c: c.cell) if by_cell else None))
    usage.add_calls(view.calls)  # this pass's judges' calls, which no conversation holds
    records = [record for name, output in outputs for record in output.records(name)]
    finished, failed, errors = outcome.outcomes()
    if append_events and restate:
        store.append(RunFinished(run_id=store.run_id, conversations=finished, failed=failed))
    results: dict[str, Any] = {
        "run_id": store.run_id, "judged_at": time.time(), "judges": list(judges),
        "judging_pass": append_verdicts(store, outputs, view.calls, outcome.ids)
        if append_events else None,
        "judge_options": judge_options(judges, options),
        "metrics": metrics_of(records),
        "records": [record.model_dump(mode="json") for record in records],
        "counts": {name: output.counts for name, output in outputs},
        "notes": [note for _, output in outputs for note in output.notes]}
    results["conversations"] = finished
    results["failed"] = failed
    results["errors"] = errors
    results["failures"] = outcome.reasons
    results["parsing"] = parsing.result()
    results["usage"] = usage.result()
    if by_cell:
        results["cells"] = cell_results(per_cell, outcome.by_cell(), planned)
    results["skipped_lines"] = store.skipped_report()
    if results["skipped_lines"]["count"]:
        results["notes"].append(
            f"{results['skipped_lines']['count']} damaged line(s) of events.jsonl skipped "
            f"(--skip-bad-lines): lines "
            + ", ".join(str(item["line"]) for item in results["skipped_lines"]["lines"]))
    if write:
        store.write_results(results, results_name)
    store.close()
    return results


def judging_concurrency(manifest: dict[str, Any]) -> int:
    """How many judge calls a pass keeps in flight: the run's concurrency."""
    return effective_concurrency(RunOptions.from_manifest(manifest))


def judging_client(manifest: dict[str, Any], roles: dict[str, str] | None = None) -> Any:
    """The model client of a judging pass: the run's, built from its stored options with the
    judge-time ``--role`` models over the run's roles."""
    from agentsim.runs.clients import build_client  # lazy: the model stack's slow imports

    options = RunOptions.from_manifest(manifest)
    return build_client(replace(options, roles={**options.roles, **(roles or {})}))


def append_verdicts(store: RunStore, outputs: Sequence[tuple[str, Any]],
                    calls: Sequence[ModelCall] = (),
                    ids: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Append the judges' model calls and verdicts as one judging pass; returns the pass as
    results.json records it: ``id``, ``verdicts`` and ``model_calls`` (how many) and
    ``events_bytes`` ([start, end) of events.jsonl holding them; nothing else writes the log
    meanwhile: the writer holds its lock)."""
    ids = conversation_ids(store) if ids is None else ids
    log = store.run_dir / EVENTS
    store.close()  # flushed: the size is where this pass begins
    start = log.stat().st_size if log.exists() else 0
    verdicts = sum(len(output.results) for _, output in outputs)

    def identified(event: Any) -> Any:
        """The event with its conversation's identifiers: every event carries them, whichever
        judge made it."""
        known = ids.get(event.conversation_id or "", {})
        missing = {k: v for k, v in known.items() if getattr(event, k) is None}
        return event.model_copy(update=missing) if missing else event

    for call in calls:
        store.append(identified(call))
    for _, output in outputs:
        if not output.results.identified:
            for verdict in output.results:
                store.append(identified(verdict))
        else:  # the verdicts name their identifiers: logged as they were serialised
            store.append_lines(output.results.lines())
    store.close()
    end = log.stat().st_size if log.exists() else 0
    return {"id": f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}",
            "verdicts": verdicts, "model_calls": len(calls),
            "events_bytes": [start, end]}


def pass_verdicts(store: RunStore, results: dict[str, Any] | None = None) -> Iterator[JudgeResult]:
    """The verdicts of the judging whose results are in ``results.json`` (or ``results``).

    Results that record their pass name the byte range of its verdicts, which is read alone.
    Older results (and judgings that did not append) do not: then the verdicts of the last
    judging in the log, as :meth:`RunStore.iter_events` selects them.
    """
    if results is None:
        results = store.read_results() if (store.run_dir / RESULTS).exists() else {}
    span = (results.get("judging_pass") or {}).get("events_bytes")
    if not span:
        yield from store.iter_events({"judge_result"})  # type: ignore[misc]
        return
    log = store.run_dir / EVENTS
    start, end = span
    with open(log, "rb") as handle:
        handle.seek(max(start - 1, 0))
        before = handle.read(1) if start else b"\n"
        data = handle.read(end - start)
    if before != b"\n" or len(data) != end - start or (data and not data.endswith(b"\n")):
        raise RunStoreError(f"{store.run_dir / RESULTS}: its judging pass points at bytes "
                            f"{start}-{end} of {log}, which do not hold whole lines: the log "
                            f"changed after judging; judge the run again (agentsim judge "
                            f"{store.run_dir})")
    for index, line in enumerate(data.splitlines(keepends=True)):
        try:
            event = EVENT_ADAPTER.validate_json(line)
        except ValidationError as error:
            with open(log, "rb") as handle:  # the line's number, for the message only
                number = handle.read(start).count(b"\n") + index + 1
            raise LogLineError(log, number, f"not a valid event ({error.errors()[0]['msg']})") \
                from None
        if event.type == "judge_result":
            yield event


def conversation_ids(store: RunStore) -> dict[str, dict[str, Any]]:
    """conversation id → the identifiers its events carry (variant, arm, replicate, seed)."""
    return {e.conversation_id: {"variant": e.variant, "arm": e.arm, "replicate": e.replicate,
                                "seed": e.seed}
            for e in store.iter_events({"conversation_started"})}


def default_judges(store: RunStore) -> tuple[str, ...]:
    """The judges a run was judged with, else the defaults of its protocols."""
    manifest = store.read_manifest()
    if manifest.get("judges"):
        return tuple(manifest["judges"])
    names: list[str] = []
    for entry in manifest["scenarios"].values():
        protocol = (entry["data"].get("protocol") or {}).get("name", "discussion")
        names += [n for n in plugin_for(protocol).default_judges if n not in names]
    return tuple(names)


def rejudge(run_dir: Path, judges: Sequence[str] | None = None,
            roles: dict[str, str] | None = None,
            options: dict[str, dict[str, Any]] | None = None,
            skip_bad_lines: bool = False) -> tuple[dict[str, Any], Path | None]:
    """Score a stored run again; returns the results and the path of the archived old ones
    (None when there were none).

    The folder's lock is held throughout (a run, resume or other judge writing it is refused).
    The old ``results.json`` stays in place while judging; this pass's verdicts are appended
    to the log after a restated ``run_finished`` (earlier passes' stay), then the old results
    are copied to ``results.<time>.json`` and replaced atomically by the new ones.
    """
    store = RunStore.open(run_dir, skip_bad_lines=skip_bad_lines)
    judges = tuple(judges or default_judges(store))
    for name in judges:  # unknown names and options fail before anything on disk changes
        make_judge(name, (options or {}).get(name))
    unknown = set(options or {}) - set(judges)
    if unknown:
        from agentsim.errors import InputError

        raise InputError(f"options for judges that do not run: {sorted(unknown)} (judges "
                         f"run: {', '.join(judges)}); add them to --judges or drop the options",
                         source="--judge-arg")
    store = RunStore.open(run_dir, lock="agentsim judge", skip_bad_lines=skip_bad_lines)
    try:
        store.repair_tail()  # this pass appends: a killed writer's partial line must go first
        results = judge_run(store.run_dir, judges, roles=roles, options=options, store=store,
                            write=False, restate=True)
        archived = archive_results(store)
        store.write_results(results)
        if results.get("usage") is not None:  # the manifest's count follows the results'
            store.update_manifest(usage=results["usage"])
    finally:
        store.release()
    return results, archived


def archive_results(store: RunStore) -> Path | None:
    """Copy ``results.json`` to ``results.<time>.json`` (a new name; atomically), or None."""
    current = store.run_dir / RESULTS
    if not current.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(current.stat().st_mtime))
    archived = current.with_name(f"results.{stamp}.json")
    counter = 1
    while archived.exists():
        archived = current.with_name(f"results.{stamp}-{counter}.json")
        counter += 1
    tmp = archived.with_name(f".{archived.name}.{os.getpid()}.tmp")
    tmp.write_bytes(current.read_bytes())
    os.replace(tmp, archived)
    return archived
