"""The base of every scenario model and the id rule (shared by the protocol schemas)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


def check_id(value: str, what: str) -> str:
    """``value`` when it is a valid id (lower-case letters, digits, '-', '_'), else ValueError."""
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    if not value or not set(value) <= allowed or not value[0].isalnum():
        raise ValueError(
            f"{what} {value!r} must be lower-case letters, digits, '-' or '_', starting with a "
            "letter or digit"
        )
    return value


class Frozen(BaseModel):
    """Base of every scenario model: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
