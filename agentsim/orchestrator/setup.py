"""Custom multi-agent setups (protocol ``setup``) compiled to a LangGraph graph.

::

    START → open (decision points asked after round 0) → [choose →] speak ⟲ → round_end
          (decision points of the round, consensus / judge stop checks, mitigations' remarks)
          → … → final (decision points marked 'final') → END

``choose`` exists only under the moderator turn policy: before every turn the moderator role
names the next speaker through a structured answer; a nonsense answer is logged and the turn goes
to the next speaker in round-robin order instead. A message containing the termination phrase
ends the conversation after its turn.

Visibility is enforced when a message is made: its ``visible_to`` lists the speaker and every
persona of every role that hears the speaker's role (the topology's graph), and each agent's
prompt is built from the messages whose ``visible_to`` names it — nothing else. Decisions are
private unless the point says ``announce``; then the answer is said to the decider's listeners.

The parts are the ones the built-in protocols use: the runtime context (model calls, mitigations,
seeds, the event log), task-assignment decisions (``assign`` points go through the same
``ctx.decide`` as the discussion protocol), probes and between-round mitigations.
"""

from __future__ import annotations

import operator
import random
from functools import lru_cache
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agentsim.agents import prompts
from agentsim.core.events import EventBase
from agentsim.core.jobs import derive_seed
from agentsim.errors import InputError
from agentsim.orchestrator.kernel import (
    ConversationProtocol,
    Utterance,
    between_rounds,
    events_before,
)
from agentsim.orchestrator.kernel import say as kernel_say
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.orchestrator.setup_asking import ask_point, ask_stop, choose_speaker
from agentsim.orchestrator.setup_cast import Cast, cast_of
from agentsim.registry import protocol
from agentsim.scenario.schema import Scenario, SetupProtocol

TURN_TOKENS = 96  # one or two sentences, as in the discussion protocol


class SetupState(TypedDict, total=False):
    """State of one custom-setup conversation; ``transcript`` accumulates via its reducer."""

    transcript: Annotated[list[Utterance], operator.add]
    turn: int  # the log's turn counter
    round: int  # the round being spoken (1-based); rounds completed at round_end
    spoken: int  # turns spoken in the current round
    next_speaker: str | None  # the moderator's choice for the coming turn
    stop: str | None  # why the conversation ended early: phrase, consensus or judge
    latest: dict[str, dict[str, Any]]  # decision point id → persona id → latest answer
    entry: str  # first node (forks enter elsewhere)
    # Constants the routers read, set once at the start.
    rounds_total: int
    turns_per_round: int
    moderated: bool


def round_order(ctx: ConversationContext, cast: Cast, round_number: int) -> list[str]:
    """Speakers of a round under the turn policy (the moderator policy's fallback order)."""
    base = list(cast.speakers)
    policy = cast.setup.turns.policy
    if policy == "random":
        random.Random(derive_seed(ctx.job.seed, "order", round_number)).shuffle(base)
    elif policy in ("round_robin", "moderator") and base:
        shift = (round_number - 1) % len(base)
        base = base[shift:] + base[:shift]
    turns = cast.setup.turns.turns_per_round or len(base)
    return [base[i % len(base)] for i in range(turns)]


def say(ctx: ConversationContext, cast: Cast, agent: str, turn: int, round_number: int,
        content: str, phase: str = "discussion", to: str | None = None) -> Utterance:
    """Log a message from ``agent`` to those who hear it (of them, only ``to``'s personas
    when the turn is addressed); returns the transcript entry."""
    return kernel_say(ctx, agent=agent, content=content, turn=turn, phase=phase,
                      round_number=round_number, audience=cast.listeners(agent, to))


def rounds_spoken(state: SetupState, rounds: int) -> int:
    """Rounds in which anyone spoke by the end (a phrase may stop a round part-way)."""
    spoken = state.get("round", 1) - (0 if state.get("stop") == "phrase" else 1)
    return max(0, min(spoken, rounds))


async def _ask_points(ctx: ConversationContext, state: SetupState,
                      when: int | str) -> dict[str, Any]:
    """Ask every decision point due ``when`` (0, a round or 'final'); the state update.

    Each answer of a point due by the file takes a turn of its own (its announcement, if any,
    is said on it). Points asked only because probes are on are side calls: they do not advance
    the turn, so the conversation is the same with and without probes.
    """
    cast = cast_of(ctx.scenario)
    phase = "first" if when == 0 else "final" if when == "final" else "probe"
    completed = when if isinstance(when, int) else rounds_spoken(state, ctx.job.rounds)
    latest = {k: dict(v) for k, v in (state.get("latest") or {}).items()}
    added: list[dict[str, Any]] = []
    turn = state["turn"]
    for point in cast.points_due(when, probes=bool(ctx.job.probes)):
        side_call = when not in point.when
        for agent in cast.deciders(point):
            value = await ask_point(ctx, cast, point, agent, phase, completed, turn,
                                    [*state.get("transcript", []), *added])
            if value is not None and not side_call:
                latest.setdefault(point.id, {})[agent] = value
                if point.announce:
                    added.append(say(ctx, cast, agent, turn, completed,
                                     cast.describe(point, value), phase="decision"))
            turn += 0 if side_call else 1
    return {"transcript": added, "latest": latest, "turn": turn}


