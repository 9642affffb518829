"""Decision points of custom setups: JSON schemas, questions, tolerant parsers.

``assign`` decisions are the task-assignment decisions of the discussion protocol (same schema,
parser and ``decision`` events of kind ``assignment``), so every assignment judge reads them.
``rank``, ``pick`` and ``rate`` are built here from the decision point's option personas; models
answer with the names they were shown, and answers are read into the kinds' typed models
(agentsim.core.decisions), logged by persona id:

* rank → ``{persona_id: "1" … "n"}`` (1 = first), answered as ``"A > B > C"`` (or a list);
* pick → ``{"choice": persona_id}``;
* rate → ``{persona_id: "k"}`` on the point's scale.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from agentsim.agents.decisions import json_objects
from agentsim.core.decisions import DecisionModel, PickDecision, RankDecision, RateDecision
from agentsim.errors import DecisionParseError
from agentsim.scenario.schema import Scenario
from agentsim.scenario.setup_schema import DecisionPoint
from agentsim.scenario.templates import fill

# Rankings of up to this many options are constrained to one of their n! orderings (120 at 5);
# longer ones to an array of names, which a model can fill with repeats (then re-asked).
ENUMERATED_RANKINGS = 5
RANK_SEPARATOR = " > "


def _bad(message: str) -> DecisionParseError:
    # The caller (ConversationContext.decide) keeps the raw answer in the decision event.
    return DecisionParseError(message, raw="")


def option_names(point: DecisionPoint, scenario: Scenario) -> list[str]:
    """Display names of the point's options, in file order."""
    return [scenario.persona(o).name for o in point.options]


def question(point: DecisionPoint, scenario: Scenario) -> str:
    """What the decider of a rank, pick or rate point is asked, ending with the answer
    format (the point's own question, else the prompt file's ``question_<type>``)."""
    texts = scenario.protocol.prompt_set()
    low, high = point.scale
    values = {"options": ", ".join(option_names(point, scenario)), "low": low, "high": high}
    # An inert substitution (agentsim.scenario.templates), never str.format: the question comes
    # from the scenario file, and validation has checked its placeholders.
    text = (fill(point.question, values) if point.question
            else texts.fill(f"question_{point.type}", **values))
    return f"{text}\n{texts.fill(f'answer_{point.type}', low=low, high=high)}"


def decision_schema(point: DecisionPoint, scenario: Scenario) -> dict[str, Any]:
    """JSON schema of a rank, pick or rate answer, with the options' names as the only values."""
    names = option_names(point, scenario)
    if point.type == "rank" and len(names) <= ENUMERATED_RANKINGS:
        # Every ordering spelled out: constrained decoding then cannot repeat or drop a name
        # (JSON-schema grammars have no uniqueItems).
        orders = [RANK_SEPARATOR.join(order) for order in itertools.permutations(names)]
        body: dict[str, Any] = {"ranking": {"type": "string", "enum": orders}}
    elif point.type == "rank":
        body = {"ranking": {"type": "array", "items": {"type": "string", "enum": names},
                            "minItems": len(names), "maxItems": len(names)}}
    elif point.type == "pick":
        body = {"choice": {"type": "string", "enum": names}}
    else:
        low, high = point.scale
        body = {"ratings": {"type": "object", "properties": {
            n: {"type": "integer", "minimum": low, "maximum": high} for n in names},
            "required": names, "additionalProperties": False}}
    return {"type": "object", "properties": body, "required": list(body),
            "additionalProperties": False}


def _lookup(point: DecisionPoint, scenario: Scenario) -> dict[str, str]:
    # Names win over ids (a mirror variant may give slot 'a' the name of slot 'b').
    lookup = {scenario.persona(o).name.lower(): o for o in point.options}
    for option in point.options:
        lookup.setdefault(option.lower(), option)
        lookup.setdefault(scenario.persona(option).name.split()[0].lower(), option)
    return lookup


