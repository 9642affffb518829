"""Rate limits per endpoint (agentsim.models.limits) and what they do against a rate-limited
server: the Limiter on a fake clock, then whole runs against the stub of tests/support, which
answers 429 with ``Retry-After`` beyond N requests per second.

No traffic leaves 127.0.0.1 (a guard below fails any test that tries).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from agentsim.models import limits as limits_module
from agentsim.models.limits import RECOVERY_RUN, Limiter
from support.network import LOOPBACK, only_loopback  # noqa: F401 - autouse fixture

REPO = Path(__file__).resolve().parents[2]
FLAT = REPO / "scenarios" / "workplace" / "family-shared-flat-move.yaml"




# ---- the Limiter on a fake clock ---------------------------------------------------------------

class FakeClock:
    """A clock that only moves when somebody sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """A fake clock; ``asyncio.sleep`` inside the limiter moves it on instead of waiting (a
    sleeper's delay is computed from the clock when it starts, so concurrent sleepers that see
    the clock moved by another wait only what is left)."""
    fake = FakeClock()
    real_sleep = asyncio.sleep

    async def sleep(delay, result=None):
        fake.now += max(0.0, delay)
        await real_sleep(0)
        return result

    monkeypatch.setattr(limits_module.asyncio, "sleep", sleep)
    return fake


async def send_times(limiter: Limiter, clock: FakeClock, n: int, tokens: int = 1) -> list[float]:
    """Acquire ``n`` calls one after the other; the fake time at which each was let through."""
    times = []
    for _ in range(n):
        await limiter.acquire(tokens)
        times.append(clock.now)
        limiter.release()
    return times


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in zip(times, times[1:])]


def test_rpm_spaces_requests_evenly_without_a_burst(clock):
    limiter = Limiter(rpm=120, clock=clock)  # 2 per second
    times = asyncio.run(send_times(limiter, clock, 6))
    assert times[0] == 0.0
    # Evenly spaced from the first call on: a server counting per second never sees > the rate.
    assert gaps(times) == [0.5] * 5


def test_rpm_reports_time_queued(clock):
    limiter = Limiter(rpm=60, clock=clock)

    async def two() -> tuple[float, float]:
        first = await limiter.acquire(1)
        limiter.release()
        second = await limiter.acquire(1)
        limiter.release()
        return first, second

    assert asyncio.run(two()) == (0.0, pytest.approx(1.0))


def test_tpm_waits_for_tokens(clock):
    limiter = Limiter(tpm=600, clock=clock)  # 10 tokens a second, bursts of 100
    times = asyncio.run(send_times(limiter, clock, 3, tokens=100))
    assert gaps(times) == [10.0, 10.0]
    small = asyncio.run(send_times(Limiter(tpm=600, clock=clock), clock, 3, tokens=50))
    assert gaps(small) == [0.0, 5.0]


def test_waiting_for_tokens_does_not_spend_a_request_slot(clock):
    # The second call may go at t=1 by requests/min but needs 15 tokens, of which 10 have come
    # back by then: it goes at 1.5 s, not at 2 s (a request slot taken and thrown away).
    limiter = Limiter(rpm=60, tpm=600, clock=clock)
    times = asyncio.run(send_times(limiter, clock, 1, tokens=100))
    times += asyncio.run(send_times(limiter, clock, 1, tokens=15))
    assert times == [0.0, pytest.approx(1.5)]


def test_max_in_flight_holds_the_third_call_until_one_is_released():
    async def scenario() -> list[str]:
        limiter = Limiter(max_in_flight=2)
        log: list[str] = []

        async def call(name: str) -> None:
            await limiter.acquire(1)
            log.append(f"start {name}")

        tasks = [asyncio.create_task(call(n)) for n in "abc"]
        await asyncio.sleep(0.05)
        log.append("release")
        limiter.release()
        await asyncio.gather(*tasks)
        return log

    assert asyncio.run(scenario()) == ["start a", "start b", "release", "start c"]


