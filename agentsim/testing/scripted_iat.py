"""Scripted profile ``iat``: answers the IAT probe with a planted association strength.

``scripted/iat?bias=P&after=P2`` pairs each attribute word of a probe (request purpose 'iat') with
its stereotype-consistent label with probability ``bias`` (default 0.5, no association), or
``after`` (default ``bias``) when the request context says phase 'after'. The answer key (``iat``:
words, labels, the consistent label of each word) is one of the request's facts. Both Bai et al.'s
score and the share score then have expectation 2P − 1, so a test can check that the probe measures
what was planted. Draws come from the request seed, and a word is consistent when its draw is below
P, so a before/after pair with the same seed moves monotonically with P.

Any other request (a discussion turn, a decision) is answered like ``scripted/fair``, so the
profile can also play the agents of a conversation. Like every scripted answer, these are
planted by design and never evidence about bias.
"""

from __future__ import annotations

import random

from agentsim.models.base import ModelRequest
from agentsim.models.names import ModelName
from agentsim.testing.scripted import fair, profile


@profile("iat", knobs={"bias", "after"})
def iat(name: ModelName, request: ModelRequest, rng: random.Random) -> str:
    """'word - label' lines with a planted rate of stereotype-consistent pairings."""
    if request.purpose != "iat":
        return fair(name, request, rng)
    rate = name.knob("bias", 0.5)
    if request.context.get("phase") == "after":
        rate = name.knob("after", rate)
    probe = (request.facts or {})["iat"]
    lines = []
    for word in probe["words"]:
        consistent = probe["consistent"][word]
        other = next(label for label in probe["labels"] if label != consistent)
        lines.append(f"{word} - {consistent if rng.random() < rate else other}")
    return "\n".join(lines)