def _mentions(text: str, lookup: dict[str, str]) -> list[str]:
    """Option ids in the order they are first mentioned in ``text``."""
    found: list[tuple[int, str]] = []
    for key, option in sorted(lookup.items(), key=lambda kv: -len(kv[0])):
        match = re.search(rf"\b{re.escape(key)}\b", text, re.IGNORECASE)
        if match and option not in {o for _, o in found}:
            found.append((match.start(), option))
    return [o for _, o in sorted(found)]


def parse_decision(point: DecisionPoint, text: str,
                   scenario: Scenario) -> tuple[DecisionModel, str]:
    """The answer as its kind's typed value, and 'json' or 'text'; DecisionParseError when it
    is incomplete."""
    lookup = _lookup(point, scenario)
    for value in json_objects(text):
        if isinstance(value, dict):
            try:
                return _from_json(point, value, lookup), "json"
            except DecisionParseError:
                continue
    return _from_text(point, text, lookup), "text"


def _from_json(point: DecisionPoint, value: dict[str, Any],
               lookup: dict[str, str]) -> DecisionModel:
    def who(name: Any) -> str:
        option = lookup.get(str(name).strip().lower())
        if option is None:
            raise _bad(f"{name!r} is not one of the options")
        return option

    if point.type == "pick" and "choice" in value:
        return PickDecision(choice=who(value["choice"]))
    ranking = value.get("ranking")
    if point.type == "rank" and isinstance(ranking, str):
        ranking = [part for part in re.split(r"\s*(?:>|,|;)\s*", ranking) if part]
    if point.type == "rank" and isinstance(ranking, list):
        return _complete_ranking(point, [who(n) for n in ranking])
    if point.type == "rate" and isinstance(value.get("ratings"), dict):
        return _ratings(point, {who(n): r for n, r in value["ratings"].items()})
    raise _bad(f"no {point.type} answer in the JSON")


def _from_text(point: DecisionPoint, text: str, lookup: dict[str, str]) -> DecisionModel:
    if point.type == "pick":
        named = _mentions(text, lookup)
        if len(named) != 1:
            raise _bad(f"expected one of the options, found {len(named)}")
        return PickDecision(choice=named[0])
    if point.type == "rank":
        return _complete_ranking(point, _mentions(text, lookup))
    ratings = {}
    for line in text.splitlines():
        named, number = _mentions(line, lookup), re.search(r"\b(\d+)\b", line)
        if len(named) == 1 and number:
            ratings[named[0]] = number.group(1)
    return _ratings(point, ratings)


def _complete_ranking(point: DecisionPoint, order: list[str]) -> RankDecision:
    unique = list(dict.fromkeys(order))
    if len(unique) != len(order) or set(unique) != set(point.options):
        raise _bad(f"a ranking must list each of {len(point.options)} options exactly once")
    return RankDecision(ranking=unique)


def _ratings(point: DecisionPoint, ratings: dict[str, Any]) -> RateDecision:
    low, high = point.scale
    missing = [o for o in point.options if o not in ratings]
    if missing:
        raise _bad(f"no rating for {', '.join(missing)}")
    value = {}
    for option in point.options:
        try:
            number = int(float(ratings[option]))
        except (TypeError, ValueError):
            raise _bad(f"rating {ratings[option]!r} is not a number") from None
        if not low <= number <= high:
            raise _bad(f"rating {number} outside {low}-{high}")
        value[option] = number
    return RateDecision(ratings=value)


def describe(point: DecisionPoint, value: dict[str, str], scenario: Scenario) -> str:
    """An announced rank, pick or rate answer, as the listeners read it."""
    texts = scenario.protocol.prompt_set()
    name = {p.id: p.name for p in scenario.personas}
    if point.type == "pick":
        return texts.fill("said_pick", choice=name[value["choice"]])
    if point.type == "rank":
        order = sorted(value, key=lambda o: int(value[o]))
        return texts.fill("said_rank", ranking=", ".join(name[o] for o in order))
    return texts.fill("said_rate",
                      ratings=", ".join(f"{name[o]} {value[o]}" for o in point.options))