async def open_node(state: SetupState, runtime: Runtime[ConversationContext]) -> dict:
    """Decision points asked before anyone speaks (round 0)."""
    return await _ask_points(runtime.context, state, 0)


async def choose_node(state: SetupState, runtime: Runtime[ConversationContext]) -> dict:
    """The moderator names the next speaker (moderator policy)."""
    ctx = runtime.context
    cast = cast_of(ctx.scenario)
    fallback = round_order(ctx, cast, state["round"])[state["spoken"]]
    chosen = await choose_speaker(ctx, cast, state["transcript"], state["turn"], fallback)
    return {"next_speaker": chosen}


async def speak_node(state: SetupState, runtime: Runtime[ConversationContext]) -> dict:
    """One turn: the speaker reads what it has heard and says one or two sentences."""
    ctx = runtime.context
    cast = cast_of(ctx.scenario)
    agent, to = cast.slot(state.get("next_speaker")
                          or round_order(ctx, cast, state["round"])[state["spoken"]])
    turn = cast.texts.fill("turn", round=state["round"], rounds=ctx.job.rounds,
                           name=ctx.scenario.persona(agent).name)
    messages = cast.prompt(ctx, agent, state["transcript"], turn)
    reply = await ctx.call(agent=agent, role=cast.model_role(agent), purpose="setup_turn",
                           messages=messages, turn=state["turn"], max_tokens=TURN_TOKENS,
                           context={"agent": agent, "round": state["round"]})
    content = prompts.spoken_turn(reply.text, ctx.scenario.persona(agent).name)
    message = say(ctx, cast, agent, state["turn"], state["round"], content, to=to)
    phrase = cast.setup.termination.phrase
    stop = "phrase" if phrase and phrase.lower() in reply.text.lower() else None
    return {"transcript": [message], "turn": state["turn"] + 1, "spoken": state["spoken"] + 1,
            "next_speaker": None, "stop": stop}


async def round_end_node(state: SetupState, runtime: Runtime[ConversationContext]) -> dict:
    """After a round: its decision points, the stop checks, mitigations' remarks."""
    ctx = runtime.context
    cast = cast_of(ctx.scenario)
    completed = state["round"]
    update = await _ask_points(ctx, state, completed)
    added, latest, turn = update["transcript"], update["latest"], update["turn"]
    stop = None
    consensus = cast.setup.termination.consensus
    answers = list((latest.get(consensus) or {}).values()) if consensus else []
    if consensus and len(answers) == len(cast.deciders(cast.point(consensus))) \
            and all(a == answers[0] for a in answers):
        stop = "consensus"
    if stop is None and cast.setup.termination.judge is not None:
        stop = await ask_stop(ctx, cast, [*state["transcript"], *added], completed, turn)
    remarks, turn = await between_rounds(ctx, completed, [*state["transcript"], *added], turn,
                                         audience=list(cast.everyone))
    added += remarks
    return {"transcript": added, "latest": latest, "stop": stop, "round": completed + 1,
            "spoken": 0, "turn": turn}


async def final_node(state: SetupState, runtime: Runtime[ConversationContext]) -> dict:
    """Decision points marked 'final'."""
    return await _ask_points(runtime.context, state, "final")


async def _setup_entry(state: SetupState) -> str:
    """Where a setup conversation starts: the opening decisions, or a fork's entry node."""
    return state.get("entry") or "open"


async def _talk_or_final(state: SetupState) -> str:
    if state.get("stop") or state["round"] > state["rounds_total"]:
        return "final"
    return "choose" if state["moderated"] else "speak"


async def _after_speak(state: SetupState) -> str:
    if state.get("stop"):
        return "final"
    if state["spoken"] < state["turns_per_round"]:
        return "choose" if state["moderated"] else "speak"
    return "round_end"


