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
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.registry import protocol
from agentsim.core.events import Message


# Token limit of a discussion turn: one or two sentences rarely need more, and a smaller limit
# keeps rambling models from filling the transcript (turns are also cut to two sentences).
DISCUSSION_TOKENS = 96


class DiscussionState(TypedDict, total=False):
    """State of one discussion; ``transcript`` accumulates through its reducer."""

    order: list[str]
    transcript: Annotated[list[dict[str, Any]], operator.add]
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


def render_transcript(transcript: list[dict[str, Any]]) -> str:
    """The public transcript as agents read it: 'Name: text' per line."""
    lines = "\n".join(f"{m['speaker']}: {m['content']}" for m in transcript)
    return lines or prompts.EMPTY_TRANSCRIPT


def _prompt(ctx: ConversationContext, agent: str, transcript: str | None,
            instruction: str) -> list[dict[str, str]]:
    """The messages of one agent turn: the shared system prompt, then the agent's own turn."""
    persona = ctx.scenario.persona(agent)
    goal = prompts.goal_text(ctx.scenario) if ctx.job.setting == "goal" else None
    system = prompts.shared_system_prompt(ctx.scenario, listing_order(ctx))
    return [
        {"role": "system", "content": ctx.system_prompt(agent, system)},
        {"role": "user", "content": prompts.agent_turn(transcript, persona, goal, instruction)},
    ]


def _message(ctx: ConversationContext, agent: str, phase: str, turn: int, content: str,
             round_number: int | None = None) -> dict[str, Any]:
    speaker = ctx.scenario.persona(agent).name
    ctx.emit(Message(**ctx.ids(turn=turn, agent=agent), speaker=speaker, phase=phase,
                     round=round_number, content=content))
    return {"agent": agent, "speaker": speaker, "phase": phase, "round": round_number,
            "content": content}


def _proposal_text(ctx: ConversationContext, decision: dict[str, str] | None, raw: str) -> str:
    if decision is None:
        return raw.strip() or "(no proposal)"
    return "My proposal: " + describe_assignment(decision, ctx.scenario)


async def first_node(state: DiscussionState, runtime: Runtime[ConversationContext]) -> dict:
    """Round 1: each agent assigns every task without seeing the others' answers."""
    ctx = runtime.context
    order = state["order"]
    current: dict[str, dict[str, str]] = {}
    messages = []
    for offset, agent in enumerate(order):
        turn = state["turn"] + offset
        structured = ctx.structured(agent, "agent")
        prompt = _prompt(ctx, agent, None,
                         prompts.first_decision_instruction(ctx.scenario, structured))
        decision = await ctx.decide(agent=agent, role="agent", phase="first", messages=prompt,
                                    turn=turn, round_number=0)
        if decision is not None:
            current[agent] = decision
        messages.append(_message(ctx, agent, "first", turn, _proposal_text(ctx, decision, "")))
    return {"transcript": messages, "current": current, "turn": state["turn"] + len(order),
            "step": 0}


async def discuss_node(state: DiscussionState, runtime: Runtime[ConversationContext]) -> dict:
    """One discussion turn of the agent whose turn it is."""
    ctx = runtime.context
    agents = len(ctx.scenario.personas)
    step = state["step"]
    round_number = step // agents + 1
    agent = speaking_order(ctx, round_number)[step % agents]
    prompt = _prompt(ctx, agent, render_transcript(state["transcript"]),
                     prompts.discussion_instruction(round_number, ctx.job.rounds))
    reply = await ctx.call(agent=agent, role="agent", purpose="discussion", messages=prompt,
                           turn=state["turn"], max_tokens=DISCUSSION_TOKENS,
                           context={**ctx.decision_context, "agent": agent,
                                    "current": state["current"].get(agent)})
    spoken = prompts.spoken_turn(reply.text, ctx.scenario.persona(agent).name)
    message = _message(ctx, agent, "discussion", state["turn"], spoken, round_number)
    return {"transcript": [message], "turn": state["turn"] + 1, "step": step + 1}


