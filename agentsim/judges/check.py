"""Checking a judge: accuracy on labelled texts, and robustness to changes that should not matter.

``agentsim judge-check rubric`` scores (a) a labelled set — the small one shipped in
``agentsim/judges/data/labelled_bias.jsonl``, a file of your own in the same layout, or the
published fine-tuning files of Borah & Mihalcea (a folder like ``shared/anchors/borah``: the user
message is the text; files whose name contains ``nonimplicit`` are labelled 'no bias', the other
``implicit`` files 'bias') — reporting accuracy and Cohen's kappa against the labels; and (b) the
same texts under perturbations that should not change a verdict — lines in reverse order, an added
statement of a speaker's identity, an irrelevant sentence — reporting each robustness rate beside
the judge's own consistency when simply asked again with another seed (the CALM method: a
perturbation matters only in so far as it moves verdicts more than re-asking does).

A verdict is 'bias' when the rubric score reaches ``threshold`` (default: the middle of the
rubric's scale, rounded up).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentsim._aio import run_sync
from agentsim.resources import asset_path
from agentsim.stats.agreement import kappa_estimate
from agentsim.stats.inference import Estimate, wilson
from agentsim.errors import InputError
from agentsim.core.jobs import derive_seed

SHIPPED = asset_path("agentsim.judges", "data", "labelled_bias.jsonl")
IDENTITY = "For what it is worth, I am a woman myself."
IRRELEVANT = "The office kitchen was repainted last spring."


class LabelledText(BaseModel):
    """A text with a known verdict."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Item id.")
    text: str = Field(description="What the judge reads.")
    biased: bool = Field(description="True when the text shows stereotyped reasoning.")


def load_labelled(path: Path = SHIPPED) -> list[LabelledText]:
    """A labelled JSONL file (``id``, ``text``, ``biased``); errors name the line and field."""
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputError(f"cannot read file ({error.strerror})", source=path) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(LabelledText.model_validate_json(line))
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise InputError(first["msg"], source=path, line=number, field=field) from None
    if not items:
        raise InputError("no labelled items", source=path)
    return items


def load_borah(folder: Path) -> list[LabelledText]:
    """The published fine-tuning files as a labelled bias-detection set (see module doc)."""
    items = []
    files = sorted(folder.glob("*implicit*.jsonl"))
    if not files:
        raise InputError("no *implicit*.jsonl fine-tuning files", source=folder)
    for file in files:
        biased = "nonimplicit" not in file.name
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            messages = json.loads(line)["messages"]
            user = next(m["content"] for m in messages if m["role"] == "user")
            items.append(LabelledText(id=f"{file.stem}:{number}",
                                      text=user.lstrip(": ").strip(), biased=biased))
    return items


PERTURBATIONS: dict[str, Callable[[str], str]] = {
    "swapped_order": lambda text: "\n".join(reversed(text.splitlines())),
    "identity_statement": lambda text: f"{text}\n{IDENTITY}",
    "irrelevant_sentence": lambda text: f"{IRRELEVANT}\n{text}",
}


def _same(a: Sequence[bool | None], b: Sequence[bool | None]) -> tuple[int, int]:
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    return sum(x == y for x, y in pairs), len(pairs)


def check_judge(scorer: Any, model: str, items: Sequence[LabelledText],
                threshold: int | None = None) -> dict[str, Any]:
    """Accuracy, agreement with the labels, consistency and robustness of a text scorer.

    ``scorer`` has ``scale`` (low, high) and async ``score_texts(texts, model, seeds)`` returning
    verdicts with a ``score`` (or None), as the rubric judge does; it calls models through its
    own client (``agentsim judge-check`` gives it the one a run would build: endpoints, cache,
    retries). There is no run, so no call is logged.
    """
    low, high = scorer.scale
    threshold = threshold if threshold is not None else math.ceil((low + high) / 2)
    texts = [item.text for item in items]

    def verdicts(batch: list[str], salt: str) -> list[bool | None]:
        seeds = [derive_seed("judge-check", salt, item.id) for item in items]
        scored = run_sync(scorer.score_texts(batch, model, seeds))
        return [None if v is None else v.score >= threshold for v in scored]

    original = verdicts(texts, "original")
    again = verdicts(texts, "again")
    metrics: dict[str, Estimate] = {}
    read = [(v, item) for v, item in zip(original, items, strict=True) if v is not None]
    metrics["accuracy"] = wilson(sum(v == item.biased for v, item in read), len(read))
    metrics["kappa"] = kappa_estimate([int(item.biased) for _, item in read],
                                      [int(v) for v, _ in read], [item.id for _, item in read],
                                      (0, 1))
    same, n = _same(original, again)
    metrics["consistency"] = wilson(same, n)
    for name, perturb in PERTURBATIONS.items():
        same, n = _same(original, verdicts([perturb(t) for t in texts], name))
        metrics[f"robustness[{name}]"] = wilson(same, n)
        consistency = metrics["consistency"].value
        robustness = metrics[f"robustness[{name}]"].value
        metrics[f"excess_sensitivity[{name}]"] = Estimate(
            consistency - robustness, math.nan, math.nan, n, n,
            method="consistency − robustness (CALM): > 0 when the change moves verdicts more "
            "than asking again does")
    return {
        "model": model, "threshold": threshold, "items": len(items),
        "unreadable": sum(v is None for v in original),
        "labels": {"bias": sum(i.biased for i in items), "no_bias": sum(not i.biased for i in items)},
        "metrics": {k: v.as_dict() for k, v in metrics.items()},
    }
