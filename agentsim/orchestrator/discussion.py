"""The discussion protocol of Borah & Mihalcea (2024) as a LangGraph graph.

interaction / goal::

    START → first (each agent decides privately) → discuss ⟲ (one turn per agent per round)
          [→ probe after each round, when the job asks for probes] → final (each agent decides
          again, having seen the transcript) → END

A probe asks every agent, privately, for its current assignment after a round; its answers are
logged as ``decision`` events with phase 'probe' and the round number, and never enter the
transcript, so probing does not change the conversation it measures.

no-interaction::

    START → single (one model assigns the tasks once) → END

In the 'goal' setting each agent's system prompt also carries a private goal: take the goal task
(the first task unless the scenario names another) itself. Speaking order is drawn from the
conversation seed ('shuffled'), redrawn each round ('shuffled-each-round') or the file's order
('fixed').
"""

from __future__ import annotations

import operator
import random
from functools import lru_cache
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agentsim.agents import prompts
from agentsim.agents.decisions import describe_assignment
from agentsim.core.jobs import derive_seed
from agentsim.core.events import EventBase
from agentsim.errors import InputError
from agentsim.orchestrator.kernel import (
    ConversationProtocol,
    Utterance,
    between_rounds,
    events_before,
    heard,
    say,
)
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.registry import protocol
from agentsim.scenario.schema import DiscussionProtocol, Scenario


class DiscussionState(TypedDict, total=False):
    """State of one discussion; ``transcript`` accumulates through its reducer."""

    order: list[str]
    transcript: Annotated[list[Utterance], operator.add]
    current: dict[str, dict[str, str]]
    turn: int
    step: int
    total_steps: int
    agents: int
    probes: bool
    round_hooks: bool
    entry: str


def speaking_order(ctx: ConversationContext, round_number: int) -> list[str]:
    """Persona ids in speaking order for a round, drawn from the conversation seed."""
    ids = [p.id for p in ctx.scenario.personas]
    policy = ctx.job.speaking_order
    if policy == "fixed":
        return ids
    key = round_number if policy == "shuffled-each-round" else 0
    random.Random(derive_seed(ctx.job.seed, "order", key)).shuffle(ids)
    return ids


def listing_order(ctx: ConversationContext) -> list[str]:
    """Order in which the people are listed to the agents: drawn from the conversation seed
    (the file's order with 'fixed' speaking order). Variants share the seed, so each persona
    slot keeps its place in the list across a variant group."""
    ids = [p.id for p in ctx.scenario.personas]
    if ctx.job.speaking_order != "fixed":
        random.Random(derive_seed(ctx.job.seed, "listing")).shuffle(ids)
    return ids


def render_transcript(ctx: ConversationContext, transcript: list[Utterance]) -> str:
    """The public transcript as agents read it: 'Name: text' per line, or (the published
    form) the Python list of ``['Name: text']`` items."""
    texts = prompts.prompt_set(ctx.scenario)
    if ctx.scenario.protocol.transcript == "list":
        return str([[f"{u['speaker']}: {u['content']}"] for u in transcript
                    if u["audience"] is None])
    return heard(transcript, None, texts.fill("empty_transcript"))


def _prompt(ctx: ConversationContext, agent: str, name: str, transcript: str = "",
            round_number: int = 0) -> list[dict[str, str]]:
    """The messages of one agent turn: the system prompt, then the agent's prompt ``name``."""
    settings = ctx.scenario.protocol
    persona = ctx.scenario.persona(agent)
    goal = ctx.job.setting == "goal" and (settings.goal_in == "every_prompt"
                                          or name == "first_decision")
    values = prompts.message_values(
        ctx.scenario, persona, order=listing_order(ctx), goal=goal, transcript=transcript,
        structured=ctx.structured(agent, "agent"),
        round_number=round_number, rounds=ctx.job.rounds)
    texts = prompts.prompt_set(ctx.scenario)
    system = texts.fill("system", **values)
    return [
        {"role": "system", "content": ctx.system_prompt(agent, system, role="agent")},
        {"role": "user", "content": texts.fill(name, **values)},
    ]


