"""The run folder (agentsim.core.store) and its typed events (agentsim.core.events)."""

from __future__ import annotations

import json
import threading

import pytest

from agentsim.errors import RunStoreError
from agentsim.core.events import (
    ConversationFinished,
    ConversationStarted,
    Decision,
    Message,
    RunStarted,
    parse_event,
)
from agentsim.core.store import EVENTS, MANIFEST, LogLineError, RunStore

# -- helpers --------------------------------------------------------------------------------------

RUN = "run-1"


def make_events() -> list:
    ids = {"run_id": RUN, "conversation_id": "c1"}
    return [
        RunStarted(run_id=RUN, planned=1),
        ConversationStarted(**ids, scenario_id="s", protocol="discussion",
                            setting="interaction", job={"seed": 7}, order=["a", "b"]),
        Message(**ids, turn=1, agent="a", speaker="A", phase="discussion", round=1,
                content="Hello"),
        Decision(**ids, turn=2, agent="a", phase="final", value={"t1": "a"}, parsed_by="json",
                 raw='{"t1": "A"}'),
        Decision(**ids, turn=2, agent="b", phase="final", value={"t1": "b"}, parsed_by="text",
                 raw="t1 -> B"),
        ConversationFinished(**ids, ok=True, turns=2),
    ]


@pytest.fixture
def store(tmp_path):
    return RunStore.create(tmp_path / "run", {"run_id": RUN, "model": "scripted/fair"})


# -- create / open --------------------------------------------------------------------------------


def test_create_writes_manifest_and_empty_log(store):
    assert store.read_manifest() == {"run_id": RUN, "model": "scripted/fair"}
    assert store.run_id == RUN
    assert (store.run_dir / EVENTS).read_text() == ""
    assert RunStore.open(store.run_dir).read_manifest()["model"] == "scripted/fair"


def test_create_refuses_existing_run(store):
    with pytest.raises(RunStoreError, match="already holds a run"):
        RunStore.create(store.run_dir, {"run_id": "other"})
    assert store.read_manifest()["run_id"] == RUN  # untouched


def test_create_refuses_folder_with_only_events(tmp_path):
    (tmp_path / EVENTS).write_text("")
    with pytest.raises(RunStoreError):
        RunStore.create(tmp_path, {"run_id": "x"})
    assert not (tmp_path / MANIFEST).exists()


def test_open_requires_manifest(tmp_path):
    with pytest.raises(RunStoreError, match="not a run folder"):
        RunStore.open(tmp_path)


# -- events ---------------------------------------------------------------------------------------


def test_events_round_trip_typed_in_order(store):
    events = make_events()
    for event in events:
        store.append(event)
    store.close()
    read = list(store.iter_events())
    assert read == events
    assert [type(e) for e in read] == [type(e) for e in events]
    assert store.skipped_lines == 0


def test_unparsed_decision_round_trips(store):
    unparsed = Decision(run_id=RUN, conversation_id="c1", turn=2, agent="b", phase="final",
                        value=None, raw="??", parse_error="no person assigned to task(s) t1")
    store.append(unparsed)
    assert list(store.iter_events({"decision"})) == [unparsed]


def test_iter_events_filters_by_type(store):
    for event in make_events():
        store.append(event)
    decisions = list(store.iter_events({"decision"}))
    assert [d.agent for d in decisions] == ["a", "b"]
    assert all(isinstance(d, Decision) for d in decisions)


def test_lines_are_parseable_json_without_nones(store):
    events = make_events()
    for event in events:
        store.append(event)
    lines = (store.run_dir / EVENTS).read_text().splitlines()
    assert len(lines) == len(events)
    first = json.loads(lines[0])
    assert first["type"] == "run_started" and "conversation_id" not in first
    assert [parse_event(line) for line in lines] == events


def test_partial_last_line_is_skipped_and_repaired(store):
    events = make_events()[:3]
    for event in events:
        store.append(event)
    store.close()
    whole = (store.run_dir / EVENTS).read_bytes()
    with open(store.run_dir / EVENTS, "ab") as handle:
        handle.write(b'{"type": "message", "run_id": "run-1", "spea')
    assert list(store.iter_events()) == events
    assert store.skipped_lines == 1
    assert store.repair_tail() is True
    assert (store.run_dir / EVENTS).read_bytes() == whole
    assert store.repair_tail() is False
    assert list(store.iter_events()) == events
    assert store.skipped_lines == 0


def test_complete_but_unterminated_line_is_skipped(store):
    # A killed writer may leave a whole JSON object without its newline: still partial.
    event = make_events()[0]
    (store.run_dir / EVENTS).write_text(event.model_dump_json(exclude_none=True))
    assert list(store.iter_events()) == []
    assert store.skipped_lines == 1
    assert store.repair_tail() is True
    assert (store.run_dir / EVENTS).read_bytes() == b""


def test_corrupt_middle_line_is_an_error_unless_skipped(store):
    events = make_events()[:2]
    store.append(events[0])
    store.close()
    with open(store.run_dir / EVENTS, "a") as handle:
        handle.write("not json\n")
    store.append(events[1])
    with pytest.raises(LogLineError, match=r"events.jsonl:2: not valid JSON") as caught:
        list(store.iter_events())
    assert caught.value.line == 2 and "--skip-bad-lines" in str(caught.value)
    skipping = RunStore.open(store.run_dir, skip_bad_lines=True)
    assert list(skipping.iter_events()) == events
    assert skipping.skipped_lines == 1 and skipping.bad_lines == {2: skipping.bad_lines[2]}


def test_repair_tail_on_empty_log(store):
    assert store.repair_tail() is False


# -- manifest ---------------------------------------------------------------------------------------


def test_update_manifest_merges(store):
    merged = store.update_manifest(status="done", model="scripted/stereotyped")
    expected = {"run_id": RUN, "model": "scripted/stereotyped", "status": "done"}
    assert merged == expected
    assert store.read_manifest() == expected


def test_manifest_write_is_atomic(store):
    store.write_manifest({"run_id": RUN, "n": 1})
    store.update_manifest(n=2)
    store.write_results({"score": 0.5})
    assert sorted(p.name for p in store.run_dir.iterdir()) == [EVENTS, MANIFEST, "results.json"]
    assert store.read_manifest() == {"run_id": RUN, "n": 2}
    assert store.read_results() == {"score": 0.5}


def test_unreadable_manifest_is_a_store_error(store):
    (store.run_dir / MANIFEST).write_text("{half")
    with pytest.raises(RunStoreError, match="unreadable"):
        store.read_manifest()


# -- concurrency ----------------------------------------------------------------------------------


def test_threaded_appends_write_whole_lines(store):
    threads_n, per_thread = 8, 150
    filler = "x" * 2000  # long lines make torn writes likely if appends were not serialised

    def work(index: int) -> None:
        for k in range(per_thread):
            store.append(Message(run_id=RUN, conversation_id=f"c{index}", turn=k,
                                 agent=f"a{index}", speaker="S", phase="discussion",
                                 content=f"{index}:{k}:{filler}"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()

    lines = (store.run_dir / EVENTS).read_text().split("\n")
    assert lines[-1] == ""
    assert len(lines) - 1 == threads_n * per_thread
    events = list(store.iter_events())
    assert store.skipped_lines == 0
    assert len(events) == threads_n * per_thread
    for index in range(threads_n):
        mine = [int(e.content.split(":")[1]) for e in events if e.conversation_id == f"c{index}"]
        assert mine == list(range(per_thread))  # each thread's lines in its own order
