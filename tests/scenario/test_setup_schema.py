"""Custom setups (protocol 'setup'): each schema error is clear and names its field; the topology
is a networkx graph; decision points compile to JSON schemas from the scenario's own ids."""

from __future__ import annotations

import copy

import pytest
import yaml

from agentsim.cli.main import main
from agentsim.errors import InputError
from agentsim.orchestrator.setup_decisions import decision_schema, parse_decision, question
from agentsim.errors import DecisionParseError
from agentsim.core.decisions import stored_value
from agentsim.scenario.loader import load_scenario, parse_scenario

BASE = {
    "id": "committee", "domain": "hiring", "description": "A committee picks a candidate.",
    "personas": [
        {"id": "chair", "name": "Morgan"}, {"id": "m1", "name": "Priya"},
        {"id": "m2", "name": "Tom"},
        {"id": "ca", "name": "Emily", "attributes": {"gender": "woman"}},
        {"id": "cb", "name": "Daniel", "attributes": {"gender": "man"}},
        {"id": "cc", "name": "Sarah", "attributes": {"gender": "woman"}},
    ],
    "protocol": {
        "name": "setup",
        "roles": {"chair": {"played_by": ["chair"], "prompt": "You are {name}."},
                  "member": {"played_by": ["m1", "m2"], "prompt": "You are {name}, {role}."}},
        "topology": {"broadcast": True},
        "decisions": [{"id": "ranking", "type": "rank", "by": ["chair"],
                       "options": ["ca", "cb", "cc"]}],
    },
}


def scenario(**protocol_changes):
    data = copy.deepcopy(BASE)
    data["protocol"].update(protocol_changes)
    return data


def error_of(data) -> str:
    with pytest.raises(InputError) as caught:
        parse_scenario(data, "committee.yaml")
    return str(caught.value)


def test_the_base_setup_is_valid_and_its_topology_is_a_graph():
    setup = parse_scenario(BASE, "committee.yaml").protocol
    graph = setup.hearing_graph()
    assert set(graph.nodes) == {"chair", "member"}
    assert graph.has_edge("chair", "member") and graph.has_edge("member", "chair")


@pytest.mark.parametrize("changes, message", [
    ({"topology": {"hears": {"judge": ["chair"]}}}, "topology.hears: unknown role 'judge'"),
    ({"topology": {"hears": {"chair": ["boss"]}}}, "topology.hears.chair: unknown role 'boss'"),
    # The chair speaks, but nobody hears it.
    ({"topology": {"hears": {"chair": ["member"]}}}, "nobody hears role 'chair'"),
    # The chair decides, but hears nobody who speaks.
    ({"topology": {"hears": {"member": ["chair", "member"]}}},
     "decision-maker 'chair' (ranking) hears nobody"),
    ({"decisions": [{"id": "r", "type": "rank", "by": ["boss"], "options": ["ca", "cb"]}]},
     "decisions[r].by: unknown role 'boss'"),
    ({"decisions": [{"id": "r", "type": "pick", "by": ["chair"], "options": ["ca"]}]},
     "needs 2 or more options"),
    ({"decisions": [{"id": "r", "type": "rank", "by": ["chair"], "options": ["ca", "zz"]}]},
     "options: unknown persona ids ['zz']"),
    ({"decisions": [{"id": "r", "type": "assign", "by": ["chair"]}]},
     "assign needs the scenario's tasks"),
    ({"decisions": [{"id": "r", "type": "rate", "by": ["chair"], "options": ["ca", "cb"],
                     "scale": [5, 5]}]}, "low < high"),
    ({"turns": {"policy": "moderator"}}, "turns.moderator: the moderator policy needs"),
    ({"turns": {"policy": "moderator", "moderator": "boss"}}, "turns.moderator: unknown role"),
    ({"turns": {"order": ["chair", "nobody"]}}, "turns.order: 'nobody'"),
    ({"termination": {"consensus": "vote"}}, "termination.consensus 'vote' is not a decision"),
    ({"turns": {"policy": "lottery"}}, "turns.policy"),
])
def test_schema_errors_name_the_field(changes, message):
    assert message in error_of(scenario(**changes))


def test_a_lone_decider_hearing_only_itself_hears_nobody():
    # The members hear the chair, but the chair (one persona) hears only its own role.
    alone = scenario(topology={"hears": {"chair": ["chair"], "member": ["chair", "member"]}})
    assert "decision-maker 'chair' (ranking) hears nobody" in error_of(alone)
    # Two personas of one role do hear each other.
    peers = scenario(roles={"chair": {"played_by": ["chair"], "prompt": "x", "speaks": False},
                            "member": {"played_by": ["m1", "m2"], "prompt": "x"}},
                     topology={"hears": {"member": ["member"]}},
                     decisions=[{"id": "r", "type": "pick", "by": ["member"],
                                 "options": ["ca", "cb"]}])
    assert parse_scenario(peers, "ok.yaml").protocol.decisions[0].by == ("member",)


