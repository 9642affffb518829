"""Assignment decisions: the JSON schema a model is constrained to, and a tolerant parser.

Models that support JSON-schema output are asked for ``{"assignments": {task_id: name}}``; others
are asked for the fixed format ``Task k: <task>, Person assigned: <name>``, one task a line. The
parser accepts both, whatever was asked, because weak models drift between them, and also the
formats of the published prompts (Borah & Mihalcea 2024), where ``Task k`` is the scenario's k-th
task and names may carry a gender label ("Jack (Male)"):

* the one-line answer format: ``Task 1:<description>, Person assigned: X, Gender: G , Task 2:…``;
* the final prompt's variant ``Task 1, Person assigned: …``;
* the self-reflection's ``New Task Assignment: Task: 1: Person assigned: …`` (only the text after
  the last "New Task Assignment" is read, so the critique before it cannot be mistaken for the
  assignment).

The line reader runs first, exactly as it always has; the published reader only fills in an
answer it left incomplete. A decision is valid only when every task is assigned to a known
persona; anything else raises :class:`~agentsim.errors.DecisionParseError`, which the caller
records and counts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentsim.errors import DecisionParseError
from agentsim.scenario.schema import Scenario


def assignment_schema(scenario: Scenario) -> dict[str, Any]:
    """JSON schema of an assignment decision, built from the scenario's own ids and names."""
    names = [p.name for p in scenario.personas]
    return {
        "type": "object",
        "properties": {
            "assignments": {
                "type": "object",
                "properties": {t.id: {"type": "string", "enum": names} for t in scenario.tasks},
                "required": [t.id for t in scenario.tasks],
                "additionalProperties": False,
            }
        },
        "required": ["assignments"],
        "additionalProperties": False,
    }


def _person_lookup(scenario: Scenario) -> dict[str, str]:
    # Models answer with the names they were shown, so names win over ids (in a mirror variant
    # slot 'yusuf' may be named "Chiara" while slot 'chiara' is named "Yusuf"); ids and first
    # names only fill in what no full name claims.
    lookup = {persona.name.lower(): persona.id for persona in scenario.personas}
    for persona in scenario.personas:
        lookup.setdefault(persona.id.lower(), persona.id)
    for persona in scenario.personas:
        lookup.setdefault(persona.name.split()[0].lower(), persona.id)
    return lookup


def _task_lookup(scenario: Scenario) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for number, task in enumerate(scenario.tasks, start=1):
        for key in (task.id, f"task {number}", f"task{number}", str(number), task.text):
            lookup[key.lower().strip(" .:")] = task.id
    return lookup


def _resolve_person(value: str, people: dict[str, str]) -> str | None:
    text = value.strip().strip("\"'.,;").lower()
    if text in people:
        return people[text]
    # "Daniel (he leads)" or "I'd pick Daniel" → the first known name mentioned, if only one is.
    found = {pid for key, pid in people.items() if re.search(rf"\b{re.escape(key)}\b", text)}
    return found.pop() if len(found) == 1 else None


def _from_mapping(mapping: dict[str, Any], scenario: Scenario) -> dict[str, str]:
    tasks, people = _task_lookup(scenario), _person_lookup(scenario)
    result: dict[str, str] = {}
    for key, value in mapping.items():
        task = tasks.get(str(key).lower().strip(" .:"))
        if task is None:
            raise DecisionParseError(f"unknown task {key!r}", raw=json.dumps(mapping))
        person = _resolve_person(str(value), people)
        if person is None:
            raise DecisionParseError(
                f"task {task}: {value!r} is not one of the people", raw=json.dumps(mapping)
            )
        result[task] = person
    return result


def json_objects(text: str) -> list[Any]:
    """Every top-level JSON object in the text, in order."""
    decoder = json.JSONDecoder()
    objects, position = [], 0
    while (start := text.find("{", position)) != -1:
        try:
            value, end = decoder.raw_decode(text[start:])
        except json.JSONDecodeError:
            position = start + 1
            continue
        objects.append(value)
        position = start + end
    return objects


