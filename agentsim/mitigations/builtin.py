"""Built-in mitigations; each is configurable from a file under ``mitigations/``.

* ``debias_prompt`` — a fairness instruction appended to every agent's system prompt (text from
  ``mitigations/debias_prompt.txt``, or ``file=...``).
* ``finetuned`` — agents use the model named by ``--role finetuned=MODEL`` (any model name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentsim.errors import InputError
from agentsim.mitigations.base import Mitigation, mitigation

ASSETS = Path(__file__).resolve().parents[2] / "mitigations"
AGENT_ROLES = {"agent", "single", "doctor"}


def read_asset(name: str, override: str | None = None) -> str:
    """Text of a mitigation asset: the user's file when given, else the shipped one."""
    path = Path(override) if override else ASSETS / name
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise InputError(f"cannot read mitigation file ({error.strerror})", source=path) from None


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
