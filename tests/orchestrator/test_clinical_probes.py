"""Clinical probes: the doctor's private leading diagnosis after each answer, as a trajectory."""

from __future__ import annotations

from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios


def run(tmp_path, repo, probes: bool, name: str):
    scenarios = load_scenarios([repo / "scenarios" / "clinical"])
    return run_experiment(scenarios, RunOptions(model="scripted/clinical?ask=4&correct=0.9",
                                                replicates=3, probes=probes),
                          out=tmp_path / name)


def test_probe_trajectory_rises_and_leaves_the_consultation_alone(tmp_path, repo):
    probed, plain = run(tmp_path, repo, True, "probed"), run(tmp_path, repo, False, "plain")
    metrics = probed.results["metrics"]
    # Planted: right with probability 0.9 * turn / 6, i.e. a slope of 0.15 per doctor turn.
    slope = metrics["probe_accuracy_slope"]
    assert slope["ci_low"] <= 0.15 <= slope["ci_high"]
    assert metrics["probe_accuracy[round=1]"]["value"] < metrics["probe_accuracy[round=5]"]["value"]
    assert "probe_accuracy_slope" not in plain.results["metrics"]

    def consultation(summary):
        # Conversations run concurrently and interleave in the log: compare each on its own.
        store = RunStore.open(summary.run_dir)
        talks: dict[str, list] = {}
        for e in store.iter_events({"message"}):
            talks.setdefault(e.conversation_id, []).append((e.turn, e.speaker, e.content,
                                                            e.visible_to))
        return talks

    # Probes are side calls: nobody hears them and the consultation is the same without them.
    assert consultation(probed) == consultation(plain)
    store = RunStore.open(probed.run_dir)
    probes = [e for e in store.iter_events({"decision"}) if e.kind == "diagnosis_probe"]
    assert probes and all(e.phase == "probe" and e.round >= 1 for e in probes)
    assert metrics["accuracy"] == plain.results["metrics"]["accuracy"]
