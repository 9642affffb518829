"""Scripted profile ``judge``: a planted rubric judge, to test the rubric judge offline.

Like every scripted profile its answers are planted by design and are never evidence about bias;
it exists to check that :mod:`agentsim.judges.rubric_judge` asks, parses, aggregates and measures
agreement correctly.

It reads the facts it needs from the request's ``facts`` (``context`` for callers that still write
them there), which real models never see (they read only the messages): ``scale`` ([min, max] of the
rubric), ``text`` (the unit to score, for purpose ``rubric``) and ``candidates`` (the two texts in
the order shown as A and B, for purpose ``rubric_pairwise``); optionally ``stereotype_words``.

Knobs (``scripted/judge?knob=value&...``):

* ``score=N``: always score N (clamped to the scale).
* ``words=w1,w2``: (a text knob) without ``score``, the score is the number of whole-word,
  case-insensitive occurrences of these words in the text; the ``stereotype_words`` fact is
  used when the knob is absent; with neither, the score is 1.
* ``noise=P``: with probability P the score moves by one step, up or down, within the scale.
* ``order_bias=P``: in pairwise mode, with probability P answer "A" (the candidate shown first)
  whatever the texts say; otherwise prefer the candidate with the higher planted score (noise
  is not applied there) and break ties on the texts themselves, so that an unbiased scripted
  judge gives the same answer in both orders.

Replies are JSON: ``{"score": n, "rationale": ...}`` or ``{"preferred": "A"|"B", "rationale":
...}``; any other purpose gets a neutral sentence.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from typing import Any

from agentsim.models.base import ModelRequest
from agentsim.models.names import ModelName
from agentsim.testing.scripted import STRING_KNOBS, profile

# ``words`` holds text, not a number: without this, check_name would reject it as a bad number.
STRING_KNOBS.add("words")
DEFAULT_SCALE = (0, 4)


def _scale(facts: Mapping[str, Any]) -> tuple[int, int]:
    low, high = facts.get("scale") or DEFAULT_SCALE
    return int(low), int(high)


def _words(name: ModelName, facts: Mapping[str, Any]) -> list[str]:
    if "words" in name.knobs:
        return [w.strip() for w in name.knobs["words"].split(",") if w.strip()]
    return [str(w) for w in facts.get("stereotype_words") or []]


def count_words(words: list[str], text: str) -> int:
    """Whole-word, case-insensitive occurrences of ``words`` in ``text``."""
    return sum(len(re.findall(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)) for w in words)


def planted_score(name: ModelName, facts: Mapping[str, Any], text: str) -> int:
    """The score the profile means to give ``text``, before noise, clamped to the scale."""
    low, high = _scale(facts)
    if "score" in name.knobs:
        score = round(name.knob("score", 1.0))
    else:
        words = _words(name, facts)
        score = count_words(words, text) if words else 1
    return min(high, max(low, score))


@profile("judge", knobs={"score", "words", "noise", "order_bias", "first_line"})
def scripted_judge(name: ModelName, request: ModelRequest, rng: random.Random) -> str:
    """A rubric verdict or a pairwise preference, as the request's purpose asks."""
    facts = request.facts or {}
    if request.purpose == "rubric":
        text = str(facts.get("text", ""))
        if name.knob("first_line", 0) > 0:
            # An order-biased judge: it reads only the first line, so reordering a text moves
            # its verdict (what judge checks must catch).
            text = text.splitlines()[0] if text else text
        score = planted_score(name, facts, text)
        if rng.random() < name.knob("noise", 0.0):
            low, high = _scale(facts)
            # Move one step towards whichever neighbours exist, so noise never leaves the scale.
            score = rng.choice([s for s in (score - 1, score + 1) if low <= s <= high])
        return json.dumps({"score": score, "rationale": f"planted score {score}"})
    if request.purpose == "rubric_pairwise":
        first, second = (str(t) for t in facts.get("candidates", ("", "")))
        if rng.random() < name.knob("order_bias", 0.0):
            return json.dumps({"preferred": "A", "rationale": "planted order bias"})
        a, b = planted_score(name, facts, first), planted_score(name, facts, second)
        # Ties are broken on the texts, not on their positions, so the answer does not depend
        # on the order the candidates were shown in.
        preferred = "A" if (a, first) > (b, second) else "B"
        return json.dumps({"preferred": preferred, "rationale": f"planted scores {a} vs {b}"})
    return "I only review conversations."
