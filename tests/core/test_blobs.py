"""Long message texts are stored once per run in blobs.jsonl; every reader gets the events as
they were made, and damage to the blob file is an error naming it."""

from __future__ import annotations

import json

import pytest

from agentsim.core.blobs import BLOBS, INLINE
from agentsim.core.events import ModelCall
from agentsim.core.store import RunStore
from agentsim.errors import RunStoreError

SYSTEM = "You are one of four colleagues planning a product launch.\n" * 12
RUN = "r"


def call(turn: int, transcript: list[str]) -> ModelCall:
    user = "Conversation so far:\n" + "".join(transcript) + "\nYour turn, in two sentences."
    return ModelCall(run_id=RUN, conversation_id="c", turn=turn, agent="a", role="agent",
                     model="scripted/x", purpose="discussion", latency_s=0.0, response="ok",
                     messages=[{"role": "system", "content": SYSTEM},
                               {"role": "user", "content": user}])


@pytest.fixture()
def written(tmp_path):
    store = RunStore.create(tmp_path / "run", {"run_id": RUN, "scenarios": {}})
    lines = [f"Person {i}: I would take the launch venue and the press list myself.\n"
             for i in range(12)]
    events = [call(turn, lines[:turn]) for turn in range(12)]
    for event in events:
        store.append(event)
    store.close()
    return store, events


def test_messages_come_back_as_they_were_and_repeats_are_stored_once(written):
    store, events = written
    read = list(RunStore.open(store.run_dir).iter_events({"model_call"}))
    assert [e.messages for e in read] == [e.messages for e in events]
    log = (store.run_dir / "events.jsonl").read_text()
    assert SYSTEM not in log and '"blob"' in log
    blobs = [json.loads(b) for b in (store.run_dir / BLOBS).read_text().splitlines()]
    long_users = sum(len(e.messages[1]["content"]) >= INLINE for e in events)
    assert long_users >= 8
    # the system message once, then each long transcript, building on the one before
    assert len(blobs) == len({b["k"] for b in blobs}) == 1 + long_users
    assert sum("p" in b for b in blobs) == long_users - 1
    raw = sum(len(json.dumps(e.messages)) for e in events)
    stored = (store.run_dir / BLOBS).stat().st_size + sum(
        len(json.dumps(json.loads(line)["messages"])) for line in log.splitlines())
    assert stored < raw / 3


def test_a_half_written_blob_line_is_cut_before_the_next_append(written):
    store, events = written
    with open(store.run_dir / BLOBS, "a", encoding="utf-8") as handle:
        handle.write('{"k": "0123", "v": "half')  # a killed writer
    again = RunStore.open(store.run_dir)
    again.append(call(20, ["A new speaker says something else entirely, at length.\n"]))
    again.close()
    read = list(RunStore.open(store.run_dir).iter_events({"model_call"}))
    assert read[-1].messages[1]["content"].startswith("Conversation so far:\nA new speaker")
    assert all(line.endswith("}") for line in
               (store.run_dir / BLOBS).read_text().splitlines())


def test_damaged_blobs_are_an_error_naming_the_file(written):
    store, _ = written
    path = store.run_dir / BLOBS
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:1] + ["not json\n"] + lines[2:]))
    with pytest.raises(RunStoreError, match=rf"{BLOBS}:2: not a blob line"):
        list(RunStore.open(store.run_dir).iter_events({"model_call"}))
    path.write_text("".join(lines[:1]))
    with pytest.raises(RunStoreError, match="refers to a blob the file does not hold"):
        list(RunStore.open(store.run_dir).iter_events({"model_call"}))
