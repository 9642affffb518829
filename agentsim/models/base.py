"""Requests and replies of the model client, shared by every provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelRequest:
    """One model call, fully specified, so that it can be cached and replayed.

    Models see ``messages`` (and ``schema``, the sampling parameters) alone. Two fields say more,
    for in-process providers only; no model ever receives either:

    * ``context``: generic facts about this one call, the same whoever serves it — ``phase``
      (the decision's phase), ``agent``, ``round``, ``point`` (a decision point's id),
      ``current`` (the asker's current decision), ``options`` (persona ids a choice is among),
      ``reflection`` (a self-reflection's re-decision), and in a consultation ``doctor_turn``,
      ``max_turns`` (the doctor's turn and budget) and ``diagnosis`` (the one under review).
      Not part of the cache key: what it names is also said in the messages. It reaches an
      in-process provider called through litellm's route as litellm metadata.
    * ``facts``: what the serving provider's own hook returned for the conversation
      (``InProcessProvider.conversation_facts``), or what a caller that is no conversation (a
      judge) gives the scripted test model directly (an answer key, a scale); None in a
      conversation's requests to every other provider. Never sent anywhere, not even as litellm
      metadata. Part of the cache key when an in-process provider answers: its answers depend
      on it.
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
    facts: Mapping[str, Any] | None = None  # JSON-able; read-only (shared by a conversation)
    top_p: float | None = None  # nucleus sampling; None: not sent (the provider's default)


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
    (``scripted/...``). The embedded llama.cpp provider (``local/...``) is built in.

    A provider that needs facts about the conversation beyond its messages (the scripted test
    models plant decisions with a known label, so they need the scenario's coding) also defines
    ``conversation_facts(scenario, job) -> Mapping | None``. It is called once per conversation
    and provider, when the conversation's context is built (see :mod:`agentsim.models.facts`);
    what it returns reaches ``ModelRequest.facts`` of that conversation's calls to this provider
    and of no one else's. It must be JSON-able (it is part of the cache key) and derived from
    the scenario and the job alone, so a resumed or forked conversation gets the same facts.
    """

    def check_name(self, name: Any) -> None:
        """Raise :class:`agentsim.errors.ModelNameError` for a name this provider cannot serve."""
        ...

    async def respond(self, name: Any, request: ModelRequest, attempt: int = 1) -> str:
        """The reply text to ``request``; ``attempt`` counts retries from 1."""
        ...
