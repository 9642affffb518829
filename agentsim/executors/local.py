"""The local executor: conversations run concurrently on one asyncio event loop.

Concurrency pays off for hosted models (calls wait on the network); calls to the embedded model
are serialised by its lock whatever the concurrency, so the local default is modest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from agentsim.registry import executor

Job = TypeVar("Job")


@executor("local")
class LocalExecutor:
    """Run jobs with at most ``concurrency`` in flight; ``on_done(job, ok)`` after each."""

    def __init__(self, concurrency: int = 4) -> None:
        self.concurrency = max(1, concurrency)

    async def run(
        self,
        jobs: Sequence[Job],
        work: Callable[[Job], Awaitable[bool]],
        on_done: Callable[[Job, bool], None] | None = None,
    ) -> list[bool]:
        """Run ``work`` on every job; returns the ok flag of each, in job order."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(job: Job) -> bool:
            async with gate:
                ok = await work(job)
            if on_done is not None:
                on_done(job, ok)
            return ok

        return list(await asyncio.gather(*(one(job) for job in jobs)))