TEXT_LINE = re.compile(
    r"\b(?P<task>task\s*\d+|t\d+)\b\s*[:\-.)]?\s*(?P<rest>.*)", re.IGNORECASE
)
PERSON_AFTER = re.compile(r"(?:person\s+assigned|assigned\s+to|->|→|=>)\s*[:\-]?\s*(?P<who>.+)", re.I)


def _from_text(text: str, scenario: Scenario) -> dict[str, str]:
    tasks, people = _task_lookup(scenario), _person_lookup(scenario)
    result: dict[str, str] = {}
    for line in text.splitlines():
        match = TEXT_LINE.search(line.strip().lstrip("-*• "))
        if not match:
            continue
        task = tasks.get(match["task"].lower().replace("  ", " ").strip())
        if task is None:
            continue
        rest = match["rest"]
        after = PERSON_AFTER.search(rest)
        candidate = after["who"] if after else rest.split(":")[-1]
        person = _resolve_person(candidate, people)
        if person is not None and task not in result:
            result[task] = person
    return result


# "Task 3", "Task: 3", "Task #3", "task3" — where a published answer's task k starts.
TASK_MARK = re.compile(r"(?<![a-z])task\s*[:#]?\s*(\d+)\b", re.IGNORECASE)
NEW_ASSIGNMENT = re.compile(r"new\s+task\s+assignments?\b", re.IGNORECASE)


def _assignment_part(text: str) -> str:
    """The part of a text answer that holds the assignment: after the last "New Task
    Assignment" (the published reflection, whose critique comes first and may name tasks and
    people), else all of it."""
    marks = list(NEW_ASSIGNMENT.finditer(text))
    return text[marks[-1].end():] if marks else text


def _from_published(text: str, scenario: Scenario) -> dict[str, str]:
    """Task k → person from the published answer formats: the text cut at every 'Task k', each
    piece read for its 'Person assigned' (else its last ':' part); the first reading of a task
    wins, as in the line reader."""
    plain = text.replace("**", "").replace("__", "")
    people, tasks = _person_lookup(scenario), list(scenario.tasks)
    found = list(TASK_MARK.finditer(plain))
    result: dict[str, str] = {}
    for match, following in zip(found, [*found[1:], None]):
        number = int(match[1])
        if not 1 <= number <= len(tasks) or tasks[number - 1].id in result:
            continue
        piece = plain[match.end():following.start() if following else len(plain)]
        after = PERSON_AFTER.search(piece)
        if after:
            # "Jack (Male), Gender: Male , " → "Jack (Male)": the gender field is not a name.
            candidate = re.split(r",\s*gender\b", after["who"], flags=re.IGNORECASE)[0]
        else:
            candidate = piece.strip(" \t\n:-.),").split(":")[-1]
        person = _resolve_person(candidate.strip(" \t\n,"), people)
        if person is not None:
            result[tasks[number - 1].id] = person
    return result


def parse_assignment(text: str, scenario: Scenario) -> tuple[dict[str, str], str]:
    """Extract task id → persona id from a model answer; returns (decision, 'json'|'text')."""
    decision: dict[str, str] = {}
    how = "text"
    json_error: DecisionParseError | None = None
    for value in json_objects(text):
        inner = value.get("assignments", value) if isinstance(value, dict) else None
        if not isinstance(inner, dict):
            continue
        try:
            decision, how = _from_mapping(inner, scenario), "json"
            break
        except DecisionParseError as error:  # another object (e.g. reasoning); keep looking
            json_error = error
    if not decision:
        answer = _assignment_part(text)
        decision = _from_text(answer, scenario)
        if len(decision) < len(scenario.tasks):
            published = _from_published(answer, scenario)
            if len(published) > len(decision):
                decision = published
    missing = [t.id for t in scenario.tasks if t.id not in decision]
    if missing and json_error is not None:
        raise DecisionParseError(str(json_error), raw=text)  # the JSON's own problem is clearer
    if missing:
        raise DecisionParseError(
            f"no person assigned to task(s) {', '.join(missing)}", raw=text
        )
    return decision, how


def describe_assignment(decision: dict[str, str], scenario: Scenario) -> str:
    """A readable one-line rendering used in transcripts: 't1 → Daniel; t2 → Emily'."""
    return "; ".join(
        f"{t.id} → {scenario.persona(decision[t.id]).name}" for t in scenario.tasks
    )
