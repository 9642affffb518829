"""Rate limits per endpoint, enforced before a call is sent, and slowed down by 429 answers.

Each endpoint gets one :class:`Limiter`: requests per minute and tokens per minute as token
buckets, calls in flight as a semaphore. Requests are spaced evenly (no burst: a server that
counts requests per second never sees more than the rate). When the server answers 429 (with or
without ``Retry-After``), every sender of that endpoint pauses until the server's time has passed,
and the request rate drops to half of what was being achieved (once per pause: the other calls
that were in flight when the first 429 came back do not halve it again); it grows back by a tenth
after each run of successes, up to the configured rate. The limiter measures how long a call waited, so the log can
separate time queued in agentsim from time at the server.

Primitives are created lazily inside the running event loop (a run may use several loops: the
preflight, then the run itself).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

# How many successes in a row earn a step back up after a slow-down, and the size of the step.
RECOVERY_RUN = 20
RECOVERY_STEP = 1.1
# Rate floor after repeated 429s (requests per second).
MIN_RATE = 0.2
# The achieved request rate is measured over this many recent seconds (at least one second).
RATE_WINDOW_S = 5.0


class _Bucket:
    """A token bucket: ``rate`` per second, holding at most ``capacity``."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self.level = self.capacity
        self.clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` can be taken (0 when it can now); takes nothing."""
        self._refill()
        amount = min(amount, self.capacity)  # a request larger than the bucket waits for full
        if self.level >= amount - 1e-9:  # rounding must not leave a wait of 1e-17 s, forever
            return 0.0
        return (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        """Take ``amount`` (after :meth:`wait_for` said it can be taken)."""
        self.level -= min(amount, self.capacity)


class Limiter:
    """Requests/min, tokens/min and calls in flight of one endpoint."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None,
                 max_in_flight: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.configured_rps = rpm / 60 if rpm else None
        self.clock = clock
        # Requests evenly spaced (no burst); tokens in bursts of at most ten seconds' worth.
        self._requests = _Bucket(self.configured_rps, 1.0, clock) \
            if self.configured_rps else None
        self._tokens = _Bucket(tpm / 60, tpm / 6, clock) if tpm else None
        self.max_in_flight = max_in_flight
        self._gate: asyncio.Semaphore | None = None
        self._gate_loop: asyncio.AbstractEventLoop | None = None
        self._paused_until = 0.0
        self._recent: deque[float] = deque(maxlen=1000)  # send times, to measure the rate
        self._streak = 0
        self.throttled = 0  # 429 answers seen

    def _semaphore(self) -> asyncio.Semaphore | None:
        if self.max_in_flight is None:
            return None
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate_loop is not loop:
            self._gate, self._gate_loop = asyncio.Semaphore(self.max_in_flight), loop
        return self._gate

    async def acquire(self, tokens: int) -> float:
        """Wait until a call of about ``tokens`` tokens may be sent; returns seconds waited.

        Call :meth:`release` when the call is over (whatever its outcome).
        """
        started = self.clock()
        gate = self._semaphore()
        if gate is not None:
            await gate.acquire()
        try:
            while True:
                # Both buckets are checked before either is taken from, so that waiting for
                # tokens never spends a request slot (and the other way round).
                requests, budget = self._requests, self._tokens
                delay = max(0.0, self._paused_until - self.clock())
                if delay == 0 and requests is not None:
                    delay = requests.wait_for(1)
                if delay == 0 and budget is not None:
                    delay = budget.wait_for(tokens)
                if delay == 0:
                    if requests is not None:
                        requests.take(1)
                    if budget is not None:
                        budget.take(tokens)
                    break
                await asyncio.sleep(delay)
        except BaseException:  # cancelled while waiting: the slot in flight is not used
            if gate is not None:
                gate.release()
            raise
        self._recent.append(self.clock())
        return self.clock() - started

    def release(self) -> None:
        """A call acquired with :meth:`acquire` is over."""
        if self._gate is not None:
            self._gate.release()

    def _achieved_rate(self) -> float:
        """Requests per second sent over the last few seconds (counted over at least one
        second, so that a burst at the start is not mistaken for a high rate)."""
        now = self.clock()
        recent = [t for t in self._recent if now - t <= RATE_WINDOW_S]
        if not recent:
            return MIN_RATE
        return len(recent) / max(now - recent[0], 1.0)

    def throttle(self, retry_after: float | None) -> None:
        """A 429 answer: pause every sender and halve the request rate.

        The rate is halved once per pause: 429s that arrive while senders are still paused
        answer calls sent before the first one came back, and say nothing new about the rate.
        """
        self.throttled += 1
        self._streak = 0
        now = self.clock()
        pause = retry_after if retry_after is not None else 1.0
        paused = now < self._paused_until
        self._paused_until = max(self._paused_until, now + pause)
        if paused and self._requests is not None:
            return
        current = self._requests.rate if self._requests else self._achieved_rate()
        rate = max(MIN_RATE, current / 2)
        self._requests = _Bucket(rate, 1.0, self.clock)
        self._requests.level = 0.0

    def success(self) -> None:
        """A call succeeded: after a run of them, step the rate back up."""
        if self._requests is None:
            return
        self._streak += 1
        if self._streak < RECOVERY_RUN:
            return
        self._streak = 0
        rate = self._requests.rate * RECOVERY_STEP
        if self.configured_rps is None:
            if rate > 1000:  # recovered far enough: no limit, as configured
                self._requests = None
                return
        else:
            rate = min(rate, self.configured_rps)
        self._requests.rate = rate
