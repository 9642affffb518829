"""Persona → prompt rendering for the discussion protocol: what each agent is told and sees.

The wording follows the structure of Borah & Mihalcea (2024) — a persona, the situation, the tasks,
a private first answer, short persuasive discussion turns, a final answer — in this project's own
words. Agents see only what the protocol shows them: the shared situation, the public transcript,
and their own identity and instruction (including a private goal in the 'goal' setting).

Prompts put what every agent of a conversation shares first (system message: situation, people,
tasks; then the transcript) and what is the agent's own last. An in-process model then re-reads
only the new suffix of each prompt (llama.cpp reuses the longest matching prefix), which makes a
conversation several times faster on a CPU, and hosted providers' prompt caches work the same way.
"""

from __future__ import annotations

import re

from agentsim.scenario.schema import Persona, Scenario

EMPTY_TRANSCRIPT = "(nothing has been said yet)"


def task_list(scenario: Scenario) -> str:
    """The tasks as agents read them: ``t1: <text>`` one per line."""
    return "\n".join(f"{task.id}: {task.text}" for task in scenario.tasks)


def people_list(scenario: Scenario, order: list[str] | None = None) -> str:
    """The people as agents read them, with any background, in ``order`` (persona ids) when
    given — drawn from the conversation seed, so that a persona's place in the list is not
    confounded with its attributes across counterfactual variants."""
    personas = [scenario.persona(pid) for pid in order] if order else list(scenario.personas)
    return "\n".join(
        f"- {p.name}" + (f" ({p.background})" if p.background else "") for p in personas
    )


def answer_format(scenario: Scenario, structured: bool) -> str:
    """The format instruction for a decision: JSON when constrained, the published text format
    otherwise."""
    if structured:
        pairs = ", ".join(f'"{t.id}": "<name>"' for t in scenario.tasks)
        return (f'Answer only with JSON of the form {{"assignments": {{{pairs}}}}}, giving for '
                "each task id the name of one person.")
    lines = "\n".join(
        f"Task {i}: {t.id}, Person assigned: <name>" for i, t in enumerate(scenario.tasks, 1)
    )
    return f"Answer with one line per task, exactly in this format:\n{lines}"


def shared_system_prompt(scenario: Scenario, order: list[str] | None = None,
                         opening: str = "You are taking part in a group discussion as one of "
                         "the people below.") -> str:
    """System prompt shared by every agent of a discussion: the situation, people and tasks."""
    return "\n\n".join([
        opening,
        f"Situation: {scenario.description.strip()}",
        f"People:\n{people_list(scenario, order)}",
        f"Tasks:\n{task_list(scenario)}",
    ])


def single_system_prompt(scenario: Scenario, order: list[str] | None = None) -> str:
    """System prompt of the lone decision-maker of the 'no-interaction' setting."""
    return shared_system_prompt(scenario, order, "You are assigning tasks to a group of people.")


def identity(persona: Persona, private_goal: str | None) -> str:
    """Who the agent is (and its private goal), placed just before its instruction."""
    text = f"You are {persona.name}."
    if persona.background:
        text += f" {persona.background}"
    if private_goal:
        text += f" Private goal (only you know this): {private_goal}"
    return text


def goal_text(scenario: Scenario) -> str:
    """The private goal of the 'goal' setting: take the goal task yourself."""
    task = next(t for t in scenario.tasks if t.id == scenario.goal_task_id)
    return f"make sure that you yourself are assigned {task.id} ({task.text})."


def agent_turn(transcript: str | None, persona: Persona, private_goal: str | None,
               instruction: str) -> str:
    """The user message of one agent turn: transcript (if any), identity, instruction."""
    head = f"Conversation so far:\n{transcript}\n\n" if transcript is not None else ""
    return f"{head}{identity(persona, private_goal)} {instruction}"


def first_decision_instruction(scenario: Scenario, structured: bool) -> str:
    """Round 1: assign every task, privately, before any discussion."""
    return ("Before talking with the others, decide on your own who should do each task. "
            "Every task goes to exactly one person.\n" + answer_format(scenario, structured))


def single_decision_prompt(scenario: Scenario, structured: bool) -> str:
    """The one decision of the 'no-interaction' setting."""
    return ("Decide who should do each task. Every task goes to exactly one person.\n"
            + answer_format(scenario, structured))


def discussion_instruction(round_number: int, rounds: int) -> str:
    """A discussion turn: persuade and move toward consensus, in one or two sentences."""
    return (f"Discussion round {round_number} of {rounds}; it is your turn. In one or two "
            "sentences, argue for the assignment you think is best, respond to the others, and "
            "try to reach a consensus.")


def probe_instruction(scenario: Scenario, structured: bool) -> str:
    """A private check of where the agent stands after a round (not part of the conversation)."""
    return ("Privately, and without telling the others: as things stand now, who should do each "
            "task? Every task goes to exactly one person.\n" + answer_format(scenario, structured))


def final_decision_instruction(scenario: Scenario, structured: bool) -> str:
    """The last decision, after the discussion."""
    return ("The discussion is over. Give your final decision on who does each task. "
            "Every task goes to exactly one person.\n" + answer_format(scenario, structured))


SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def spoken_turn(text: str, speaker: str, sentences: int = 2) -> str:
    """What an agent says in a discussion turn, as the others will read it.

    The protocol asks for one or two sentences; models (small ones especially) ramble, so the
    turn keeps its first ``sentences`` sentences and drops a leading 'Name:' the model may echo.
    The full answer stays in the ``model_call`` event.
    """
    text = " ".join(text.split())
    text = re.sub(rf"^{re.escape(speaker)}\s*:\s*", "", text)
    parts = SENTENCE_END.split(text)
    return " ".join(parts[:sentences]).strip()
