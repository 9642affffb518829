"""What the processes and ray executors gain over the local one; measured in one run.

The run phase (``runner.execute``: executing the conversations into the log, the workers' start
included; planning and judging excluded) of the shipped workplace scenarios with the scripted
model at zero latency, no cache, under the local executor and each other executor named,
interleaved (local, processes, ray, local, processes, ray, …) in one process. Each round checks
that every executor logged the same decisions as the local one. Printed, on one line: the ratio
of the median times local / executor (target ≥ 1.6 for processes on 2 cores), each round's
ratios, the inputs and the conditions. Ray is started once (``ray.init``, not timed) and shared by
the rounds, as a cluster would be.

Usage: python bench/executors.py [--rounds 2] [--replicates 100] [--executors processes,ray]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from agentsim.core.store import RunStore
from agentsim.runs.runner import (
    RunOptions,
    build_plan,
    execute,
    new_manifest,
)
from agentsim.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[1]
MODEL = "scripted/stereotyped"


def run_once(executor: str, scenarios, replicates: int, root: Path) -> tuple[float, dict]:
    """Seconds of the run phase under ``executor``, and the decisions it logged."""
    options = RunOptions(model=MODEL, replicates=replicates, cache=False, judges=(),
                         probe=False, executor=executor)
    plan = build_plan([s for _, s in scenarios], options)
    out = Path(tempfile.mkdtemp(dir=root)) / executor
    store = RunStore.create(out, new_manifest("bench", scenarios, options, plan.jobs,
                                              plan.catalogue))
    started = time.perf_counter()
    execution = execute(store, plan, options)
    elapsed = time.perf_counter() - started
    store.close()
    assert all(execution.outcomes), f"{executor}: not every conversation succeeded"
    decisions: dict[str, list] = {}
    for event in RunStore.open(out).iter_events({"decision"}):
        decisions.setdefault(event.conversation_id, []).append(
            (event.turn, event.agent, event.phase, event.value))
    return elapsed, decisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--replicates", type=int, default=100,
                        help="replicates of the 16 shipped workplace scenarios (100: 2,000 "
                        "conversations with their variants)")
    parser.add_argument("--executors", default="processes,ray")
    args = parser.parse_args()
    others = [name for name in args.executors.split(",") if name]
    scenarios = load_scenarios([ROOT / "scenarios" / "workplace"])
    if "ray" in others:
        import ray

        os.environ.setdefault("RAY_worker_niceness", "0")  # as the ray executor's own Ray
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    times: dict[str, list[float]] = {"local": [], **{name: [] for name in others}}
    conversations = 0
    with tempfile.TemporaryDirectory() as root:
        for _ in range(args.rounds):
            reference = None
            for name in ("local", *others):
                elapsed, decisions = run_once(name, scenarios, args.replicates, Path(root))
                times[name].append(elapsed)
                conversations = len(decisions)
                if reference is None:
                    reference = decisions
                elif decisions != reference:
                    raise SystemExit(f"{name} logged other decisions than local")
    loadavg = Path("/proc/loadavg")
    load = loadavg.read_text().split()[:3] if loadavg.exists() else ["?"]
    local = statistics.median(times["local"])
    parts = [f"local {local:.1f}s"]
    for name in others:
        median = statistics.median(times[name])
        rounds = ", ".join(f"{a / b:.2f}" for a, b in zip(times["local"], times[name]))
        parts.append(f"{name} {median:.1f}s ratio local/{name} {local / median:.2f}x "
                     f"(rounds {rounds})")
    print(f"executors: {'; '.join(parts)} | {conversations} conversations of "
          f"{len(scenarios)} workplace scenarios x {args.replicates} replicates, {MODEL} at "
          f"zero latency, no cache, {args.rounds} interleaved rounds, medians of the run phase "
          f"(worker start included), {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {' '.join(load)} at the end, same "
          "decisions as local: yes")


if __name__ == "__main__":
    main()
