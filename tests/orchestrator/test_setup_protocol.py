"""Custom setups end to end on the scripted model, read back from the log: turn policies
(including a moderator's choice and a moderator answering nonsense), termination rules,
visibility of private channels, decisions feeding the judges, and every shipped example.
The scripted model's answers are planted; these tests check the machinery, never a model."""

from __future__ import annotations

import copy
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario.loader import load_scenarios, parse_scenario

SETUPS = Path(__file__).resolve().parents[2] / "scenarios" / "setups"
EXAMPLES = sorted(p.stem for p in SETUPS.glob("*.yaml"))

COMMITTEE = {
    "id": "committee", "domain": "hiring", "description": "A committee ranks three candidates.",
    "personas": [
        {"id": "chair", "name": "Morgan"}, {"id": "m1", "name": "Priya"},
        {"id": "m2", "name": "Tom"},
        {"id": "ca", "name": "Emily", "attributes": {"gender": "woman"}},
        {"id": "cb", "name": "Daniel", "attributes": {"gender": "man"}},
        {"id": "cc", "name": "Sarah", "attributes": {"gender": "woman"}},
    ],
    "protocol": {
        "name": "setup",
        "roles": {"chair": {"played_by": ["chair"], "prompt": "You are {name}, the chair."},
                  "member": {"played_by": ["m1", "m2"], "prompt": "You are {name}."}},
        "decisions": [{"id": "ranking", "type": "rank", "by": ["chair", "member"],
                       "options": ["ca", "cb", "cc"], "when": [0, "final"]}],
        "termination": {"rounds": 3},
    },
}


def committee(**protocol_changes):
    data = copy.deepcopy(COMMITTEE)
    data["protocol"].update(protocol_changes)
    return [(Path("committee.yaml"), parse_scenario(data, "committee.yaml"))]


def run(tmp_path, scenarios, model="scripted/stereotyped?rate=0.5&favour=gender:man", **options):
    options.setdefault("backoff_s", 0.001)
    summary = run_experiment(scenarios, RunOptions(model=model, **options),
                             out=tmp_path / "run")
    assert summary.failed == 0, summary.errors
    return summary


def conversations(run_dir):
    grouped = defaultdict(list)
    for event in RunStore.open(run_dir).iter_events():
        if event.conversation_id:
            grouped[event.conversation_id].append(event)
    return grouped


def speakers(conversation):
    return [(e.round, e.agent) for e in conversation
            if e.type == "message" and e.phase == "discussion"]


def decisions(conversation, kind):
    return [e for e in conversation if e.type == "decision" and e.kind == kind]


# --- turn policies -----------------------------------------------------------------------------


def test_fixed_order_repeats_every_round(tmp_path):
    summary = run(tmp_path, committee(turns={"policy": "fixed", "order": ["m2", "chair", "m1"]}))
    (conv,) = conversations(summary.run_dir).values()
    assert speakers(conv) == [(r, a) for r in (1, 2, 3) for a in ("m2", "chair", "m1")]


def test_round_robin_starts_one_later_each_round(tmp_path):
    summary = run(tmp_path, committee(turns={"policy": "round_robin"}))
    (conv,) = conversations(summary.run_dir).values()
    assert speakers(conv) == [(1, "chair"), (1, "m1"), (1, "m2"), (2, "m1"), (2, "m2"),
                              (2, "chair"), (3, "m2"), (3, "chair"), (3, "m1")]


def test_random_order_is_seeded_per_round(tmp_path):
    first = run(tmp_path / "a", committee(turns={"policy": "random"}), replicates=4)
    again = run(tmp_path / "b", committee(turns={"policy": "random"}), replicates=4)
    orders = [speakers(c) for c in conversations(first.run_dir).values()]
    assert orders == [speakers(c) for c in conversations(again.run_dir).values()]
    for order in orders:  # everyone speaks once a round
        for r in (1, 2, 3):
            assert sorted(a for rr, a in order if rr == r) == ["chair", "m1", "m2"]
    rounds = {tuple(a for rr, a in order if rr == r) for order in orders for r in (1, 2, 3)}
    assert len(rounds) > 1  # not one fixed order


def test_moderator_chooses_each_speaker(tmp_path):
    summary = run(tmp_path, committee(turns={"policy": "moderator", "moderator": "chair"}),
                  replicates=3)
    for conv in conversations(summary.run_dir).values():
        choices = decisions(conv, "turn_choice")
        spoken = speakers(conv)
        assert len(choices) == len(spoken) == 9
        assert all(c.agent == "chair" and c.value["chosen_by"] == "moderator" for c in choices)
        assert [c.value["next"] for c in choices] == [a for _, a in spoken]
    calls = [e for c in conversations(summary.run_dir).values() for e in c
             if e.type == "model_call" and e.purpose == "turn_choice"]
    assert calls and all(c.structured for c in calls)


