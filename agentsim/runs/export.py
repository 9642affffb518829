"""Export a run's event log as tables for pandas users (CSV or Parquet, one file per table).

Tables, all carrying ``conversation_id, turn, agent, variant, arm, replicate, seed``:

* ``messages``: one row per message event (speaker, phase, round, content, ``visible_to_json``:
  who heard it, empty when everyone did).
* ``decisions``: one row per decision event, probes included (phase, round, kind, point — the
  decision point of a custom setup, parsed_by, ``value_json``: the decision as JSON text, e.g.
  the task → persona mapping, raw answer, parse_error).
* ``probes``: the decisions whose phase is ``probe`` (a subset of ``decisions``).
* ``judge_results``: judge, target, label, score, ``details_json``.
* ``model_calls``: model, role, purpose, tokens, latency_s, attempts, cached, error.
* ``conversations``: one row per conversation, from ``conversation_started`` joined with
  ``conversation_finished`` (``ok`` and ``turns`` are empty for unfinished ones).

The log is streamed into lists of row dicts; nothing else of the run is loaded. As every reader,
export sees each conversation's last attempt and the last judging only (a resumed run exports as
an uninterrupted one), and refuses a damaged log with the bad line's number unless the store
skips bad lines (``--skip-bad-lines``).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from agentsim.errors import InputError, PluginError
from agentsim.core.store import RunStore

FORMATS = ("csv", "parquet")
IDS = ["conversation_id", "turn", "agent", "variant", "arm", "replicate", "seed"]
COLUMNS: dict[str, list[str]] = {
    "messages": IDS + ["speaker", "phase", "round", "content", "visible_to_json"],
    "decisions": IDS + ["phase", "round", "kind", "point", "parsed_by", "value_json", "raw",
                        "parse_error"],
    "probes": IDS + ["phase", "round", "kind", "point", "parsed_by", "value_json", "raw",
                     "parse_error"],
    "judge_results": IDS + ["judge", "target", "label", "score", "details_json"],
    "model_calls": IDS + ["model", "role", "purpose", "prompt_tokens", "completion_tokens",
                          "tokens", "latency_s", "attempts", "cached", "structured", "error"],
    "conversations": ["conversation_id", "scenario_id", "protocol", "setting", "variant", "arm",
                      "bias", "replicate", "seed", "ok", "turns"],
}
TABLES = tuple(COLUMNS)
INT_COLUMNS = ("turn", "round", "replicate", "seed", "prompt_tokens", "completion_tokens",
               "tokens", "attempts", "turns")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _ids(event: dict[str, Any]) -> dict[str, Any]:
    return {name: event.get(name) for name in IDS}


def _tokens(event: dict[str, Any]) -> int | None:
    parts = [event.get("prompt_tokens"), event.get("completion_tokens")]
    return None if all(p is None for p in parts) else sum(p or 0 for p in parts)


def collect_rows(store: RunStore) -> dict[str, list[dict[str, Any]]]:
    """Stream the log of ``store`` into row dicts per table (see the module docstring): each
    conversation's last attempt and the last judging only, as resolved by
    :meth:`RunStore.iter_events` for every reader. Failed conversations are kept (``ok`` is
    false): unlike a metric, an export shows what happened."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    conversations: dict[str, dict[str, Any]] = {}
    # Said explicitly: the raw log (latest_attempt=False) holds abandoned attempts of a resumed
    # run and the verdicts of interrupted judgings.
    for typed in store.iter_events(latest_attempt=True):
        event = typed.model_dump(exclude_none=True)
        kind = event.get("type")
        if kind == "message":
            rows["messages"].append(_ids(event) | {
                "speaker": event.get("speaker"), "phase": event.get("phase"),
                "round": event.get("round"), "content": event.get("content"),
                "visible_to_json": _json(event.get("visible_to"))})
        elif kind == "decision":
            row = _ids(event) | {
                "phase": event.get("phase"), "round": event.get("round"),
                "kind": event.get("kind", "assignment"), "point": event.get("point"),
                "parsed_by": event.get("parsed_by"),
                "value_json": _json(event.get("value")), "raw": event.get("raw"),
                "parse_error": event.get("parse_error")}
            rows["decisions"].append(row)
            if row["phase"] == "probe":
                rows["probes"].append(row)
        elif kind == "judge_result":
            rows["judge_results"].append(_ids(event) | {
                "judge": event.get("judge"), "target": event.get("target"),
                "label": event.get("label"), "score": event.get("score"),
                "details_json": _json(event.get("details") or {})})
        elif kind == "model_call":
            rows["model_calls"].append(_ids(event) | {
                "model": event.get("model"), "role": event.get("role"),
                "purpose": event.get("purpose"), "prompt_tokens": event.get("prompt_tokens"),
                "completion_tokens": event.get("completion_tokens"), "tokens": _tokens(event),
                "latency_s": event.get("latency_s"), "attempts": event.get("attempts", 1),
                "cached": bool(event.get("cached", False)),
                "structured": bool(event.get("structured", False)), "error": event.get("error")})
        elif kind == "conversation_started" and event.get("conversation_id"):
            job = event.get("job") or {}
            conversations[event["conversation_id"]] = {
                "conversation_id": event["conversation_id"],
                "scenario_id": event.get("scenario_id"), "protocol": event.get("protocol"),
                "setting": event.get("setting"),
                "variant": event.get("variant", job.get("variant")),
                "arm": event.get("arm", job.get("arm")), "bias": job.get("bias"),
                "replicate": event.get("replicate", job.get("replicate")),
                "seed": event.get("seed", job.get("seed")), "ok": None, "turns": None}
        elif kind == "conversation_finished" and event.get("conversation_id"):
            row = conversations.setdefault(event["conversation_id"], {
                "conversation_id": event["conversation_id"], **_ids(event)})
            row.update(ok=bool(event.get("ok")), turns=event.get("turns", 0))
    rows["conversations"] = list(conversations.values())
    return rows


def _frame(name: str, rows: list[dict[str, Any]]) -> Any:
    """A DataFrame with the table's columns (also when empty) and nullable integer columns."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=COLUMNS[name])
    for column in INT_COLUMNS:
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    if name == "conversations":
        frame["ok"] = frame["ok"].astype("boolean")
    return frame


def export_run(run_dir: str | Path, fmt: str = "csv",
               out: str | Path | None = None,
               store: RunStore | None = None) -> list[dict[str, Any]]:
    """Write every table of the run as ``<out>/<table>.<fmt>`` (default out: RUN_DIR/export).

    Returns ``[{"table", "path", "rows"}, ...]``. Raises :class:`RunStoreError` for a folder that
    is not a run or whose log is damaged (``store``: an open store, e.g. one that skips bad
    lines), :class:`PluginError` when Parquet is asked for without pyarrow installed.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})",
                         source="--format")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise PluginError("Parquet export needs pyarrow, which is not installed: "
                          "pip install pyarrow (or use --format csv)")
    store = store or RunStore.open(run_dir)
    out_dir = Path(out) if out is not None else store.run_dir / "export"
    tables = collect_rows(store)  # the whole log is checked before anything is written
    try:
        if out_dir.exists() and not out_dir.is_dir():
            raise NotADirectoryError(20, "it is a file")
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{out_dir} cannot be used as a folder ({error.strerror or error}); "
                         "choose another folder", source="--out") from None
    written = []
    for name, rows in tables.items():
        frame = _frame(name, rows)
        path = out_dir / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False, engine="pyarrow")
        written.append({"table": name, "path": str(path), "rows": len(frame)})
    return written
