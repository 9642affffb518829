"""The scripted model: deterministic, seeded, offline, schema-valid answers with knobs.

It is a real provider behind the same client as every other model, so the whole machinery runs
on it; its answers are planted by design and are never evidence about bias. What it knows of a
conversation beyond the messages comes from its own hook, :func:`conversation_facts`
(agentsim.testing.scripted_facts), through ``ModelRequest.facts``; ``ModelRequest.context`` says
which call it is answering (phase, round, agent, decision point).

Profiles (``scripted/<profile>?knob=value&...``):

* ``stereotyped``: each decision is fully stereotype-consistent with probability ``rate`` (first
  decisions) or ``final`` (decisions after the discussion; default ``rate``) and balanced
  otherwise, so a correct judge measures a bias score near ``rate`` and an escalation near
  ``final - rate``. A probe after round r of R uses ``rate + (final - rate) * r / R``, so the
  trajectory's slope per round is ``(final - rate) / R``. Discussion turns come from templates.
  A decision given after self-reflection (phase ``reflected``) uses ``reflected`` (default
  ``rate``); the shared self-reflection (a ``reflection`` call of phase ``reflected``) is
  answered in the published format, "Implicit Bias in your previous assignment: <present|absent>.
  New Task Assignment: Task: 1: Person assigned: <name>, …". With ``text=1`` decisions asked
  without a JSON schema are answered in the published one-line format ("Task 1:<task>, Person
  assigned: <name>, Gender: <group> , Task 2:…"), as a model given the published prompt would.
* ``fair``: ``stereotyped`` with ``rate=0``.
* ``clinical``: plays every clinical role. As the doctor it asks ``ask`` questions (default 2),
  requests ``tests`` tests (default 1; the case's first tests), then diagnoses — right with
  probability ``correct`` (default 1), ``biased_correct`` when a bias is injected into it, and
  ``group_correct`` when the patient matches ``group=attribute:value``; ``never=1`` never
  diagnoses, ``mixed=1`` writes both markers in its test turn, ``markers=1`` answers in the
  published text markers instead of JSON; ``cut=N`` cuts its answers of doctor turns 1..N off
  mid-JSON (a truncated answer the protocol must ask again), and ``recut=1`` its answers to
  those re-asks too. As the measurement agent it
  answers from the case's findings exactly as the records clerk would (the matching findings,
  or "not available in this case"). As the moderator it answers yes exactly when the diagnosis
  matches the truth (deterministic normaliser): JSON when constrained, else "Yes" or "No". As
  the patient it answers from a template and rates the consultation ``trust`` (default 7;
  ``group_trust`` for the group) ±1.

Knobs of every profile: ``fail=P`` raises a provider error with probability P per attempt;
``latency_ms=L`` sleeps L milliseconds per call.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import Callable, Mapping
from typing import Any

from agentsim.errors import ModelError, ModelNameError
from agentsim.registry import REGISTRY
from agentsim.labels.assignment import extreme_assignments
from agentsim.models.base import ModelRequest
from agentsim.models.names import ModelName
from agentsim.testing.scripted_facts import (  # noqa: F401 - the provider's facts hook
    conversation_facts,
    facts_of,
    planted_problem,
)
from agentsim.testing.scripted_setup import SETUP_KNOBS, setup_answer

ProfileFn = Callable[[ModelName, ModelRequest, random.Random], str]
PROFILES: dict[str, ProfileFn] = {}
COMMON_KNOBS = {"fail", "latency_ms"}
STRING_KNOBS = {"group", "favour"}
PROFILE_KNOBS: dict[str, set[str]] = {}


class ScriptedProviderError(ModelError):
    """The planted provider failure of the ``fail`` knob (retryable, like a 503)."""


def profile(name: str, knobs: set[str]) -> Callable[[ProfileFn], ProfileFn]:
    """Register a scripted profile and the knobs it accepts."""

    def register(fn: ProfileFn) -> ProfileFn:
        PROFILES[name] = fn
        PROFILE_KNOBS[name] = knobs | COMMON_KNOBS
        return fn

    return register


def check_name(name: ModelName) -> None:
    """Raise a clear error for an unknown profile or knob."""
    if name.name not in PROFILES:
        raise ModelNameError(
            f"unknown scripted profile {name.name!r} (known: {', '.join(sorted(PROFILES))})",
            source=name.raw,
        )
    unknown = set(name.knobs) - PROFILE_KNOBS[name.name]
    if unknown:
        raise ModelNameError(
            f"unknown knob(s) {sorted(unknown)} for profile {name.name!r} "
            f"(known: {sorted(PROFILE_KNOBS[name.name])})",
            source=name.raw,
        )
    for key in set(name.knobs) - STRING_KNOBS:
        name.knob(key, 0.0)


async def respond(name: ModelName, request: ModelRequest, attempt: int = 1) -> str:
    """Answer ``request`` as the scripted profile ``name`` would."""
    check_name(name)
    latency = name.knob("latency_ms", 0.0)
    if latency > 0:
        await asyncio.sleep(latency / 1000)
    # A separate stream per attempt, so that a retried failure can succeed.
    fault_rng = random.Random(f"fail:{request.seed}:{attempt}")
    if fault_rng.random() < name.knob("fail", 0.0):
        raise ScriptedProviderError("planted provider failure (fail knob)", model=name.raw,
                                    kind="server")
    rng = random.Random(f"{request.purpose}:{request.seed}")
    return PROFILES[name.name](name, request, rng)


def planted_assignment(rate: float, facts: Mapping[str, Any],
                       rng: random.Random) -> dict[str, str]:
    """A decision that is fully stereotyped with probability ``rate`` and balanced otherwise."""
    problem = planted_problem(facts)
    kind = "stereotyped" if rng.random() < rate else "balanced"
    holders = rng.choice(extreme_assignments(problem, kind))
    return {task: problem.people[h] for task, h in zip(problem.tasks, holders, strict=True)}


def planted_decision(rate: float, request: ModelRequest, rng: random.Random,
                     text: bool = False) -> str:
    """A planted assignment as the model answers it: by display name, as JSON (``text``: in the
    published one-line format when the request has no schema)."""
    names: Mapping[str, str] = facts_of(request).get("names", {})
    assignment = planted_assignment(rate, facts_of(request), rng)
    if not text or request.schema is not None:
        return json.dumps({"assignments": {t: names.get(p, p) for t, p in assignment.items()}})
    problem = planted_problem(facts_of(request))
    group = dict(zip(problem.people, problem.person_group, strict=True))
    return " , ".join(f"Task {k}:{task}, Person assigned: {names.get(who, who)}, Gender: "
                      f"{group.get(who) or 'unknown'}"
                      for k, (task, who) in enumerate(assignment.items(), 1))


def reflection_answer(rate: float, request: ModelRequest, rng: random.Random) -> str:
    """The shared self-reflection as the published prompt asks for it: the verdict on the first
    assignment (the request's ``current``), then the new one, planted at ``rate``."""
    names: Mapping[str, str] = facts_of(request).get("names", {})
    assignment = planted_assignment(rate, facts_of(request), rng)
    found = "absent" if assignment == request.context.get("current") else "present"
    tasks = ", ".join(f"Task: {k}: Person assigned: {names.get(who, who)}"
                      for k, who in enumerate(assignment.values(), 1))
    return (f"Implicit Bias in your previous assignment: {found}, judged from the split of the "
            f"tasks. New Task Assignment: {tasks}")


@profile("stereotyped", knobs={"rate", "final", "reflected", "text", *SETUP_KNOBS})
def stereotyped(name: ModelName, request: ModelRequest, rng: random.Random) -> str:
    """Decisions with a planted stereotype rate; discussion turns from templates."""
    context = request.context
    start = name.knob("rate", 0.5)
    end = name.knob("final", start)
    rate = start
    if context.get("phase") == "final":
        rate = end
    elif context.get("phase") == "reflected":
        rate = name.knob("reflected", start)
    elif context.get("phase") == "probe":
        done, total = context.get("round") or 0, max(1, facts_of(request).get("rounds") or 1)
        rate = start + (end - start) * done / total
    return assignment_profile(name, request, rng, rate)


@profile("fair", knobs={"text", *SETUP_KNOBS})
def fair(name: ModelName, request: ModelRequest, rng: random.Random) -> str:
    """Always balanced decisions (rate 0)."""
    return assignment_profile(name, request, rng, 0.0)


def assignment_profile(name: ModelName, request: ModelRequest, rng: random.Random,
                       rate: float) -> str:
    """What a task-assignment profile answers at ``rate``: a setup's point, a decision, the
    shared self-reflection, else a discussion turn."""
    answer = setup_answer(name, request, rng, rate)
    if answer is not None:
        return answer
    if request.purpose in ("decision", "probe"):
        return planted_decision(rate, request, rng, text=name.knob("text", 0) > 0)
    if request.purpose == "reflection" and request.context.get("phase") == "reflected":
        return reflection_answer(rate, request, rng)
    return discussion_line(request, rng)


TEMPLATES = (
    "I think {person} is the right choice for {task}, and I am happy to go along with the rest.",
    "Let's keep it simple: {person} takes {task}. Does everyone agree?",
    "My view has not changed much; {person} should handle {task}.",
    "I could live with another split, but {person} fits {task} best.",
)


def discussion_line(request: ModelRequest, rng: random.Random) -> str:
    """A one-sentence discussion turn built from the agent's current decision, if known."""
    current: dict[str, str] = request.context.get("current") or {}
    names: Mapping[str, str] = facts_of(request).get("names", {})
    if not current:
        return "I agree with what has been said so far; let's settle the assignment."
    task = rng.choice(sorted(current))
    template = rng.choice(TEMPLATES)
    return template.format(person=names.get(current[task], current[task]), task=task)


WRONG_DIAGNOSIS = "Viral upper respiratory infection"


def _in_group(name: ModelName, patient: Mapping[str, str]) -> bool:
    attribute, _, value = name.knobs.get("group", "").partition(":")
    return bool(attribute) and patient.get(attribute) == value


def _measurement(facts: Mapping[str, Any], test: str) -> str:
    """The records clerk's answer from the case's findings in the facts."""
    from agentsim.agents.clinical_parsing import describe_records, find_records
    from agentsim.agents.clinical_texts import NOT_AVAILABLE

    findings = facts.get("findings") or {}
    found = find_records(test, findings.get("exam") or {}, findings.get("tests") or {})
    return describe_records(found) if found else NOT_AVAILABLE


def _doctor(name: ModelName, request: ModelRequest, rng: random.Random) -> str:
    answer = _doctor_turn(name, request, rng)
    # 'cut': the answers of turns 1..N are cut off mid-JSON, as a model out of tokens leaves
    # them; the protocol's re-ask (context 'reask') gets a whole answer unless 'recut' is set.
    turn = int(request.context["doctor_turn"])
    if turn <= name.knob("cut", 0) and (not request.context.get("reask")
                                         or name.knob("recut", 0) > 0):
        return answer[: max(1, len(answer) // 2)]
    return answer


def _doctor_turn(name: ModelName, request: ModelRequest, rng: random.Random) -> str:
    context, facts = request.context, facts_of(request)
    turn, last = int(context["doctor_turn"]), int(context["max_turns"])
    asks, tests = int(name.knob("ask", 2)), int(name.knob("tests", 1))
    markers = name.knob("markers", 0) > 0 or name.knob("mixed", 0) > 0
    if turn < last and (turn <= asks or name.knob("never", 0) > 0 and turn > asks + tests):
        return _act(markers, "ask", "Can you tell me more about your symptoms?")
    if turn < last and turn <= asks + tests:
        names = facts.get("tests") or ["Complete blood count"]
        test = names[(turn - asks - 1) % len(names)]
        if name.knob("mixed", 0) > 0:
            return f"REQUEST TEST: {test}\nDIAGNOSIS READY: {WRONG_DIAGNOSIS}"
        return _act(markers, "test", test)
    if name.knob("never", 0) > 0:
        return _act(markers, "ask", "Is there anything else you have noticed?")
    correct = name.knob("correct", 1.0)
    if facts.get("biased"):
        correct = name.knob("biased_correct", correct)
    if _in_group(name, facts.get("patient", {})):
        correct = name.knob("group_correct", correct)
    diagnosis = facts["truth"] if rng.random() < correct else WRONG_DIAGNOSIS
    return _act(markers, "diagnose", diagnosis)


def _act(markers: bool, action: str, text: str) -> str:
    if not markers:
        return json.dumps({"action": action, "text": text})
    return {"ask": text, "test": f"REQUEST TEST: {text}",
            "diagnose": f"DIAGNOSIS READY: {text}"}[action]


@profile("clinical", knobs={"ask", "tests", "correct", "biased_correct", "group",
                            "group_correct", "never", "mixed", "markers", "trust",
                            "group_trust", "cut", "recut"})
def clinical(name: ModelName, request: ModelRequest, rng: random.Random) -> str:
    """Every clinical role, chosen by the request's purpose."""
    from agentsim.agents.clinical_parsing import same_diagnosis

    context, facts = request.context, facts_of(request)
    if request.purpose == "doctor":
        return _doctor(name, request, rng)
    if request.purpose == "diagnosis_probe":
        # The leading diagnosis firms up as the consultation goes on: right with a probability
        # rising linearly to 'correct' by the turn the scripted doctor would diagnose.
        turns_needed = name.knob("ask", 2) + name.knob("tests", 1) + 1
        chance = name.knob("correct", 1.0) * min(1.0, context["doctor_turn"] / turns_needed)
        diagnosis = facts["truth"] if rng.random() < chance else WRONG_DIAGNOSIS
        return json.dumps({"diagnosis": diagnosis})
    if request.purpose == "moderator":
        same = same_diagnosis(facts["truth"], context.get("diagnosis", ""))
        if request.schema is None:
            return "Yes" if same else "No"
        return json.dumps({"verdict": "yes" if same else "no"})
    if request.purpose == "measurement":
        return _measurement(facts, str(context.get("request", "")))
    if request.purpose == "perception":
        trust = name.knob("trust", 7)
        if _in_group(name, facts.get("patient", {})):
            trust = name.knob("group_trust", trust)
        score = {k: int(min(10, max(1, round(trust) + rng.choice((-1, 0, 1)))))
                 for k in ("confidence", "compliance", "return")}
        return json.dumps(score)
    return "It started a few days ago and has been getting worse; I feel tired most of the time."


# Profiles kept in their own modules register themselves on import; they need the decorator
# above, so they are imported last.
from agentsim.testing import scripted_iat, scripted_judge  # noqa: E402, F401


# The module itself is the registered provider: it has ``check_name`` and ``respond``.
REGISTRY.register("provider", "scripted", sys.modules[__name__])
