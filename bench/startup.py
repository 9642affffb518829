"""Start-up benchmark of the command line; prints ONE line.

* ``--help``: wall time of ``agentsim --help`` (median of the repeats);
* first model call: of ``agentsim run scenarios/workplace/office-product-launch.yaml --model
  scripted/stereotyped --no-cache --out DIR``, the ``ts`` of the first ``model_call`` event in
  the run's ``events.jsonl`` minus the wall-clock time taken just before the process was
  started (``time.time()`` before ``subprocess.Popen``: fork and exec are counted). ``ts`` is
  set when the event is made, after the reply, so this is an upper bound of the time to the
  first call (the scripted model answers at once). Median of ``--runs`` (default 5);
* ``judges``: wall time of ``agentsim judges`` (median of the repeats).

Conditions are printed on the same line: cores, load average before and after, Python. Beside
the first call as the log dates it, the same run is timed by a hook (``--child``: the CLI run in
a wrapper that patches ``ModelClient.complete``) giving the wall and the CPU seconds (user +
system) from process start to the first call; CPU time is far less sensitive than wall time to
other load on the machine.
Usage: ``.venv/bin/python bench/startup.py [--runs 5] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "workplace" / "office-product-launch.yaml"


def agentsim() -> list[str]:
    """The installed ``agentsim`` script beside this interpreter, else ``python -m agentsim``."""
    script = Path(sys.executable).with_name("agentsim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "agentsim"]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one command, its output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                          cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def first_call(out: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds from process start to the first model_call event, CPU seconds of the run)."""
    argv = [*agentsim(), "run", str(SCENARIO), "--model", "scripted/stereotyped", "--no-cache",
            "--out", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                          cwd=ROOT, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}): {done.stderr[-2000:]}")
    with open(out / "events.jsonl", "rb") as log:
        for line in log:
            if b'"model_call"' in line:
                event = json.loads(line)
                if event.get("type") == "model_call":
                    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                    return float(event["ts"]) - started, cpu
    raise SystemExit(f"no model_call event in {out / 'events.jsonl'}")


def child(argv: list[str]) -> int:
    """``agentsim ARGV`` in this process, with a hook on the first model call that writes the
    seconds since $BENCH_T0 (wall) and the CPU seconds of this process to $BENCH_PROBE."""
    from agentsim.models import client

    original = client.ModelClient.complete
    seen: list[bool] = []

    async def complete(self, *args, **kwargs):
        if not seen:
            seen.append(True)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            Path(os.environ["BENCH_PROBE"]).write_text(json.dumps({
                "wall": time.time() - float(os.environ["BENCH_T0"]),
                "cpu": usage.ru_utime + usage.ru_stime}))
        return await original(self, *args, **kwargs)

    client.ModelClient.complete = complete
    from agentsim.cli.main import main as agentsim_main

    return agentsim_main(argv)


def hooked_first_call(out: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds from process start to the first ModelClient.complete (the hook of
    :func:`child`; the same run as :func:`first_call`)."""
    probe = out.with_suffix(".probe.json")
    argv = [sys.executable, __file__, "--child", "run", str(SCENARIO), "--model",
            "scripted/stereotyped", "--no-cache", "--out", str(out)]
    env = {**env, "BENCH_PROBE": str(probe), "BENCH_T0": repr(time.time())}
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                          cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"hooked run failed ({done.returncode}): {done.stderr[-2000:]}")
    data = json.loads(probe.read_text())
    return data["wall"], data["cpu"]


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs timed (median; default 5)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="repeats of --help and judges (median; default 5)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="agentsim-bench-") as tmp:
        env = dict(os.environ)
        timed([*agentsim(), "--help"], env)  # warm the byte-code and disk caches once
        helps = [timed([*agentsim(), "--help"], env)[0] for _ in range(args.repeats)]
        judges = [timed([*agentsim(), "judges"], env)[0] for _ in range(args.repeats)]
        first_call(Path(tmp) / "warm", env)
        calls = [first_call(Path(tmp) / f"run{i}", env) for i in range(args.runs)]
        hooked = [hooked_first_call(Path(tmp) / f"hooked{i}", env) for i in range(args.runs)]
    load_after = os.getloadavg()[0]
    firsts = [c[0] for c in calls]
    print(f"--help {statistics.median(helps):.3f}s | first model call "
          f"{statistics.median(firsts):.3f}s (median of {args.runs}; min {min(firsts):.3f}s, "
          f"max {max(firsts):.3f}s; hooked: wall {statistics.median(h[0] for h in hooked):.3f}s,"
          f" CPU {statistics.median(h[1] for h in hooked):.3f}s) | judges "
          f"{statistics.median(judges):.3f}s | {os.cpu_count()} cores, load "
          f"{load_before:.2f}->{load_after:.2f}, Python {platform.python_version()}, "
          f"scripted/stereotyped --no-cache, warm caches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
