"""The SQLite store behind :class:`agentsim.models.cache.DiskCache`: one database per cache
folder, WAL mode, a background writer thread that commits pending answers in batches, the size
bound with least-recently-used eviction, and the read fallback to the per-file JSON layout of
earlier versions (see the cache module's docstring for the guarantees)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENV = "AGENTSIM_CACHE_DIR"
MAX_ENV = "AGENTSIM_CACHE_MAX_MB"
DEFAULT_MAX_MB = 2048.0
DB_NAME = "calls.sqlite3"
BUSY_TIMEOUT_S = 30.0
BATCH_DELAY_S = 0.05  # the writer gathers puts this long before a commit
LOW_WATER = 0.9  # eviction frees down to this fraction of the bound
WAL_LIMIT = 64 * 1024 * 1024
FLUSH_TIMEOUT_S = 120.0
IDLE_EXIT_S = 10.0  # an idle writer thread ends (its connection closed) after this long
KEY_MEMO = 1024  # keys of requests missed and not yet written (calls in flight)

log = logging.getLogger("agentsim.models.cache")


SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY NOT NULL,
    answer TEXT NOT NULL,
    used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_used ON calls(used);
"""


Prepare = Callable[[], Callable[[dict[str, Any]], dict[str, Any]]]
"""Made once a batch by the writer thread: a function that readies an answer for the disk."""
Entry = tuple[str, float, "Prepare | None"]


def _prepared(batch: dict[str, Entry]) -> dict[str, tuple[str, float]]:
    """The batch as written: each answer through its ``prepare`` (one made per batch)."""
    made: dict[Prepare, Callable[[dict[str, Any]], dict[str, Any]]] = {}
    out: dict[str, tuple[str, float]] = {}
    for key, (text, used, prepare) in batch.items():
        if prepare is not None:
            try:
                if prepare not in made:
                    made[prepare] = prepare()
                text = json.dumps(made[prepare](json.loads(text)))
            except Exception as error:  # noqa: BLE001 - a bad entry is not written, not fatal
                log.warning("model-call cache: an answer was not written (%s)", error)
                continue
        out[key] = (text, used)
    return out