def _proposal_text(ctx: ConversationContext, decision: dict[str, str] | None, raw: str) -> str:
    """What a first decision says in the transcript."""
    texts = prompts.prompt_set(ctx.scenario)
    if ctx.scenario.protocol.first_answers == "raw":
        return raw
    if decision is None:
        return raw.strip() or texts.fill("no_proposal")
    return texts.fill("proposal", assignment=describe_assignment(decision, ctx.scenario))


async def first_node(state: DiscussionState, runtime: Runtime[ConversationContext]) -> dict:
    """Round 1: each agent assigns every task without seeing the others' answers."""
    ctx = runtime.context
    order = state["order"]
    current: dict[str, dict[str, str]] = {}
    messages = []
    for offset, agent in enumerate(order):
        turn = state["turn"] + offset
        prompt = _prompt(ctx, agent, "first_decision")
        decision = await ctx.decide(agent=agent, role="agent", phase="first", messages=prompt,
                                    turn=turn, round_number=0)
        if decision is not None:
            current[agent] = decision
        raw = ctx.last_answer(agent) if ctx.scenario.protocol.first_answers == "raw" else ""
        messages.append(say(ctx, agent=agent, content=_proposal_text(ctx, decision, raw),
                            turn=turn, phase="first"))
    # What the arm's mitigations say once every first answer is in, before round 1 (the
    # published self-reflection, self_reflection placement=shared): heard by everyone, and the
    # agents go on from the decisions it leaves them with.
    shared = await ctx.after_first_decisions(messages, current, state["turn"] + len(order))
    return {"transcript": [*messages, *shared.said], "current": shared.decisions,
            "turn": shared.turn, "step": 0}


async def discuss_node(state: DiscussionState, runtime: Runtime[ConversationContext]) -> dict:
    """One discussion turn of the agent whose turn it is."""
    ctx = runtime.context
    agents = len(ctx.scenario.personas)
    step = state["step"]
    round_number = step // agents + 1
    agent = speaking_order(ctx, round_number)[step % agents]
    settings = ctx.scenario.protocol
    prompt = _prompt(ctx, agent, "discussion_turn", render_transcript(ctx, state["transcript"]),
                     round_number)
    reply = await ctx.call(agent=agent, role="agent", purpose="discussion", messages=prompt,
                           turn=state["turn"], max_tokens=settings.turn_tokens,
                           context={"agent": agent, "current": state["current"].get(agent)})
    spoken = prompts.spoken_turn(reply.text, ctx.speaker_name(agent), settings.turn_sentences)
    message = say(ctx, agent=agent, content=spoken, turn=state["turn"], phase="discussion",
                  round_number=round_number)
    return {"transcript": [message], "turn": state["turn"] + 1, "step": step + 1}


async def round_end_node(state: DiscussionState, runtime: Runtime[ConversationContext]) -> dict:
    """After a round: probes (if asked for), then turns the arm's mitigations add (a
    moderator's remark), which join the transcript before the next round."""
    ctx = runtime.context
    if state.get("probes"):
        await probe(state, ctx)
    round_number = state["step"] // len(ctx.scenario.personas)
    # The remarks of a round share one turn of the discussion's counter.
    added, _ = await between_rounds(ctx, round_number, state["transcript"], state["turn"],
                                    advance=False)
    return {"transcript": added, "turn": state["turn"] + (1 if added else 0)}


async def probe(state: DiscussionState, ctx: ConversationContext) -> None:
    """After a round: each agent's current decision, as side calls outside the conversation."""
    round_number = state["step"] // len(ctx.scenario.personas)
    transcript = render_transcript(ctx, state["transcript"])
    # Probes carry the number of the turn they follow and do not advance the turn counter:
    # every later call seed derives from it, so the conversation is the same with or without
    # probes (their own seeds differ by purpose and agent).
    after = state["turn"] - 1
    for agent in speaking_order(ctx, round_number):
        prompt = _prompt(ctx, agent, "probe", transcript, round_number)
        await ctx.decide(agent=agent, role="agent", phase="probe", messages=prompt, turn=after,
                         current=state["current"].get(agent), round_number=round_number)
    # Nothing a probe answers flows back into the conversation.


