"""Typed decision contracts: every kind the shipped protocols emit reads into its typed model and
writes back to the identical stored dict; values that do not fit name the kind and the field; an
unknown kind lists the known ones; a plugin's kind registers and reads like a built-in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

import pytest
from pydantic import Field, ValidationError

from agentsim.agents.clinical_prompts import PERCEPTION_QUESTIONS
from agentsim.cli import main
from agentsim.core import decisions
from agentsim.core.decisions import (
    WHOLE_NUMBER,
    YES_NO,
    DecisionModel,
    DecisionValue,
    DecisionValueError,
    decision_adapter,
    decision_kind,
    model_of,
    stored_value,
    typed_decision,
    typed_value,
)
from agentsim.core.events import Decision, parse_event
from agentsim.errors import PluginError

REPO = Path(__file__).resolve().parents[2]
BUILTIN = {model.model_fields["kind"].default: model
           for model in get_args(get_args(DecisionValue)[0])}
# One scripted run per shipped protocol, probes on (they add probe decisions of every protocol).
# The setups folder: no single setup asks rank, pick, rate, assign, a moderator and a judge.
RUNS = {
    "workplace": ("scenarios/workplace/office-product-launch.yaml", "scripted/stereotyped"),
    "clinical": ("scenarios/clinical/clinical-celiac-disease.yaml", "scripted/clinical"),
    "setups": ("scenarios/setups", "scripted/stereotyped"),
}
YES = {"yes": True, "no": False}
# What each stored value means, read independently of the module under test.
MEANING = {
    "assignment": lambda t, v: t.assignments == v,
    "doctor_action": lambda t, v: (t.action, t.text, t.ambiguous)
    == (v["action"], v["text"], {"true": True, "false": False}[v["ambiguous"]]),
    "test_result": lambda t, v: (t.request, "; ".join(t.matched), t.in_case)
    == (v["request"], v["matched"], YES[v["in_case"]]),
    "diagnosis_probe": lambda t, v: (t.diagnosis, t.normalised)
    == (v["diagnosis"], YES[v["normalised"]]),
    "diagnosis_check": lambda t, v: (t.diagnosis, t.truth, t.moderator, t.normalised)
    == (v["diagnosis"], v["truth"], v["moderator"],
        {**YES, "no diagnosis": None}[v["normalised"]]),
    "perception": lambda t, v: t.ratings() == {k: int(x) for k, x in v.items()},
    "turn_choice": lambda t, v: (t.next, t.chosen_by) == (v["next"], v["chosen_by"]),
    "stop_check": lambda t, v: t.stop is {**YES, "unparsed": None}[v["stop"]],
    "rank": lambda t, v: [t.rank(o) for o in v] == [int(x) for x in v.values()],
    "pick": lambda t, v: t.choice == v["choice"],
    "rate": lambda t, v: t.ratings == {k: int(x) for k, x in v.items()},
}


@pytest.fixture(scope="session")
def emitted(tmp_path_factory) -> dict[str, list[Decision]]:
    """Every parsed decision event of the three scripted runs, by kind."""
    found: dict[str, list[Decision]] = {}
    with pytest.MonkeyPatch.context() as patch:  # the per-test isolation is not up yet
        patch.setenv("AGENTSIM_HOME", str(tmp_path_factory.mktemp("agentsim-home")))
        for name, (path, model) in RUNS.items():
            out = tmp_path_factory.mktemp("decision-runs") / name
            assert main(["run", str(REPO / path), "--model", model, "--out", str(out),
                         "--no-cache", "--probes"]) == 0
            for line in (out / "events.jsonl").read_text(encoding="utf-8").splitlines():
                event = parse_event(line)
                if event.type == "decision" and event.value is not None:
                    found.setdefault(event.kind, []).append(event)
    return found


def test_the_union_holds_every_builtin_kind_and_the_runs_emit_them_all(emitted):
    assert set(BUILTIN) == set(MEANING) == set(emitted)
    assert all(model_of(kind) is model for kind, model in BUILTIN.items())
    probes = {e.kind for events in emitted.values() for e in events if e.phase == "probe"}
    assert {"assignment", "diagnosis_probe", "rank", "rate"} <= probes  # a phase, not a kind


@pytest.mark.parametrize("kind", sorted(MEANING))
def test_real_values_read_into_their_model_and_write_back_identical(emitted, kind):
    for event in emitted[kind]:
        typed = typed_decision(event)
        assert type(typed) is BUILTIN[kind]
        assert MEANING[kind](typed, event.value), (typed, event.value)
        assert stored_value(typed) == event.value
        assert typed_value(kind, stored_value(typed)) == typed


# Values the scripted runs do not happen to give: the other words of every closed set.
HAND_MADE = [
    ("doctor_action", {"action": "diagnose", "text": "Lupus", "ambiguous": "true"}),
    ("test_result", {"request": "ECG; troponin", "matched": "ECG; Troponin", "in_case": "yes"}),
    ("test_result", {"request": "bone scan", "matched": "", "in_case": "no"}),
    ("diagnosis_check", {"diagnosis": "MI", "truth": "NSTEMI", "moderator": "unparsed",
                         "normalised": "yes"}),
    ("diagnosis_check", {"diagnosis": "", "truth": "NSTEMI", "moderator": "no diagnosis",
                         "normalised": "no diagnosis"}),
    ("perception", {"return": "1", "confidence": "10", "compliance": "5"}),
    ("turn_choice", {"next": "p2", "chosen_by": "fallback"}),
    ("stop_check", {"stop": "unparsed"}),
    ("stop_check", {"stop": "yes"}),
    ("rank", {"c": "1", "a": "2", "b": "3"}),
    ("rate", {"a": "0", "b": "-2", "c": "100"}),
]


@pytest.mark.parametrize(("kind", "value"), HAND_MADE)
def test_every_word_of_a_closed_set_round_trips(kind, value):
    typed = typed_value(kind, value)
    assert MEANING[kind](typed, value)
    assert stored_value(typed) == value


BAD = [
    ("perception", {"confidence": "eleven", "compliance": "5", "return": "5"}, "confidence",
     "whole number"),
    ("perception", {"confidence": "5", "compliance": "11", "return": "5"}, "compliance", "10"),
    ("perception", {"confidence": "5", "compliance": "5", "return": "05"}, "return", "'05'"),
    ("doctor_action", {"action": "operate", "text": "now", "ambiguous": "false"}, "action",
     "'diagnose'"),
    ("doctor_action", {"action": "ask", "text": "why?", "ambiguous": "yes"}, "ambiguous", "'true'"),
    ("doctor_action", {"action": "ask", "text": "why?"}, "ambiguous", "required"),
    ("test_result", {"request": "x", "matched": "", "in_case": "yes", "note": "?"}, "note",
     "Extra"),
    ("diagnosis_check", {"diagnosis": "", "truth": "X", "moderator": "no diagnosis",
                         "normalised": "no"}, "normalised", "no diagnosis"),
    ("diagnosis_check", {"diagnosis": "X", "truth": "X", "moderator": "maybe",
                         "normalised": "yes"}, "moderator", "'unparsed'"),
    ("turn_choice", {"next": "p1", "chosen_by": "chair"}, "chosen_by", "'fallback'"),
    ("stop_check", {"stop": "true"}, "stop", "'yes'"),
    ("pick", {"choice": "p1", "kind": "pick"}, "kind", "choice"),
    ("rank", {"a": "1", "b": "1"}, "ranking", "each once"),
    ("rank", {"a": "1", "b": "first"}, "b", "whole number"),
    ("rate", {"a": "3", "b": "eleven"}, "b", "'eleven'"),
    ("rate", {}, "ratings", "at least 1"),
    ("assignment", {"t1": 3}, "t1", "text"),
]


@pytest.mark.parametrize(("kind", "value", "field", "fragment"), BAD)
def test_a_value_that_does_not_fit_names_its_kind_and_field(kind, value, field, fragment):
    with pytest.raises(DecisionValueError) as caught:
        typed_value(kind, value)
    assert (caught.value.kind, caught.value.field) == (kind, field)
    assert f"decision kind {kind!r}, field {field!r}" in str(caught.value)
    assert fragment in str(caught.value)


def test_an_unknown_kind_lists_the_known_ones_even_without_a_value():
    with pytest.raises(DecisionValueError, match="unknown decision kind") as caught:
        typed_value("vote", {"yes": "3"})
    assert all(kind in str(caught.value) for kind in BUILTIN)
    unparsed = Decision(run_id="r", phase="final", kind="vote", value=None, raw="?")
    with pytest.raises(DecisionValueError, match="known kinds: assignment, "):
        typed_decision(unparsed)
    assert typed_decision(unparsed.model_copy(update={"kind": "pick"})) is None


def test_typed_models_are_frozen_strict_and_documented():
    pick = typed_value("pick", {"choice": "p1"})
    with pytest.raises(ValidationError):
        pick.choice = "p2"  # frozen
    with pytest.raises(ValidationError):
        model_of("stop_check")(stop="yes")  # strict: a bool, not its stored word
    for model in BUILTIN.values():
        assert model.__doc__ and all(f.description for f in model.model_fields.values()), model
    typed = typed_value("perception", {"confidence": "7", "compliance": "8", "return": "9"})
    assert list(stored_value(typed)) == list(typed.ratings()) == list(PERCEPTION_QUESTIONS)
    assert decision_adapter().validate_json(typed.model_dump_json()) == typed


class VoteDecision(DecisionModel):
    """A plugin's kind: a committee vote."""

    kind: Literal["test_vote"] = Field(default="test_vote", description="The kind.")
    approve: Annotated[bool, YES_NO] = Field(description="Whether the motion passed.")
    votes: Annotated[int, WHOLE_NUMBER, Field(ge=0)] = Field(description="Votes cast.")


