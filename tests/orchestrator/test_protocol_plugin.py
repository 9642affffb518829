"""A protocol defined in this file alone, with no edit elsewhere, runs end to end from a scenario
file: its settings are validated from the file, the runner plans and runs it, the judges score
it, its graph is drawn and its conversations fork. This is the protocol plugin contract."""

from __future__ import annotations

import json
import operator
from typing import Annotated, Any, Literal, TypedDict

import pytest
import yaml
from langgraph.graph import END, START, StateGraph
from pydantic import Field, StrictInt

from agentsim.cli import main
from agentsim.core.store import RunStore
from agentsim.orchestrator.kernel import (
    ConversationProtocol,
    Utterance,
    events_before,
    heard,
    say,
)
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.registry import REGISTRY, protocol
from agentsim.scenario.schema_base import ProtocolSettings


class RelaySettings(ProtocolSettings):
    """Settings of the test protocol: everyone speaks once a round, then everyone decides."""

    name: Literal["relay"] = "relay"
    rounds: StrictInt = Field(default=1, ge=1, le=5)
    opener: str = Field(default="Let us split the work.", description="The first line.")


class RelayState(TypedDict, total=False):
    transcript: Annotated[list[Utterance], operator.add]
    turn: int
    spoken: int
    total: int


async def speak(state: RelayState, runtime: Any) -> dict:
    ctx: ConversationContext = runtime.context
    ids = [p.id for p in ctx.scenario.personas]
    agent = ids[state["spoken"] % len(ids)]
    if state["spoken"] == 0:
        text = ctx.scenario.protocol.opener
    else:
        reply = await ctx.call(agent=agent, role="agent", purpose="discussion", turn=state["turn"],
                               messages=[{"role": "user", "content": heard(state["transcript"])}])
        text = reply.text.strip() or "(silence)"
    said = say(ctx, agent=agent, content=text, turn=state["turn"], phase="relay",
               round_number=state["spoken"] // len(ids) + 1)
    return {"transcript": [said], "turn": state["turn"] + 1, "spoken": state["spoken"] + 1}


async def decide(state: RelayState, runtime: Any) -> dict:
    ctx: ConversationContext = runtime.context
    turn = state["turn"]
    for agent in [p.id for p in ctx.scenario.personas]:
        prompt = [{"role": "user", "content": heard(state["transcript"], agent) +
                   "\nAssign every task to one person."}]
        await ctx.decide(agent=agent, role="agent", phase="final", messages=prompt, turn=turn,
                         round_number=state["total"])
        turn += 1
    return {"turn": turn}


class Relay(ConversationProtocol):
    """Everyone speaks in file order for ``rounds`` rounds; then each decides privately."""

    settings = RelaySettings
    default_judges = ("assignment_bias",)

    def graph(self, scenario: Any, job: Any = None) -> Any:
        builder = StateGraph(RelayState, context_schema=ConversationContext)
        builder.add_node("speak", speak)
        builder.add_node("decide", decide)
        builder.add_edge(START, "speak")
        builder.add_conditional_edges(
            "speak", lambda s: "speak" if s["spoken"] < s["total"] else "decide",
            ["speak", "decide"])
        builder.add_edge("decide", END)
        return builder.compile()

    def initial_state(self, ctx: ConversationContext) -> dict[str, Any]:
        return {"transcript": [], "turn": 0, "spoken": 0,
                "total": ctx.job.rounds * len(ctx.scenario.personas)}

    def state_at(self, events: list[Any], job: Any, scenario: Any,
                 from_turn: int) -> dict[str, Any]:
        kept = [e for e in events_before(events, from_turn) if e.type == "message"]
        return {"transcript": [Utterance(agent=e.agent, speaker=e.speaker, content=e.content,
                                         phase=e.phase, round=e.round, audience=None)
                               for e in kept],
                "turn": from_turn, "spoken": len(kept)}


@pytest.fixture(autouse=True, scope="module")
def registered():
    """``@protocol("relay")`` on the class above, applied for this module's tests only: a
    protocol a test defines must not reach the registry-wide conformance suite."""
    protocol("relay")(Relay)
    yield
    REGISTRY._items["protocol"].pop("relay", None)


def _scenario(tmp_path, **protocol_settings: Any):
    data = {
        "id": "relay-office", "domain": "office",
        "description": "Two colleagues share the work of an office move.",
        "personas": [{"id": "ann", "name": "Ann", "attributes": {"gender": "woman"}},
                     {"id": "bob", "name": "Bob", "attributes": {"gender": "man"}}],
        "tasks": [{"id": "lift", "text": "Carry the boxes", "stereotype": {"gender": "man"}},
                  {"id": "notes", "text": "Take the minutes", "stereotype": {"gender": "woman"}}],
        "protocol": {"name": "relay", **protocol_settings},
    }
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_protocol_defined_in_a_test_runs_end_to_end(tmp_path, capsys):
    path = _scenario(tmp_path, rounds=2, opener="Hello, team.")
    out = tmp_path / "run"
    code = main(["run", str(path), "--model", "scripted/stereotyped", "--replicates", "2",
                 "--out", str(out), "--no-cache", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["conversations"], summary["failed"]) == (2, 0)
    store = RunStore(out)
    messages = list(store.iter_events({"message"}))
    assert [m.phase for m in messages] == ["relay"] * 8  # 2 conversations x 2 rounds x 2 people
    assert messages[0].content == "Hello, team."  # the file's setting reached the graph
    decisions = list(store.iter_events({"decision"}))
    assert len(decisions) == 4 and all(d.value for d in decisions)
    started = list(store.iter_events({"conversation_started"}))
    assert {e.protocol for e in started} == {"relay"}
    manifest = store.read_manifest()
    assert manifest["judges"] == ["assignment_bias"]  # the protocol's default judges
    assert manifest["scenarios"]["relay-office"]["data"]["protocol"]["opener"] == "Hello, team."
    results = json.loads((out / "results.json").read_text())
    assert any(name.startswith("bias") for name in results["metrics"])
    graph = (out / "graphs" / "relay-office.graph.mmd").read_text()
    assert "speak" in graph and "decide" in graph  # drawn from the protocol's own graph


def test_its_settings_are_validated_from_the_file(tmp_path, capsys):
    path = _scenario(tmp_path, rounds=9, colour="blue")
    code = main(["run", str(path), "--model", "scripted/stereotyped", "--out",
                 str(tmp_path / "run"), "--no-cache"])
    assert code == 2
    err = capsys.readouterr().err
    assert "protocol.rounds" in err and "protocol.colour" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_its_conversations_fork_through_its_state_at(tmp_path, capsys):
    path = _scenario(tmp_path, rounds=2)
    parent = tmp_path / "parent"
    assert main(["run", str(path), "--model", "scripted/stereotyped", "--out", str(parent),
                 "--no-cache"]) == 0
    conversation = next(RunStore(parent).iter_events({"conversation_started"})).conversation_id
    child = tmp_path / "child"
    code = main(["replay", str(parent), "--conversation", conversation, "--from-turn", "2",
                 "--model", "scripted/stereotyped", "--out", str(child)])
    assert code == 0, capsys.readouterr().err
    parent_lines = [m.content for m in RunStore(parent).iter_events({"message"})]
    child_lines = [m.content for m in RunStore(child).iter_events({"message"})]
    assert child_lines[:2] == parent_lines[:2]  # turns before K copied verbatim
    assert len(child_lines) == 4
