"""The prompts of custom setups (protocol ``setup``): what each is for and what it may use.

The texts are in the shipped ``agentsim/scenario/prompts/setup.yaml``; a user copies that file,
edits it and passes it with ``--prompts FILE`` (or writes ``prompts:`` in a setup's
``protocol:``). A role's own system text stays the role's ``prompt`` in the scenario file, and a
decision point's ``question`` (when written) replaces the shipped question of its type.
"""

from __future__ import annotations

from agentsim.scenario.discussion_settings import DISCUSSION_PROMPTS
from agentsim.scenario.prompt_files import PromptTemplate

__all__ = ["SETUP_PROMPTS"]

_OPTIONS = frozenset({"options", "low", "high"})
# The task-assignment answer format is the discussion protocol's (same schema and parser), so
# its prompts take the same placeholders.
_ANSWER_FORMAT = {name: DISCUSSION_PROMPTS[name] for name in (
    "answer_format_json", "answer_format_json_pair", "answer_format_text", "answer_format_line")}

SETUP_PROMPTS: dict[str, PromptTemplate] = {
    "system": PromptTemplate("system message of every call of a role's persona",
                             frozenset({"situation", "people", "tasks_block", "role_prompt",
                                        "name", "role"})),
    "tasks_block": PromptTemplate("the tasks in the system message (left out when the "
                                  "scenario has none)", frozenset({"tasks"})),
    "person": PromptTemplate("one line of the people list", frozenset({"name", "role_label",
                                                                       "details"})),
    "role_label": PromptTemplate("after a role player's name in the people list",
                                 frozenset({"role"})),
    "details": PromptTemplate("after a name: shown attributes and background",
                              frozenset({"details"})),
    "user": PromptTemplate("the user message of a call: who the agent is, what it heard, then "
                           "the instruction", frozenset({"name", "heard", "instruction"})),
    "nothing_heard": PromptTemplate("what a persona has heard before anyone spoke to it"),
    "turn": PromptTemplate("a speaking turn's instruction", frozenset({"round", "rounds",
                                                                       "name"})),
    "private": PromptTemplate("a decision point's instruction (answered privately)",
                              frozenset({"instruction"})),
    "question_assign": PromptTemplate("an assign decision without its own question"),
    "question_rank": PromptTemplate("a rank decision without its own question", _OPTIONS),
    "question_pick": PromptTemplate("a pick decision without its own question", _OPTIONS),
    "question_rate": PromptTemplate("a rate decision without its own question", _OPTIONS),
    "answer_rank": PromptTemplate("answer format of a rank decision", frozenset({"low", "high"})),
    "answer_pick": PromptTemplate("answer format of a pick decision", frozenset({"low", "high"})),
    "answer_rate": PromptTemplate("answer format of a rate decision", frozenset({"low", "high"})),
    **_ANSWER_FORMAT,
    "said_assign": PromptTemplate("an announced assignment, as listeners hear it",
                                  frozenset({"assignment"})),
    "said_pick": PromptTemplate("an announced pick", frozenset({"choice"})),
    "said_rank": PromptTemplate("an announced ranking", frozenset({"ranking"})),
    "said_rate": PromptTemplate("announced ratings", frozenset({"ratings"})),
    "moderator": PromptTemplate("the moderator's choice of the next speaker",
                                frozenset({"names"})),
    "stop_system": PromptTemplate("system message of the termination judge"),
    "stop_question": PromptTemplate("the termination judge's question after a round",
                                    frozenset({"heard", "question"})),
}
