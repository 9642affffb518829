"""Concurrency against the ideal, one line: a scripted model with a fixed latency, cache off.

For each concurrency c in 1, 8, 32 and 128, a batch of at least 1,000 calls (3,000 at 128) of
the shipped workplace scenarios runs through the whole of agentsim (graph, prompts, parsing,
logging), and its wall time is divided by the ideal: the larger of calls × latency / c and the
critical path (the calls of the longest conversation × latency, since one conversation's calls
follow each other). Budget: at most 1.25 at every c.

Usage: python bench/concurrency.py [--latency-ms 50] [--levels 1,8,32,128]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from agentsim.core.store import RunStore
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[1]
CALLS_PER_REPLICATE = 300  # the 20 workplace conversations of one replicate


def measure(scenarios, latency_ms: float, concurrency: int, calls: int) -> tuple[float, int, int]:
    """(wall seconds, calls, ideal seconds) of one batch of about ``calls`` calls."""
    replicates = max(1, -(-calls // CALLS_PER_REPLICATE))
    model = f"scripted/stereotyped?rate=0.5&latency_ms={latency_ms:g}"
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = run_experiment(scenarios, RunOptions(
            model=model, replicates=replicates, concurrency=concurrency, judges=(),
            cache=False), out=Path(tmp) / "run")
        elapsed = time.perf_counter() - started
        per_conversation = Counter(e.conversation_id for e in
                                   RunStore.open(summary.run_dir).iter_events({"model_call"}))
    made = sum(per_conversation.values())
    ideal = max(made / concurrency, max(per_conversation.values())) * latency_ms / 1000
    return elapsed, made, ideal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--levels", default="1,8,32,128")
    args = parser.parse_args()
    scenarios = load_scenarios([ROOT / "scenarios" / "workplace"])
    parts = []
    for level in (int(x) for x in args.levels.split(",")):
        elapsed, calls, ideal = measure(scenarios, args.latency_ms, level,
                                        3000 if level >= 128 else 1000)
        parts.append(f"c={level}: {calls} calls {elapsed:.1f} s / ideal {ideal:.1f} s = "
                     f"{elapsed / ideal:.2f}x")
    print("concurrency: " + "; ".join(parts) + f" | scripted model, latency "
          f"{args.latency_ms:g} ms, cache off, judges off, ideal = max(calls x latency / c, "
          "longest conversation's calls x latency), budget <= 1.25x")


if __name__ == "__main__":
    main()
