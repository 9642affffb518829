"""Judging a stored run: the default judges on 1,000 and 10,000 conversations, time and peak
memory, printed as one line with the ratios.

Both logs are made first (scripted model, zero latency, the shipped workplace scenarios, no
judging, cache off); then each judging pass runs in its own fresh process, so that its peak
resident memory is its own, interleaved 1k, 10k, 1k, 10k … The best time and the largest peak
of each size are reported. Targets: 10k in at most 10 s and 500 MB, memory at 10k at most 1.2×
memory at 1k.

Usage: python bench/judging.py [--small 1000] [--large 10000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios" / "workplace"
PER_REPLICATE = 20  # conversations of the shipped workplace scenarios per replicate
JUDGES = ("assignment_bias", "counterfactual", "trajectory", "influence")

CHILD = """
import json, resource, sys, time
from pathlib import Path
started = time.perf_counter()
from agentsim.runs.judging import judge_run
results = judge_run(Path(sys.argv[1]), tuple(sys.argv[2].split(",")))
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "metrics": len(results["metrics"]), "conversations": results["conversations"]}))
"""


def make_log(folder: Path, conversations: int) -> Path:
    """A stored run of about ``conversations`` conversations, not judged."""
    from agentsim.runs.runner import RunOptions, run_experiment
    from agentsim.scenario import load_scenarios

    replicates = max(1, conversations // PER_REPLICATE)
    out = folder / f"run-{conversations}"
    run_experiment(load_scenarios([SCENARIOS]),
                   RunOptions(model="scripted/stereotyped?rate=0.5&final=0.7", replicates=replicates,
                              judges=(), cache=False, concurrency=64), out=out)
    return out


def judge_once(run: Path) -> dict:
    """One judging pass as ``agentsim judge`` makes it (verdicts appended to the log, results
    written; the HTML report left out), in a fresh process on a fresh copy of the run: its
    time (imports included) and peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / run.name
        shutil.copytree(run, copy)
        done = subprocess.run([sys.executable, "-c", CHILD, str(copy), ",".join(JUDGES)],
                              capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        made = time.perf_counter()
        runs = {n: make_log(Path(tmp), n) for n in (args.small, args.large)}
        made = time.perf_counter() - made
        sizes = {n: (run / "events.jsonl").stat().st_size / 2**20 for n, run in runs.items()}
        seen: dict[int, list[dict]] = {n: [] for n in runs}
        for _ in range(args.repeats):  # interleaved: small, large, small, large, ...
            for n, run in runs.items():
                seen[n].append(judge_once(run))
    best = {n: min(r["seconds"] for r in rs) for n, rs in seen.items()}
    peak = {n: max(r["peak_mb"] for r in rs) for n, rs in seen.items()}
    conversations = {n: rs[0]["conversations"] for n, rs in seen.items()}
    small, large = args.small, args.large
    print(f"judging ({', '.join(JUDGES)}): {conversations[large]} conversations "
          f"{best[large]:.1f} s, peak {peak[large]:.0f} MB (log {sizes[large]:.0f} MiB); "
          f"{conversations[small]} conversations {best[small]:.1f} s, peak {peak[small]:.0f} MB; "
          f"time ratio {best[large] / best[small]:.2f}x, memory ratio "
          f"{peak[large] / peak[small]:.2f}x | best of {args.repeats} interleaved fresh "
          f"processes (imports included; verdicts appended, results written, no report), "
          f"scripted logs made in {made:.0f} s, cache off, "
          f"targets: <= 10 s, <= 500 MB, memory ratio <= 1.2")


if __name__ == "__main__":
    main()