def test_a_plugin_registers_its_own_kind(monkeypatch):
    monkeypatch.setattr(decisions, "_KINDS", dict(decisions._KINDS))  # registration is global
    with pytest.raises(DecisionValueError, match="unknown decision kind"):
        typed_value("test_vote", {"approve": "yes", "votes": "3"})
    assert decision_kind(VoteDecision) is VoteDecision
    assert decision_kind(VoteDecision) is VoteDecision  # twice is harmless
    vote = typed_value("test_vote", {"approve": "yes", "votes": "3"})
    assert (vote.approve, vote.votes) == (True, 3)
    assert stored_value(vote) == {"approve": "yes", "votes": "3"}
    with pytest.raises(DecisionValueError, match="'test_vote', field 'votes'"):
        typed_value("test_vote", {"approve": "no", "votes": "-1"})
    assert decision_adapter().validate_python(
        {"kind": "test_vote", "approve": False, "votes": 0}) == VoteDecision(approve=False,
                                                                             votes=0)


def test_a_kind_is_typed_one_way_only(monkeypatch):
    monkeypatch.setattr(decisions, "_KINDS", dict(decisions._KINDS))

    class OtherPick(DecisionModel):
        """Another reading of 'pick'."""

        kind: Literal["pick"] = Field(default="pick", description="The kind.")
        choice: int = Field(description="An index.")

    class NoKind(DecisionModel):
        """No kind declared."""

        choice: str = Field(description="A choice.")

    with pytest.raises(PluginError, match="already typed by agentsim.core.decisions"):
        decision_kind(OtherPick)
    with pytest.raises(PluginError, match="must declare"):
        decision_kind(NoKind)
    assert model_of("pick") is BUILTIN["pick"]
