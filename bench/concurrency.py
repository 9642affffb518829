"""Concurrency, measured in one run and printed as a ratio to the ideal.

A batch of conversations against a scripted model with a fixed latency should finish within 1.25×
of calls × latency / concurrency (published reference code runs one conversation at a time, i.e.
concurrency 1).

Usage: python bench/concurrency.py [--latency-ms 50] [--concurrency 8] [--replicates 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from agentsim.models.client import _backend
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--replicates", type=int, default=2)
    args = parser.parse_args()
    _backend()  # import litellm outside the timed region
    scenarios = load_scenarios([ROOT / "scenarios" / "workplace"])
    model = f"scripted/stereotyped?rate=0.5&latency_ms={args.latency_ms:g}"
    for concurrency in (1, args.concurrency):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            summary = run_experiment(
                scenarios, RunOptions(model=model, replicates=args.replicates,
                                      concurrency=concurrency, judges=()),
                out=Path(tmp) / "run")
            elapsed = time.perf_counter() - started
            calls = sum(1 for _ in RunStore.open(summary.run_dir).iter_events({"model_call"}))
        # Calls within one conversation are sequential, so the ideal is bounded by the longest
        # conversation too; with many conversations the first term dominates.
        ideal = calls * args.latency_ms / 1000 / concurrency
        print(f"concurrency {concurrency:>2}: {summary.conversations} conversations, {calls} calls "
              f"in {elapsed:.2f} s; ideal {ideal:.2f} s; ratio {elapsed / ideal:.2f} "
              "(budget <= 1.25)")


if __name__ == "__main__":
    main()
