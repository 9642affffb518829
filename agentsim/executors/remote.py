"""The driver's side of the executors that run conversations in other processes.

The plan is cut into batches (:func:`agentsim.executors.worker.batches_of`); a pool of workers
runs them (:class:`Pool`: processes on this machine, or Ray actors); the driver takes each
batch's result as soon as it is back and appends its events to the run store, one whole
conversation after the other, then calls ``on_done``. The log has a single writer, and a killed
driver loses only the batches in flight (``agentsim resume`` runs them again).

A worker that raised, died or could not be reached turns every conversation of its batch into a
failed conversation with an ``error`` event of kind ``worker``; the run goes on (on a new worker)
and exits non-zero, as any run with failed conversations.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from agentsim.core.events import ConversationFinished, ConversationStarted, ErrorEvent
from agentsim.core.jobs import ConversationJob
from agentsim.executors.local import LocalExecutor
from agentsim.executors.worker import (
    Batch,
    BatchResult,
    Finished,
    WorkerSpec,
    batches_of,
    driver_modes,
    forwarded_env,
    max_workers_for,
    per_worker,
)

WORKER_ERROR = "worker"  # the kind of an error event of a conversation its worker lost
BATCHES_PER_WORKER = 4  # at least this many batches per worker, so that results stream back
MAX_BATCH = 16  # ... and at most this many conversations in one


class Pool(Protocol):
    """Workers running batches: what :class:`RemoteExecutor` needs of processes or Ray."""

    slots: int  # workers

    def submit(self, batch: Batch) -> Any:
        """Start ``batch`` on a worker; a handle to wait on."""

    def wait(self, handles: Sequence[Any]) -> list[tuple[Any, BatchResult | BaseException]]:
        """Block until at least one handle is done; each done one with its result or the
        exception that lost it."""

    def close(self, abort: bool = False) -> None:
        """Stop the workers (``abort``: at once, the run is being interrupted)."""


class RemoteExecutor(LocalExecutor):
    """Base of the executors whose workers are other processes.

    ``run(jobs, work)`` keeps the executor contract for a ``work`` coroutine (which holds live
    objects and cannot leave this process): it runs here, as the local executor runs it. The
    runner ships plans with :meth:`run_plan`.
    """

    def __init__(self, concurrency: int = 4, workers: int | None = None,
                 batch_size: int | None = None) -> None:
        super().__init__(concurrency)
        self.workers = workers
        self.batch_size = batch_size
        self.pool: Pool | None = None  # the workers of the run in progress

    async def run(self, jobs: Sequence[Any], work: Callable[[Any], Awaitable[bool]],
                  on_done: Callable[[Any, bool], None] | None = None) -> list[bool]:
        """Run the ``work`` coroutine on every job in this process (see the class)."""
        return await super().run(jobs, work, on_done)

    # -- to be given by each executor ---------------------------------------------------------
    def default_workers(self) -> int:
        """Workers when the option is not given."""
        raise NotImplementedError

    def open_pool(self, spec: WorkerSpec, slots: int) -> Pool:
        """Start ``slots`` workers for ``spec``."""
        raise NotImplementedError

    # -- the driver ---------------------------------------------------------------------------
    def run_plan(self, store: Any, plan: Any, options: Any, client: Any,
                 on_done: Callable[[ConversationJob, bool], None] | None = None,
                 should_stop: Callable[[], bool] = lambda: False) -> list[bool | None]:
        """Run ``plan`` on the workers into ``store``; the ok flag of each job in plan order
        (None: not started because ``should_stop()`` said so after an earlier result)."""
        jobs = list(plan.jobs)
        outcomes: list[bool | None] = [None] * len(jobs)
        if not jobs:
            return outcomes
        slots = max_workers_for(options, self.workers or self.default_workers())
        slots = min(slots, len(jobs))
        size = self.batch_size or min(MAX_BATCH, max(1, math.ceil(
            len(jobs) / (slots * BATCHES_PER_WORKER))))
        spec = WorkerSpec(run_id=store.run_id, options=options, scenarios=dict(plan.scenarios),
                          catalogue=plan.catalogue, modes=driver_modes(client),
                          concurrency=per_worker(self.concurrency, slots), workers=slots,
                          env=forwarded_env())
        waiting = deque(batches_of(jobs, plan.prefixes, size))
        pool = self.pool = self.open_pool(spec, slots)
        in_flight: dict[Any, Batch] = {}
        aborted = True
        try:
            while waiting or in_flight:
                while waiting and len(in_flight) < 2 * pool.slots and not should_stop():
                    batch = waiting.popleft()
                    in_flight[pool.submit(batch)] = batch
                if not in_flight:
                    break  # stopped: the batches not started stay for resume
                for handle, result in pool.wait(list(in_flight)):
                    batch = in_flight.pop(handle)
                    if isinstance(result, BaseException):
                        result = lost(batch, store.run_id, result)
                    self._write(store, jobs, result, outcomes, client, on_done)
            aborted = False
        finally:
            self.pool = None
            pool.close(abort=aborted)
        return outcomes

    @staticmethod
    def _write(store: Any, jobs: list[ConversationJob], result: BatchResult,
               outcomes: list[bool | None], client: Any,
               on_done: Callable[[ConversationJob, bool], None] | None) -> None:
        for name, facts in result.served.items():
            client.served.setdefault(name, {}).update(facts)
        for finished in result.finished:
            append = store.append
            for event in finished.events:
                append(event)
            outcomes[finished.position] = finished.ok
            if on_done is not None:
                on_done(jobs[finished.position], finished.ok)


def lost(batch: Batch, run_id: str, error: BaseException) -> BatchResult:
    """A batch whose worker raised or died: each of its conversations failed, with an error
    event saying why (the driver writes them as a worker would have)."""
    message = f"the worker running this conversation was lost: {type(error).__name__}: {error}"
    finished = []
    for position, job in zip(batch.positions, batch.jobs):
        ids = {"run_id": run_id, "conversation_id": job.conversation_id, "variant": job.variant,
               "arm": job.arm, "replicate": job.replicate, "seed": job.seed}
        finished.append(Finished(position, False, [
            ConversationStarted(**ids, scenario_id=job.scenario_id, protocol=job.protocol,
                                setting=job.setting, job=job.model_dump()),
            ErrorEvent(**ids, error_type=type(error).__name__, message=message[:2000],
                       kind=WORKER_ERROR),
            ConversationFinished(**ids, ok=False)]))
    return BatchResult(finished)
