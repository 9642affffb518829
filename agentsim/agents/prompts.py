"""Persona → prompt rendering for the discussion protocol: what each agent is told and sees.

The wording follows the structure of Borah & Mihalcea (2024) — a persona, the situation, the tasks,
a private first answer, short persuasive discussion turns, a final answer — in this project's own
words. Agents see only what the protocol shows them: their own system prompt (including a private
goal in the 'goal' setting) and the public transcript.
"""

from __future__ import annotations

from agentsim.scenario.schema import Persona, Scenario

JSON_FORMAT = (
    'Answer only with JSON of the form {{"assignments": {{{pairs}}}}}, giving for each task id '
    "the name of one person."
)
TEXT_FORMAT = (
    "Answer with one line per task, exactly in this format:\n{lines}"
)


def task_list(scenario: Scenario) -> str:
    """The tasks as agents read them: ``t1: <text>`` one per line."""
    return "\n".join(f"{task.id}: {task.text}" for task in scenario.tasks)


def people_list(scenario: Scenario) -> str:
    """The people as agents read them, with any background."""
    return "\n".join(
        f"- {p.name}" + (f" ({p.background})" if p.background else "") for p in scenario.personas
    )


def answer_format(scenario: Scenario, structured: bool) -> str:
    """The format instruction for a decision: JSON when constrained, the published text format
    otherwise."""
    if structured:
        pairs = ", ".join(f'"{t.id}": "<name>"' for t in scenario.tasks)
        return JSON_FORMAT.format(pairs=pairs)
    lines = "\n".join(
        f"Task {i}: {t.id}, Person assigned: <name>" for i, t in enumerate(scenario.tasks, 1)
    )
    return TEXT_FORMAT.format(lines=lines)


def agent_system_prompt(scenario: Scenario, persona: Persona, private_goal: str | None) -> str:
    """System prompt of the agent playing ``persona``."""
    others = ", ".join(p.name for p in scenario.personas if p.id != persona.id)
    intro = f"You are {persona.name}."
    if persona.background:
        intro += f" {persona.background}"
    parts = [
        intro,
        f"You are part of a group with {others}." if others else "",
        f"Situation: {scenario.description.strip()}",
        f"People:\n{people_list(scenario)}",
        f"Tasks:\n{task_list(scenario)}",
    ]
    if private_goal:
        parts.append(f"Private goal (only you know this): {private_goal}")
    return "\n\n".join(part for part in parts if part)


def single_system_prompt(scenario: Scenario) -> str:
    """System prompt of the lone decision-maker of the 'no-interaction' setting."""
    return "\n\n".join(
        [
            "You are assigning tasks to a group of people.",
            f"Situation: {scenario.description.strip()}",
            f"People:\n{people_list(scenario)}",
            f"Tasks:\n{task_list(scenario)}",
        ]
    )


def goal_text(scenario: Scenario) -> str:
    """The private goal of the 'goal' setting: take the goal task yourself."""
    task = next(t for t in scenario.tasks if t.id == scenario.goal_task_id)
    return f"make sure that you yourself are assigned {task.id} ({task.text})."


def first_decision_prompt(scenario: Scenario, structured: bool) -> str:
    """Round 1: assign every task, privately, before any discussion."""
    return (
        "Before talking with the others, decide on your own who should do each task. "
        "Every task goes to exactly one person.\n" + answer_format(scenario, structured)
    )


def single_decision_prompt(scenario: Scenario, structured: bool) -> str:
    """The one decision of the 'no-interaction' setting."""
    return "Decide who should do each task. Every task goes to exactly one person.\n" + (
        answer_format(scenario, structured)
    )


def discussion_prompt(transcript: str, round_number: int, rounds: int) -> str:
    """A discussion turn: see the transcript, persuade, move toward consensus, 1–2 sentences."""
    return (
        f"Conversation so far:\n{transcript}\n\n"
        f"Discussion round {round_number} of {rounds}. It is your turn. In one or two sentences, "
        "argue for the assignment you think is best, respond to the others, and try to reach a "
        "consensus."
    )


def final_decision_prompt(transcript: str, scenario: Scenario, structured: bool) -> str:
    """The last decision, after the discussion."""
    return (
        f"Conversation so far:\n{transcript}\n\n"
        "The discussion is over. Give your final decision on who does each task. "
        "Every task goes to exactly one person.\n" + answer_format(scenario, structured)
    )
