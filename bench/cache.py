"""Re-running a finished experiment from the cache of model calls, measured in one run.

The same experiment runs twice into two run folders sharing a fresh cache: the first pays for
every model call, the second is served from the cache. Printed: both wall times and their ratio.
With --local the embedded model is used (one conversation); otherwise a scripted model with a
fixed latency stands in for a hosted one.

Usage: python bench/cache.py [--latency-ms 50] [--local]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--local", action="store_true")
    args = parser.parse_args()
    if args.local:
        paths, model = [ROOT / "scenarios/workplace/office-startup-cofounders.yaml"], None
    else:
        paths = [ROOT / "scenarios/workplace"]
        model = f"scripted/stereotyped?rate=0.5&latency_ms={args.latency_ms:g}"
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


if __name__ == "__main__":
    main()
