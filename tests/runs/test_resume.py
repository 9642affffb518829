"""Kill a real run with SIGKILL part-way, resume it, and get the uninterrupted run's results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from agentsim.core.store import RunStore

MODEL = "scripted/stereotyped?rate=0.5&final=0.7&latency_ms=15"


def agentsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agentsim", *args], capture_output=True,
                          text=True, timeout=600)


def finished(run_dir) -> int:
    path = run_dir / "events.jsonl"
    return path.read_text().count('"conversation_finished"') if path.exists() else 0


def test_killed_run_resumes_to_the_same_results(tmp_path, workplace):
    common = [str(workplace), "--model", MODEL, "--replicates", "2", "--rounds", "1",
              "--concurrency", "2", "--seed", "5", "--no-variants", "--json"]
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "agentsim", "run", *common,
                                "--out", str(killed)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while finished(killed) < 4 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    planned = len(json.loads((killed / "manifest.json").read_text())["jobs"])
    before = finished(killed)
    assert 0 < before < planned
    with open(killed / "events.jsonl", "a") as log:  # a line cut short by the kill
        log.write('{"run_id": "x", "type": "mess')

    result = agentsim("resume", str(killed), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["conversations"] == planned and payload["resumed"] == planned - before

    store = RunStore.open(killed)
    ids = [e.conversation_id for e in store.iter_events({"conversation_finished"})]
    assert len(ids) == len(set(ids)) == planned  # every planned conversation exactly once
    assert store.skipped_lines == 0  # the partial line was cut before appending
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["status"] == "finished"

    clean = tmp_path / "clean"
    uninterrupted = agentsim("run", *common, "--no-cache", "--out", str(clean))
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    expected = json.loads(uninterrupted.stdout)["metrics"]
    for name in ("bias_first", "bias_last", "escalation"):
        assert payload["metrics"][name] == expected[name], name


def test_resume_of_a_finished_run_runs_nothing(tmp_path, workplace):
    out = tmp_path / "run"
    first = agentsim("run", str(workplace / "office-product-launch.yaml"), "--model",
                     "scripted/fair", "--out", str(out), "--json")
    assert first.returncode == 0
    again = agentsim("resume", str(out), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["resumed"] == 0
    assert agentsim("resume", str(tmp_path / "nothing")).returncode == 2
