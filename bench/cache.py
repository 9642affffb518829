"""What the cache of model calls costs a run, and what it saves on a re-run; measured in one run.

Default: the run phase (executing the conversations; planning and judging excluded) of the
shipped workplace scenarios with a scripted model at zero latency — where the cache's own cost is
all there is to see — with the cache on (cold: a fresh folder each time) and off, interleaved
(off, on, off, on, …) in one process. Printed, on one line: the ratio of the medians (target
≤ 1.1) with each pair's ratio, the inputs and the conditions.

--rerun: the same experiment twice into two run folders sharing a fresh cache (scripted model with
a fixed latency, or --local for the embedded model and one conversation): the first pays for
every model call, the second is served from the cache. Printed: both wall times and their ratio.

Usage: python bench/cache.py [--pairs 3] [--replicates 15]
       python bench/cache.py --rerun [--latency-ms 50] [--local]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import agentsim.runs.runner as runner
from agentsim.core.store import RunStore
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[1]
MODEL = "scripted/stereotyped?rate=0.5"


def timed_execute(times: list[tuple[float, float]]):
    """``runner.execute`` that records how long each run phase took, in wall time and in the
    process's CPU time (all threads: the cache's writer too), its final flush included."""
    original = runner.execute

    def execute(*args, **kwargs):
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            times.append((time.perf_counter() - started, time.process_time() - cpu))

    return execute


def overhead(pairs: int, replicates: int) -> None:
    paths = [ROOT / "scenarios/workplace"]
    scenarios = load_scenarios(paths)
    phases: list[tuple[float, float]] = []
    runner.execute = timed_execute(phases)
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    calls = conversations = 0
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(pairs + 1):  # pair 0 warms imports and the scripted model up
            for cache in (False, True):
                options = RunOptions(model=MODEL, replicates=replicates, judges=(), cache=cache,
                                     cache_dir=f"{tmp}/cache{index}")  # cold: fresh each time
                summary = run_experiment(scenarios, options, out=Path(tmp) / f"{index}-{cache}")
                if index:
                    runs[cache].append(phases[-1])
                if cache and index == pairs:
                    store = RunStore.open(summary.run_dir)
                    calls = sum(1 for _ in store.iter_events({"model_call"}))
                    conversations = summary.conversations
    wall = {cache: [w for w, _ in runs[cache]] for cache in runs}
    cpu = {cache: [c for _, c in runs[cache]] for cache in runs}
    ratios = [on / off for off, on in zip(wall[False], wall[True])]
    ratio = statistics.median(wall[True]) / statistics.median(wall[False])
    cpu_ratio = statistics.median(cpu[True]) / statistics.median(cpu[False])
    print(f"cache on (cold) / off, run phase: {ratio:.3f}x wall (medians of {pairs} interleaved "
          f"pairs: off {statistics.median(wall[False]):.2f} s, on "
          f"{statistics.median(wall[True]):.2f} s; pairs {', '.join(f'{r:.3f}' for r in ratios)})"
          f", {cpu_ratio:.3f}x process CPU time; load average {os.getloadavg()[0]:.1f}; "
          f"{MODEL} at zero latency, scenarios/workplace x {replicates} replicates"
          f" = {conversations} conversations, {calls} model "
          f"calls a run, judges off; Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"{sys.platform}")


def rerun(latency_ms: float, local: bool) -> None:
    if local:
        paths, model = [ROOT / "scenarios/workplace/office-startup-cofounders.yaml"], None
    else:
        paths = [ROOT / "scenarios/workplace"]
        model = f"scripted/stereotyped?rate=0.5&latency_ms={latency_ms:g}"
    scenarios = load_scenarios(paths)
    with tempfile.TemporaryDirectory() as tmp:
        times, cached = [], []
        for name in ("first", "again"):
            options = RunOptions(replicates=1, judges=(), cache_dir=f"{tmp}/cache",
                                 **({"model": model} if model else {}))
            started = time.perf_counter()
            summary = run_experiment(scenarios, options, out=Path(tmp) / name)
            times.append(time.perf_counter() - started)
            calls = list(RunStore.open(summary.run_dir).iter_events({"model_call"}))
            cached.append(sum(c.cached for c in calls))
    print(f"first run {times[0]:.2f} s ({cached[0]} cached calls); re-run {times[1]:.2f} s "
          f"({cached[1]} of {len(calls)} calls from the cache); ratio {times[1] / times[0]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="off/on pairs (at least 3)")
    parser.add_argument("--replicates", type=int, default=15,
                        help="replicates of each workplace scenario (15: 300 conversations)")
    parser.add_argument("--rerun", action="store_true", help="measure a re-run instead")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--local", action="store_true")
    args = parser.parse_args()
    if args.rerun:
        rerun(args.latency_ms, args.local)
    else:
        overhead(max(3, args.pairs), args.replicates)


if __name__ == "__main__":
    main()
