"""The ``processes`` executor: conversations run in worker processes on this machine.

One worker process per core by default (``spawn`` context: a clean interpreter, safe beside
threads), each with its own model client and an equal share of every model's rate limits (rpm,
tpm and calls in flight divided among the workers). The driver writes the log
(:mod:`agentsim.executors.remote`). A worker process that dies breaks the pool: the batches in
flight become failed conversations and a new pool runs the rest.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentsim.executors.remote import RemoteExecutor
from agentsim.executors.worker import Batch, BatchResult, Worker, WorkerSpec
from agentsim.registry import executor

StartMethod = Literal["spawn", "forkserver", "fork"]
# What every worker imports anyway: with ``forkserver`` the server imports it once and each worker
# is forked from it ready (spawning a worker otherwise costs seconds of imports).
PRELOAD = ("agentsim.executors.processes", "agentsim.runs.runner",
           "agentsim.orchestrator.discussion", "agentsim.orchestrator.clinical",
           "agentsim.orchestrator.setup", "agentsim.testing.scripted")
DEFAULT_START = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() \
    else "spawn"
_WORKER: Worker | None = None  # the worker of this process (set by the pool's initializer)


def _start(spec: WorkerSpec, indexes: Any) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    try:
        index = indexes.get(timeout=5)
    except Exception:  # noqa: BLE001 - a replacement process: any share index will do
        index = 0
    _WORKER = Worker(spec, index)


def _run(batch: Batch) -> BatchResult:
    if _WORKER is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker process not initialised")
    return _WORKER.run(batch)


def _outcome(future: Future) -> Any:
    """A done future's result, or the exception that lost its batch."""
    error = future.exception()
    return error if error is not None else future.result()


def cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class ProcessPool:
    """Worker processes, restarted as a new pool when one of them dies."""

    def __init__(self, spec: WorkerSpec, slots: int, start_method: str) -> None:
        self.spec, self.slots = spec, slots
        self.context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":  # imported once by the server, not by each worker
            self.context.set_forkserver_preload(list(PRELOAD))
        self.pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        indexes = self.context.Queue()
        for index in range(self.slots):
            indexes.put(index)
        return ProcessPoolExecutor(self.slots, mp_context=self.context, initializer=_start,
                                   initargs=(self.spec, indexes))

    def submit(self, batch: Batch) -> Future:
        try:
            return self.pool.submit(_run, batch)
        except BrokenProcessPool:
            self.close(abort=True)
            self.pool = self._new()
            return self.pool.submit(_run, batch)

    def wait(self, handles: Sequence[Future]) -> list[tuple[Future, Any]]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
            # Every other batch in flight is lost with the pool: the pool fails them at once.
            done, _ = wait(handles, timeout=60)
            out = [(f, _outcome(f) if f in done else BrokenProcessPool("a worker process died"))
                   for f in handles]
            self.close(abort=True)
            self.pool = self._new()
            return out
        return [(f, _outcome(f)) for f in done]

    def pids(self) -> list[int]:
        """The worker processes' ids (those started so far)."""
        return [p.pid for p in getattr(self.pool, "_processes", {}).values()]

    def close(self, abort: bool = False) -> None:
        # Aborting cancels the batches not started; those running finish (seconds at most) and
        # their processes exit. Terminating them instead could cut a result in the middle of
        # the pipe and leave the pool's reader thread waiting for the rest for ever.
        self.pool.shutdown(wait=not abort, cancel_futures=True)


@executor("processes")
class ProcessExecutor(RemoteExecutor):
    """Conversations in worker processes on this machine; the driver writes the log.

    ``workers`` processes (default: one per core), ``concurrency`` conversations in flight in all
    of them together, ``batch_size`` conversations per batch (default: small enough that results
    stream back, at most 16), ``start_method`` (default ``forkserver`` where there is one).
    """

    class Options(BaseModel):
        """Options of the processes executor."""

        model_config = ConfigDict(extra="forbid")

        concurrency: int = Field(default=4, ge=1, description="Conversations in flight, all "
                                 "workers together.")
        workers: int | None = Field(default=None, ge=1, description="Worker processes "
                                    "(default: one per core).")
        batch_size: int | None = Field(default=None, ge=1, description="Conversations per "
                                       "batch (default: at most 16, four batches per worker).")
        start_method: StartMethod = Field(default=DEFAULT_START, description="How workers start "
                                          "(multiprocessing start method).")

    def __init__(self, concurrency: int = 4, workers: int | None = None,
                 batch_size: int | None = None,
                 start_method: StartMethod = DEFAULT_START) -> None:
        super().__init__(concurrency, workers, batch_size)
        self.start_method = start_method

    def default_workers(self) -> int:
        return cores()

    def open_pool(self, spec: WorkerSpec, slots: int) -> ProcessPool:
        return ProcessPool(spec, slots, self.start_method)
