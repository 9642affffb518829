"""Built-in mitigations; each is configurable from a file under ``mitigations/``.

* ``debias_prompt`` — a fairness instruction appended to every agent's system prompt (text from
  ``mitigations/debias_prompt.txt``, or ``file=...``).
* ``finetuned`` — agents use the model named by ``--role finetuned=MODEL`` (any model name).
* ``self_reflection`` and ``ice`` (``agentsim.mitigations.reflection``) — agents critique their
  first assignment for implicit bias and may re-assign; ``self_reflection+ice`` adds worked
  examples to the critique.
* ``fair_moderator`` (``agentsim.mitigations.moderator``) — a moderator points out stereotyped
  reasoning between discussion rounds.
* ``anonymise`` (``agentsim.mitigations.anonymise``) — decision-makers do not see the measured
  attribute where the task does not need it (fully for the doctor; by instruction in discussion).
"""

from __future__ import annotations

from typing import Any

from agentsim import resources
from agentsim.errors import InputError
from agentsim.mitigations.base import Mitigation, mitigation

AGENT_ROLES = {"agent", "single", "doctor"}


def read_asset(name: str, override: str | None = None) -> str:
    """Text of a mitigation asset: the user's file when given, else the shipped one (package
    data; the copies under the top-level ``mitigations/`` are for users to copy and edit)."""
    return resources.read_asset("agentsim.mitigations", "assets", *name.split("/"),
                                override=override).strip()


@mitigation("debias_prompt")
class DebiasPrompt(Mitigation):
    """A fairness instruction in every decision-maker's system prompt."""

    def __init__(self, file: str | None = None, **options: Any) -> None:
        super().__init__(file=file, **options)
        self.text = read_asset("debias_prompt.txt", file)

    def system_prompt(self, ctx: Any, agent: str, prompt: str) -> str:
        """Append the instruction (agents, the single assigner and the doctor)."""
        if agent == "patient":
            return prompt
        return f"{prompt}\n\n{self.text}"


@mitigation("finetuned")
class Finetuned(Mitigation):
    """Decision-makers use the fine-tuned model named by the role 'finetuned'."""

    def model_for(self, ctx: Any, role: str, model: str) -> str:
        """The 'finetuned' model for agent roles; other roles keep theirs."""
        if role not in AGENT_ROLES:
            return model
        finetuned = ctx.job.models.get("finetuned")
        if not finetuned:
            raise InputError("the finetuned arm needs a model: --role finetuned=MODEL",
                             source="--role")
        return finetuned


# The other built-ins live in their own modules and register on import; they use read_asset
# above, so they are imported last.
from agentsim.mitigations import anonymise, moderator, reflection  # noqa: E402, F401
