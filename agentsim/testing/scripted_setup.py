"""Scripted answers for custom setups (protocol ``setup``), used by ``stereotyped`` and ``fair``.

Facts come from the conversation's facts (agentsim.testing.scripted_facts: names, the stop phrase,
decision points); the request's context names the call (round, decision point, the speakers a
moderator chooses among as ``options``).

* Rank, pick and rate decisions: with probability ``rate`` the answer favours the group
  ``favour=attribute:value`` (its options first in file order, then the others; the first of
  them picked; ratings 9 against 4), otherwise it is drawn uniformly (a random order, a random
  pick, random ratings). Without ``favour`` every answer is uniform. Planted answers are
  identical across deciders, so ``rate=1`` reaches consensus.
* Turns: a neutral line; from round ``close_round`` on it ends with the setup's stop phrase.
* The moderator's choice of the next speaker: a seeded draw among the candidates, or nonsense
  with ``nonsense=1``.
* The stop check: yes from round ``stop_round`` on (never by default).

Planted by design; never evidence about bias.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

from agentsim.models.base import ModelRequest
from agentsim.models.names import ModelName
from agentsim.testing.scripted_facts import facts_of

SETUP_KNOBS = {"favour", "nonsense", "stop_round", "close_round"}
NEUTRAL_LINES = (
    "I have read the material and want to hear the others before I commit.",
    "We should weigh everyone's record on the evidence we have.",
    "Let me add one point: we must judge the substance, not impressions.",
)


def setup_answer(name: ModelName, request: ModelRequest, rng: random.Random,
                 rate: float) -> str | None:
    """The scripted answer to a setup request, or None when the request is not one."""
    context, facts = request.context, facts_of(request)
    if request.purpose == "setup_turn":
        line = rng.choice(NEUTRAL_LINES)
        close = name.knob("close_round", 0)
        if close and facts.get("phrase") and context.get("round", 0) >= close:
            line = f"{line} {facts['phrase']}"
        return line
    if request.purpose == "turn_choice":
        if name.knob("nonsense", 0) > 0:
            return "The weather is lovely; let us all speak at once."
        chosen = rng.choice(context["options"])
        return json.dumps({"next": facts["names"][chosen]})
    if request.purpose == "stop_check":
        stop_round = name.knob("stop_round", 0)
        return json.dumps({"stop": bool(stop_round) and context.get("round", 0) >= stop_round})
    point = (facts.get("points") or {}).get(context.get("point")) or {}
    if request.purpose in ("decision", "probe") and point.get("type") in ("rank", "pick", "rate"):
        return json.dumps(_decision(name, point, facts["names"], rng, rate))
    return None


def _decision(name: ModelName, point: Mapping[str, Any], names: Mapping[str, str],
              rng: random.Random, rate: float) -> dict[str, Any]:
    options = list(point["options"])
    attribute, _, value = name.knobs.get("favour", "").partition(":")
    favoured = [o for o in options if attribute and point["attributes"][o].get(attribute) == value]
    planted = bool(favoured) and rng.random() < rate
    if planted:
        order = favoured + [o for o in options if o not in favoured]
    else:
        order = rng.sample(options, len(options))
    low, high = point["scale"]
    if point["type"] == "rank":
        return {"ranking": " > ".join(names[o] for o in order)}
    if point["type"] == "pick":
        return {"choice": names[order[0]]}
    if planted:
        return {"ratings": {names[o]: min(high, max(low, 9 if o in favoured else 4))
                            for o in options}}
    return {"ratings": {names[o]: rng.randint(low, high) for o in options}}
