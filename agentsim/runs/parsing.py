"""How often decisions parsed, per persona and per model: missing data must not hide a confound.

When one persona's model answers in free text and the others are schema-constrained, that
persona's decisions go missing more often — in a study of how personas are treated, missing data
tied to a persona is itself a bias. This summary, computed from the log, says for every persona
how many of its decisions parsed, how many calls were constrained and by which models; the CLI
prints it when anything is unparsed or unconstrained. Only the conversations' own calls count:
judges' calls (:func:`agentsim.core.reader.is_judge_call`) decide nothing about a persona.
"""

from __future__ import annotations

from typing import Any

from agentsim.core.event_views import CallFacts, DecisionFacts
from agentsim.core.log_stream import ConversationLog, conversations
from agentsim.core.reader import is_judge_call
from agentsim.core.store import RunStore

DECISION_PURPOSES = {"decision", "probe"}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def parse_rates(store: RunStore) -> dict[str, Any]:
    """Decisions and their parsing per persona and per model, from the log (one pass)."""
    tally = ParseTally()
    for conversation in conversations(store, tally.reads, views=tally.views):
        tally.add(conversation)
    return tally.result()


class ParseTally:
    """The running counts of :func:`parse_rates`, fed the successfully finished
    conversations of a pass."""

    reads = frozenset({"decision", "model_call"})
    views = {"decision": DecisionFacts, "model_call": CallFacts}  # no text is read

    def __init__(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}

    def _agent(self, agent: str) -> dict[str, Any]:
        return self.agents.setdefault(agent, {"decisions": 0, "unparsed": 0, "text_parsed": 0,
                                              "calls": 0, "constrained_calls": 0,
                                              "models": set(), "modes": set()})

    def add(self, conversation: ConversationLog) -> None:
        """Count one conversation's decisions and its decision calls."""
        if conversation.finished is None or not conversation.finished.ok:
            return
        for event in conversation.of(*self.reads):
            agent = event.agent or "?"
            if event.type == "decision":
                row = self._agent(agent)
                row["decisions"] += 1
                row["unparsed"] += event.value is None
                row["text_parsed"] += event.parsed_by == "text"
            elif (event.purpose in DECISION_PURPOSES and event.error is None
                  and not is_judge_call(event)):
                row = self._agent(agent)
                row["calls"] += 1
                row["constrained_calls"] += event.structured
                row["models"].add(event.model)
                mode = event.structured_mode or ("text" if not event.structured else "native")
                row["modes"].add(mode)
                model = self.models.setdefault(event.model, {"calls": 0, "constrained_calls": 0,
                                                             "modes": set()})
                model["calls"] += 1
                model["constrained_calls"] += event.structured
                model["modes"].add(mode)

    def result(self) -> dict[str, Any]:
        """The parse rates (see :func:`parse_rates`)."""
        agents, models = self.agents, self.models
        for row in agents.values():
            row["unparsed_share"] = _share(row["unparsed"], row["decisions"])
            row["models"], row["modes"] = sorted(row["models"]), sorted(row["modes"])
        for row in models.values():
            row["modes"] = sorted(row["modes"])
        shares = [r["unparsed_share"] for r in agents.values() if r["unparsed_share"] is not None]
        decisions = sum(r["decisions"] for r in agents.values())
        unparsed = sum(r["unparsed"] for r in agents.values())
        return {"decisions": decisions, "unparsed": unparsed,
                "unparsed_share": _share(unparsed, decisions),
                "spread": round(max(shares) - min(shares), 4) if shares else None,
                "free_text_calls": sum(r["calls"] - r["constrained_calls"]
                                       for r in agents.values()),
                "by_agent": dict(sorted(agents.items())), "by_model": dict(sorted(models.items()))}
