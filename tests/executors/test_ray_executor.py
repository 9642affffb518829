"""The ray executor on a local Ray of 2 CPUs (one per test session, no network).

Same metrics as the local executor for the same seeds; a run interrupted mid-way resumes to the
same results, and re-judging it gives them again; a dead actor or a batch that raises fails its
conversations (kind 'worker') and the run goes on, exiting non-zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.core.store import RunStore
from agentsim.errors import InputError
from agentsim.executors.ray_cluster import RayExecutor
from agentsim.registry import check_options, options_model, recorded_options
from agentsim.runs import runner
from agentsim.runs.resume import resume_run
from agentsim.runs.runner import RunOptions, build_plan, new_manifest, run_experiment
from agentsim.scenario import load_scenarios

ray = pytest.importorskip("ray")

REPO = Path(__file__).resolve().parents[2]
MODEL = "scripted/stereotyped"


@pytest.fixture(scope="session", autouse=True)
def local_ray():
    """One local Ray for the session: 2 CPUs, no dashboard, nothing listening beyond it."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield
    if started:
        ray.shutdown()


def scenarios(count: int):
    return load_scenarios([REPO / "scenarios" / "workplace"])[:count]


def options(**given) -> RunOptions:
    return RunOptions(**{"model": MODEL, "replicates": 2, "cache": False, "backoff_s": 0.0,
                         "judges": ("assignment_bias",), "executor": "ray", **given})


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())["metrics"]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: the local executor on the same plan."""
    out = tmp_path_factory.mktemp("local") / "run"
    run_experiment(scenarios(3), options(executor="local"), out=out)
    return out


def test_metrics_equal_the_local_executors(tmp_path, local_run):
    summary = run_experiment(scenarios(3), options(), out=tmp_path / "run")
    assert summary.exit_status == 0 and summary.failed == 0
    assert metrics(tmp_path / "run") == metrics(local_run)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert set(manifest["plugins"]["executor"]) == {"ray"}
    assert manifest["options"]["executor"] == "ray"


def test_an_interrupted_ray_run_resumes_and_rejudges_to_the_same_results(tmp_path, local_run):
    seen: list[str] = []

    def on_done(job, ok):
        seen.append(job.conversation_id)
        if len(seen) == 5:
            raise KeyboardInterrupt  # the driver killed after five conversations were logged

    with pytest.raises(KeyboardInterrupt):
        run_experiment(scenarios(3), options(), out=tmp_path / "run", on_done=on_done)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    finished = list(RunStore.open(tmp_path / "run").iter_events({"conversation_finished"}))
    assert 5 <= len(finished) < len(manifest["jobs"])
    summary = resume_run(tmp_path / "run")
    assert summary.exit_status == 0 and summary.conversations == len(manifest["jobs"])
    assert metrics(tmp_path / "run") == metrics(local_run)
    import agentsim

    agentsim.judge(tmp_path / "run", judges=["assignment_bias"])
    assert metrics(tmp_path / "run") == metrics(local_run)


def test_a_fork_of_a_ray_run_runs_on_ray(tmp_path, local_run):
    """A fork of a Ray-made run (its options name the ray executor) ships the parent's prefix
    to the workers: the same decisions as the fork of the local run."""
    from agentsim.runs.fork import fork_run

    def decisions(run_dir: Path) -> list:
        return sorted((e.conversation_id, e.turn, e.agent, e.phase, str(e.value))
                      for e in RunStore.open(run_dir).iter_events({"decision"}))

    run_experiment(scenarios(3), options(), out=tmp_path / "parent")
    conversation = next(iter(RunStore.open(local_run).iter_events({"conversation_started"})))
    agents = len({p.id for _, s in scenarios(3) if s.id == conversation.scenario_id
                  for p in s.personas})
    turn = agents + 1  # after the first decisions and one discussion turn
    forks = {}
    for name, parent in (("ray", tmp_path / "parent"), ("local", local_run)):
        summary = fork_run(parent, conversation.conversation_id, turn, replicates=2,
                           out=tmp_path / f"fork-{name}")
        assert summary.exit_status == 0 and summary.conversations == 2
        forks[name] = decisions(tmp_path / f"fork-{name}")
    manifest = json.loads((tmp_path / "fork-ray" / "manifest.json").read_text())
    assert set(manifest["plugins"]["executor"]) == {"ray"}
    assert forks["ray"] == forks["local"] and forks["ray"]


def test_a_dead_actor_fails_its_conversations_and_the_run_goes_on(tmp_path, monkeypatch):
    executor = RayExecutor(concurrency=4, workers=2, batch_size=2)
    monkeypatch.setattr(runner, "make_executor", lambda _options: executor)
    killed: list[bool] = []

    def on_done(job, ok):
        pool = executor.pool
        if not killed and pool is not None and any(pool.busy):
            ray.kill(pool.actors[pool.busy.index(max(pool.busy))])  # one running a batch
            killed.append(True)

    summary = run_experiment(scenarios(4), options(model=f"{MODEL}?latency_ms=40"),
                             out=tmp_path / "run", on_done=on_done)
    assert killed and summary.exit_status == 1 and summary.not_run == 0
    store = RunStore.open(tmp_path / "run")
    finished = {e.conversation_id: e.ok for e in store.iter_events({"conversation_finished"})}
    assert len(finished) == summary.conversations == len(
        json.loads((tmp_path / "run" / "manifest.json").read_text())["jobs"])
    lost = [e for e in store.iter_events({"error"}) if e.kind == "worker"]
    assert lost and summary.failed == len(lost)
    assert any(finished.values())


def test_a_batch_that_raises_fails_its_conversations(tmp_path):
    """An exception in a worker (here: a job whose scenario the worker was not given) becomes
    failed conversations with an error event; the other batches run."""
    chosen = scenarios(2)
    given = options()
    plan = build_plan([s for _, s in chosen], given)
    broken = plan.jobs[0].model_copy(update={"scenario_id": "no-such-scenario"})
    plan = plan.only([broken, *plan.jobs[1:]])
    store = RunStore.create(tmp_path / "run", new_manifest("r", chosen, given, plan.jobs))
    outcomes = RayExecutor(concurrency=2, workers=2, batch_size=1).run_plan(
        store, plan, given, runner.build_client(given))
    assert outcomes[0] is False and all(outcomes[1:])
    errors = list(store.iter_events({"error"}))
    assert [e.conversation_id for e in errors] == [broken.conversation_id]
    assert errors[0].kind == "worker" and "KeyError" in errors[0].message


def test_options_follow_the_registry_contract():
    model = options_model(RayExecutor)
    recorded = recorded_options(RayExecutor, {"concurrency": 3, "address": "auto"})
    model.model_validate(json.loads(json.dumps(recorded, allow_nan=False)))
    with pytest.raises(InputError, match="executor 'ray' has no option"):
        check_options("executor", "ray", RayExecutor, {"no_such_option": 1}, "x")
