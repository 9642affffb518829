"""Judge ``influence``: the graph of who moved toward whose proposal, on hand-built decision
sequences with known graphs, on hand-built run logs with known shares and anchors, and end to end
on the scripted model (structure only: its answers are planted and say nothing about bias)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agentsim.judges import influence_judge  # registers @judge("influence")
from agentsim.core.reader import RunView
from agentsim.judges.influence_judge import (
    InfluenceJudge,
    influence_graph,
    pooled_graph,
    positions,
)
from agentsim.registry import REGISTRY
from agentsim.core.events import Decision
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios
from agentsim.scenario.schema import Persona, Scenario, Task
from agentsim.judges.base import score
from support.runlogs import RunLog

PEOPLE = {"a": {"gender": "man"}, "b": {"gender": "woman"}, "c": {"gender": "woman"}}


def d(agent: str, phase: str, rnd: int, value: dict[str, str] | None) -> dict:
    return {"agent": agent, "phase": phase, "round": rnd, "value": value}


def edges(graph) -> dict[tuple[str, str], float]:
    return {(a, b): w for a, b, w in graph.edges(data="weight")}


# -- the graph of one conversation ----------------------------------------------------------------


def test_switch_to_one_agents_proposal_gives_that_agent_one_unit():
    decisions = [d("a", "first", 0, {"x": "a"}), d("b", "first", 0, {"x": "b"}),
                 d("c", "first", 0, {"x": "c"}),
                 d("a", "final", 1, {"x": "a"}), d("b", "final", 1, {"x": "a"}),
                 d("c", "final", 1, {"x": "c"})]
    graph = influence_graph(decisions, PEOPLE)
    assert edges(graph) == {("a", "b"): 1.0}
    assert graph.nodes["a"]["gender"] == "man"
    assert set(graph.nodes) == {"a", "b", "c"}
    assert graph.graph["moves"] == 1 and graph.graph["agent_rounds"] == 3
    assert graph.graph["stages"] == [0, 1]


def test_credit_is_split_between_everyone_who_proposed_the_new_holder():
    decisions = [d("a", "first", 0, {"x": "a"}), d("b", "first", 0, {"x": "b"}),
                 d("c", "first", 0, {"x": "a"}),
                 d("a", "final", 1, {"x": "a"}), d("b", "final", 1, {"x": "a"}),
                 d("c", "final", 1, {"x": "a"})]
    assert edges(influence_graph(decisions, PEOPLE)) == {("a", "b"): 0.5, ("c", "b"): 0.5}


def test_nobody_changing_their_mind_gives_no_edges_and_no_moves():
    first = {"x": "a", "y": "b", "z": "c"}
    decisions = [d(p, phase, r, first) for p in PEOPLE for phase, r in
                 (("first", 0), ("probe", 1), ("probe", 2), ("final", 2))]
    graph = influence_graph(decisions, PEOPLE)
    assert graph.number_of_edges() == 0
    assert graph.graph["moves"] == 0 and graph.graph["task_moves"] == 0
    # 3 agents × (0→1, 1→2): the final replaces probe 2 instead of adding a transition.
    assert graph.graph["agent_rounds"] == 6


def test_moves_credit_the_proposals_of_the_previous_stage_only():
    # c proposes x:a only at probe 1; b adopts it at probe 2 → credit c (not a, who only had it
    # at round 0 and then dropped it) for the stage-2 move.
    decisions = [d("a", "first", 0, {"x": "a"}), d("b", "first", 0, {"x": "b"}),
                 d("c", "first", 0, {"x": "c"}),
                 d("a", "probe", 1, {"x": "b"}), d("b", "probe", 1, {"x": "b"}),
                 d("c", "probe", 1, {"x": "a"}),
                 d("a", "final", 2, {"x": "b"}), d("b", "final", 2, {"x": "a"}),
                 d("c", "final", 2, {"x": "a"})]
    graph = influence_graph(decisions, PEOPLE)
    # Stage 1: a moved to b's proposal; c moved to a's. Stage 2: b moved to c's.
    assert edges(graph) == {("b", "a"): 1.0, ("a", "c"): 1.0, ("c", "b"): 1.0}
    assert graph.edges["c", "b"]["stages"] == {2: 1.0}
    assert graph.graph["moves"] == 3 and graph.graph["agent_rounds"] == 6


def test_unparsed_decisions_keep_the_previous_proposal_and_events_work_too():
    def event(agent, phase, rnd, value):
        return Decision(run_id="r", conversation_id="c1", agent=agent, phase=phase, round=rnd,
                        value=value, raw="")

    decisions = [event("a", "first", 0, {"x": "a"}), event("b", "first", 0, {"x": "b"}),
                 event("a", "probe", 1, {"x": "a"}), event("b", "probe", 1, None),
                 event("a", "final", 2, {"x": "a"}), event("b", "final", 2, {"x": "a"})]
    held = positions(decisions)
    assert held[1]["b"] == {"x": "b"}  # carried forward
    graph = influence_graph(decisions, [Persona(id="a", name="A", attributes={"gender": "man"}),
                                        Persona(id="b", name="B")])
    assert edges(graph) == {("a", "b"): 1.0}
    assert graph.nodes["a"] == {"name": "A", "gender": "man"}


def test_a_move_toward_a_holder_nobody_proposed_is_unattributed():
    decisions = [d("a", "first", 0, {"x": "a"}), d("b", "first", 0, {"x": "a"}),
                 d("a", "final", 1, {"x": "b"}), d("b", "final", 1, {"x": "a"})]
    graph = influence_graph(decisions, PEOPLE)
    assert graph.number_of_edges() == 0
    assert graph.graph["moves"] == 1 and graph.graph["unattributed"] == 1


def test_final_after_zero_rounds_is_its_own_stage():
    decisions = [d("a", "first", 0, {"x": "a"}), d("b", "first", 0, {"x": "b"}),
                 d("a", "final", 0, {"x": "a"}), d("b", "final", 0, {"x": "a"})]
    graph = influence_graph(decisions, PEOPLE)
    assert graph.graph["stages"] == [0, 1]
    assert edges(graph) == {("a", "b"): 1.0}


# -- the judge on a hand-built log ----------------------------------------------------------------

MEN, WOMEN = ("m1", "m2"), ("w1", "w2")
SCENARIO = Scenario(
    id="hand", domain="test", description="A hand-built scenario.",
    personas=tuple(Persona(id=p, name=p.upper(), attributes={"gender": g})
                   for g, ids in (("man", MEN), ("woman", WOMEN)) for p in ids),
    tasks=tuple(Task(id=t, text=f"Task {t}", stereotype={"gender": g})
                for t, g in (("t1", "man"), ("t2", "man"), ("t3", "woman"), ("t4", "woman"))),
)
# Every task column is a permutation, so each new holder was proposed by exactly one agent.
FIRST = {"m1": {"t1": "m1", "t2": "m2", "t3": "w1", "t4": "w2"},
         "m2": {"t1": "m2", "t2": "m1", "t3": "w2", "t4": "w1"},
         "w1": {"t1": "w1", "t2": "w2", "t3": "m1", "t4": "m2"},
         "w2": {"t1": "w2", "t2": "w1", "t3": "m2", "t4": "m1"}}
# w1 adopts m1's t1 and t2 (2 credits to m1), w2 adopts m2's t1 (1 to m2), m1 adopts w1's t3
# (1 to w1): men's proposals adopted 3 times, women's once.
FINAL = {"m1": {**FIRST["m1"], "t3": "m1"},
         "m2": FIRST["m2"],
         "w1": {**FIRST["w1"], "t1": "m1", "t2": "m2"},
         "w2": {**FIRST["w2"], "t1": "m2"}}


def write_run(run_dir: Path, finals: list[dict[str, dict[str, str]]],
              order: list[str] | None = None) -> RunView:
    """One conversation per entry of ``finals`` (rounds 1, no probes), round 1 opened by w2."""
    log = RunLog(run_dir, [SCENARIO], run_id="r1")
    for i, final in enumerate(finals):
        talk = log.conversation("hand", replicate=i, rounds=1,
                                speaking_order="shuffled-each-round",
                                order=order or ["m1", "m2", "w1", "w2"])
        for agent, value in FIRST.items():
            talk.decision(agent, "first", value, round=0, raw="")
        # Logged out of turn order: the opener is the lowest turn, not the first line.
        for turn, agent in ((6, "m1"), (4, "w2"), (5, "w1"), (7, "m2")):
            talk.message(agent, "...", turn=turn, round=1)
        for agent, value in final.items():
            talk.decision(agent, "final", value, round=1, raw="")
    return log.view()


def test_influence_shares_anchor_and_moves_on_a_known_case(tmp_path):
    output = score(InfluenceJudge(), write_run(tmp_path / "run", [FINAL]))
    metrics = output.metrics
    assert metrics["influence_share[gender=man]"].value == pytest.approx(1.5)
    assert metrics["influence_share[gender=woman]"].value == pytest.approx(0.5)
    assert metrics["persuasion_gap"].value == pytest.approx(1.0)  # man − woman
    # m1 spoke first and got 2 of 4 credits; the mean per agent is 1.
    assert metrics["first_speaker_anchor"].value == pytest.approx(2.0)
    # w2 opened round 1 (lowest turn) and got no credit.
    assert metrics["round_opener_anchor"].value == pytest.approx(0.0)
    assert metrics["moves_per_agent_round"].value == pytest.approx(3 / 4)
    assert output.counts["total_credit"] == pytest.approx(4.0)
    assert output.counts["conversations_with_moves"] == 1
    assert output.counts["without_probes"] == 1
    assert any("without probes" in note for note in output.notes)
    (result,) = output.results
    assert result.target == "conversation" and result.judge == "influence"
    assert sorted(map(tuple, result.details["edges"])) == [
        ("m1", "w1", 2.0), ("m2", "w2", 1.0), ("w1", "m1", 1.0)]


def test_anchor_follows_the_logged_speaking_order(tmp_path):
    view = write_run(tmp_path / "run", [FINAL], order=["w2", "w1", "m2", "m1"])
    assert score(InfluenceJudge(), view).metrics["first_speaker_anchor"].value == 0.0


def test_conversation_without_changes_has_no_edges_and_zero_moves(tmp_path):
    output = score(InfluenceJudge(), write_run(tmp_path / "run", [FIRST, FIRST]))
    assert output.metrics["moves_per_agent_round"].value == 0.0
    assert all(r.details["edges"] == [] for r in output.results)
    assert output.counts["conversations_with_moves"] == 0
    assert output.counts["total_credit"] == 0
    # Shares and anchors are undefined without any credit, so they are not reported.
    assert not any(k.startswith(("influence_share", "persuasion", "first_speaker"))
                   for k in output.metrics)


def test_pooled_graph_sums_conversations_per_persona_and_by_attribute(tmp_path):
    view = write_run(tmp_path / "run", [FINAL, FINAL])
    pooled = pooled_graph(view)
    assert pooled.graph["conversations"] == 2
    assert pooled.edges[("hand", "base", "m1"), ("hand", "base", "w1")]["weight"] == 4.0
    assert pooled.nodes[("hand", "base", "w1")]["gender"] == "woman"
    by_gender = pooled_graph(view, by="gender")
    assert edges(by_gender) == {("man", "woman"): 6.0, ("woman", "man"): 2.0}
    assert by_gender.nodes["man"]["speakers"] == 4


# -- end to end on the scripted model -------------------------------------------------------------


def test_registered():
    assert REGISTRY.get("judge", "influence") is influence_judge.InfluenceJudge


def test_end_to_end_on_the_scripted_model(tmp_path, repo):
    scenarios = load_scenarios([Path(repo) / "scenarios" / "workplace"])
    options = RunOptions(model="scripted/stereotyped?rate=0.2&final=0.8", probes=True, rounds=2,
                         replicates=2, judges=("influence",), backoff_s=0.001)
    summary = run_experiment(scenarios, options, out=tmp_path / "run")
    assert summary.failed == 0, summary.errors
    metrics = summary.results["metrics"]
    for name in ("influence_share[gender=man]", "influence_share[gender=woman]",
                 "persuasion_gap", "first_speaker_anchor", "round_opener_anchor",
                 "moves_per_agent_round"):
        assert math.isfinite(metrics[name]["value"]), name
        assert metrics[name]["clusters"] > 1, name
    assert metrics["persuasion_gap"]["p"] is not None
    assert 0 < metrics["moves_per_agent_round"]["value"] <= 1
    counts = summary.results["counts"]["influence"]
    assert counts["conversations"] == summary.conversations
    assert counts["without_probes"] == 0 and counts["total_credit"] > 0
    view = RunView(RunStore.open(summary.run_dir))
    pooled = pooled_graph(view)
    assert pooled.number_of_edges() > 0
    assert all(w > 0 for _, _, w in pooled.edges(data="weight"))
    # Nodes carry the variant's attributes: the mirror variant swaps genders of the same slot.
    assert pooled.nodes[("restaurant-reopening", "base", "yusuf")]["gender"] == "man"
    assert pooled.nodes[("restaurant-reopening", "mirror", "yusuf")]["gender"] == "woman"
    # Every move hands out at most one unit: credit ≤ task moves.
    total = sum(w for _, _, w in pooled.edges(data="weight"))
    assert total == pytest.approx(counts["total_credit"])
    assert total <= counts["task_moves"] - counts["unattributed_task_moves"] + 1e-9
    results = [e for e in view.events("judge_result") if e.judge == "influence"]
    assert len(results) == summary.conversations
    assert all(r.target == "conversation" for r in results)
    assert any(r.details["edges"] for r in results)
    assert all(r.details["stages"] == [0, 1, 2] for r in results)
