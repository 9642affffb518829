"""What a worker of the ``processes`` and ``ray`` executors runs: batches of conversations.

A worker never touches the run folder. It builds its own model client from the run's options,
exactly as the driver does (:func:`agentsim.runs.clients.build_client`), with the structured
output modes the driver's preflight chose and its share of every model's rate limits; it runs
each conversation of a batch into a :class:`MemorySink` and returns the typed events. The driver
appends them to the one :class:`~agentsim.core.store.RunStore`, conversation by conversation, so
the log is written by one process and never interleaves half-conversations of two workers.

Everything here is picklable and importable by name (Ray and ``spawn`` import this module in
the worker).
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentsim.core.events import EventBase
from agentsim.core.jobs import ConversationJob
from agentsim.core.plan import Prefix

# Environment variables a worker takes from the driver: agentsim's own (home, cache folder) and
# litellm's offline switch. API keys are not shipped: a worker reads them from its own node.
FORWARDED_PREFIXES = ("AGENTSIM_", "LITELLM_")


def forwarded_env() -> dict[str, str]:
    """The driver's environment variables a worker adopts."""
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_PREFIXES)}


class MemorySink:
    """Keeps one conversation's events in memory: the ``append(event)`` of a RunStore."""

    def __init__(self) -> None:
        self.events: list[EventBase] = []

    def append(self, event: EventBase) -> None:
        """Keep ``event`` (in the order the conversation made it)."""
        self.events.append(event)


@dataclass(frozen=True)
class LimitShare:
    """Worker ``index`` of ``count``: the part of each model's limits this worker may use."""

    index: int = 0
    count: int = 1

    def rate(self, value: float | None) -> float | None:
        """An equal share of a per-minute rate."""
        return None if value is None else value / self.count

    def slots(self, value: int | None) -> int | None:
        """This worker's share of calls in flight: the whole slots dealt out in turn, so that
        the shares add up to ``value`` exactly (the executors never start more workers than a
        model has slots, so that every share is at least one)."""
        if value is None:
            return None
        return max(1, value // self.count + (1 if self.index < value % self.count else 0))


def share_limits(client: Any, share: LimitShare) -> None:
    """Give ``client`` limiters holding ``share`` of each endpoint's rpm, tpm and calls in
    flight (one limiter per endpoint for the worker's life, as in the driver)."""
    from agentsim.models.limits import Limiter

    if share.count <= 1:
        return
    limiters: dict[str, Limiter] = {}

    def limiter(endpoint: Any) -> Limiter:
        if endpoint.name not in limiters:
            limiters[endpoint.name] = Limiter(share.rate(endpoint.rpm), share.rate(endpoint.tpm),
                                              share.slots(endpoint.max_in_flight))
        return limiters[endpoint.name]

    client.limiter = limiter  # the instance's own: every call of this client asks it


def max_workers_for(options: Any, wanted: int) -> int:
    """At most as many workers as the tightest ``max_in_flight`` of the run's models (each
    worker needs a slot of every model it calls), at least one."""
    from agentsim.runs.clients import build_client

    resolver = build_client(options).resolver
    names = set(options.all_models())
    slots = [resolver.resolve(name).max_in_flight for name in names]
    tightest = min((s for s in slots if s is not None), default=None)
    return max(1, min(wanted, tightest) if tightest is not None else wanted)


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs for the whole run (sent once per worker)."""

    run_id: str
    options: Any  # RunOptions
    scenarios: Mapping[tuple[str, str], Any]  # the plan's (scenario id, variant) → Scenario
    catalogue: Any = None
    modes: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)  # preflight's
    concurrency: int = 1  # conversations in flight in this worker
    workers: int = 1  # how many workers share the limits
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """Some jobs of the plan: their positions in it, and what forks take from a parent."""

    positions: tuple[int, ...]
    jobs: tuple[ConversationJob, ...]
    prefixes: Mapping[str, Prefix] = field(default_factory=dict)


@dataclass
class Finished:
    """One conversation a worker ran: its position in the plan, ok, and its events."""

    position: int
    ok: bool
    events: list[EventBase]


@dataclass
class BatchResult:
    """A batch's conversations, in the batch's order, and what servers said about themselves."""

    finished: list[Finished]
    served: dict[str, dict[str, Any]] = field(default_factory=dict)


def driver_modes(client: Any) -> dict[str, tuple[str, str | None]]:
    """The structured-output mode of every endpoint the driver resolved (preflight probed
    servers for them): the workers use the same, without probing again."""
    return {name: (endpoint.structured, endpoint.mode_source)
            for name, endpoint in client.resolver.resolved().items()}


class Worker:
    """One worker: a model client and an event loop kept for the worker's life."""

    def __init__(self, spec: WorkerSpec, index: int = 0) -> None:
        from agentsim.runs.clients import build_client

        os.environ.update(spec.env)
        self.spec = spec
        self.client = build_client(spec.options)
        for name, (mode, source) in spec.modes.items():
            if self.client.resolver.resolve(name).structured != mode:
                self.client.resolver.set_mode(name, mode, source or "driver")
        share_limits(self.client, LimitShare(index % max(1, spec.workers), spec.workers))
        self.loop = asyncio.new_event_loop()

    def run(self, batch: Batch) -> BatchResult:
        """Run every conversation of ``batch``; errors become events, never exceptions."""
        return self.loop.run_until_complete(self._run(batch))

    async def _run(self, batch: Batch) -> BatchResult:
        from agentsim.executors.local import LocalExecutor
        from agentsim.runs.runner import run_conversation

        spec = self.spec
        sinks = [MemorySink() for _ in batch.jobs]
        order = {job.conversation_id: i for i, job in enumerate(batch.jobs)}

        async def work(job: ConversationJob) -> bool:
            sink = sinks[order[job.conversation_id]]
            return await run_conversation(
                job, spec.scenarios[(job.scenario_id, job.variant)], self.client, sink,
                spec.run_id, spec.catalogue, batch.prefixes.get(job.conversation_id))

        flags = await LocalExecutor(spec.concurrency).run(list(batch.jobs), work)
        if self.client.cache is not None:  # committed before the driver logs the batch
            self.client.cache.flush()
        served, self.client.served = dict(self.client.served), {}
        return BatchResult([Finished(pos, ok, sink.events) for pos, ok, sink
                            in zip(batch.positions, flags, sinks)], served)

    def close(self) -> None:
        """Free the worker's in-process models and loop."""
        from agentsim.models.client import close_local_models

        close_local_models()
        self.loop.close()


def per_worker(concurrency: int, workers: int) -> int:
    """Each worker's share of the run's conversations in flight (at least one)."""
    return max(1, math.ceil(concurrency / max(1, workers)))


def batches_of(jobs: Sequence[ConversationJob], prefixes: Mapping[str, Prefix], size: int,
               ) -> list[Batch]:
    """The plan's jobs cut into batches of ``size``, in plan order."""
    out = []
    for start in range(0, len(jobs), size):
        chunk = tuple(jobs[start:start + size])
        out.append(Batch(tuple(range(start, start + len(chunk))), chunk,
                         {j.conversation_id: prefixes[j.conversation_id] for j in chunk
                          if j.conversation_id in prefixes}))
    return out
