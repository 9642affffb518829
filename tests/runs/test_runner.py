"""End-to-end runs with the scripted model: the measured bias must cover the rate put in.

The scripted model plants decisions (fully stereotyped with probability rate, balanced otherwise),
so a correct pipeline measures bias ≈ rate and escalation ≈ final − rate. These tests check the
machinery, not any model's bias.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios
from agentsim.scenario.variants import BASE_VARIANT


def run(tmp_path: Path, workplace: Path, model: str, **options) -> dict:
    # The scenarios as written: declared counterfactual variants are tested elsewhere.
    options.setdefault("variants", (BASE_VARIANT,))
    scenarios = load_scenarios([workplace])
    summary = run_experiment(scenarios, RunOptions(model=model, **options), out=tmp_path / "run")
    return {"summary": summary, "metrics": summary.results["metrics"]}


def covers(metric: dict, target: float) -> bool:
    return metric["ci_low"] - 1e-9 <= target <= metric["ci_high"] + 1e-9


@pytest.mark.parametrize(("rate", "final"), [(0.2, 0.2), (0.5, 0.8), (0.9, 0.4)])
def test_measured_bias_covers_planted_rates(tmp_path, workplace, rate, final):
    # A 95 % interval misses the truth 5 % of the time, so one run could fail by chance: three
    # seeds must cover in at least two (a correct pipeline fails this < 1 % of the time), and
    # their mean must sit close to the planted rate.
    covered = {"bias_first": 0, "bias_last": 0, "escalation": 0}
    values = {name: [] for name in covered}
    targets = {"bias_first": rate, "bias_last": final, "escalation": final - rate}
    for seed in (1, 2, 3):
        out = run(tmp_path / str(seed), workplace,
                  f"scripted/stereotyped?rate={rate}&final={final}", replicates=3, rounds=1,
                  seed=seed)
        metrics = out["metrics"]
        assert out["summary"].failed == 0
        for name in covered:
            covered[name] += covers(metrics[name], targets[name])
            values[name].append(metrics[name]["value"])
        # Planted decisions are never anti-stereotypical; the three shares add up to one.
        assert metrics["first_anti"]["value"] == 0
        shares = sum(metrics[f"first_{k}"]["value"] for k in ("stereotypical", "neutral", "anti"))
        assert shares == pytest.approx(1.0)
    for name, count in covered.items():
        assert count >= 2, (name, values[name])
        assert sum(values[name]) / 3 == pytest.approx(targets[name], abs=0.06), name


def test_the_log_has_every_step_and_ids(tmp_path, workplace):
    out = run(tmp_path, workplace, "scripted/stereotyped?rate=0.5", replicates=1, rounds=2)
    store = RunStore.open(out["summary"].run_dir)
    events = list(store.iter_events())
    types = [e.type for e in events]
    conversations = {e.conversation_id for e in events if e.type == "conversation_finished"}
    assert len(conversations) == 16
    assert types[0] == "run_started"
    for kind in ("model_call", "message", "decision", "judge_result", "run_finished"):
        assert kind in types
    one = [e for e in events if e.conversation_id == "office-product-launch.base.none.r0"]
    discussion = [e for e in one if e.type == "message" and e.phase == "discussion"]
    assert len(discussion) == 2 * 4  # two rounds, four agents
    assert {e.round for e in discussion} == {1, 2}
    decisions = [e for e in one if e.type == "decision"]
    assert sorted(e.phase for e in decisions) == ["final"] * 4 + ["first"] * 4
    for event in one:
        assert event.run_id == store.run_id and event.seed is not None
    manifest = store.read_manifest()
    assert manifest["status"] == "finished"
    assert len(manifest["jobs"]) == 16 and len(manifest["scenarios"]) == 16
    results = json.loads((out["summary"].run_dir / "results.json").read_text())
    assert results["conversations"] == 16 and results["failed"] == 0


def test_first_decisions_are_private(tmp_path, workplace):
    """Round-1 prompts carry no other agent's answer; discussion prompts carry the transcript."""
    out = run(tmp_path, workplace, "scripted/stereotyped?rate=0.5", rounds=1)
    store = RunStore.open(out["summary"].run_dir)
    calls = [e for e in store.iter_events({"model_call"})
             if e.conversation_id == "office-product-launch.base.none.r0"]
    first = [c for c in calls if c.purpose == "decision" and c.turn < 4]
    assert len(first) == 4
    for call in first:
        assert "Conversation so far" not in call.messages[-1]["content"]
        assert "My proposal" not in call.messages[-1]["content"]
    talk = [c for c in calls if c.purpose == "discussion"]
    assert all("My proposal" in c.messages[-1]["content"] for c in talk)