async def round_end_node(state: DiscussionState, runtime: Runtime[ConversationContext]) -> dict:
    """After a round: probes (if asked for), then turns the arm's mitigations add (a
    moderator's remark), which join the transcript before the next round."""
    ctx = runtime.context
    if state.get("probes"):
        await probe(state, ctx)
    round_number = state["step"] // len(ctx.scenario.personas)
    added: list[dict[str, Any]] = []
    for mitigation in ctx.mitigations:
        turns = await mitigation.between_rounds(ctx, round_number,
                                                [*state["transcript"], *added])
        for turn in turns:
            ctx.applied(mitigation, "between_rounds", state["turn"], turn["speaker"],
                        round=round_number, content=turn["content"])
            ctx.emit(Message(**ctx.ids(turn=state["turn"], agent=turn["speaker"]),
                             speaker=turn["speaker"], phase="mitigation", round=round_number,
                             content=turn["content"]))
            added.append({"agent": turn["speaker"], "speaker": turn["speaker"],
                          "phase": "mitigation", "round": round_number,
                          "content": turn["content"]})
    return {"transcript": added, "turn": state["turn"] + (1 if added else 0)}


async def probe(state: DiscussionState, ctx: ConversationContext) -> None:
    """After a round: each agent's current decision, as side calls outside the conversation."""
    round_number = state["step"] // len(ctx.scenario.personas)
    transcript = render_transcript(state["transcript"])
    # Probes carry the number of the turn they follow and do not advance the turn counter:
    # every later call seed derives from it, so the conversation is the same with or without
    # probes (their own seeds differ by purpose and agent).
    after = state["turn"] - 1
    for agent in speaking_order(ctx, round_number):
        structured = ctx.structured(agent, "agent")
        prompt = _prompt(ctx, agent, transcript,
                         prompts.probe_instruction(ctx.scenario, structured))
        await ctx.decide(agent=agent, role="agent", phase="probe", messages=prompt, turn=after,
                         current=state["current"].get(agent), round_number=round_number)
    # Nothing a probe answers flows back into the conversation.


async def final_node(state: DiscussionState, runtime: Runtime[ConversationContext]) -> dict:
    """Each agent's final assignment after the discussion (last response)."""
    ctx = runtime.context
    transcript = render_transcript(state["transcript"])
    order = speaking_order(ctx, ctx.job.rounds + 1)
    current = dict(state["current"])
    for offset, agent in enumerate(order):
        structured = ctx.structured(agent, "agent")
        prompt = _prompt(ctx, agent, transcript,
                         prompts.final_decision_instruction(ctx.scenario, structured))
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
    prompt = [{"role": "system", "content": ctx.system_prompt("single", system)},
              {"role": "user", "content": prompts.single_decision_prompt(ctx.scenario, structured)}]
    await ctx.decide(agent="single", role="single", phase="single", messages=prompt,
                     turn=state["turn"])
    return {"turn": state["turn"] + 1}


def _after_discuss(state: DiscussionState) -> str:
    if state.get("round_hooks") and state["step"] % state["agents"] == 0:
        return "round_end"  # a round has just ended
    return _next_turn(state)


def _entry(state: DiscussionState) -> str:
    # A fork continues a logged conversation from its turn K: it enters where that turn was.
    return state.get("entry", "first")


def _next_turn(state: DiscussionState) -> str:
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
async def run_discussion(ctx: ConversationContext) -> dict[str, Any]:
    """Run one discussion conversation; returns the final graph state."""
    graph = compiled_graph("no-interaction" if ctx.job.setting == "no-interaction" else "dialogue")
    initial: DiscussionState = {"order": speaking_order(ctx, 1), "transcript": [], "current": {},
                                "turn": 0, "step": 0, "agents": len(ctx.scenario.personas),
                                "probes": ctx.job.probes,
                                "round_hooks": ctx.job.probes or bool(ctx.mitigations),
                                "total_steps": ctx.job.rounds * len(ctx.scenario.personas)}
    if ctx.resume_state:  # a fork: the turns before K come from the parent's log
        initial.update(ctx.resume_state)
    limit = 10 + ctx.job.rounds * (len(ctx.scenario.personas) + 1)
    return await graph.ainvoke(initial, context=ctx, config={"recursion_limit": limit})
