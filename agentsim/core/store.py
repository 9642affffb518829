"""The run folder: ``manifest.json``, the append-only ``events.jsonl`` and ``results.json``.

Guarantees (tested in tests/runs/test_reliability.py):

* **One writer.** A process that writes a run folder (run, resume, compare, judge, a fork's new
  folder, an imported transcript) holds an OS lock on ``.lock`` in it (``fcntl.flock``; the
  kernel releases it when the process dies, however it dies). A second writer is refused with
  a message naming the process that holds it. A run folder is created exclusively: its manifest
  appears whole or not at all, and never over another run's.
* **Whole lines.** Appends are whole lines, flushed, under a lock, so a killed process leaves at
  most one partial last line, which readers skip and ``agentsim resume`` cuts.
* **Damage is never silent.** Every other line must be a valid event: a corrupt, non-UTF-8 or
  schema-invalid line makes every reader raise :class:`LogLineError` naming the file and line
  number, unless it was opened with ``skip_bad_lines`` (``--skip-bad-lines``), in which case the
  lines skipped are counted in :attr:`RunStore.bad_lines`.
* **Atomic files.** The manifest and results are replaced atomically (a temporary file, fsync,
  then a rename), so a reader — or a kill — sees the old file or the new one, never half a file.
* **No secrets.** Every line and file written passes through the redactor of the model client
  (known key values, key-shaped strings, keys in URLs).

The folder's file names, whole-file JSON writes and ``--out`` checks are in
:mod:`agentsim.core.run_files`, the lock in :mod:`agentsim.core.run_lock`; both are re-exported
here.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentsim.errors import RunStoreError
from agentsim.core.blobs import BLOBS, BlobReader, BlobWriter
from agentsim.core.events import EVENT_ADAPTER, EventBase
from agentsim.core.run_files import (  # noqa: F401  (the folder's files, for store's callers)
    EVENTS,
    MANIFEST,
    RESULTS,
    RunExistsError,
    check_run_dir,
    create_json_exclusive,
    make_run_dir,
    new_redactor,
    new_run_id,
    write_json_atomic,
)
from agentsim.core.run_lock import LOCK, RunLock, RunLockedError  # noqa: F401

SKIP_HINT = "--skip-bad-lines"
MAX_REPORTED = 20  # skipped lines listed by number in results.json


class LogLineError(RunStoreError):
    """A whole line of ``events.jsonl`` that is not a valid event (corrupt, not UTF-8, or not
    matching the event schema); ``path`` and ``line`` say where."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(
            f"{path}:{line}: {reason}. The log is damaged: nothing was computed from it, so no "
            f"result rests on silently reduced data. Repair or remove that line, or pass "
            f"{SKIP_HINT} to go on without it (the lines skipped are counted and reported)")