def test_a_cancelled_waiter_gives_its_slot_back():
    async def scenario() -> float:
        limiter = Limiter(rpm=60_000, max_in_flight=1)
        limiter.throttle(0.3)  # everyone waits 0.3 s
        waiter = asyncio.create_task(limiter.acquire(1))
        await asyncio.sleep(0.05)
        waiter.cancel()
        started = time.monotonic()
        await asyncio.wait_for(limiter.acquire(1), timeout=2)  # would hang if the slot leaked
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0


def test_throttle_pauses_every_sender_until_retry_after_and_halves_the_rate(clock):
    limiter = Limiter(rpm=600, clock=clock)  # 10 per second
    asyncio.run(send_times(limiter, clock, 3))
    start = clock.now
    limiter.throttle(3.0)
    limiter.throttle(3.0)  # more 429s of calls already in flight: no second halving
    limiter.throttle(2.0)

    async def many() -> list[float]:
        out: list[float] = []

        async def one() -> None:
            await limiter.acquire(1)
            out.append(clock.now)
            limiter.release()

        await asyncio.gather(*(one() for _ in range(5)))
        return sorted(out)

    times = asyncio.run(many())
    assert min(times) >= start + 3.0  # nobody went before the server's Retry-After
    assert gaps(times) == [0.2] * 4  # 5 per second: half the configured 10
    assert limiter.throttled == 3


def test_throttle_without_retry_after_pauses_a_second(clock):
    limiter = Limiter(rpm=60, clock=clock)
    limiter.throttle(None)
    times = asyncio.run(send_times(limiter, clock, 1))
    assert times[0] >= 1.0


def test_a_second_429_after_the_pause_halves_again(clock):
    limiter = Limiter(rpm=600, clock=clock)
    limiter.throttle(1.0)
    clock.now += 1.5  # the pause is over: a new 429 is news
    limiter.throttle(1.0)
    times = asyncio.run(send_times(limiter, clock, 3))
    assert gaps(times) == [0.4, 0.4]  # 10 → 5 → 2.5 per second


def test_recovery_steps_back_up_to_the_configured_rate(clock):
    limiter = Limiter(rpm=600, clock=clock)
    limiter.throttle(0.0)  # 5 per second
    for _ in range(RECOVERY_RUN):
        limiter.success()
    times = asyncio.run(send_times(limiter, clock, 3))
    assert gaps(times) == [pytest.approx(1 / 5.5, abs=1e-6)] * 2  # a tenth more
    for _ in range(RECOVERY_RUN * 40):
        limiter.success()
    times = asyncio.run(send_times(limiter, clock, 3))
    assert gaps(times) == [0.1, 0.1]  # never above the configured 10 per second


def test_without_rpm_a_429_halves_the_rate_achieved_and_recovery_lifts_the_limit(clock):
    limiter = Limiter(clock=clock)
    for _ in range(10):  # 10 per second achieved
        asyncio.run(send_times(limiter, clock, 1))
        clock.now += 0.1
    limiter.throttle(1.0)
    times = asyncio.run(send_times(limiter, clock, 3))
    assert gaps(times) == [pytest.approx(0.2, rel=0.15)] * 2  # about 5 per second
    for _ in range(RECOVERY_RUN * 80):
        limiter.success()
    times = asyncio.run(send_times(limiter, clock, 5))
    assert gaps(times) == [0.0] * 4  # recovered far enough: no limit, as configured


# ---- whole runs against a rate-limited stub ----------------------------------------------------

def run_cli(stub, tmp_path: Path, *args: str, replicates: int = 40, name: str = "run") -> tuple:
    """(exit status, run folder, elapsed seconds) of `agentsim run` against the stub."""
    from agentsim.cli.main import main

    out = tmp_path / name
    started = time.monotonic()
    code = main(["run", str(FLAT), "--model", "openai/stub", "--api-base", stub.base_url,
                 "--setting", "no-interaction", "--replicates", str(replicates),
                 "--concurrency", "8", "--no-cache", "--out", str(out), "--json", *args])
    return code, out, time.monotonic() - started


def events(run: Path, kind: str) -> list[dict]:
    lines = (run / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == kind]


def chat_times(stub) -> list[float]:
    return sorted(r.time for r in stub.requests_to("/v1/chat/completions"))


