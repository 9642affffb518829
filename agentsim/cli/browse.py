"""Browse run folders: list the runs under a root and summarise one run.

Everything here reads the run folder only (``manifest.json``, ``events.jsonl``, ``results.json``)
and returns plain data; the command line renders it (``agentsim runs list|show``). The event log
is streamed line by line, never loaded whole, and a line is parsed only when it can matter.

A damaged run — a manifest that is not readable JSON (or not UTF-8), a log with a corrupt or
schema-invalid line — is listed with status ``damaged`` and the reason; the other runs are listed
as usual. The listing reads only what it shows: the manifest and, for its counts, the log's
conversation starts and finishes (other lines are not parsed: a substring test on the raw
bytes picks the lines to parse; a corrupt line is still noticed, a schema-invalid one only by
``runs show``); never the results or anything else in the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentsim.errors import RunStoreError
from agentsim.core.store import EVENTS, MANIFEST, RESULTS, RunStore

UNREADABLE = DAMAGED = "damaged"
FIRST_IDS = 3  # scenario ids shown in a listing row


def find_run_dirs(root: str | Path) -> list[Path]:
    """Folders holding a ``manifest.json``: the root itself, its children and grandchildren
    (so ``runs/<id>`` and ``runs/examples/<id>`` are both found)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for pattern in (MANIFEST, f"*/{MANIFEST}", f"*/*/{MANIFEST}"):
        found.extend(path.parent for path in root.glob(pattern) if path.is_file())
    return sorted(set(found))


# The only events a listing counts, and the bytes a line of each holds (its type as a JSON
# string): other lines are never parsed (a substring test on the raw line, before any JSON).
COUNTED = ("conversation_started", "conversation_finished")
COUNTED_MARKS = tuple(f'"{kind}"'.encode() for kind in COUNTED)


def log_counts(run_dir: str | Path) -> dict[str, Any]:
    """Conversations started, finished (ok) and failed (every attempt), from ``events.jsonl``.

    Cheap: a line is parsed only when its bytes hold ``"conversation_started"`` or
    ``"conversation_finished"``, and only those are checked as events (a JSON object whose ``ok`` is true or false
    for a finish). Any other line is only checked to be a whole ``{...}`` line, so corrupt
    lines are found but a schema-invalid one is not (``runs show`` validates every line). The
    first damaged line is ``damage`` (``line``, ``reason``). A partial last line (a killed or a
    live writer) is not damage.
    """
    counts: dict[str, Any] = {"started": 0, "finished": 0, "failed": 0, "damage": None}
    path = Path(run_dir) / EVENTS
    damage: dict[str, Any] | None = None
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.endswith(b"\n"):
                    break  # killed mid-write (or being written): the last line is incomplete
                reason = _count_line(line, counts)
                if reason is not None and damage is None:
                    damage = {"line": number, "reason": reason}
    except FileNotFoundError:
        return counts
    except OSError as error:
        counts["damage"] = {"line": None, "reason": f"unreadable ({error.strerror})"}
        return counts
    counts["damage"] = damage
    return counts


def _count_line(line: bytes, counts: dict[str, Any]) -> str | None:
    """Count one whole log line into ``counts``; what is wrong with it, or None."""
    if not any(mark in line for mark in COUNTED_MARKS):
        stripped = line.strip()
        return None if stripped.startswith(b"{") and stripped.endswith(b"}") else "not JSON"
    try:
        event = json.loads(line)
    except UnicodeDecodeError:
        return "not UTF-8"
    except ValueError:
        return "not JSON"
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "not an event (a JSON object with a type)"
    kind = event["type"]
    if kind == "conversation_started":
        counts["started"] += 1
    elif kind == "conversation_finished":
        ok = event.get("ok")
        if not isinstance(ok, bool):
            return "invalid conversation_finished event (ok: true or false expected)"
        counts["finished" if ok else "failed"] += 1
    return None


def _models_text(models: dict[str, str]) -> str:
    """'default-model; role=model, ...' from the manifest's models mapping."""
    roles = ", ".join(f"{name}={model}" for name, model in models.items() if name != "default")
    return "; ".join(part for part in (models.get("default", ""), roles) if part)


def summarize_run(run_dir: str | Path) -> dict[str, Any]:
    """One listing row: id, created, status, scenarios, models, arms and counts.

    A folder whose manifest cannot be read, or whose log has a damaged line, gets status
    ``damaged`` and an ``error`` saying where (a readable manifest's own status is kept as
    ``recorded_status``).
    """
    run_dir = Path(run_dir)
    row: dict[str, Any] = {"id": run_dir.name, "path": str(run_dir), "created": None,
                           "status": DAMAGED}
    try:
        manifest = RunStore.open(run_dir).read_manifest()
    except (RunStoreError, OSError) as error:
        return row | {"error": str(error)}
    scenario_ids = list(manifest.get("scenarios") or {})
    models = manifest.get("models") or {}
    row.update(
        id=str(manifest.get("run_id", run_dir.name)),
        created=manifest.get("created"),
        status=str(manifest.get("status", "unknown")),
        scenarios={"count": len(scenario_ids), "first": scenario_ids[:FIRST_IDS]},
        models=models,
        arms=list(manifest.get("arms") or []),
        counts={"planned": len(manifest.get("jobs") or []), **log_counts(run_dir)},
    )
    damage = row["counts"].pop("damage")
    if damage is not None:
        row.update(recorded_status=row["status"], status=DAMAGED,
                   error=f"{run_dir / EVENTS}:{damage['line']}: {damage['reason']}")
    return row


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """Rows of every run under ``root``, oldest first (unreadable ones last)."""
    rows = []
    for path in find_run_dirs(root):
        try:
            rows.append(summarize_run(path))
        except Exception as error:  # noqa: BLE001 - one odd folder must not hide the others
            rows.append({"id": path.name, "path": str(path), "created": None,
                         "status": DAMAGED, "error": f"{type(error).__name__}: {error}"})
    return sorted(rows, key=lambda r: (r["created"] is None, str(r["created"] or ""), r["path"]))


