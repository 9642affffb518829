"""Requests and replies of the model client, shared by every provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelRequest:
    """One model call, fully specified, so that it can be cached and replayed.

    ``context`` carries structured facts about the call (purpose, phase, the decision's options)
    that only the scripted test model reads; real models see ``messages`` alone.
    """

    model: str
    messages: list[dict[str, str]]
    schema: dict[str, Any] | None = None
    temperature: float = 0.7
    max_tokens: int = 256
    seed: int = 0
    purpose: str = "chat"
    context: dict[str, Any] = field(default_factory=dict)
    replicate: int = 0


@dataclass(frozen=True)
class ModelReply:
    """What a model returned, with its cost."""

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    attempts: int = 1
    structured: bool = False
    cached: bool = False
    structured_mode: str | None = None  # how the schema was sent (see models.endpoints)
    endpoint: str | None = None  # who answered: base URL, router deployment or 'in-process'
    queued_s: float = 0.0  # time spent waiting in agentsim's rate limiter before sending
    dropped_params: tuple[str, ...] = ()  # parameters the provider does not take
    served_model: str | None = None  # the model name the server reported, when it did


class InProcessProvider(Protocol):
    """A model provider answered inside agentsim, registered with
    :func:`agentsim.registry.model_provider` under the prefix of the model names it serves
    (``scripted/...``). The embedded llama.cpp provider (``local/...``) is built in."""

    def check_name(self, name: Any) -> None:
        """Raise :class:`agentsim.errors.ModelNameError` for a name this provider cannot serve."""
        ...

    async def respond(self, name: Any, request: ModelRequest, attempt: int = 1) -> str:
        """The reply text to ``request``; ``attempt`` counts retries from 1."""
        ...
