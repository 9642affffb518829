"""Every registered executor through the executor contract (agentsim/executors/local.py):
``Executor(concurrency=N).run(jobs, work, on_done)`` runs every job of a plan once, calls
``on_done(job, ok)`` once per job, and returns the ok flags in job order — the same results as
the local executor, conversation for conversation.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from agentsim.core.store import RunStore
from agentsim.registry import REGISTRY
from agentsim.runs.runner import build_client, plan_jobs, run_conversation, variant_scenarios
from conformance.cases import DEFAULT_SCRIPTED, names, options, shipped_of

# Every other job of the plan fails at its first call, so that ok flags tell jobs apart.
FAILING = f"{DEFAULT_SCRIPTED}?fail=1"


def execute(executor: str, out: Path) -> tuple[list[bool], Counter, dict[str, list]]:
    """Run a small plan (one workplace scenario, its variants, two replicates) through
    ``executor``: its ok flags, the (conversation, ok) pairs on_done heard, and the decisions
    logged per conversation."""
    scenarios = shipped_of("discussion")
    given = options(model=DEFAULT_SCRIPTED, replicates=2, retries=0)
    jobs = [job if i % 2 == 0 else job.model_copy(update={"models": {"default": FAILING}})
            for i, job in enumerate(plan_jobs([s for _, s in scenarios], given))]
    by_variant = variant_scenarios([s for _, s in scenarios], given)
    client = build_client(given)
    store = RunStore.create(out, {"run_id": executor, "scenarios": {}})
    heard: Counter = Counter()

    async def work(job) -> bool:
        return await run_conversation(job, by_variant[job.scenario_id, job.variant], client,
                                      store, executor)

    def on_done(job, ok: bool) -> None:
        heard[job.conversation_id, ok] += 1

    runner = REGISTRY.get("executor", executor)(concurrency=3)
    flags = asyncio.run(runner.run(jobs, work, on_done))
    store.close()
    decisions: dict[str, list] = {}
    for event in RunStore.open(out).iter_events({"decision"}):
        decisions.setdefault(event.conversation_id, []).append(
            (event.turn, event.agent, event.phase, event.value))
    expected = [i % 2 == 0 for i in range(len(jobs))]
    assert len(jobs) > 2 and flags == expected  # every job, in job order
    assert heard == Counter((job.conversation_id, ok) for job, ok in zip(jobs, expected))
    return flags, heard, decisions


@pytest.fixture(scope="module")
def local_results(tmp_path_factory, session_home):
    """What the local executor does with the plan: the reference."""
    return execute("local", tmp_path_factory.mktemp("executor") / "local")


@pytest.mark.parametrize("executor", names("executor"))
def test_runs_a_plan_like_the_local_executor(tmp_path, local_results, executor):
    """Same ok flags in job order, same on_done calls, same decisions per conversation."""
    flags, heard, decisions = execute(executor, tmp_path / "run")
    assert decisions and (flags, heard, decisions) == local_results
