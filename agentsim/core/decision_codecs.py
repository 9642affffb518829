"""How the fields of a stored decision value are written: one :class:`Codec` per field.

A decision's ``value`` is stored as a flat ``dict[str, str]``; each field of a typed decision
model (:mod:`agentsim.core.decisions`) declares, in its ``Annotated`` metadata, the codec that
reads its text back into a real type and writes it again. Reading and writing live side by side
here, so they cannot drift apart; ``decode`` raises ``ValueError`` on text that does not fit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field


class BadText(ValueError):
    """A codec's complaint; ``key`` names the stored key when a whole-dict field holds several"""

    def __init__(self, problem: str, key: str | None = None) -> None:
        self.key = key
        super().__init__(problem)


@dataclass(frozen=True)
class Codec:
    """How one field is written in a stored value (text, or a dict for whole-dict fields) and
    read back; ``decode`` raises ``ValueError`` on text that does not fit."""

    decode: Callable[[Any], Any]
    encode: Callable[[Any], Any]


def _text(raw: Any, key: str | None = None) -> str:
    if not isinstance(raw, str):
        raise BadText(f"expected text, got {type(raw).__name__} {raw!r}", key)
    return raw


def _whole_number(raw: Any, key: str | None = None) -> int:
    # Only str(int)'s spelling: the round trip stays exact ("07", "7.0", " 7" were never written).
    if not isinstance(raw, str) or not re.fullmatch(r"-?(0|[1-9][0-9]*)", raw):
        raise BadText(f"expected a whole number written in digits, got {raw!r}", key)
    return int(raw)


def flag(true: str, false: str, none: str | None = None) -> Codec:
    """A boolean written as one of two words (three with ``none``, read as None)."""
    words: dict[str, bool | None] = {true: True, false: False}
    if none is not None:
        words[none] = None

    def decode(raw: Any) -> bool | None:
        if _text(raw) not in words:
            raise BadText(f"expected one of {', '.join(map(repr, words))}, got {raw!r}")
        return words[raw]

    return Codec(decode, {value: word for word, value in words.items()}.__getitem__)


def joined(separator: str) -> Codec:
    """A list of texts written joined by ``separator`` ('' is the empty list)."""
    return Codec(lambda raw: _text(raw).split(separator) if raw else [], separator.join)


def each(decode_one: Callable[[Any, str], Any]) -> Codec:
    """A whole-dict field: every key kept, every value read by ``decode_one(value, key)`` and
    written back with ``str``."""
    return Codec(lambda raw: {key: decode_one(value, key) for key, value in raw.items()},
                 lambda value: {key: str(v) for key, v in value.items()})


def _decode_ranks(raw: Mapping[str, Any]) -> list[str]:
    ranks = {key: _whole_number(value, key) for key, value in raw.items()}
    if sorted(ranks.values()) != list(range(1, len(ranks) + 1)):
        raise BadText(f"ranks must be 1..{len(ranks)}, each once; got {dict(raw)!r}")
    return sorted(ranks, key=ranks.__getitem__)


TEXT = Codec(_text, str)
WHOLE_NUMBER = Codec(_whole_number, str)
YES_NO = flag("yes", "no")
IDS = each(_text)
RANKS = Codec(_decode_ranks, lambda ranking: {o: str(r) for r, o in enumerate(ranking, start=1)})
WHOLE_NUMBERS = each(_whole_number)

Rating = Annotated[int, WHOLE_NUMBER, Field(ge=1, le=10)]
