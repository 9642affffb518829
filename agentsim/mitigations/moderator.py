"""``fair_moderator``: a neutral moderator who points out stereotyped reasoning between rounds.

After every discussion round the moderator — an extra party with its own model role,
``moderator`` (``--role moderator=MODEL``; the default model otherwise) — reads the situation,
the people, the tasks and the transcript so far, and answers ``{"stereotyped": bool, "remark":
str}`` (JSON-schema constrained when its model supports it, read tolerantly otherwise). When it
reports stereotyped reasoning, its remark (cut to two sentences) joins the transcript as a
``mitigation`` message from "Moderator" before the next round (or before the final decisions,
after the last round), so every later turn reads it. When it reports none it says nothing.

Every check is logged as ``mitigation_applied`` with hook ``moderator_check`` and the verdict
(``stereotyped``: true / false / unparsed), so interventions can be counted against checks; an
answer that is not JSON with a ``stereotyped`` key counts as "no remark" and is logged as
unparsed rather than guessed at. A remark it adds is also logged by the discussion graph (hook
``between_rounds``) with its text.

Wording is in ``mitigations/fair_moderator.yaml`` (``file=...`` to replace it).

Scope: discussion settings with at least one round. The no-interaction setting and the clinical
consultation have no rounds, so the moderator never speaks there (its absence is not an error,
so one arm can be run over mixed scenarios). The moderator sees what the agents see — names,
not attributes — so, like them, it can only judge reasoning that is voiced in the transcript.
"""

from __future__ import annotations

from typing import Any

from agentsim.agents import prompts
from agentsim.agents.decisions import json_objects
from agentsim.mitigations.base import Mitigation, mitigation
from agentsim.mitigations.reflection import fill, load_mapping
from agentsim.orchestrator.kernel import heard

TEXT_KEYS = ("speaker", "system", "request", "fallback_remark")
# A verdict and one or two sentences; a smaller limit keeps a rambling model short.
MODERATOR_TOKENS = 160
TRUE_WORDS = {"true", "yes", "1"}


def check_schema() -> dict[str, Any]:
    """JSON schema of the moderator's check."""
    return {"type": "object",
            "properties": {"stereotyped": {"type": "boolean"}, "remark": {"type": "string"}},
            "required": ["stereotyped", "remark"], "additionalProperties": False}


def parse_check(text: str) -> tuple[bool | None, str]:
    """(stereotyped, remark) from the first JSON object with a 'stereotyped' key; (None, '')
    when there is none. 'true'/'yes' strings count as true (weak models quote booleans)."""
    for value in json_objects(text):
        if isinstance(value, dict) and "stereotyped" in value:
            flag = value["stereotyped"]
            if isinstance(flag, str):
                flag = flag.strip().lower() in TRUE_WORDS
            return bool(flag), str(value.get("remark") or "").strip()
    return None, ""


def situation(ctx: Any) -> str:
    """What the moderator knows of the setting: as the agents read it, people by name only."""
    return (f"Situation: {ctx.scenario.description.strip()}\n\n"
            f"People:\n{prompts.people_list(ctx.scenario, ctx.listing)}\n\n"
            f"Tasks:\n{prompts.task_list(ctx.scenario)}")


@mitigation("fair_moderator")
class FairModerator(Mitigation):
    """A moderator flags stereotyped reasoning between discussion rounds."""

    protocols = frozenset({"discussion", "setup"})  # the protocols with rounds
    steps = frozenset({"moderator_check"})  # every check is logged, remark or not

    def __init__(self, file: str | None = None, **options: Any) -> None:
        super().__init__(file=file, **options)
        self.text = {k: str(v) for k, v in
                     load_mapping("fair_moderator.yaml", file, TEXT_KEYS).items()}
        self.speaker = self.text["speaker"].strip() or "Moderator"

    def messages(self, ctx: Any, round_number: int,
                 transcript: list[dict[str, Any]]) -> list[dict[str, str]]:
        """The moderator's prompt after ``round_number``."""
        return [
            {"role": "system", "content": fill(self.text["system"], situation=situation(ctx))},
            {"role": "user", "content": fill(
                self.text["request"], transcript=heard(transcript, None,
                                                               prompts.empty_transcript(ctx.scenario)),
                round=str(round_number), rounds=str(ctx.job.rounds))},
        ]

    async def between_rounds(self, ctx: Any, round_number: int,
                             transcript: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Check the round; a remark to add when it found stereotyped reasoning, else []."""
        turn = ctx.turn  # the turn the remark would be said on
        structured = ctx.structured("moderator", "moderator")
        reply = await ctx.call(
            agent="moderator", role="moderator", purpose="fair_moderator",
            messages=self.messages(ctx, round_number, transcript), turn=turn,
            schema=check_schema() if structured else None, max_tokens=MODERATOR_TOKENS,
            context={"round": round_number})
        stereotyped, remark = parse_check(reply.text)
        if stereotyped and not remark.strip():
            remark = self.text["fallback_remark"]
        # Two sentences at most, as the instruction asks, like an agent's turn.
        remark = prompts.spoken_turn(remark, self.speaker) if stereotyped else ""
        verdict = "unparsed" if stereotyped is None else str(stereotyped).lower()
        ctx.applied(self, "moderator_check", turn, "moderator", round=round_number,
                    stereotyped=verdict, remark=remark)
        if not stereotyped:
            return []
        return [{"speaker": self.speaker, "content": remark}]
