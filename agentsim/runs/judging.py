"""Judging a stored run: judges read the log and write ``results.json``.

Judging is the same code for a fresh run and a stored one. Re-judging (``agentsim judge``) never
re-runs a conversation and never rewrites the log: it holds the folder's lock, judges, copies the
previous ``results.json`` to ``results.<time>.json`` and only then replaces ``results.json``
atomically, so a kill at any moment leaves the old results or the new ones. With the same
deterministic judges it reproduces the original numbers exactly (bootstrap resampling is seeded).
A damaged log (a corrupt or schema-invalid line) stops judging with the line's number unless the
store skips bad lines; what was skipped is counted in ``results.json`` (``skipped_lines``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentsim.core.reader import RunView
from agentsim.registry import REGISTRY
from agentsim.runs.parsing import parse_rates
from agentsim.core.store import RESULTS, RunStore

# Judges run by default for each protocol present in a run.
PROTOCOL_JUDGES: dict[str, tuple[str, ...]] = {
    "discussion": ("assignment_bias", "counterfactual", "trajectory", "influence"),
    "clinical": ("clinical",),
    # Assignment judges skip setups without assign decisions (with a note); selection scores
    # rank, pick and rate decisions.
    "setup": ("assignment_bias", "counterfactual", "trajectory", "selection"),
}


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
    """Instantiate a registered judge; unknown options are a clear error."""
    from agentsim.errors import InputError

    cls = REGISTRY.get("judge", name)
    try:
        return cls(**(options or {}))
    except TypeError as error:
        raise InputError(f"judge {name!r} does not take these options: {error}",
                         source="--judge-arg") from None


def judge_run(run_dir: Path, judges: Sequence[str] = ("assignment_bias",),
              results_name: str = "results.json", append_events: bool = True,
              roles: dict[str, str] | None = None,
              options: dict[str, dict[str, Any]] | None = None,
              store: RunStore | None = None, write: bool = True) -> dict[str, Any]:
    """Run judges on a stored run, append their verdicts (unless ``append_events`` is False),
    write (unless ``write`` is False) and return the results.

    ``store``: the open store to read (and append to), e.g. one that skips bad lines; by
    default the folder is opened afresh, and a damaged log raises LogLineError.
    """
    store = store or RunStore.open(run_dir)
    view = RunView(store, roles)
    results: dict[str, Any] = {"run_id": store.run_id, "judged_at": time.time(),
                               "judges": list(judges), "metrics": {}, "counts": {}, "notes": []}
    ids = conversation_ids(store) if append_events else {}
    for name in judges:
        output = make_judge(name, (options or {}).get(name)).judge(view)
        if append_events:
            for event in output.results:
                # Every event carries its conversation's identifiers, whichever judge made it.
                known = ids.get(event.conversation_id or "", {})
                missing = {k: v for k, v in known.items() if getattr(event, k) is None}
                store.append(event.model_copy(update=missing) if missing else event)
        results["metrics"].update({k: v.as_dict() for k, v in output.metrics.items()})
        results["counts"][name] = output.counts
        results["notes"] += output.notes
    conversations, failed, errors = conversation_outcomes(store)
    results["conversations"] = conversations
    results["failed"] = failed
    results["errors"] = errors
    results["failures"] = failure_reasons(store)
    results["parsing"] = parse_rates(store)
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


def conversation_ids(store: RunStore) -> dict[str, dict[str, Any]]:
    """conversation id → the identifiers its events carry (variant, arm, replicate, seed)."""
    return {e.conversation_id: {"variant": e.variant, "arm": e.arm, "replicate": e.replicate,
                                "seed": e.seed}
            for e in store.iter_events({"conversation_started"})}


def conversation_outcomes(store: RunStore) -> tuple[int, int, dict[str, int]]:
    """(finished conversations, failed ones, failures by kind) from the log.

    The kind is the model error's kind (rate_limit, connection, auth, ...) where there is one,
    else the exception's type.
    """
    finished: dict[str, bool] = {}
    errors: dict[str, int] = {}
    for event in store.iter_events({"conversation_finished", "error"}):
        if event.type == "conversation_finished":
            finished[event.conversation_id] = event.ok
        elif event.fatal:
            kind = event.kind or event.error_type
            errors[kind] = errors.get(kind, 0) + 1
    return len(finished), sum(1 for ok in finished.values() if not ok), errors


def failure_reasons(store: RunStore) -> dict[str, dict[str, Any]]:
    """Failures by kind, each with its count, one example message and the conversations."""
    reasons: dict[str, dict[str, Any]] = {}
    for event in store.iter_events({"error"}):
        if not event.fatal:
            continue
        row = reasons.setdefault(event.kind or event.error_type,
                                 {"count": 0, "example": event.message, "conversations": []})
        row["count"] += 1
        if len(row["conversations"]) < 20:
            row["conversations"].append(event.conversation_id)
    return reasons


def default_judges(store: RunStore) -> tuple[str, ...]:
    """The judges a run was judged with, else the defaults of its protocols."""
    manifest = store.read_manifest()
    if manifest.get("judges"):
        return tuple(manifest["judges"])
    names: list[str] = []
    for entry in manifest["scenarios"].values():
        protocol = (entry["data"].get("protocol") or {}).get("name", "discussion")
        names += [n for n in PROTOCOL_JUDGES.get(protocol, ()) if n not in names]
    return tuple(names)


def rejudge(run_dir: Path, judges: Sequence[str] | None = None,
            roles: dict[str, str] | None = None,
            options: dict[str, dict[str, Any]] | None = None,
            skip_bad_lines: bool = False) -> tuple[dict[str, Any], Path | None]:
    """Score a stored run again; returns the results and the path of the archived old ones
    (None when there were none).

    The folder's lock is held throughout (a run, resume or other judge writing it is refused).
    The old ``results.json`` stays in place while judging; it is copied to
    ``results.<time>.json`` and then replaced atomically by the new one.
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
        results = judge_run(store.run_dir, judges, append_events=False, roles=roles,
                            options=options, store=store, write=False)
        archived = archive_results(store)
        store.write_results(results)
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
