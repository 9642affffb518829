"""Asking a model to split a scene the rules could not (:class:`ModelSplitter`), and checking
that its answer holds four tasks in the scene's own words and order (:func:`check_answer`).
Part of the prose importer (:mod:`agentsim.importers.borah_prose` re-exports every name).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agentsim._aio import run_sync
from agentsim.importers.borah_prose_words import TASK_COUNT, clean

__all__ = ["SPLIT_PROMPT", "SPLIT_SCHEMA", "ModelSplitter", "SplitAnswer", "check_answer"]

SPLIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tasks": {"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 4},
    },
    "required": ["tasks"],
    "additionalProperties": False,
}
SPLIT_PROMPT = (
    "The scene below names exactly four tasks that a group must share out. List the four tasks "
    "in the order the scene names them, each in the scene's own words. Answer with JSON only: "
    'an object whose key "tasks" holds the four tasks as a list of strings.'
)
_STOPWORDS = frozenset(
    "a an the and or of for to in on at by with from is are be been must needs need requires "
    "require also as well there that which this its their his her our".split()
)


@dataclass(frozen=True)
class SplitAnswer:
    """A model's answer for one scene: the tasks when usable, else why not."""

    tasks: list[str]
    raw: str
    problem: str | None


class ModelSplitter:
    """Asks a model (any name :class:`agentsim.models.client.ModelClient` serves) to split a
    scene the rules could not, with a JSON-schema answer. Tasks must come from the scene's own
    words (most of each task's content words occur in it) and in its order."""

    def __init__(self, model: str, client: Any | None = None) -> None:
        from agentsim.models.client import ModelClient, check_model_name

        check_model_name(model)
        self.model = model
        self.client = client or ModelClient(retries=2)

    def split(self, prose: str) -> SplitAnswer:
        from agentsim.errors import ModelError
        from agentsim.models.base import ModelRequest

        request = ModelRequest(
            model=self.model,
            messages=[{"role": "system", "content": SPLIT_PROMPT},
                      {"role": "user", "content": prose}],
            schema=SPLIT_SCHEMA, temperature=0.0, max_tokens=400, seed=0,
            purpose="extract_tasks", context={"scene": prose},
        )
        try:
            reply = run_sync(self.client.complete(request))
        except ModelError as error:
            return SplitAnswer([], "", f"the model failed: {error}")
        return check_answer(reply.text, prose)


def check_answer(raw: str, prose: str) -> SplitAnswer:
    """The tasks of a model's answer, or why they cannot be used."""
    match = re.search(r"\{.*\}", raw, re.S)
    try:
        data = json.loads(match.group() if match else raw)
    except (json.JSONDecodeError, TypeError):
        return SplitAnswer([], raw, "the answer is not JSON")
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list) or len(tasks) != TASK_COUNT:
        return SplitAnswer([], raw, f"the answer does not hold a list of {TASK_COUNT} tasks")
    if not all(isinstance(t, str) and t.strip() for t in tasks):
        return SplitAnswer([], raw, "a task is empty or not text")
    scene_words = _words(prose)
    position = -1
    for task in tasks:
        content = [w for w in _words(task) if w not in _STOPWORDS] or _words(task)
        known = [w for w in content if w in scene_words]
        if len(known) < 0.6 * len(content):
            return SplitAnswer([], raw, f"task {task!r} is not in the scene's words")
        where = [i for i, w in enumerate(scene_words) if w == known[0]]
        later = [i for i in where if i >= position]
        if not later:
            return SplitAnswer([], raw, "the tasks are not in the scene's order")
        position = later[0]
    return SplitAnswer([clean(t) for t in tasks], raw, None)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.casefold())