def _describe(line: bytes, error: ValidationError) -> str:
    """Why a line is not a valid event, in words."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8 (byte {bad.start + 1} of the line)"
    if not text.strip():
        return "an empty line"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as bad:
        return f"not valid JSON ({bad.msg} at column {bad.colno})"
    if not isinstance(data, dict):
        return "not a JSON object"
    first = error.errors()[0]
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"not an event (unknown or missing type {data.get('type')!r})"
    loc = first["loc"]
    if loc and loc[0] == data.get("type"):  # the event union's tag (a view has none)
        loc = loc[1:]
    where = ".".join(str(part) for part in loc) or "event"
    return f"an invalid {data.get('type')} event ({where}: {first['msg']})"


class RunStore:
    """Read and write one run folder.

    ``skip_bad_lines``: skip (and count in :attr:`bad_lines`) whole lines that are not valid
    events instead of raising :class:`LogLineError`.
    """

    def __init__(self, run_dir: str | Path, skip_bad_lines: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.skip_bad_lines = skip_bad_lines
        self._lock = threading.Lock()
        self._handle: Any = None
        self._redact: Any = None
        self.lock: RunLock | None = None
        self.blobs = BlobReader(self.run_dir / BLOBS)  # message texts stored once per run
        self._blob_writer = BlobWriter(self.run_dir / BLOBS)
        self._blob_handle: Any = None
        self.bad_lines: dict[int, str] = {}  # line number → why, for lines skipped
        self.partial_tail = False  # the last read met a partial last line (a killed writer)

    @property
    def skipped_lines(self) -> int:
        """Lines the last reads skipped: bad lines (with ``skip_bad_lines``) and a partial
        last line."""
        return len(self.bad_lines) + int(self.partial_tail)

    def skipped_report(self) -> dict[str, Any]:
        """What was skipped, for results.json: the count and the first lines with reasons."""
        return {"count": len(self.bad_lines),
                "lines": [{"line": n, "reason": r}
                          for n, r in sorted(self.bad_lines.items())[:MAX_REPORTED]]}

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, run_dir: str | Path, manifest: dict[str, Any],
               lock: str | None = None) -> RunStore:
        """Make a new run folder; refuses a folder that already holds a run.

        With ``lock`` (the command's name), the new store holds the folder's lock until
        :meth:`release`: another writer can neither create a run there nor write it.
        """
        store = cls(run_dir)
        make_run_dir(store.run_dir)
        if lock is not None:
            store.lock = RunLock(store.run_dir, lock).acquire()
        try:
            if (store.run_dir / EVENTS).exists():
                raise RunExistsError(f"{store.run_dir}: already holds a run; choose another "
                                     f"--out (or finish that run: agentsim resume "
                                     f"{store.run_dir})")
            create_json_exclusive(store.run_dir / MANIFEST, manifest, store.redactor)
            with open(store.run_dir / EVENTS, "x", encoding="utf-8"):
                pass
        except BaseException:
            store.release()
            raise
        return store

    @classmethod
    def open(cls, run_dir: str | Path, lock: str | None = None,
             skip_bad_lines: bool = False) -> RunStore:
        """Open an existing run folder (checks that it has a manifest); with ``lock`` (the
        command's name), take the folder's lock for writing it."""
        store = cls(run_dir, skip_bad_lines=skip_bad_lines)
        if not (store.run_dir / MANIFEST).is_file():
            raise RunStoreError(f"{store.run_dir}: not a run folder (no {MANIFEST})")
        if lock is not None:
            store.lock = RunLock(store.run_dir, lock).acquire()
        return store

    def release(self) -> None:
        """Close the log and give up the folder's lock, if held."""
        self.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def redactor(self) -> Any:
        """The redactor of everything this store writes (secrets known when first used)."""
        if self._redact is None:
            self._redact = new_redactor()
        return self._redact

    # -- manifest and results ---------------------------------------------------------------
    @property
    def run_id(self) -> str:
        """The run id recorded in the manifest."""
        return str(self.read_manifest()["run_id"])

    def read_manifest(self) -> dict[str, Any]:
        """The manifest as data."""
        path = self.run_dir / MANIFEST
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as error:
            raise RunStoreError(f"{path}: unreadable (not UTF-8 at byte {error.start})") \
                from None
        except (OSError, json.JSONDecodeError) as error:
            raise RunStoreError(f"{path}: unreadable ({error})") from None
        if not isinstance(data, dict) or "run_id" not in data:
            raise RunStoreError(f"{path}: unreadable (not a run manifest)")
        return data

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest atomically."""
        write_json_atomic(self.run_dir / MANIFEST, manifest, self.redactor)

    def update_manifest(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the manifest and write it back."""
        manifest = self.read_manifest() | changes
        self.write_manifest(manifest)
        return manifest

    def write_results(self, results: dict[str, Any], name: str = RESULTS) -> Path:
        """Write a results file atomically; returns its path."""
        path = self.run_dir / name
        write_json_atomic(path, results, self.redactor)
        return path

    def read_results(self, name: str = RESULTS) -> dict[str, Any]:
        """Read a results file."""
        path = self.run_dir / name
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, ValueError) as error:
            raise RunStoreError(f"{path}: unreadable ({error})") from None
        if not isinstance(data, dict):
            raise RunStoreError(f"{path}: unreadable (not a JSON object)")
        return data

    # -- events -------------------------------------------------------------------------------
    def append(self, event: EventBase) -> None:
        """Append one event as a whole, flushed line (thread-safe; secrets redacted)."""
        with self._lock:
            messages = getattr(event, "messages", None)
            if messages:  # long message texts go to blobs.jsonl, written before the event
                parts, blobs = self._blob_writer.compact(messages, event.conversation_id,
                                                          self.redactor)
                if blobs:
                    self._write_blobs(blobs)
                event = event.model_copy(update={"messages": parts})
            elif event.type == "conversation_finished":
                self._blob_writer.finished(event.conversation_id)
            line = self.redactor(event.model_dump_json(exclude_none=True)) + "\n"
            if self._handle is None:
                self._handle = open(self.run_dir / EVENTS, "a", encoding="utf-8")  # noqa: SIM115
            self._handle.write(line)
            self._handle.flush()

    def append_lines(self, lines: Iterable[str], batch: int = 1000) -> int:
        """Append events already serialised as the log stores them (JSON, None fields left
        out; events without messages), redacted and flushed ``batch`` lines at a time: a
        judging pass's verdicts, written without being parsed back. Returns how many.
        A batch is redacted as one text: no pattern of the redactor spans a line break."""
        count = 0
        with self._lock:
            if self._handle is None:
                self._handle = open(self.run_dir / EVENTS, "a", encoding="utf-8")  # noqa: SIM115
            lines = iter(lines)
            while chunk := list(itertools.islice(lines, batch)):
                self._handle.write(self.redactor("\n".join(chunk) + "\n"))
                self._handle.flush()
                count += len(chunk)
        return count

    def _write_blobs(self, lines: list[str]) -> None:
        if self._blob_handle is None:
            self._blob_handle = open(self.run_dir / BLOBS, "a", encoding="utf-8")  # noqa: SIM115
        self._blob_handle.write("".join(self.redactor(line) + "\n" for line in lines))
        self._blob_handle.flush()
        if self.blobs._index is not None:  # a reader in this process sees the new texts too
            for line in lines:
                self.blobs.add(json.loads(self.redactor(line)))

    def close(self) -> None:
        """Close the events file (appends reopen it)."""
        with self._lock:
            for name in ("_handle", "_blob_handle"):
                handle = getattr(self, name)
                if handle is not None:
                    handle.close()
                    setattr(self, name, None)

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, bytes) of every whole line; a partial last line is noted, not given."""
        self.partial_tail = False
        path = self.run_dir / EVENTS
        if not path.exists():
            return
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.endswith(b"\n"):
                    self.partial_tail = True  # killed mid-write: the last line is incomplete
                    return
                yield number, line

    def _checked(self) -> Iterator[tuple[int, Any]]:
        """(line number, typed event) of every valid line; a bad one raises or is skipped."""
        for number, line in self._lines():
            try:
                event = EVENT_ADAPTER.validate_json(line)
            except ValidationError as error:
                self._bad_line(number, line, error)
                continue
            yield number, event

    def resolved(self, event: Any) -> Any:
        """``event`` with its message texts back from ``blobs.jsonl`` (see
        :mod:`agentsim.core.blobs`); other events as they are."""
        messages = getattr(event, "messages", None)
        if messages and any("blob" in m for m in messages):
            return event.model_copy(update={"messages": self.blobs.resolve(messages)})
        return event

    def _bad_line(self, number: int, line: bytes, error: ValidationError) -> None:
        """Raise LogLineError for a line that is not a valid event, or (``skip_bad_lines``)
        count it in :attr:`bad_lines`."""
        reason = _describe(line, error)
        if not self.skip_bad_lines:
            raise LogLineError(self.run_dir / EVENTS, number, reason) from None
        self.bad_lines[number] = reason

    def check(self) -> int:
        """Read the whole log once, validating every line; returns the number of valid events.
        Raises :class:`LogLineError` at the first bad line (unless ``skip_bad_lines``)."""
        return sum(1 for _, event in self._checked() if self.resolved(event) is not None)

    def iter_raw(self) -> Iterator[dict[str, Any]]:
        """Stream every valid event as a dict (all attempts; see :meth:`iter_events`)."""
        for _, event in self._checked():
            yield self.resolved(event).model_dump(exclude_none=True)

    def iter_events(self, types: set[str] | None = None, latest_attempt: bool = True,
                    complete_only: bool = False) -> Iterator[EventBase]:
        """Stream typed events, optionally only those whose ``type`` is in ``types``.

        A conversation interrupted by a kill (or failed) and run again on resume has several
        attempts in the log; with ``latest_attempt`` (the default) only the events from its last
        ``conversation_started`` on are yielded, so every reader sees each conversation once,
        and only the judge results of the last judging (those after the last ``run_finished``;
        a resumed run, or one killed while judging, is judged again in full).
        With ``complete_only``, conversations whose last attempt did not finish successfully
        are left out altogether: their partial decisions must not enter any metric. Either costs
        a first pass over the file that keeps a few numbers per conversation.
        """
        if latest_attempt or complete_only:
            starts, excluded, judged_from = self._attempts(complete_only)
        else:
            starts, excluded, judged_from = {}, set(), 0
        for number, event in self._checked():
            if types is not None and event.type not in types:
                continue
            cid = event.conversation_id
            if cid is not None and (number < starts.get(cid, 0) or cid in excluded):
                continue  # an abandoned earlier attempt, or a conversation that failed
            if event.type == "judge_result" and number < judged_from:
                continue  # an earlier (or interrupted) judging of the run
            yield self.resolved(event)

    def _attempts(self, complete_only: bool) -> tuple[dict[str, int], set[str], int]:
        """(line of the last start of each conversation started more than once, conversations
        to leave out because their last attempt did not finish successfully, line of the last
        ``run_finished``)."""
        starts: dict[str, int] = {}
        counts: dict[str, int] = {}
        ok: dict[str, bool] = {}
        last_finished = 0
        for number, event in self._checked():
            kind = event.type
            if kind == "conversation_started":
                cid = event.conversation_id
                starts[cid] = number
                counts[cid] = counts.get(cid, 0) + 1
                ok[cid] = False
            elif kind == "conversation_finished":
                ok[event.conversation_id] = bool(event.ok)
            elif kind == "run_finished":
                last_finished = number
        excluded = {cid for cid, good in ok.items() if not good} if complete_only else set()
        # Only conversations started more than once need filtering by position.
        return ({cid: line for cid, line in starts.items() if counts[cid] > 1}, excluded,
                last_finished)

    def repair_tail(self) -> bool:
        """Cut a partial last line left by a killed writer; True when something was cut.
        Only the holder of the folder's lock may call it (a live writer's line is not partial)."""
        path = self.run_dir / EVENTS
        if not path.exists() or path.stat().st_size == 0:
            return False
        with open(path, "rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return False
            size = handle.seek(0, os.SEEK_END)
            keep, block = 0, 65536
            position = size
            while position > 0:  # find the last newline from the end, block by block
                start = max(0, position - block)
                handle.seek(start)
                chunk = handle.read(position - start)
                index = chunk.rfind(b"\n")
                if index >= 0:
                    keep = start + index + 1
                    break
                position = start
            handle.truncate(keep)
            return True
