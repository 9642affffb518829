"""The run folder: ``manifest.json``, the append-only ``events.jsonl`` and ``results.json``.

Appends are whole lines, flushed, under a lock, so a killed process leaves at most one partial
last line, which readers detect and skip. The manifest and results are replaced atomically (write
to a temporary file, then rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentsim.errors import RunStoreError
from agentsim.runs.events import EVENT_ADAPTER, EventBase

MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
RESULTS = "results.json"


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a short random suffix."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", "utf-8")
    os.replace(tmp, path)


class RunStore:
    """Read and write one run folder."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._lock = threading.Lock()
        self._handle: Any = None
        self.skipped_lines = 0  # partial or corrupt lines met by the last read

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, run_dir: str | Path, manifest: dict[str, Any]) -> RunStore:
        """Make a new run folder; refuses a folder that already holds a run."""
        store = cls(run_dir)
        if (store.run_dir / MANIFEST).exists() or (store.run_dir / EVENTS).exists():
            raise RunStoreError(f"{store.run_dir}: already holds a run; choose another --out")
        store.run_dir.mkdir(parents=True, exist_ok=True)
        store.write_manifest(manifest)
        (store.run_dir / EVENTS).touch()
        return store

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        """Open an existing run folder (checks that it has a manifest)."""
        store = cls(run_dir)
        if not (store.run_dir / MANIFEST).is_file():
            raise RunStoreError(f"{store.run_dir}: not a run folder (no {MANIFEST})")
        return store

    # -- manifest and results ---------------------------------------------------------------
    @property
    def run_id(self) -> str:
        """The run id recorded in the manifest."""
        return str(self.read_manifest()["run_id"])

    def read_manifest(self) -> dict[str, Any]:
        """The manifest as data."""
        try:
            return json.loads((self.run_dir / MANIFEST).read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise RunStoreError(f"{self.run_dir / MANIFEST}: unreadable ({error})") from None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest atomically."""
        write_json_atomic(self.run_dir / MANIFEST, manifest)

    def update_manifest(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the manifest and write it back."""
        manifest = self.read_manifest() | changes
        self.write_manifest(manifest)
        return manifest

    def write_results(self, results: dict[str, Any], name: str = RESULTS) -> Path:
        """Write a results file atomically; returns its path."""
        path = self.run_dir / name
        write_json_atomic(path, results)
        return path

    def read_results(self, name: str = RESULTS) -> dict[str, Any]:
        """Read a results file."""
        return json.loads((self.run_dir / name).read_text("utf-8"))

    # -- events -------------------------------------------------------------------------------
    def append(self, event: EventBase) -> None:
        """Append one event as a whole, flushed line (thread-safe)."""
        line = event.model_dump_json(exclude_none=True) + "\n"
        with self._lock:
            if self._handle is None:
                self._handle = open(self.run_dir / EVENTS, "a", encoding="utf-8")  # noqa: SIM115
            self._handle.write(line)
            self._handle.flush()

    def close(self) -> None:
        """Close the events file (appends reopen it)."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def iter_raw(self) -> Iterator[dict[str, Any]]:
        """Stream events as dicts, skipping (and counting) a partial or corrupt line."""
        self.skipped_lines = 0
        path = self.run_dir / EVENTS
        if not path.exists():
            return
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    self.skipped_lines += 1  # killed mid-write: the last line is incomplete
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    self.skipped_lines += 1

    def iter_events(self, types: set[str] | None = None, latest_attempt: bool = True,
                    complete_only: bool = False) -> Iterator[EventBase]:
        """Stream typed events, optionally only those whose ``type`` is in ``types``.

        A conversation interrupted by a kill (or failed) and run again on resume has several
        attempts in the log; with ``latest_attempt`` (the default) only the events from its last
        ``conversation_started`` on are yielded, so every reader sees each conversation once.
        With ``complete_only``, conversations whose last attempt did not finish successfully
        are left out altogether: their partial decisions must not enter any metric. Either costs
        a first pass over the file that keeps a few numbers per conversation.
        """
        starts, excluded = self._attempts(complete_only) if latest_attempt or complete_only \
            else ({}, set())
        for index, data in enumerate(self.iter_raw()):
            cid = data.get("conversation_id")
            if cid is not None:
                if index < starts.get(cid, 0) or cid in excluded:
                    continue  # an abandoned earlier attempt, or a conversation that failed
            if types is None or data.get("type") in types:
                yield EVENT_ADAPTER.validate_python(data)

    def _attempts(self, complete_only: bool) -> tuple[dict[str, int], set[str]]:
        """(line of the last start of each conversation started more than once, conversations
        to leave out because their last attempt did not finish successfully)."""
        starts: dict[str, int] = {}
        counts: dict[str, int] = {}
        ok: dict[str, bool] = {}
        for index, data in enumerate(self.iter_raw()):
            kind = data.get("type")
            if kind == "conversation_started":
                cid = data["conversation_id"]
                starts[cid] = index
                counts[cid] = counts.get(cid, 0) + 1
                ok[cid] = False
            elif kind == "conversation_finished":
                ok[data["conversation_id"]] = bool(data.get("ok"))
        excluded = {cid for cid, good in ok.items() if not good} if complete_only else set()
        # Only conversations started more than once need filtering by position.
        return {cid: index for cid, index in starts.items() if counts[cid] > 1}, excluded

    def repair_tail(self) -> bool:
        """Cut a partial last line left by a killed writer; True when something was cut."""
        path = self.run_dir / EVENTS
        if not path.exists() or path.stat().st_size == 0:
            return False
        with open(path, "rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return False
            data = path.read_bytes()
            keep = data.rfind(b"\n") + 1
            handle.truncate(keep)
            return True
