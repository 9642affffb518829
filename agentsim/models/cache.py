"""An on-disk cache of model calls, so that re-running an experiment costs nothing.

The key is a hash of everything that determines an answer: the model name, the endpoint that
serves it (API base, router deployments, structured-output mode, extra parameters: the same name
on another server is another model), the messages, the JSON schema, the sampling parameters, the
call's seed and the replicate number — replicates of a conversation therefore never collapse into
copies of one another — and the request's ``facts`` when it has them (the scripted model's answers
depend on the scenario's coding, which no prompt shows). The client keys a hosted model's call
without its facts (``client.cached_as``: such a model never sees them), so a request answered by
anyone but an in-process provider has the key it always had. Failed calls are never cached.

Storage: ONE SQLite database per cache folder, ``<folder>/calls.sqlite3``, in WAL mode. The folder
is ``--cache-dir``, else ``$AGENTSIM_CACHE_DIR``, else ``~/.cache/agentsim/calls``.

* Reads are a primary-key lookup (tens of microseconds). A read first looks at the writes of this
  process that are not committed yet, so a run always sees its own answers.
* Writes never touch the disk in the caller's thread: :meth:`DiskCache.put` puts the answer in an
  in-memory table and a background writer thread commits everything pending in one transaction
  (``BEGIN IMMEDIATE`` with a busy timeout, so several processes can share a folder: runs side by
  side, or the workers of a multi-process executor). :meth:`DiskCache.flush` waits until all is
  committed; the runner calls it at the end of a run, and every cache is flushed and closed at
  interpreter exit. All ``DiskCache`` objects of one process on one folder share one store (one
  reader connection, one writer thread), so a second client in the same process sees the first
  one's pending writes too. A forked child starts with a fresh store of its own.
* Size is bounded: ``max_mb`` (constructor), else ``$AGENTSIM_CACHE_MAX_MB``, else 2048 MiB. Each
  entry records when it was last used (read or written; reads are recorded in batches by the
  writer). After a commit the writer compares the database's size (``page_count × page_size``,
  two pragmas, no scan) with the bound and, when over, deletes the least recently used entries
  down to 90 % of it, then returns the freed pages to the file system (incremental vacuum). The
  WAL file beside the database is kept under 64 MiB.
* Old caches: a folder that still holds the per-call JSON files of earlier versions (``ab/<key>
  .json``) keeps working: on a miss the old file is read and, if present, copied into the
  database. Folders without old files never pay for this (checked once, when the store opens).
* A file at the database path that is not an SQLite database (or a folder that cannot be
  written) is never overwritten: one warning names the file and the cache is off for that folder
  (every read a miss, writes dropped), so the run goes on uncached.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import threading
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

from agentsim.models import cache_store
from agentsim.models.base import ModelRequest

from agentsim.models.cache_store import (  # noqa: F401  (the store's settings, for callers)
    BATCH_DELAY_S,
    BUSY_TIMEOUT_S,
    DB_NAME,
    DEFAULT_MAX_MB,
    ENV,
    FLUSH_TIMEOUT_S,
    IDLE_EXIT_S,
    KEY_MEMO,
    LOW_WATER,
    MAX_ENV,
    WAL_LIMIT,
    Prepare,
    _close_all,
    _store_for,
    _Store,
    _STORES,
    log,
)

__all__ = ["DB_NAME", "ENV", "MAX_ENV", "DiskCache", "cache_key", "default_cache_dir"]


def default_cache_dir() -> Path:
    """Where the cache lives unless told otherwise."""
    return Path(os.environ.get(ENV) or Path.home() / ".cache" / "agentsim" / "calls")


def default_max_mb() -> float:
    """The size bound unless told otherwise: ``$AGENTSIM_CACHE_MAX_MB``, else 2048."""
    raw = os.environ.get(MAX_ENV)
    if not raw:
        return DEFAULT_MAX_MB
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{MAX_ENV}={raw!r} is not a number of megabytes") from None
    if value <= 0:
        raise ValueError(f"{MAX_ENV}={raw!r}: the cache's bound must be positive")
    return value


def cache_key(request: ModelRequest, endpoint: str = "") -> str:
    """The hash of everything that determines a model's answer; ``endpoint`` is the identity of
    the endpoint serving ``request.model`` (see Endpoint.identity)."""
    parts: dict[str, Any] = {
        "model": request.model, "endpoint": endpoint, "messages": request.messages,
        "schema": request.schema, "temperature": request.temperature,
        "max_tokens": request.max_tokens, "seed": request.seed, "replicate": request.replicate,
        "purpose": request.purpose}
    if request.facts is not None:  # only then: every other request keeps its key
        parts["facts"] = request.facts
    if request.top_p is not None:  # likewise
        parts["top_p"] = request.top_p
    material = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


def _after_fork() -> None:
    """A forked child owns none of its parent's stores (their threads did not come along)."""
    cache_store._STORES_LOCK = threading.Lock()
    _STORES.clear()
    for cache in list(_OPEN):
        cache._store = None