async def final_node(state: DiscussionState, runtime: Runtime[ConversationContext]) -> dict:
    """Each agent's final assignment after the discussion (last response)."""
    ctx = runtime.context
    transcript = render_transcript(ctx, state["transcript"])
    order = speaking_order(ctx, ctx.job.rounds + 1)
    current = dict(state["current"])
    for offset, agent in enumerate(order):
        prompt = _prompt(ctx, agent, "final_decision", transcript, ctx.job.rounds)
        decision = await ctx.decide(agent=agent, role="agent", phase="final", messages=prompt,
                                    turn=state["turn"] + offset, current=current.get(agent),
                                    round_number=ctx.job.rounds)
        if decision is not None:
            current[agent] = decision
    return {"current": current, "turn": state["turn"] + len(order)}


async def single_node(state: DiscussionState, runtime: Runtime[ConversationContext]) -> dict:
    """The 'no-interaction' setting: one model assigns the tasks once."""
    ctx = runtime.context
    structured = ctx.structured("single", "single")
    system = prompts.single_system_prompt(ctx.scenario, listing_order(ctx))
    prompt = [{"role": "system", "content": ctx.system_prompt("single", system, role="single")},
              {"role": "user", "content": prompts.single_decision_prompt(ctx.scenario, structured)}]
    await ctx.decide(agent="single", role="single", phase="single", messages=prompt,
                     turn=state["turn"])
    return {"turn": state["turn"] + 1}


async def _after_discuss(state: DiscussionState) -> str:
    if state.get("round_hooks") and state["step"] % state["agents"] == 0:
        return "round_end"  # a round has just ended
    return await _next_turn(state)


async def _entry(state: DiscussionState) -> str:
    # A fork continues a logged conversation from its turn K: it enters where that turn was.
    return state.get("entry", "first")


async def _next_turn(state: DiscussionState) -> str:
    return "discuss" if state["step"] < state["total_steps"] else "final"


@lru_cache(maxsize=4)
def compiled_graph(setting: str) -> Any:
    """Build, validate and compile the graph of a setting (the same for every scenario)."""
    builder = StateGraph(DiscussionState, context_schema=ConversationContext)
    if setting == "no-interaction":
        builder.add_node("single", single_node)
        builder.add_edge(START, "single")
        builder.add_edge("single", END)
        return builder.compile()
    builder.add_node("first", first_node)
    builder.add_node("discuss", discuss_node)
    builder.add_node("final", final_node)
    builder.add_conditional_edges(START, _entry, ["first", "discuss", "final"])
    builder.add_node("round_end", round_end_node)
    builder.add_conditional_edges("first", _next_turn, ["discuss", "final"])
    builder.add_conditional_edges("discuss", _after_discuss, ["discuss", "round_end", "final"])
    builder.add_conditional_edges("round_end", _next_turn, ["discuss", "final"])
    builder.add_edge("final", END)
    return builder.compile()


