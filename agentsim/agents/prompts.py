"""Persona → prompt rendering for the discussion protocol: what each agent is told and sees.

The texts are the prompts of the scenario's prompt set (``protocol.prompt_set()``: the shipped
``agentsim/scenario/prompts/discussion.yaml``, with a preset's, ``--prompts FILE``'s or the
scenario's own prompts over it); this module computes the values they are filled with. The
shipped wording follows the structure of Borah & Mihalcea (2024) — a persona, the situation, the
tasks, a private first answer, short persuasive discussion turns, a final answer — in this
project's own words; the ``borah2024`` preset's prompt file quotes the published prompts.

The shipped prompts put what every agent of a conversation shares first (system message:
situation, people, tasks; then the transcript) and what is the agent's own last. An in-process
model then re-reads only the new suffix of each prompt (llama.cpp reuses the longest matching
prefix), which makes a conversation several times faster on a CPU, and hosted providers' prompt
caches work the same way.
"""

from __future__ import annotations

import re
from typing import Any

from agentsim.scenario.discussion_settings import DiscussionProtocol
from agentsim.scenario.prompt_files import PromptSet
from agentsim.scenario.schema import Persona, Scenario

# Gender labels of the published prompts ("Jack (Male)"), by the persona's gender attribute.
LABELS = {"man": "Male", "woman": "Female", "male": "Male", "female": "Female"}


def prompt_set(scenario: Scenario) -> PromptSet:
    """The discussion prompts of ``scenario`` (the shipped ones when it runs another protocol
    that borrows them, e.g. a setup's answer format)."""
    return _settings(scenario).prompt_set()


def _settings(scenario: Scenario) -> DiscussionProtocol:
    settings = scenario.protocol
    return settings if isinstance(settings, DiscussionProtocol) else DiscussionProtocol()


def label(persona: Persona) -> str:
    """The persona's name with its gender label, as the published prompts show it."""
    gender = LABELS.get(str(persona.attributes.get("gender", "")).lower())
    return f"{persona.name} ({gender})" if gender else persona.name


def shown_name(scenario: Scenario, persona: Persona) -> str:
    """The name the others read for ``persona``: labelled when the settings say so."""
    return label(persona) if _settings(scenario).labels else persona.name


def task_list(scenario: Scenario) -> str:
    """The tasks as agents read them: ``t1: <text>`` one per line."""
    return "\n".join(f"{task.id}: {task.text}" for task in scenario.tasks)


def people_list(scenario: Scenario, order: list[str] | None = None) -> str:
    """The people as agents read them, with any background, in ``order`` (persona ids) when
    given — drawn from the conversation seed, so that a persona's place in the list is not
    confounded with its attributes across counterfactual variants."""
    personas = [scenario.persona(pid) for pid in order] if order else list(scenario.personas)
    return "\n".join(
        f"- {shown_name(scenario, p)}" + (f" ({p.background})" if p.background else "")
        for p in personas)


def characters(scenario: Scenario, order: list[str] | None = None) -> str:
    """The people on one line with their labels, as the published prompts list them."""
    personas = [scenario.persona(pid) for pid in order] if order else list(scenario.personas)
    return ", ".join(label(p) for p in personas)


def scene(scenario: Scenario) -> str:
    """The scene as published prompts quote it: the imported published text when there is one,
    else the situation followed by its tasks."""
    if scenario.source_text:
        return scenario.source_text
    tasks = " ".join(f"Task {i}: {t.text}" for i, t in enumerate(scenario.tasks, 1))
    return f"{scenario.description.strip()} {tasks}"


def empty_transcript(scenario: Scenario) -> str:
    """What the transcript reads before anyone spoke."""
    return prompt_set(scenario).fill("empty_transcript")


def answer_format(scenario: Scenario, structured: bool, texts: PromptSet | None = None) -> str:
    """The format instruction for a decision: JSON when constrained, the text format
    otherwise (from ``texts`` when given: a protocol that borrows the assignment format)."""
    texts = texts or prompt_set(scenario)
    numbered = list(enumerate(scenario.tasks, 1))
    if structured:
        pairs = ", ".join(texts.fill("answer_format_json_pair", task_id=t.id, task=t.text,
                                     number=i) for i, t in numbered)
        return texts.fill("answer_format_json", pairs=pairs)
    lines = "\n".join(texts.fill("answer_format_line", task_id=t.id, task=t.text, number=i)
                      for i, t in numbered)
    return texts.fill("answer_format_text", lines=lines)


def goal_text(scenario: Scenario, persona: Persona | None = None) -> str:
    """The private goal of the 'goal' setting: take the goal task yourself."""
    number, task = next((i, t) for i, t in enumerate(scenario.tasks, 1)
                        if t.id == scenario.goal_task_id)
    return prompt_set(scenario).fill("private_goal", task_id=task.id, task=task.text,
                                     task_number=number,
                                     name=persona.name if persona else "")


def message_values(scenario: Scenario, persona: Persona | None, *, order: list[str] | None,
                   goal: bool, transcript: str = "", structured: bool = False,
                   round_number: int = 0, rounds: int = 0) -> dict[str, Any]:
    """The values every message prompt of the discussion may use (see the prompt file)."""
    texts = prompt_set(scenario)
    goal_part = f" {goal_text(scenario, persona)}" if goal else ""
    name = shown_name(scenario, persona) if persona else ""
    values: dict[str, Any] = {
        "name": name, "label": label(persona) if persona else "", "goal": goal_part,
        "situation": scenario.description.strip(), "scene": scene(scenario),
        "people": people_list(scenario, order), "characters": characters(scenario, order),
        "tasks": task_list(scenario), "answer_format": answer_format(scenario, structured),
        "transcript": transcript, "round": round_number, "rounds": rounds, "identity": ""}
    if persona is not None:
        background = f" {persona.background}" if persona.background else ""
        values["identity"] = texts.fill("identity", name=name, label=values["label"],
                                        background=background, goal=goal_part)
    return values


def shared_system_prompt(scenario: Scenario, order: list[str] | None = None) -> str:
    """The shipped system prompt of a discussion (situation, people and tasks), as every agent
    of a conversation reads it."""
    return prompt_set(scenario).fill(
        "system", **message_values(scenario, None, order=order, goal=False))


def single_system_prompt(scenario: Scenario, order: list[str] | None = None) -> str:
    """System prompt of the lone decision-maker of the 'no-interaction' setting."""
    return prompt_set(scenario).fill(
        "single_system", **message_values(scenario, None, order=order, goal=False))


def single_decision_prompt(scenario: Scenario, structured: bool) -> str:
    """The one decision of the 'no-interaction' setting."""
    return prompt_set(scenario).fill(
        "single_decision", **message_values(scenario, None, order=None, goal=False,
                                            structured=structured))


SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def spoken_turn(text: str, speaker: str, sentences: int | None = 2) -> str:
    """What an agent says in a discussion turn, as the others will read it.

    The shipped protocol asks for one or two sentences; models (small ones especially) ramble,
    so the turn keeps its first ``sentences`` sentences and drops a leading 'Name:' the model
    may echo. The full answer stays in the ``model_call`` event. ``sentences`` None: the answer
    as the model wrote it (the published protocol cuts nothing).
    """
    if sentences is None:
        return text
    text = " ".join(text.split())
    text = re.sub(rf"^{re.escape(speaker)}\s*:\s*", "", text)
    parts = SENTENCE_END.split(text)
    return " ".join(parts[:sentences]).strip()
