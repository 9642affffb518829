"""The processes executor: workers in processes on this machine, the driver writing the log.

Same metrics as the local executor for the same seeds; a worker process that dies fails the
conversations of its batches (an error event of kind 'worker'), the run goes on and exits
non-zero; the rate limits are shared out among the workers; the options follow the registry's
contract.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from agentsim.core.store import RunStore
from agentsim.errors import InputError
from agentsim.executors.processes import ProcessExecutor
from agentsim.executors.worker import LimitShare, max_workers_for, share_limits
from agentsim.models.endpoints import Endpoint
from agentsim.registry import check_options, options_model, recorded_options
from agentsim.runs import runner
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import load_scenarios

REPO = Path(__file__).resolve().parents[2]
MODEL = "scripted/stereotyped"


def scenarios(count: int | None = None):
    found = load_scenarios([REPO / "scenarios" / "workplace"])
    return found[:count] if count else found


def options(**given) -> RunOptions:
    return RunOptions(**{"model": MODEL, "replicates": 2, "cache": False, "backoff_s": 0.0,
                         "judges": ("assignment_bias",), **given})


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())["metrics"]


def test_metrics_equal_the_local_executors(tmp_path):
    chosen = scenarios(4)
    local = run_experiment(chosen, options(), out=tmp_path / "local")
    shipped = run_experiment(chosen, options(executor="processes"), out=tmp_path / "procs")
    assert shipped.exit_status == local.exit_status == 0
    assert shipped.conversations == local.conversations > 0
    assert metrics(tmp_path / "procs") == metrics(tmp_path / "local")
    manifest = json.loads((tmp_path / "procs" / "manifest.json").read_text())
    assert set(manifest["plugins"]["executor"]) == {"processes"}
    # Each conversation's events are whole and in order: started first, finished last.
    last: dict[str, str] = {}
    for event in RunStore.open(tmp_path / "procs").iter_events():
        if event.type == "run_finished":
            break  # judges' verdicts follow
        if event.conversation_id is None:
            continue
        if event.type == "conversation_started":
            assert event.conversation_id not in last
        else:
            assert last[event.conversation_id] != "conversation_finished"
        last[event.conversation_id] = event.type
    assert set(last.values()) == {"conversation_finished"}


def test_a_dead_worker_fails_its_conversations_and_the_run_goes_on(tmp_path, monkeypatch):
    """A worker process killed mid-run: its batches' conversations fail with kind 'worker',
    every other conversation runs, and the run exits 1."""
    executor = ProcessExecutor(concurrency=4, workers=2, batch_size=2)
    monkeypatch.setattr(runner, "make_executor", lambda _options: executor)
    killed: list[int] = []

    def on_done(job, ok):
        if not killed and executor.pool is not None:
            pid = executor.pool.pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    summary = run_experiment(scenarios(4), options(model=f"{MODEL}?latency_ms=40"),
                             out=tmp_path / "run", on_done=on_done)
    assert killed
    assert summary.exit_status == 1 and summary.not_run == 0
    store = RunStore.open(tmp_path / "run")
    finished = {e.conversation_id: e.ok for e in store.iter_events({"conversation_finished"})}
    planned = len(json.loads((tmp_path / "run" / "manifest.json").read_text())["jobs"])
    assert len(finished) == planned == summary.conversations
    lost = [e for e in store.iter_events({"error"}) if e.kind == "worker"]
    assert lost and summary.failed == len(lost) == sum(not ok for ok in finished.values())
    assert any(finished.values())  # the run went on after the worker died


def test_max_failures_stops_the_run_and_leaves_the_rest_for_resume(tmp_path):
    summary = run_experiment(scenarios(4), options(model=f"{MODEL}?fail=1", retries=0,
                                                   executor="processes", max_failures="0"),
                             out=tmp_path / "run")
    assert summary.stopped and summary.exit_status == 3 and summary.not_run > 0


def test_limits_are_shared_out_among_the_workers():
    shares = [LimitShare(i, 3) for i in range(3)]
    assert sum(s.slots(7) for s in shares) == 7 and {s.slots(7) for s in shares} == {2, 3}
    assert shares[0].rate(600) == 200 and shares[0].rate(None) is None

    class Client:
        def limiter(self, endpoint):  # pragma: no cover - replaced
            raise AssertionError

    client = Client()
    share_limits(client, LimitShare(1, 2))
    limiter = client.limiter(Endpoint(name="m", model="openai/m", rpm=120, tpm=1000,
                                      max_in_flight=3))
    assert limiter.configured_rps == pytest.approx(1.0) and limiter.max_in_flight == 1
    assert client.limiter(Endpoint(name="m", model="openai/m")) is limiter  # one per endpoint
    # No more workers than the tightest model has calls in flight.
    tight = options(endpoint_options={MODEL: {"max_in_flight": 1}})
    assert max_workers_for(tight, 8) == 1 and max_workers_for(options(), 8) == 8


def test_options_follow_the_registry_contract():
    model = options_model(ProcessExecutor)
    recorded = recorded_options(ProcessExecutor, {"concurrency": 3})
    model.model_validate(json.loads(json.dumps(recorded, allow_nan=False)))
    with pytest.raises(InputError, match="executor 'processes' has no option"):
        check_options("executor", "processes", ProcessExecutor, {"no_such_option": 1}, "x")
    with pytest.raises(InputError):
        check_options("executor", "processes", ProcessExecutor, {"workers": 0}, "x")


def test_an_unknown_executor_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(Exception, match="nowhere"):
        run_experiment(scenarios(1), options(executor="nowhere"), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(InputError, match="--executor ray only"):
        run_experiment(scenarios(1), options(ray_address="auto"), out=tmp_path / "run")