def test_same_seed_same_log_different_seed_differs(tmp_path, workplace):
    def decisions(seed: int, name: str) -> list:
        scenarios = load_scenarios([workplace / "office-product-launch.yaml"])
        summary = run_experiment(scenarios, RunOptions(model="scripted/stereotyped?rate=0.5",
                                                       replicates=4, seed=seed),
                                 out=tmp_path / name)
        return [(e.conversation_id, e.agent, e.phase, e.value)
                for e in RunStore.open(summary.run_dir).iter_events({"decision"})]

    first, again, other = decisions(1, "a"), decisions(1, "b"), decisions(2, "c")
    assert sorted(first, key=str) == sorted(again, key=str)
    assert sorted(first, key=str) != sorted(other, key=str)


def test_no_interaction_setting_has_one_decision(tmp_path, workplace):
    out = run(tmp_path, workplace, "scripted/stereotyped?rate=1", setting="no-interaction")
    metrics = out["metrics"]
    assert metrics["bias_first"]["value"] == 1.0
    assert "bias_last" not in metrics and "escalation" not in metrics
    store = RunStore.open(out["summary"].run_dir)
    assert not list(store.iter_events({"message"}))
    phases = {e.phase for e in store.iter_events({"decision"})}
    assert phases == {"single"}


def test_goal_setting_tells_each_agent_privately(tmp_path, workplace):
    out = run(tmp_path, workplace, "scripted/fair", setting="goal", rounds=1)
    store = RunStore.open(out["summary"].run_dir)
    calls = list(store.iter_events({"model_call"}))
    # Each agent's own turn carries its goal; the shared system prompt and the public
    # transcript never do.
    assert calls and all("Private goal" in c.messages[-1]["content"] for c in calls)
    assert all("you yourself are assigned t1" in c.messages[-1]["content"] for c in calls)
    assert not any("Private goal" in c.messages[0]["content"] for c in calls)
    assert not any("Private goal" in m.content for m in store.iter_events({"message"}))


def test_provider_failures_are_retried_and_counted(tmp_path, workplace):
    out = run(tmp_path, workplace, "scripted/stereotyped?rate=0.5&fail=0.6", rounds=1,
              replicates=2, backoff_s=0.001)
    summary = out["summary"]
    store = RunStore.open(summary.run_dir)
    calls = list(store.iter_events({"model_call"}))
    assert any(c.attempts > 1 for c in calls if c.error is None)  # retried, then succeeded
    assert summary.failed > 0  # some exhausted their retries
    assert summary.conversations == 32  # and the batch went on
    assert summary.errors.get("server") == summary.failed  # grouped by kind
    errors = list(store.iter_events({"error"}))
    assert len(errors) == summary.failed and all("fail knob" in e.message for e in errors)


def test_people_are_listed_in_a_seeded_order_shared_by_variants(tmp_path, workplace):
    """Position in the people list is drawn from the seed, not the file: across replicates it
    varies, and within a replicate every variant lists the persona slots in the same order."""
    from agentsim.orchestrator.discussion import listing_order
    from agentsim.orchestrator.runtime import ConversationContext
    from agentsim.runs.runner import plan_jobs
    from agentsim.scenario import load_scenario

    scenario = load_scenario(workplace / "restaurant-reopening.yaml")
    jobs = plan_jobs([scenario], RunOptions(model="scripted/fair", replicates=6))

    def order(job):
        ctx = ConversationContext(run_id="r", job=job, scenario=scenario, client=None,
                                  emit=lambda event: None)
        return tuple(listing_order(ctx))

    by_replicate: dict[int, set] = {}
    for job in jobs:
        by_replicate.setdefault(job.replicate, set()).add(order(job))
    assert all(len(orders) == 1 for orders in by_replicate.values())
    assert len({next(iter(o)) for o in by_replicate.values()}) > 1
