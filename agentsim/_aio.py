"""Running a coroutine from synchronous code, in a notebook too.

``asyncio.run`` refuses to start inside a running event loop (Jupyter runs one), so the public
API, the judging driver and the importers call :func:`run_sync`, which runs the coroutine in a
worker thread with its own loop when the calling thread already has one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["run_sync"]


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of ``coroutine``, run to completion from sync code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the caller's loop is busy: a fresh one
        return pool.submit(asyncio.run, coroutine).result()
