"""The typed run core: one Manifest constructor for runs, forks and imports; a picklable Plan;
hashable jobs."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from agentsim.cli import main
from agentsim.core.jobs import ConversationJob
from agentsim.core.manifest import SCHEMA_VERSION, Manifest
from agentsim.core.store import RunStore
from agentsim.runs.runner import RunOptions, build_plan
from agentsim.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[2]
OFFICE = ROOT / "scenarios" / "workplace" / "office-annual-conference.yaml"


def test_jobs_are_hashable_and_equal_jobs_hash_alike():
    job = ConversationJob(scenario_id="s", seed=1, models={"default": "scripted/fair"},
                          mitigation_options={"debias_prompt": {"file": "x"}})
    twin = ConversationJob.model_validate(json.loads(job.model_dump_json()))
    assert hash(job) == hash(twin) and {job, twin} == {job}
    assert hash(job.model_copy(update={"seed": 2})) != hash(job)


def test_a_plan_is_picklable_and_fully_specified():
    scenarios = [s for _, s in load_scenarios([OFFICE])]
    plan = build_plan(scenarios, RunOptions(model="scripted/fair", replicates=2,
                                            arms=("none", "debias_prompt")))
    assert len(plan) == 2 * 2 * len({v for (_, v) in plan.scenarios})
    copy = pickle.loads(pickle.dumps(plan))
    assert copy.jobs == plan.jobs and dict(copy.scenarios) == dict(plan.scenarios)
    for job in plan.jobs:  # every job finds the scenario it runs
        assert plan.scenario_of(job).id == job.scenario_id
    assert plan.only(list(plan.jobs[:1])).jobs == plan.jobs[:1]


def _manifest(folder: Path) -> dict:
    data = json.loads((folder / "manifest.json").read_text())
    Manifest.model_validate(data)  # every writer's manifest is a valid Manifest
    return data


def test_run_fork_and_import_write_one_manifest_layout(tmp_path):
    run = tmp_path / "run"
    assert main(["run", str(OFFICE), "--model", "scripted/fair", "--out", str(run),
                 "--no-cache"]) == 0
    conversation = next(RunStore(run).iter_events({"conversation_started"})).conversation_id
    fork = tmp_path / "fork"
    assert main(["replay", str(run), "--conversation", conversation, "--from-turn", "0",
                 "--model", "scripted/stereotyped", "--out", str(fork)]) == 0
    transcript = tmp_path / "t.jsonl"
    transcript.write_text("\n".join(json.dumps(line) for line in [
        {"conversation_id": "c1", "turn": 0, "speaker": "Ann", "role": "agent",
         "content": "I can take the minutes."},
        {"conversation_id": "c1", "turn": 1, "speaker": "Bob", "role": "agent",
         "content": "I will carry the boxes."},
    ]) + "\n")
    imported = tmp_path / "imported"
    assert main(["import", "transcript", str(transcript), "--out", str(imported)]) == 0
    manifests = [_manifest(run), _manifest(fork), _manifest(imported)]
    required = {"schema_version", "run_id", "created", "status", "agentsim_version", "python",
                "options", "models", "scenarios", "variants", "jobs", "judges", "arms"}
    for data in manifests:
        assert required <= set(data), required - set(data)
        assert data["schema_version"] == SCHEMA_VERSION
    assert manifests[1]["parent"]["conversation_id"] == conversation
    assert "parent" not in manifests[0]