_OPEN: weakref.WeakSet[DiskCache] = weakref.WeakSet()
atexit.register(_close_all)
os.register_at_fork(after_in_child=_after_fork)


class DiskCache:
    """Model answers by request, in one SQLite file in a folder (see the module's docstring).

    Opening is lazy: nothing is created on disk until the first read or write."""

    #: A subclass's preparation of answers for the disk (``RedactingCache`` removes secrets):
    #: called by the writer thread once a batch, so the caller pays nothing for it. Reads of
    #: answers not yet written return them as they were put.
    prepare_for_disk: ClassVar[Prepare | None] = None

    def __init__(self, folder: str | Path | None = None, max_mb: float | None = None) -> None:
        self.folder = Path(folder) if folder else default_cache_dir()
        self.max_mb = float(max_mb) if max_mb is not None else default_max_mb()
        if self.max_mb <= 0:
            raise ValueError("the cache's bound (max_mb) must be positive")
        self._store: _Store | None = None
        # The client gets, calls the model, then puts the same request object: its key (the
        # JSON of its messages, hashed) is computed once. Held with the request itself, so an
        # id is never mistaken for another object's.
        self._keys: OrderedDict[tuple[int, str], tuple[ModelRequest, str]] = OrderedDict()
        _OPEN.add(self)

    def _key(self, request: ModelRequest, endpoint: str, forget: bool = False) -> str:
        memo = (id(request), endpoint)
        known = self._keys.pop(memo, None) if forget else self._keys.get(memo)
        if known is not None and known[0] is request:
            return known[1]
        key = cache_key(request, endpoint)
        if not forget:
            self._keys[memo] = (request, key)
            if len(self._keys) > KEY_MEMO:
                try:
                    self._keys.popitem(last=False)
                except KeyError:  # emptied by another thread meanwhile
                    pass
        return key

    @property
    def path(self) -> Path:
        """The database file."""
        return self.folder / DB_NAME

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 1024 * 1024)

    def _open(self) -> _Store:
        store = self._store
        if store is None or store.closed or store.pid != os.getpid():
            store = self._store = _store_for(self.folder, self.max_bytes)
        return store

    def get(self, request: ModelRequest, endpoint: str = "") -> dict[str, Any] | None:
        """The stored answer, or None (a missing or unreadable entry is a miss). Sees this
        process's pending writes; a primary-key lookup otherwise."""
        text = self._open().get(self._key(request, endpoint))
        if text is None:
            return None  # the model is called next, and the answer put with this key
        self._keys.pop((id(request), endpoint), None)
        try:
            return json.loads(text)
        except ValueError:
            return None

    def put(self, request: ModelRequest, answer: dict[str, Any], endpoint: str = "") -> None:
        """Store an answer (text and token counts): queued in memory at once, committed by the
        writer thread shortly after (see :meth:`flush`)."""
        key, text, prepare = self._key(request, endpoint, forget=True), json.dumps(answer), \
            type(self).prepare_for_disk
        if not self._open().put(key, text, prepare):  # closed meanwhile by another thread
            self._store = None
            self._open().put(key, text, prepare)

    def flush(self, timeout: float | None = FLUSH_TIMEOUT_S) -> bool:
        """Wait until every pending write is committed; False (and a warning) if that did not
        happen within ``timeout`` seconds (the database locked by another process all along,
        a full disk): the writer keeps trying until the process exits."""
        store = self._store or _STORES.get(self.folder.expanduser().absolute() / DB_NAME)
        if store is None or store.closed or store.pid != os.getpid():
            return True  # nothing of this process pending for this folder
        done = store.flush(timeout)
        if not done and not store.disabled:
            log.warning("model-call cache: answers still unwritten to %s after %g s",
                        store.path, timeout)
        return done

    def close(self) -> None:
        """Flush and release the folder's store (the writer thread, the connections). The cache
        stays usable: a later read or write opens it again."""
        store, self._store = self._store, None
        if store is not None and store.pid == os.getpid():
            store.close()

    @property
    def disabled(self) -> bool:
        """Whether the database was found unusable (the cache is then off)."""
        return self._open().disabled

    def __enter__(self) -> DiskCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:  # to a worker process: the folder and bound only
        return {"folder": self.folder, "max_mb": self.max_mb}  # not the store, nor the memo

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["folder"], state["max_mb"])  # type: ignore[misc]