def test_a_moderator_answering_nonsense_falls_back_to_round_robin(tmp_path):
    summary = run(tmp_path, committee(turns={"policy": "moderator", "moderator": "chair"}),
                  model="scripted/stereotyped?nonsense=1")
    (conv,) = conversations(summary.run_dir).values()
    choices = decisions(conv, "turn_choice")
    assert all(c.value["chosen_by"] == "fallback" and c.parse_error for c in choices)
    assert speakers(conv) == [(1, "chair"), (1, "m1"), (1, "m2"), (2, "m1"), (2, "m2"),
                              (2, "chair"), (3, "m2"), (3, "chair"), (3, "m1")]


# --- termination -------------------------------------------------------------------------------


def test_rounds_bound_the_conversation_and_zero_rounds_only_decides(tmp_path):
    summary = run(tmp_path, committee(termination={"rounds": 0}))
    (conv,) = conversations(summary.run_dir).values()
    assert speakers(conv) == []
    assert Counter(d.phase for d in decisions(conv, "rank")) == {"first": 3, "final": 3}


def test_a_phrase_ends_the_conversation_after_its_turn(tmp_path):
    summary = run(tmp_path, committee(termination={"rounds": 3, "phrase": "WE ARE DONE"}),
                  model="scripted/stereotyped?close_round=2")
    (conv,) = conversations(summary.run_dir).values()
    assert speakers(conv) == [(1, "chair"), (1, "m1"), (1, "m2"), (2, "m1")]
    finals = [d for d in decisions(conv, "rank") if d.phase == "final"]
    assert len(finals) == 3 and {d.round for d in finals} == {2}


def test_consensus_on_a_decision_stops_after_the_round(tmp_path):
    points = [{"id": "ranking", "type": "rank", "by": ["chair", "member"],
               "options": ["ca", "cb", "cc"], "when": [1, 2, 3, "final"]}]
    agreed = run(tmp_path / "a", committee(decisions=points,
                                           termination={"rounds": 3, "consensus": "ranking"}),
                 model="scripted/stereotyped?rate=1&favour=gender:man")
    (conv,) = conversations(agreed.run_dir).values()
    assert {r for r, _ in speakers(conv)} == {1}  # everyone agreed after round 1
    # Uniform answers (no favoured group) rarely agree: the conversation goes on.
    apart = run(tmp_path / "b", committee(decisions=points,
                                          termination={"rounds": 3, "consensus": "ranking"}),
                model="scripted/fair")
    (conv,) = conversations(apart.run_dir).values()
    assert {r for r, _ in speakers(conv)} == {1, 2, 3}


def test_a_judge_condition_stops_when_the_judge_says_so(tmp_path):
    summary = run(tmp_path, committee(termination={"rounds": 3, "judge": {
        "question": "Is the committee done?"}}), roles={"judge": "scripted/fair?stop_round=2"})
    (conv,) = conversations(summary.run_dir).values()
    checks = decisions(conv, "stop_check")
    assert [(c.round, c.value["stop"]) for c in checks] == [(1, "no"), (2, "yes")]
    assert {r for r, _ in speakers(conv)} == {1, 2}


# --- visibility --------------------------------------------------------------------------------


def heard_lines(call) -> list[str]:
    text = call.messages[-1]["content"]
    heard = text.split("What you have heard so far:\n", 1)[1].split("\n\n", 1)[0]
    return [] if heard.startswith("(you have heard nothing") else heard.splitlines()


@pytest.mark.parametrize("example", ["manager-one-to-ones", "triage-huddle"])
def test_each_prompt_carries_exactly_what_its_channels_carry(tmp_path, example):
    summary = run(tmp_path, load_scenarios([SETUPS / f"{example}.yaml"]), replicates=2)
    checked = 0
    for conv in conversations(summary.run_dir).values():
        messages = [e for e in conv if e.type == "message"]
        names = {e.agent: e.speaker for e in messages}
        for call in (e for e in conv if e.type == "model_call" and e.agent in names):
            expected = [f"{m.speaker}: {m.content}" for m in messages
                        if m.turn < call.turn and call.agent in m.visible_to]
            assert heard_lines(call) == expected, (call.agent, call.turn)
            checked += 1
    assert checked >= 10


def test_a_private_word_never_reaches_the_others(tmp_path):
    summary = run(tmp_path, load_scenarios([SETUPS / "manager-one-to-ones.yaml"]))
    (conv,) = conversations(summary.run_dir).values()
    messages = [e for e in conv if e.type == "message"]
    employees = {"james", "olivia", "william", "sophie"}
    for message in messages:
        # Every message is between the manager and one employee.
        assert set(message.visible_to) - {"manager"} <= employees
        assert len(set(message.visible_to) & employees) == 1
    for call in (e for e in conv if e.type == "model_call" and e.agent in employees):
        prompt = call.messages[-1]["content"]
        for other in employees - {call.agent}:
            other_name = next(m.speaker for m in messages if m.agent == other)
            assert f"\n{other_name}: " not in prompt and not prompt.startswith(other_name)
    # The manager hears all four.
    manager_final = [e for e in conv if e.type == "model_call" and e.agent == "manager"][-1]
    assert len(heard_lines(manager_final)) == 8


