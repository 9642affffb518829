"""Views of events: the fields a summary of many events reads, decoded at a fraction of the cost.

A judging pass reads hundreds of thousands of lines; most of each is text its judges never look
at (a model call's prompt and reply, a message's content, the answer a decision was read from).
A *view* is a small typed struct of the fields a reader needs, decoded by msgspec straight from
the line (several times faster than validating the whole pydantic event), still type-checked.
The pydantic events of :mod:`agentsim.core.events` stay the schema of record: every field of a
view is a field of its event, with the same meaning and default (a conformance test holds them
to it), and a line a view cannot decode is read whole, so a damaged line gets the same error
naming its field as anywhere else (:func:`decode`).

A reader asks for views with ``views = {"decision": DecisionFacts, ...}`` beside its ``reads``;
a pass uses a view only when every reader of that type asks for the same one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import msgspec

__all__ = ["CallFacts", "DecisionFacts", "MessageFacts", "decode"]


class _Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """The identifiers every event carries (its time left out: no summary reads it)."""

    run_id: str
    conversation_id: str | None = None
    turn: int | None = None
    agent: str | None = None
    variant: str | None = None
    arm: str | None = None
    replicate: int | None = None
    seed: int | None = None


class DecisionFacts(_Envelope, frozen=True, kw_only=True):
    """A ``decision`` without the answer it was read from (``raw``, ``parse_error``)."""

    type: Literal["decision"] = "decision"
    phase: str
    round: int | None = None
    kind: str = "assignment"
    point: str | None = None
    value: dict[str, str] | None = None
    parsed_by: str | None = None


class MessageFacts(_Envelope, frozen=True, kw_only=True):
    """A ``message`` without what was said: who spoke, when, in which phase and round."""

    type: Literal["message"] = "message"
    speaker: str
    phase: str
    round: int | None = None


class CallFacts(_Envelope, frozen=True, kw_only=True):
    """A ``model_call`` without its prompt and reply: who called which model, how, at what
    cost."""

    type: Literal["model_call"] = "model_call"
    model: str
    role: str
    purpose: str
    structured: bool = False
    structured_mode: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float
    attempts: int = 1
    cached: bool = False
    error: str | None = None
    error_kind: str | None = None
    endpoint: str | None = None
    queued_s: float | None = None


@lru_cache(maxsize=None)
def _decoder(view: type) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(view)


def decode(view: type, line: bytes) -> Any | None:
    """``line`` as ``view``; None when the view cannot decode it (the caller then reads the
    whole event, which is valid after all or raises the error that names the bad field)."""
    try:
        return _decoder(view).decode(line)
    except msgspec.MsgspecError:
        return None