@lru_cache(maxsize=2)
def compiled_graph(moderated: bool) -> Any:
    """Build, validate and compile the setup graph (with a 'choose' node when moderated)."""
    builder = StateGraph(SetupState, context_schema=ConversationContext)
    talk = ["choose", "speak"] if moderated else ["speak"]
    for name, node in (("open", open_node), ("speak", speak_node),
                       ("round_end", round_end_node), ("final", final_node)):
        builder.add_node(name, node)
    if moderated:
        builder.add_node("choose", choose_node)
        builder.add_edge("choose", "speak")
    builder.add_conditional_edges(START, _setup_entry, ["open", *talk, "final"])
    builder.add_conditional_edges("open", _talk_or_final, [talk[0], "final"])
    builder.add_conditional_edges("speak", _after_speak, [talk[0], "round_end", "final"])
    builder.add_conditional_edges("round_end", _talk_or_final, [talk[0], "final"])
    builder.add_edge("final", END)
    return builder.compile()


def graph_for(setup: Any) -> Any:
    """The compiled graph of a setup (for drawing and running)."""
    return compiled_graph(setup.turns.policy == "moderator")


@protocol("setup")
class Setup(ConversationProtocol):
    """A conversation set up in the scenario file: roles, who hears whom, turn policy,
    decision points and stop conditions."""

    settings = SetupProtocol
    roles = ("agent", "moderator", "judge")
    default_judges = ("assignment_bias", "counterfactual", "trajectory", "selection")

    def job_fields(self, scenario: Scenario, options: Any) -> dict[str, Any]:
        """Rounds (``--rounds`` over the file's) and the turn policy."""
        settings = scenario.protocol
        return {"setting": "setup", "speaking_order": settings.turns.policy,
                "rounds": settings.rounds if options.rounds is None else options.rounds}

    def model_roles(self, scenario: Scenario) -> set[str]:
        """The built-in roles and every ``model_role`` the setup's roles declare."""
        return {*self.roles, *(role.model_role for role in scenario.protocol.roles.values())}

    def graph(self, scenario: Scenario, job: Any = None) -> Any:
        """The setup graph, with a 'choose' node under the moderator turn policy."""
        return graph_for(scenario.protocol)

    def initial_state(self, ctx: ConversationContext) -> dict[str, Any]:
        """Round 1, nobody has spoken, no decision yet."""
        cast = cast_of(ctx.scenario)
        return {"transcript": [], "turn": 0, "round": 1, "spoken": 0, "next_speaker": None,
                "stop": None, "latest": {}, "rounds_total": ctx.job.rounds,
                "turns_per_round": len(round_order(ctx, cast, 1)),
                "moderated": cast.setup.turns.policy == "moderator"}

    def recursion_limit(self, ctx: ConversationContext) -> int:
        """Two steps per turn and two per round end, with room for the decision nodes."""
        turns = len(round_order(ctx, cast_of(ctx.scenario), 1))
        return 20 + ctx.job.rounds * (2 * turns + 2)

    def state_at(self, events: list[EventBase], job: Any, scenario: Scenario,
                 from_turn: int) -> dict[str, Any]:
        """Any turn on which someone spoke: what each persona heard, the latest answer to
        each decision point and how far the round had got."""
        spoken = {e.turn: e for e in events if e.type == "message" and e.phase == "discussion"}
        if from_turn not in spoken:
            raise InputError(f"fork a custom setup at a turn on which someone spoke "
                             f"({', '.join(map(str, sorted(spoken))) or 'none'}); turn "
                             f"{from_turn} is not one", source="--from-turn")
        kept = events_before(events, from_turn)
        transcript = [Utterance(agent=e.agent, speaker=e.speaker, content=e.content,
                                phase=e.phase, round=e.round, audience=list(e.visible_to or []))
                      for e in kept if e.type == "message"]
        latest: dict[str, dict[str, Any]] = {}
        for event in kept:
            if event.type == "decision" and event.point and event.value:
                latest.setdefault(event.point, {})[event.agent] = event.value
        round_number = spoken[from_turn].round
        return {"transcript": transcript, "latest": latest, "turn": from_turn,
                "round": round_number,
                "spoken": sum(1 for t, e in spoken.items()
                              if t < from_turn and e.round == round_number),
                "entry": "choose" if scenario.protocol.turns.policy == "moderator" else "speak"}

    def topology(self, scenario: Scenario) -> Any:
        """Who hears whom under the setup's topology, each persona tagged with its role."""
        import networkx as nx

        cast = cast_of(scenario)
        graph = nx.DiGraph()
        for speaker, audience in cast.audience.items():
            graph.add_node(speaker, role=cast.role_of[speaker])
            graph.add_edges_from((speaker, listener) for listener in audience[1:])
        return graph


async def run_setup(ctx: ConversationContext) -> dict[str, Any]:
    """Run one custom-setup conversation; returns the final graph state."""
    return await Setup().run(ctx)
