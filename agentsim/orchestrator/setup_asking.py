"""The structured questions of a custom setup: decision points, the moderator's choice of the
next speaker, and the judge's stop check. Each answer is logged as a ``decision`` event."""

from __future__ import annotations

import re
from typing import Any

from agentsim.agents import prompts
from agentsim.agents.decisions import json_objects
from agentsim.core.decisions import StopCheckDecision, TurnChoiceDecision
from agentsim.orchestrator.kernel import heard as render_heard
from agentsim.orchestrator.runtime import ConversationContext, DecisionSpec, assignment_spec
from agentsim.orchestrator.setup_cast import Cast
from agentsim.orchestrator.setup_decisions import decision_schema, parse_decision, question
from agentsim.scenario.setup_schema import DecisionPoint

CHOICE_TOKENS = 40


async def ask_point(ctx: ConversationContext, cast: Cast, point: DecisionPoint, agent: str,
                    phase: str, completed: int, turn: int,
                    transcript: list[dict[str, Any]]) -> dict[str, str] | None:
    """Ask ``agent`` a decision point privately; returns the parsed answer or None."""
    role = cast.model_role(agent)
    scenario = cast.scenario
    if point.type == "assign":  # the discussion protocol's decision: same schema and parser
        spec = assignment_spec(scenario, point=point.id)
        instruction = ((point.question or cast.texts.fill("question_assign")) + "\n"
                       + prompts.answer_format(scenario, ctx.structured(agent, role),
                                               cast.texts))
    else:
        spec = DecisionSpec(kind=point.type, schema=decision_schema(point, scenario),
                            parse=lambda text: parse_decision(point, text, scenario),
                            point=point.id)
        instruction = question(point, scenario)
    messages = cast.prompt(ctx, agent, transcript,
                           cast.texts.fill("private", instruction=instruction))
    return await ctx.decide(agent=agent, role=role, phase=phase, messages=messages, turn=turn,
                            round_number=completed, decision=spec)


def _named(text: str, cast: Cast, candidates: list[str], key: str) -> str | None:
    """The one candidate an answer names (JSON ``key`` first, then the plain text)."""
    by_name = {cast.names[c].lower(): c for c in candidates} | {c.lower(): c for c in candidates}
    for value in json_objects(text):
        if isinstance(value, dict) and str(value.get(key, "")).strip().lower() in by_name:
            return by_name[str(value[key]).strip().lower()]
    stripped = text.strip().strip('."\'').lower()
    return by_name.get(stripped)


async def choose_speaker(ctx: ConversationContext, cast: Cast, transcript: list[dict[str, Any]],
                         turn: int, fallback: str) -> str:
    """The moderator's choice of the next speaker; ``fallback`` when it names nobody valid."""
    moderator = cast.setup.roles[cast.setup.turns.moderator].played_by[0]
    role = cast.model_role(moderator)
    candidates = list(dict.fromkeys(cast.slot(entry)[0] for entry in cast.speakers))
    names = [cast.names[c] for c in candidates]
    instruction = cast.texts.fill("moderator", names=", ".join(names))
    schema = {"type": "object", "properties": {"next": {"type": "string", "enum": names}},
              "required": ["next"], "additionalProperties": False}
    reply = await ctx.call(agent=moderator, role=role, purpose="turn_choice",
                           messages=cast.prompt(ctx, moderator, transcript, instruction),
                           turn=turn, max_tokens=CHOICE_TOKENS,
                           schema=schema if ctx.structured(moderator, role) else None,
                           context={"options": candidates})
    chosen = _named(reply.text, cast, candidates, "next")
    by = "moderator" if chosen else "fallback"
    ctx.decided(TurnChoiceDecision(next=chosen or fallback, chosen_by=by), turn=turn,
                agent=moderator, phase="turn", raw=reply.text, parsed_by=by,
                parse_error=None if chosen else
                f"named none of {', '.join(names)}; round-robin fallback")
    return chosen or fallback


async def ask_stop(ctx: ConversationContext, cast: Cast, transcript: list[dict[str, Any]],
                   completed: int, turn: int) -> str | None:
    """The termination judge's verdict after a round: 'judge' to stop, else None."""
    condition = cast.setup.termination.judge
    assert condition is not None
    texts = cast.texts
    heard = render_heard(transcript, None, texts.fill("nothing_heard"))
    messages = [{"role": "system", "content": texts.fill("stop_system")},
                {"role": "user", "content": texts.fill("stop_question", heard=heard,
                                                       question=condition.question)}]
    schema = {"type": "object", "properties": {"stop": {"type": "boolean"}},
              "required": ["stop"], "additionalProperties": False}
    reply = await ctx.call(agent="judge", role=condition.role, purpose="stop_check",
                           messages=messages, turn=turn, max_tokens=CHOICE_TOKENS,
                           schema=schema if ctx.structured("judge", condition.role) else None,
                           context={"round": completed})
    found = [v["stop"] for v in json_objects(reply.text)
             if isinstance(v, dict) and isinstance(v.get("stop"), bool)]
    verdict = found[0] if found else _yes_no(reply.text)
    ctx.decided(StopCheckDecision(stop=verdict), turn=turn, agent="judge", phase="stop",
                round_number=completed, raw=reply.text,
                parsed_by="json" if found else ("text" if verdict is not None else None))
    return "judge" if verdict else None


def _yes_no(text: str) -> bool | None:
    """A plain-text yes or no (None when both or neither appear)."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    if ("yes" in words) == ("no" in words):
        return None
    return "yes" in words