def show_run(run_dir: str | Path) -> dict[str, Any]:
    """The manifest summary of one run, its counts and its results (``None`` if not judged).

    Raises :class:`RunStoreError` when ``run_dir`` is not a readable run folder.
    """
    store = RunStore.open(run_dir, skip_bad_lines=True)
    manifest = store.read_manifest()
    store.check()  # every line validated: damage is shown, with line numbers
    damaged = store.skipped_report()
    scenarios = {
        sid: {"path": entry.get("path"), "hash": entry.get("hash")}
        for sid, entry in (manifest.get("scenarios") or {}).items()
        if isinstance(entry, dict)
    }
    variants = {sid: [v.get("id") for v in entries if isinstance(v, dict)]
                for sid, entries in (manifest.get("variants") or {}).items()}
    results = None
    if (store.run_dir / RESULTS).is_file():
        try:
            results = store.read_results()
        except (OSError, json.JSONDecodeError) as error:
            raise RunStoreError(f"{store.run_dir / RESULTS}: unreadable ({error})") from None
    return {
        "run_dir": str(store.run_dir),
        "run_id": manifest.get("run_id"),
        "created": manifest.get("created"),
        "finished": manifest.get("finished"),
        "status": manifest.get("status"),
        "agentsim_version": manifest.get("agentsim_version"),
        "options": manifest.get("options") or {},
        "models": manifest.get("models") or {},
        "seed": manifest.get("seed"),
        "arms": manifest.get("arms") or [],
        "judges": manifest.get("judges") or [],
        "scenarios": scenarios,
        "variants": variants,
        "counts": {"planned": len(manifest.get("jobs") or []),
                   **{k: v for k, v in log_counts(store.run_dir).items() if k != "damage"}},
        "damaged_lines": damaged,
        "results": None if results is None else {
            "metrics": results.get("metrics", {}), "counts": results.get("counts", {}),
            "notes": results.get("notes", []), "judged_at": results.get("judged_at"),
            "skipped_lines": (results.get("skipped_lines") or {}).get("count", 0),
        },
    }


def runs_table(rows: list[dict[str, Any]], title: str) -> Any:
    """A rich table of listing rows (rich is imported here, only when rendering)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for column in ("scenarios", "models", "arms"):
        table.add_column(column, overflow="fold")
    table.add_column("ok/fail/plan", justify="right", no_wrap=True)
    for row in rows:
        if "scenarios" not in row:
            table.add_row(escape(row["id"]), "—", f"[red]{DAMAGED}[/]",
                          escape(row.get("error", "")), "", "", "")
            continue
        scen, counts = row["scenarios"], row["counts"]
        first = ", ".join(scen["first"]) + (", …" if scen["count"] > len(scen["first"]) else "")
        created = str(row["created"] or "—").replace("T", " ")[:16]
        status = row["status"] if row["status"] != DAMAGED else \
            f"[red]{DAMAGED}[/] ({escape(row.get('error', ''))})"
        table.add_row(escape(row["id"]), created, status,
                      escape(f"{scen['count']}: {first}"), escape(_models_text(row["models"])),
                      escape(", ".join(row["arms"]) or "—"),
                      f"{counts['finished']}/{counts['failed']}/{counts['planned']}")
    return table


def print_show(console: Any, data: dict[str, Any]) -> None:
    """Render :func:`show_run` data: summary lines, scenarios, then the headline metrics."""
    from rich.markup import escape

    from agentsim.cli.reporting import print_metrics

    console.print(f"[bold]Run {escape(str(data['run_id']))}[/] ({data['status']}) "
                  f"{data['run_dir']}")
    console.print(f"created {data['created']}, finished {data['finished'] or '—'}, "
                  f"agentsim {data['agentsim_version']}, seed {data['seed']}")
    console.print(f"models: {escape(_models_text(data['models']))}")
    console.print(f"arms: {escape(', '.join(data['arms']))}; judges: "
                  f"{escape(', '.join(data['judges']) or '—')}")
    shown = {k: v for k, v in data["options"].items() if v not in (None, [], {}, False)}
    console.print("options: " + escape(", ".join(f"{k}={v}" for k, v in shown.items())))
    for sid, entry in data["scenarios"].items():
        variants = ", ".join(str(v) for v in data["variants"].get(sid, []))
        console.print(f"  {escape(sid)}  hash {entry['hash']}  variants: {escape(variants)}")
    c = data["counts"]
    console.print(f"conversations: {c['planned']} planned, {c['started']} started, "
                  f"{c['finished']} finished, {c['failed']} failed")
    damaged = data.get("damaged_lines") or {}
    if damaged.get("count"):
        console.print(f"[red]damaged: {damaged['count']} line(s) of events.jsonl are not valid "
                      "events:[/]")
        for item in damaged["lines"]:
            console.print(f"[red]  line {item['line']}: {escape(item['reason'])}[/]",
                          soft_wrap=True)
        console.print("Judging, resuming and exporting refuse this log; add --skip-bad-lines "
                      "to go on without those lines.")
    if data["results"] is None:
        console.print("[yellow]No results.json: the run has not been judged.[/]")
    else:
        print_metrics(console, data["results"])
