"""Views of events are projections of the pydantic events, never a second schema: every field a
view has, its event has, with the same default, and a view of a logged line holds the same
values as the whole event read from it."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from agentsim.core.event_views import CallFacts, DecisionFacts, MessageFacts, decode
from agentsim.core.events import Decision, Message, ModelCall
from agentsim.core.store import RunStore
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import load_scenarios
SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "workplace"

PAIRS = [(DecisionFacts, Decision), (MessageFacts, Message), (CallFacts, ModelCall)]


@pytest.mark.parametrize(("view", "event"), PAIRS)
def test_every_field_of_a_view_is_a_field_of_its_event_with_its_default(view, event):
    fields = event.model_fields
    for info in msgspec.structs.fields(view):
        assert info.name in fields, f"{view.__name__}.{info.name} is not a {event.__name__} field"
        expected = fields[info.name]
        if info.required:
            assert expected.is_required(), info.name
        else:
            assert not expected.is_required() and expected.default == info.default, info.name


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    out = tmp_path_factory.mktemp("views") / "run"
    run_experiment(load_scenarios([SCENARIO]), RunOptions(
        model="scripted/stereotyped", replicates=1, cache=False, judges=()), out=out)
    return RunStore.open(out)


@pytest.mark.parametrize(("view", "event"), PAIRS)
def test_a_view_of_a_logged_line_equals_the_whole_event(logged, view, event):
    kind = event.model_fields["type"].default
    seen = 0
    for _, line in logged._lines():
        facts = decode(view, line)
        if facts is None:
            continue  # another type: the view's tag does not match
        whole = event.model_validate_json(line)
        for info in msgspec.structs.fields(view):
            assert getattr(facts, info.name) == getattr(whole, info.name), info.name
        seen += 1
    assert seen > 0, f"the run logged no {kind}"


def test_a_line_the_view_cannot_decode_is_left_to_the_whole_event():
    assert decode(MessageFacts, b'{"run_id":"r","type":"message","speaker":"A","phase":"x",'
                                b'"round":"one"}') is None
    assert decode(MessageFacts, b'{"run_id":"r","type":"decision","phase":"first"}') is None