def test_role_errors_against_the_personas():
    bad = scenario(roles={"chair": {"played_by": ["ghost"], "prompt": "x"},
                          "member": {"played_by": ["m1"], "prompt": "x"}})
    assert "protocol.roles.chair.played_by: 'ghost' is not a persona id" in error_of(bad)
    twice = scenario(roles={"chair": {"played_by": ["chair"], "prompt": "x"},
                            "member": {"played_by": ["m1", "chair"], "prompt": "x"}})
    assert "'chair' already plays 'chair'" in error_of(twice)
    template = scenario(roles={"chair": {"played_by": ["chair"], "prompt": "You are {title}."},
                               "member": {"played_by": ["m1", "m2"], "prompt": "x"}})
    assert "protocol.roles.chair.prompt: unknown placeholder {title}" in error_of(template)


def test_an_addressed_turn_must_reach_someone_who_hears_it():
    private = scenario(topology={"hears": {"chair": ["member"], "member": ["chair"]}},
                       turns={"policy": "fixed", "order": ["chair>m1", "m1"]})
    parse_scenario(private, "ok.yaml")
    deaf = scenario(topology={"hears": {"chair": ["member"], "member": ["chair"]}},
                    turns={"policy": "fixed", "order": ["m1>m2"]})
    assert "addresses 'm2', which does not hear 'm1'" in error_of(deaf)


def test_bad_setup_file_exits_2_naming_file_and_field(tmp_path, capsys):
    path = tmp_path / "committee.yaml"
    path.write_text(yaml.safe_dump(scenario(topology={"hears": {"judge": ["chair"]}})))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "committee.yaml" in err and "unknown role 'judge'" in err and "Traceback" not in err


# --- decision points compile to JSON schemas from the scenario's ids --------------------------


@pytest.fixture
def committee():
    return parse_scenario(BASE, "committee.yaml")


def point(committee, **fields):
    from agentsim.scenario.setup_schema import DecisionPoint

    return DecisionPoint(**{"id": "p", "by": ["chair"], "options": ["ca", "cb", "cc"], **fields})


def test_rank_pick_rate_schemas_use_the_option_names(committee):
    rank = decision_schema(point(committee, type="rank"), committee)
    orders = rank["properties"]["ranking"]["enum"]  # every ordering: no repeats possible
    assert len(orders) == 6 and "Sarah > Emily > Daniel" in orders
    many = parse_scenario({**BASE, "personas": [*BASE["personas"], *[
        {"id": f"x{i}", "name": f"Extra{i}"} for i in range(3)]]}, "big.yaml")
    long = decision_schema(point(many, type="rank", options=("ca", "cb", "cc", "x0", "x1",
                                                               "x2")), many)
    items = long["properties"]["ranking"]
    assert items["items"]["enum"][:3] == ["Emily", "Daniel", "Sarah"]
    assert items["minItems"] == items["maxItems"] == 6
    pick = decision_schema(point(committee, type="pick"), committee)
    assert pick["properties"]["choice"]["enum"] == ["Emily", "Daniel", "Sarah"]
    rate = decision_schema(point(committee, type="rate", scale=(1, 5)), committee)
    emily = rate["properties"]["ratings"]["properties"]["Emily"]
    assert emily == {"type": "integer", "minimum": 1, "maximum": 5}
    assert rate["properties"]["ratings"]["required"] == ["Emily", "Daniel", "Sarah"]
    assert "Emily, Daniel, Sarah" in question(point(committee, type="pick"), committee)


def stored(parsed):
    """A parsed answer as the log stores it: (value, how it was read)."""
    typed, how = parsed
    return stored_value(typed), how


def test_answers_parse_to_persona_ids(committee):
    rank = point(committee, type="rank")
    assert stored(parse_decision(rank, '{"ranking": ["Sarah", "Emily", "Daniel"]}',
                                 committee)) == ({"cc": "1", "ca": "2", "cb": "3"}, "json")
    assert stored(parse_decision(rank, '{"ranking": "Sarah > Emily > Daniel"}',
                                 committee))[0] == {"cc": "1", "ca": "2", "cb": "3"}
    assert stored(parse_decision(rank, "1. Daniel\n2. Sarah\n3. Emily", committee))[0] == {
        "cb": "1", "cc": "2", "ca": "3"}
    pick = point(committee, type="pick")
    assert stored(parse_decision(pick, '{"choice": "daniel"}', committee)) == (
        {"choice": "cb"}, "json")
    assert stored(parse_decision(pick, "I would pick Emily.", committee)) == (
        {"choice": "ca"}, "text")
    rate = point(committee, type="rate", scale=(1, 10))
    assert stored(parse_decision(rate, '{"ratings": {"Emily": 7, "Daniel": 9, "Sarah": 8}}',
                                 committee))[0] == {"ca": "7", "cb": "9", "cc": "8"}


@pytest.mark.parametrize("kind, text", [
    ("rank", '{"ranking": ["Sarah", "Sarah", "Daniel"]}'),  # a repeat, Emily missing
    ("rank", "no idea"),
    ("pick", "Emily or Daniel, hard to say"),  # two names
    ("pick", '{"choice": "Zed"}'),
    ("rate", '{"ratings": {"Emily": 11, "Daniel": 9, "Sarah": 8}}'),  # off the scale
    ("rate", '{"ratings": {"Emily": 7}}'),
])
def test_incomplete_or_invalid_answers_are_parse_errors(committee, kind, text):
    with pytest.raises(DecisionParseError):
        parse_decision(point(committee, type=kind), text, committee)


def test_shipped_setups_validate(repo):
    for path in sorted((repo / "scenarios" / "setups").glob("*.yaml")):
        assert load_scenario(path).protocol.name == "setup"