class _Unusable(Exception):
    """The database cannot be used (not SQLite, unreadable, unwritable)."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA synchronous = NORMAL")  # safe in WAL mode; a cache may lose its last
    return conn


def _is_legacy(folder: Path) -> bool:
    """Whether ``folder`` holds the per-call JSON shards of earlier versions."""
    try:
        return any(len(p.name) == 2 and p.is_dir() and all(c in "0123456789abcdef" for c in p.name)
                   for p in folder.iterdir())
    except OSError:
        return False


class _Store:
    """One database file of this process: a reader connection, pending writes, a writer thread."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.path = folder / DB_NAME
        self.max_bytes = max_bytes
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.pending: dict[str, Entry] = {}  # key -> (answer JSON, used, prepare)
        self.inflight: dict[str, Entry] = {}  # the batch being committed
        self.touched: dict[str, float] = {}  # key -> last read, not recorded yet
        self.busy = False  # the writer is committing a batch
        self.idle = False  # the writer waits for work: a put must wake it
        self.flushing = 0  # callers waiting in flush(): commit at once
        self.stopping = False
        self.closed = False
        self.disabled = False
        self.failed_writes = 0
        self.thread: threading.Thread | None = None
        self.reader: sqlite3.Connection | None = None
        self.read_lock = threading.Lock()
        self.legacy = False
        try:
            self.reader = self._open()
        except _Unusable as error:
            self._disable(str(error))

    # --- opening ----------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path)
        except OSError as error:
            raise _Unusable(f"cannot create {self.folder}: {error}") from None
        except sqlite3.Error as error:
            raise _Unusable(f"{self.path} is not a usable cache database ({error})") from None
        try:
            for attempt in range(5):
                try:
                    self._setup(conn)
                    break
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) and "busy" not in str(error) or attempt == 4:
                        raise
                    time.sleep(0.1 * (attempt + 1))
        except sqlite3.Error as error:
            conn.close()
            raise _Unusable(f"{self.path} is not a usable cache database ({error})") from None
        self.legacy = _is_legacy(self.folder)
        return conn

    @staticmethod
    def _setup(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect on a new file only
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"journal mode {mode}, not WAL")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("PRAGMA user_version = 1")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if conn.in_transaction:
                conn.execute("COMMIT")
        conn.execute("SELECT 1 FROM calls LIMIT 1").fetchall()  # a foreign file fails here

    def _disable(self, why: str) -> None:
        if not self.disabled:
            log.warning("model-call cache off: %s; delete that file or choose another "
                        "--cache-dir to use a cache", why)
        self.disabled = True
        with self.lock:
            self.pending.clear()
            self.inflight = {}
            self.touched.clear()
            self.cond.notify_all()

    # --- the caller's side ------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        if self.disabled:
            return None
        now = time.time()
        with self.lock:
            item = self.pending.get(key)
            if item is not None:
                self.pending[key] = (item[0], now, item[2])  # used now: written with that time
                return item[0]
            item = self.inflight.get(key)
            if item is not None:
                self.touched[key] = now
                return item[0]
        if self.reader is None:
            return None
        try:
            with self.read_lock:
                row = self.reader.execute("SELECT answer FROM calls WHERE key = ?",
                                          (key,)).fetchone()
        except sqlite3.DatabaseError as error:
            self._disable(f"{self.path} cannot be read ({error})")
            return None
        if row is not None:
            with self.lock:
                self.touched[key] = now
                self._wake()
            return row[0]
        if self.legacy:
            return self._legacy(key)
        return None

    def _legacy(self, key: str) -> str | None:
        try:
            text = (self.folder / key[:2] / f"{key}.json").read_text("utf-8")
            json.loads(text)
        except (OSError, ValueError):
            return None
        self.put(key, text)  # into the database, where eviction and last use apply
        return text

    def put(self, key: str, answer: str, prepare: Prepare | None = None) -> bool:
        """Queue a write; False when this store is closed (the caller reopens)."""
        if self.disabled:
            return True
        with self.lock:
            if self.closed:
                return False
            self.pending[key] = (answer, time.time(), prepare)
            self._wake()
        return True

    def _wake(self) -> None:  # with self.lock held
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name=f"agentsim-cache:{self.path}",
                                           daemon=True)
            self.thread.start()
        elif self.idle:  # only then: waking a gathering writer on every put costs the GIL
            self.cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything pending is committed; False if that did not happen in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            if self.thread is None or self.disabled or not self.thread.is_alive():
                return not self.pending and not self.inflight and not self.touched
            self.flushing += 1
            self.cond.notify_all()
            try:
                while self.pending or self.touched or self.busy:
                    left = None if deadline is None else deadline - time.monotonic()
                    if (left is not None and left <= 0) or self.disabled \
                            or not self.thread.is_alive():
                        break
                    self.cond.wait(left if left is not None else 1.0)
                return not self.pending and not self.inflight and not self.touched
            finally:
                self.flushing -= 1

    def close(self, timeout: float | None = 60.0) -> None:
        if self.closed:
            return
        done = self.flush(timeout)
        with self.lock:
            self.closed = self.stopping = True
            unwritten = len(self.pending) + len(self.inflight)
            self.cond.notify_all()
            thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        if not done and unwritten and not self.disabled:
            log.warning("model-call cache: %d answers could not be written to %s", unwritten,
                        self.path)
        if self.reader is not None:
            with self.read_lock:
                self.reader.close()
                self.reader = None

    # --- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        backoff = 0.05
        while True:
            with self.lock:
                while not (self.pending or self.touched) and not self.stopping:
                    self.idle = True
                    if not self.cond.wait(IDLE_EXIT_S) and not (self.pending or self.touched):
                        self.idle = False  # idle a while: end, and the next put starts one
                        self.thread = None
                        if conn is not None:
                            conn.close()
                        return
                self.idle = False
                if not (self.pending or self.touched) and self.stopping:
                    break
                deadline = time.monotonic() + BATCH_DELAY_S  # gather a batch (puts notify)
                while not self.flushing and not self.stopping and not self.disabled:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.cond.wait(left)
                if self.disabled:
                    break
                batch = self.inflight = self.pending
                self.pending = {}
                touched, self.touched = self.touched, {}
                self.busy = True
            try:
                if conn is None:
                    conn = _connect(self.path)
                self._commit(conn, _prepared(batch), touched)
                self._bound(conn)
                backoff = 0.05
            except sqlite3.OperationalError as error:  # locked beyond the busy timeout, disk full
                self._requeue(batch, touched)
                self.failed_writes += 1
                if self.failed_writes % 50 == 1:  # the first time, then now and then
                    log.warning("model-call cache: writing to %s failed (%s); retrying",
                                self.path, error)
                if self.stopping:
                    with self.lock:
                        self.busy = False
                        self.cond.notify_all()
                    break
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            except sqlite3.DatabaseError as error:
                self._disable(f"{self.path} cannot be written ({error})")
            finally:
                with self.lock:
                    self.busy = False
                    self.inflight = {}
                    self.cond.notify_all()
            if self.disabled:
                break
        if conn is not None:
            conn.close()

    def _requeue(self, batch: dict[str, Entry], touched: dict[str, float]) -> None:
        with self.lock:
            for key, item in batch.items():
                self.pending.setdefault(key, item)
            for key, used in touched.items():
                self.touched.setdefault(key, used)

    @staticmethod
    def _commit(conn: sqlite3.Connection, batch: dict[str, tuple[str, float]],
                touched: dict[str, float]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if batch:
                conn.executemany(
                    "INSERT INTO calls (key, answer, used) VALUES (?, ?, ?) ON CONFLICT(key) "
                    "DO UPDATE SET answer = excluded.answer, used = MAX(used, excluded.used)",
                    [(key, answer, used) for key, (answer, used) in batch.items()])
            if touched:
                conn.executemany("UPDATE calls SET used = MAX(used, ?) WHERE key = ?",
                                 [(used, key) for key, used in touched.items()])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _bound(self, conn: sqlite3.Connection) -> None:
        """Evict the least recently used entries while the database is over its bound."""
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        evicted = False
        for _ in range(8):
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            if pages * page_size <= self.max_bytes:
                break
            evicted = True
            conn.execute("BEGIN IMMEDIATE")
            try:
                free = conn.execute("PRAGMA freelist_count").fetchone()[0]
                live = (pages - free) * page_size
                excess = live - LOW_WATER * self.max_bytes
                count = conn.execute("SELECT count(*) FROM calls").fetchone()[0] \
                    if excess > 0 else 0
                if count:
                    evict = max(1, min(count, int(excess / (live / count)) + 1))
                    conn.execute("DELETE FROM calls WHERE rowid IN (SELECT rowid FROM calls "
                                 "ORDER BY used, rowid LIMIT ?)", (evict,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            # The freed pages back to the file system. (executescript, not execute: this pragma
            # frees one page a step, and execute steps a statement without result columns once.)
            conn.executescript("PRAGMA incremental_vacuum;")
            if not count and not free:
                break
        if evicted:  # a complete checkpoint also truncates the database file to its new size
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


# One store per database file in this process, shared by every DiskCache on that folder.
_STORES: dict[Path, _Store] = {}
_STORES_LOCK = threading.Lock()


def _store_for(folder: Path, max_bytes: int) -> _Store:
    path = folder.expanduser().absolute() / DB_NAME
    with _STORES_LOCK:
        store = _STORES.get(path)
        if store is None or store.closed or store.pid != os.getpid():
            store = _STORES[path] = _Store(folder, max_bytes)
        else:
            store.max_bytes = max_bytes  # the folder's bound: the latest setting applies
        return store


def _close_all() -> None:
    with _STORES_LOCK:
        stores = list(_STORES.values())
        _STORES.clear()
    for store in stores:
        if store.pid == os.getpid():
            store.close()
