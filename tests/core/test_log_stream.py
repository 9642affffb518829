"""The judging pass reads the log once: conversations resolved in one pass (a resumed attempt
replaces the abandoned one, a failed conversation is left out), lines of types nobody reads
are skipped without being parsed, and every judge and run summary of a pass shares that read."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsim.core import log_stream
from agentsim.core.events import (
    ConversationFinished,
    ConversationStarted,
    Message,
    ModelCall,
)
from agentsim.core.event_views import MessageFacts
from agentsim.core.log_stream import conversations, line_type
from agentsim.core.store import LogLineError, RunStore
from agentsim.runs.judging import judge_run
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import load_scenarios

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "workplace" / \
    "office-product-launch.yaml"
RUN = "r"


def start(cid: str) -> ConversationStarted:
    return ConversationStarted(run_id=RUN, conversation_id=cid, scenario_id="s",
                               protocol="discussion", setting="interaction", job={})


def said(cid: str, text: str) -> Message:
    return Message(run_id=RUN, conversation_id=cid, turn=0, agent="a", speaker="A",
                   content=text, phase="discussion")


def call(cid: str) -> ModelCall:
    return ModelCall(run_id=RUN, conversation_id=cid, turn=0, agent="a", model="scripted/x",
                     role="agent", purpose="discussion", latency_s=0.0,
                     messages=[{"role": "user", "content": "hello"}], response="hi")


def finish(cid: str, ok: bool = True) -> ConversationFinished:
    return ConversationFinished(run_id=RUN, conversation_id=cid, ok=ok, turns=1)


@pytest.fixture()
def store(tmp_path) -> RunStore:
    store = RunStore.create(tmp_path / "run", {"run_id": RUN, "scenarios": {}})
    for event in [start("a"), said("a", "first attempt"),  # killed: never finished
                  start("b"), said("b", "b said"), call("b"), finish("b"),
                  start("c"), said("c", "failed"), finish("c", ok=False),
                  start("a"), said("a", "second attempt"), finish("a")]:
        store.append(event)
    return store


def test_attempts_and_failures_are_resolved_in_one_pass(store):
    found = {c.id: [e.content for e in c.of("message")] for c in conversations(store)}
    assert found == {"b": ["b said"], "a": ["second attempt"]}
    with_failed = [(c.id, c.finished.ok) for c in conversations(store, failed=True)]
    assert with_failed == [("b", True), ("a", True), ("c", False)]  # failures last
    store.append(start("c"))  # c run again (a resume) and finished this time
    store.append(finish("c"))
    assert [(c.id, c.finished.ok) for c in conversations(store, failed=True)] == [
        ("b", True), ("a", True), ("c", True)]


@pytest.fixture()
def parsed(monkeypatch) -> list[str]:
    """The types of the lines parsed, in order, from now on."""
    seen: list[str] = []
    real = log_stream._parse

    def counting(store, number, line, view=None):
        event = real(store, number, line, view)
        seen.append(event.type)
        return event

    monkeypatch.setattr(log_stream, "_parse", counting)
    return seen


def test_lines_of_types_not_read_are_not_parsed(store, parsed):
    assert [c.id for c in conversations(store, {"message"})] == ["b", "a"]
    assert "model_call" not in parsed and parsed.count("message") == 4
    assert line_type(b'{"run_id":"r","conversation_id":"x","type":"decision","value":{}}\n') \
        == "decision"
    assert line_type(b'{"type":"decision","run_id":"r"}\n') is None  # another writer: parsed


def test_a_type_read_through_a_view_has_the_views_fields_and_is_validated(store):
    [first, *_] = conversations(store, {"message"}, views={"message": MessageFacts})
    messages = list(first.of("message"))
    assert messages and all(isinstance(m, MessageFacts) for m in messages)
    assert not hasattr(messages[0], "content")  # the text is not read
    whole = next(iter(conversations(store, {"message"})))
    assert [(m.agent, m.phase, m.turn) for m in messages] == \
        [(m.agent, m.phase, m.turn) for m in whole.of("message")]
    with open(store.run_dir / "events.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"run_id":"r","conversation_id":"b","type":"message","speaker":"B",'
                     '"phase":"first","round":"x"}\n')
    with pytest.raises(LogLineError, match="round: Input should be a valid integer"):
        list(conversations(store, {"message"}, views={"message": MessageFacts}))


def test_a_view_is_used_only_when_every_reader_of_its_type_asks_for_it():
    from agentsim.runs.judging import shared_views

    class Facts:
        reads, views = frozenset({"message", "decision"}), {"message": MessageFacts}

    class Whole:
        reads, views = frozenset({"message"}), {}

    assert shared_views([Facts()], Facts.reads) == {"message": MessageFacts}
    assert shared_views([Facts(), Whole()], Facts.reads) == {}


def test_a_damaged_line_of_a_type_read_still_stops_the_pass(store):
    with open(store.run_dir / "events.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"run_id":"r","conversation_id":"b","type":"message","turn":"x"}\n')
    with pytest.raises(LogLineError, match="events.jsonl:13"):
        list(conversations(store, {"message"}))


def test_judging_reads_the_log_once_for_every_judge_and_summary(tmp_path, monkeypatch):
    run_experiment(load_scenarios([SCENARIO]), RunOptions(
        model="scripted/stereotyped", replicates=2, cache=False, judges=()), out=tmp_path / "r")
    reads = []
    real = RunStore._lines

    def counted(self):
        reads.append(1)
        return real(self)

    monkeypatch.setattr(RunStore, "_lines", counted)
    results = judge_run(tmp_path / "r", ("assignment_bias", "counterfactual", "trajectory",
                                         "influence"), append_events=False, write=False)
    assert len(reads) == 1
    assert results["conversations"] == 2 and results["parsing"]["decisions"] > 0
    assert {"bias_first", "escalation", "moves_per_agent_round"} <= set(results["metrics"])


def test_events_of_reads_its_types_in_log_order_and_parses_nothing_else(store, parsed):
    from agentsim.core.log_stream import events_of

    finished = list(events_of(store, {"conversation_finished"}))
    assert [(e.conversation_id, e.ok) for e in finished] == [("b", True), ("c", False), ("a", True)]
    assert set(parsed) == {"conversation_finished"}