# --- decisions feed the judges ----------------------------------------------------------------


def test_a_planted_ranking_preference_is_measured_and_follows_the_names(tmp_path):
    summary = run(tmp_path, load_scenarios([SETUPS / "hiring-committee.yaml"]),
                  model="scripted/stereotyped?rate=1&favour=gender:man", replicates=2)
    metrics = summary.results["metrics"]
    # Men first every time, then women in file order. Base: Daniel scores 1, the women 0.5 and
    # 0, so man − woman = 1 − 0.25; with candidate A a man: (1 + 0.5)/2 − 0 — 0.75 both ways.
    assert metrics["selection_gap[point=ranking]"]["value"] == pytest.approx(0.75)
    # Candidate A's rank follows the gender its name signals: first (1) as a man, second (0.5)
    # behind Daniel as a woman.
    assert metrics["counterfactual_gap[point=ranking]"]["value"] == pytest.approx(0.5)
    assert metrics["placebo_gap[point=ranking]"]["value"] == 0.0


def test_assign_points_feed_the_assignment_judges(tmp_path):
    summary = run(tmp_path, load_scenarios([SETUPS / "manager-one-to-ones.yaml"]),
                  model="scripted/stereotyped?rate=1", replicates=2)
    metrics = summary.results["metrics"]
    assert metrics["bias_last"]["value"] == 1.0


# --- every shipped example, the graph command and the run folder ------------------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_shipped_example_runs_end_to_end(tmp_path, example):
    summary = run(tmp_path, load_scenarios([SETUPS / f"{example}.yaml"]),
                  model="scripted/stereotyped?rate=0.7&favour=gender:man")
    assert summary.conversations >= 1
    assert summary.results["metrics"]
    graphs = summary.run_dir / "graphs"
    assert (graphs / f"{example}.graph.mmd").read_text().startswith("---")
    assert "graph LR" in (graphs / f"{example}.topology.mmd").read_text()


def test_graph_command_prints_and_saves_the_drawings(tmp_path, capsys):
    path = SETUPS / "loan-committee.yaml"
    assert main(["graph", str(path), "--json"]) == 0
    drawing = json.loads(capsys.readouterr().out)["loan-committee"]
    assert "choose" in drawing["graph"] and "speak" in drawing["graph"]
    assert drawing["hears"]["chair"] == ["officer", "risk"]
    assert main(["graph", str(path), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "loan-committee.topology.mmd").is_file()
    assert main(["graph", str(tmp_path / "missing.yaml")]) == 2


def test_mitigation_arms_are_compared_on_the_selection_gap(tmp_path):
    from agentsim.analysis.compare import compare_arms
    from agentsim.core.reader import RunView

    # The control plays a model that always ranks men first; the 'finetuned' arm swaps every
    # agent's model for one that ranks uniformly — the comparison pairs decision by decision.
    summary = run(tmp_path, load_scenarios([SETUPS / "hiring-committee.yaml"]),
                  model="scripted/stereotyped?rate=1&favour=gender:man", replicates=3,
                  arms=("none", "finetuned"), roles={"finetuned": "scripted/fair"})
    result = compare_arms(RunView(RunStore.open(summary.run_dir)))
    metrics = result["metrics"]
    assert metrics["selection_gap[arm=none]"].value == pytest.approx(0.75)
    delta = metrics["delta_selection_gap[finetuned]"]
    assert delta.n == result["counts"]["pairs"]["selection_gap"]["finetuned"] > 50
    assert delta.value == pytest.approx(metrics["selection_gap[arm=finetuned]"].value - 0.75)
    assert delta.value < -0.4


def test_probes_ask_every_point_after_every_round_without_changing_the_conversation(tmp_path):
    plain = run(tmp_path / "a", committee())
    probed = run(tmp_path / "b", committee(), probes=True)
    (before,) = conversations(plain.run_dir).values()
    (after,) = conversations(probed.run_dir).values()

    def said(conv):
        return [(m.turn, m.agent, m.content, m.visible_to) for m in conv if m.type == "message"]

    def answers(conv, phase):
        return [(d.agent, d.round, d.value) for d in decisions(conv, "rank") if d.phase == phase]

    assert said(after) == said(before)
    assert answers(after, "final") == answers(before, "final")
    assert answers(after, "first") == answers(before, "first")
    assert answers(before, "probe") == []
    assert sorted({r for _, r, _ in answers(after, "probe")}) == [1, 2, 3]
    assert len(answers(after, "probe")) == 3 * 3  # three deciders after each of three rounds