@protocol("discussion")
class Discussion(ConversationProtocol):
    """Borah & Mihalcea's discussion: first decisions, rounds of turns, final decisions."""

    settings = DiscussionProtocol
    roles = ("agent", "single", "moderator")
    options = frozenset({"setting", "rounds"})
    default_judges = ("assignment_bias", "counterfactual", "trajectory", "influence")

    def job_fields(self, scenario: Scenario, options: Any) -> dict[str, Any]:
        """The setting (``--setting`` over the file's), rounds and speaking order."""
        settings = scenario.protocol
        return {"setting": options.setting or settings.setting,
                "rounds": settings.rounds if options.rounds is None else options.rounds,
                "speaking_order": settings.speaking_order,
                **sampling(settings, options)}

    def takes(self, option: str, scenario: Scenario, setting: str | None = None) -> bool:
        """Rounds apply unless the conversation is the one-call 'no-interaction' setting."""
        if option == "rounds":
            return (setting or scenario.protocol.setting) != "no-interaction"
        return option in self.options

    def graph(self, scenario: Scenario, job: Any = None) -> Any:
        """The one-call graph of 'no-interaction', else the dialogue graph."""
        setting = job.setting if job is not None else scenario.protocol.setting
        return compiled_graph("no-interaction" if setting == "no-interaction" else "dialogue")

    def initial_state(self, ctx: ConversationContext) -> dict[str, Any]:
        """Round 1's speaking order, an empty transcript, the step counters."""
        agents = len(ctx.scenario.personas)
        return {"order": speaking_order(ctx, 1), "transcript": [], "current": {}, "turn": 0,
                "step": 0, "agents": agents, "probes": ctx.job.probes,
                "round_hooks": ctx.job.probes or bool(ctx.mitigations),
                "total_steps": ctx.job.rounds * agents}

    def recursion_limit(self, ctx: ConversationContext) -> int:
        """One step per turn and per round end, with room for the decision nodes."""
        return 10 + ctx.job.rounds * (len(ctx.scenario.personas) + 1)

    def speaker_name(self, scenario: Scenario, agent: str) -> str:
        """A persona's name, with its gender label when the settings show labels."""
        known = {p.id: p for p in scenario.personas}
        return prompts.shown_name(scenario, known[agent]) if agent in known else agent

    def started_order(self, ctx: ConversationContext) -> list[str]:
        """Round 1's speaking order, logged when the conversation starts."""
        return speaking_order(ctx, 1)

    def listing_order(self, ctx: ConversationContext) -> list[str]:
        """The order the people are listed in every prompt."""
        return listing_order(ctx)

    def state_at(self, events: list[EventBase], job: Any, scenario: Scenario,
                 from_turn: int) -> dict[str, Any]:
        """Turn 0 is a fresh start; from the end of round 1 on, the transcript, each agent's
        latest decision and the step counter the parent's events leave."""
        agents = len(scenario.personas)
        if 0 < from_turn < agents:
            raise InputError(f"fork at turn 0 or at a turn from {agents} on (turns before "
                             f"{agents} are the private first decisions)", source="--from-turn")
        if from_turn == 0:
            return {}
        shared = [e.turn for e in events if e.type == "message" and e.phase == "reflection"]
        if shared and from_turn <= max(shared):
            # The shared reflections follow the first decisions; the graph cannot enter there.
            raise InputError(f"fork at turn 0 or at a turn from {max(shared) + 1} on (turns "
                             f"{agents}-{max(shared)} are the shared self-reflections)",
                             source="--from-turn")
        kept = events_before(events, from_turn)
        transcript = [Utterance(agent=e.agent, speaker=e.speaker, content=e.content,
                                phase=e.phase, round=e.round, audience=None)
                      for e in kept if e.type == "message"]
        current = {e.agent: e.value for e in kept
                   if e.type == "decision" and e.value and e.phase != "probe"}
        step = sum(1 for m in transcript if m["phase"] == "discussion")
        return {"transcript": transcript, "current": current, "turn": from_turn, "step": step,
                "entry": "discuss" if step < job.rounds * agents else "final"}


def sampling(settings: DiscussionProtocol, options: Any) -> dict[str, Any]:
    """Temperature, token limit and top_p of a discussion's calls: the run's where it sets
    them, else the settings' (a preset's published values), else the project's defaults."""
    found: dict[str, Any] = {"top_p": settings.top_p}
    for name in ("temperature", "max_tokens"):
        given = getattr(options, name, None)
        if given is None:
            given = getattr(settings, name)
        if given is not None:
            found[name] = given
    return found


async def run_discussion(ctx: ConversationContext) -> dict[str, Any]:
    """Run one discussion conversation; returns the final graph state."""
    return await Discussion().run(ctx)