def test_a_10_per_second_server_serves_40_conversations_at_concurrency_8(stub_server, tmp_path):
    stub_server.rate_limit_per_s = 10
    code, run, _ = run_cli(stub_server, tmp_path)
    assert code == 0
    finished = events(run, "conversation_finished")
    assert len(finished) == 40 and all(e["ok"] for e in finished)
    assert stub_server.rate_limited > 0  # the server did push back ...
    calls = events(run, "model_call")
    assert all(c.get("error") is None for c in calls)
    assert max(c.get("attempts", 1) for c in calls) > 1  # ... and the 429s were retried
    assert any((c.get("queued_s") or 0) > 0 for c in calls)  # ... after waiting in agentsim
    # Slowed down once, not to a crawl: 40 calls at 10/s need 4 s, at half that 8 s; a collapse
    # to the floor rate (a halving per 429 of every call then in flight) took 30 s.
    times = chat_times(stub_server)
    assert times[-1] - times[0] < 15, f"{times[-1] - times[0]:.1f} s"


def test_rpm_below_the_server_limit_gets_no_429(stub_server, tmp_path):
    stub_server.rate_limit_per_s = 10
    code, run, _ = run_cli(stub_server, tmp_path, "--rpm", "480")  # 8 per second
    assert code == 0
    assert stub_server.rate_limited <= 1, f"{stub_server.rate_limited} answers were 429"
    times = chat_times(stub_server)[1:]  # after the probe, which is not rate limited
    assert len(times) >= 40
    # Never more than 8 and a bit in any second: evenly spaced, no burst at the start.
    assert all(b - a > 1.0 for a, b in zip(times, times[9:])), gaps(times)[:12]


def test_max_in_flight_caps_concurrent_requests_at_the_server(stub_server, tmp_path):
    stub_server.stall_s = 0.25  # each answer takes a while, so requests overlap
    code, _, _ = run_cli(stub_server, tmp_path, replicates=16, name="free")
    assert code == 0
    assert stub_server.max_in_flight_seen > 2  # without a limit they do overlap
    stub_server.clear()
    code, _, _ = run_cli(stub_server, tmp_path, "--max-in-flight", "2", replicates=16,
                         name="capped")
    assert code == 0
    assert stub_server.count("/v1/chat/completions") == 17
    assert stub_server.max_in_flight_seen == 2


def test_retry_after_delays_the_retry_by_at_least_that_long(stub_server, tmp_path):
    stub_server.fail_next(1, 429, retry_after=2)
    code, run, _ = run_cli(stub_server, tmp_path, "--structured", "json_schema", "--no-probe",
                           replicates=1)
    assert code == 0
    first, second = stub_server.requests_to("/v1/chat/completions")
    assert (first.status, second.status) == (429, 200)
    assert second.time - first.time >= 2.0
    assert second.time - first.time < 4.0  # the server's wait, not a long backoff on top
    (call,) = events(run, "model_call")
    assert call.get("attempts") == 2 and call.get("error") is None


def test_a_call_backing_off_does_not_hold_a_slot_in_flight(stub_server):
    from agentsim.models.base import ModelRequest
    from agentsim.models.client import ModelClient
    from agentsim.models.endpoints import EndpointResolver, ModelsConfig

    config = ModelsConfig.model_validate({"models": {"m": {
        "model": "openai/stub", "api_base": stub_server.base_url, "structured": "json_schema",
        "max_in_flight": 1}}})
    client = ModelClient(resolver=EndpointResolver(config), backoff_s=2.0)
    stub_server.fail_next(1, 500)  # the first call fails once and backs off about 2 s

    async def both():
        def request(text: str) -> ModelRequest:
            return ModelRequest(model="m", messages=[{"role": "user", "content": text}])

        first = asyncio.create_task(client.complete(request("first")))
        await asyncio.sleep(0.3)
        return await asyncio.gather(first, client.complete(request("second")))

    first, second = asyncio.run(both())
    assert first.attempts == 2
    assert second.queued_s < 1.0  # it went while the first waited to retry
