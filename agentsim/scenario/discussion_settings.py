"""Settings and prompts of the task-assignment discussion (Borah & Mihalcea 2024).

Every text the discussion's agents read is a prompt of the shipped prompt file
``agentsim/scenario/prompts/discussion.yaml`` (a user copies it, edits it and passes it with
``--prompts FILE``); :data:`DISCUSSION_PROMPTS` says what each prompt is for and which
placeholders it takes. The settings below say what each agent sees and when (the transcript's
form, whether the goal is repeated, how turns are cut, sampling); the ``borah2024`` preset sets
them as published.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt

from agentsim.scenario.prompt_files import PromptTemplate
from agentsim.scenario.schema_base import ProtocolSettings

__all__ = ["DISCUSSION_PROMPTS", "DiscussionProtocol", "Setting", "SpeakingOrder",
           "discussion_metric_problems"]

Setting = Literal["interaction", "no-interaction", "goal"]
SpeakingOrder = Literal["shuffled", "fixed", "shuffled-each-round"]

# What every message prompt may show: who the agent is, the situation, the people and tasks.
_MESSAGE = frozenset({
    "name", "label", "identity", "goal", "situation", "scene", "people", "characters", "tasks",
    "answer_format", "transcript", "round", "rounds"})
DISCUSSION_PROMPTS: dict[str, PromptTemplate] = {
    "system": PromptTemplate("system message of every agent call", _MESSAGE),
    "single_system": PromptTemplate("system message of the no-interaction assigner", _MESSAGE),
    "first_decision": PromptTemplate("round 1: the private first assignment", _MESSAGE),
    "discussion_turn": PromptTemplate("one turn of the discussion", _MESSAGE),
    "probe": PromptTemplate("a private check of the agent's assignment after a round", _MESSAGE),
    "final_decision": PromptTemplate("the last assignment, after the discussion", _MESSAGE),
    "single_decision": PromptTemplate("the one assignment of 'no-interaction'", _MESSAGE),
    "identity": PromptTemplate("who the agent is, before its instruction",
                               frozenset({"name", "label", "background", "goal"})),
    "private_goal": PromptTemplate("the 'goal' setting's private goal",
                                   frozenset({"task_id", "task", "task_number", "name"})),
    "answer_format_json": PromptTemplate("format of an answer constrained to JSON",
                                         frozenset({"pairs"})),
    "answer_format_json_pair": PromptTemplate("one task of the JSON format",
                                              frozenset({"task_id", "task", "number"})),
    "answer_format_text": PromptTemplate("format of a free-text answer", frozenset({"lines"})),
    "answer_format_line": PromptTemplate("one task of the text format",
                                         frozenset({"task_id", "task", "number"})),
    "proposal": PromptTemplate("what an agent's first decision says in the transcript",
                               frozenset({"assignment"})),
    "no_proposal": PromptTemplate("the transcript's line for an unparsed, empty first answer"),
    "empty_transcript": PromptTemplate("the transcript before anyone spoke"),
}


class DiscussionProtocol(ProtocolSettings):
    """Settings of the multi-agent task-assignment discussion (Borah & Mihalcea 2024)."""

    prompt_spec = DISCUSSION_PROMPTS
    prompt_file = ("agentsim.scenario", "discussion.yaml")

    name: Literal["discussion"] = Field(default="discussion", description="Protocol name.")
    setting: Setting = Field(
        default="interaction",
        description="'interaction': private first decision, discussion, final decision; "
        "'no-interaction': one model assigns the tasks once; 'goal': like interaction, but each "
        "agent is first told privately to take the first task itself.",
    )
    rounds: StrictInt = Field(
        default=2, ge=0, le=20, description="Discussion rounds between first and last decision."
    )
    speaking_order: SpeakingOrder = Field(
        default="shuffled",
        description="'shuffled': one order per conversation drawn from its seed; 'fixed': the "
        "order of the personas in the file; 'shuffled-each-round': a new order every round.",
    )
    goal_task: str | None = Field(
        default=None,
        description="Task the 'goal' setting asks each agent to take (default: first).",
    )
    goal_in: Literal["every_prompt", "first_decision"] = Field(
        default="every_prompt", description="Where the 'goal' setting's goal is stated: in "
        "every prompt of the agent, or in its first-decision prompt only (as published).")
    transcript: Literal["lines", "list"] = Field(
        default="lines", description="How agents read the transcript: 'Name: text' lines, or "
        "the published form, the Python list of ['Name: text'] items.")
    first_answers: Literal["proposal", "raw"] = Field(
        default="proposal", description="What a first decision says in the transcript: the "
        "parsed assignment ('My proposal: ...'), or the answer as the model wrote it.")
    labels: StrictBool = Field(
        default=False, description="Show each person with the gender label ('Jack (Male)') as "
        "their name in prompts and the transcript, as published.")
    structured: StrictBool = Field(
        default=True, description="Constrain decisions to JSON where the model supports it; "
        "False: always the text answer format.")
    turn_sentences: StrictInt | None = Field(
        default=2, ge=1, description="Sentences a discussion turn keeps (the rest is cut; "
        "the full answer stays in the model call); null: none cut.")
    turn_tokens: StrictInt | None = Field(
        default=96, ge=1, description="Token limit of a discussion turn; null: the run's.")
    temperature: StrictFloat | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature of these conversations when "
        "the run sets none (--temperature); null: 0.7.")
    top_p: StrictFloat | None = Field(
        default=None, gt=0, le=1, description="Nucleus sampling; null: the provider's default.")
    max_tokens: StrictInt | None = Field(
        default=None, ge=1, description="Token limit of a call when the run sets none "
        "(--max-tokens); null: 200.")

    def check_scenario(self, scenario: Any) -> None:
        """A discussion needs tasks, and a goal task that is one of them."""
        if not scenario.tasks:
            raise ValueError("tasks: the discussion protocol needs at least one task")
        if self.goal_task is not None and self.goal_task not in {t.id for t in scenario.tasks}:
            raise ValueError(f"protocol.goal_task {self.goal_task!r} is not a task id")

    def metric_problems(self, scenario: Any) -> list[tuple[str, str]]:
        """One persona, or every persona in one group of a coded attribute."""
        return discussion_metric_problems(scenario)


def discussion_metric_problems(scenario: Any) -> list[tuple[str, str]]:
    """A discussion's problems: one persona, or every persona in one group of the attribute the
    tasks are coded on. Mirrors the group rule of the assignment-bias label (groups are the values
    personas have for the coded attribute); uneven designs (1 man, 3 women) are fine."""
    problems: list[tuple[str, str]] = []
    if len(scenario.personas) < 2:
        problems.append(("personas", f"a discussion needs at least two personas (found "
                         f"{len(scenario.personas)}): with one, nobody can be treated differently "
                         "and no bias metric can be computed"))
        return problems
    coded = sorted({t.stereotype.attribute for t in scenario.tasks if t.stereotype is not None})
    for attribute in coded:
        groups = sorted({p.attributes[attribute] for p in scenario.personas
                         if attribute in p.attributes})
        if len(groups) < 2:
            found = f"every persona with it is {groups[0]!r}" if groups else "no persona has it"
            problems.append(("personas", f"tasks are coded on {attribute!r} but {found}: the "
                             "bias label compares two groups, so give at least one persona "
                             "each group"))
    return problems
