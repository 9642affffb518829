"""The ``processes`` executor: conversations run in worker processes on this machine.

One worker process per core by default, each with its own model client and an equal share of
every model's rate limits (rpm, tpm and calls in flight divided among the workers). The driver
writes the log (:mod:`agentsim.executors.remote`).

Each worker has a pipe of its own, and the driver waits on the pipes and on the processes
themselves (``multiprocessing.connection.wait``). A worker that dies loses only the batch it was
running (its conversations fail, kind ``worker``) and is replaced; a half-written result of a
killed worker is never read, so nothing can wait for the rest of it (a shared result queue, as
in ``concurrent.futures``, can hang for ever on one).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import wait as wait_for
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
STOP_S = 10.0  # a closing worker's time to finish its batch before it is terminated


class WorkerDied(RuntimeError):
    """The worker process running a batch died (killed, or crashed) before it answered."""


def _serve(spec: WorkerSpec, index: int, conn: Any) -> None:
    """A worker process: run each batch the driver sends, answer with its result."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    worker = Worker(spec, index)
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return  # the driver is gone
        if batch is None:
            return
        try:
            result: Any = worker.run(batch)
        except BaseException as error:  # noqa: BLE001 - sent back: the batch's conversations fail
            result = RuntimeError(f"{type(error).__name__}: {error}")
        conn.send(result)


def cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Handle:
    """A batch sent (or waiting) to a worker, and its outcome once done."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.done = False
        self.outcome: BatchResult | BaseException | None = None

    def finish(self, outcome: BatchResult | BaseException) -> None:
        self.outcome, self.done = outcome, True


class ProcessPool:
    """Worker processes, each on its own pipe; a dead one is replaced (same share index)."""

    def __init__(self, spec: WorkerSpec, slots: int, start_method: str) -> None:
        self.spec, self.slots = spec, slots
        self.context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":  # imported once by the server, not by each worker
            self.context.set_forkserver_preload(list(PRELOAD))
        self.workers: list[tuple[Any, Any]] = [self._start(i) for i in range(slots)]
        self.busy: dict[int, Handle] = {}  # worker index → the batch it runs
        self.queue: deque[Handle] = deque()

    def _start(self, index: int) -> tuple[Any, Any]:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(self.spec, index, theirs),
                                       daemon=True)
        process.start()
        theirs.close()  # the worker's end: its death then reads as the pipe's end here
        return process, ours

    def _restart(self, index: int) -> None:
        process, conn = self.workers[index]
        conn.close()
        if process.is_alive():
            process.terminate()
        process.join(timeout=STOP_S)
        self.workers[index] = self._start(index)

    def _dispatch(self) -> None:
        for index in range(self.slots):
            if index in self.busy or not self.queue:
                continue
            handle = self.queue.popleft()
            try:
                self.workers[index][1].send(handle.batch)
            except (OSError, ValueError):  # a worker that died idle: replace it, send again
                self._restart(index)
                self.workers[index][1].send(handle.batch)
            self.busy[index] = handle

    def submit(self, batch: Batch) -> Handle:
        handle = Handle(batch)
        self.queue.append(handle)
        self._dispatch()
        return handle

    def wait(self, handles: Sequence[Handle]) -> list[tuple[Handle, Any]]:
        """Block until a handle is done: a worker answered, or died running it."""
        while not any(h.done for h in handles):
            pipes = {self.workers[i][1]: i for i in self.busy}
            deaths = {self.workers[i][0].sentinel: i for i in self.busy}
            for ready in wait_for([*pipes, *deaths]):
                index = deaths.get(ready, pipes.get(ready))
                if index not in self.busy:
                    continue  # already settled through its other handle this round
                process, conn = self.workers[index]
                outcome: Any
                if ready in deaths or not process.is_alive():
                    # Dead: whatever it wrote last may be half a message, so it is not read.
                    outcome = WorkerDied(f"worker process {process.pid} died "
                                         f"(exit code {process.exitcode})")
                    self._restart(index)
                else:
                    try:
                        outcome = conn.recv()
                    except (EOFError, OSError) as error:
                        outcome = WorkerDied(f"worker process {process.pid}: {error}")
                        self._restart(index)
                self.busy.pop(index).finish(outcome)
            self._dispatch()
        return [(h, h.outcome) for h in handles if h.done]

    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [process.pid for process, _ in self.workers]

    def close(self, abort: bool = False) -> None:
        """Stop the workers: after their batches (or at once with ``abort``)."""
        self.queue.clear()
        for process, conn in self.workers:
            try:
                if not abort:
                    conn.send(None)
            except (OSError, ValueError):
                pass
        for process, conn in self.workers:
            process.join(timeout=0 if abort else STOP_S)
            if process.is_alive():
                process.terminate()
                process.join(timeout=STOP_S)
            conn.close()


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
