"""The one writer of ``model_call`` events: a request and what came of it, answer or error.

A conversation's calls (:meth:`agentsim.orchestrator.runtime.ConversationContext.call`) and a
judge's (:class:`agentsim.core.reader.JudgeCalls`) are logged by the same two functions, so both
carry the same fields: the request as sent (model, messages, seed, temperature, token limit),
then the reply's text, tokens, latency, attempts, cache hit, structured-output mode, endpoint,
time queued and dropped parameters, or the final error with its kind and attempts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from agentsim.core.events import ModelCall
from agentsim.errors import ModelError
from agentsim.models.base import ModelReply, ModelRequest


class Completes(Protocol):
    """Anything that answers a request the way the model client does."""

    async def complete(self, request: ModelRequest) -> ModelReply:
        """The reply to ``request``, or ModelError after retries."""
        ...


def model_call(request: ModelRequest, outcome: ModelReply | ModelError, *, started: float,
               role: str, purpose: str | None = None, **ids: Any) -> ModelCall:
    """The ``model_call`` event of ``request`` and its reply or final error.

    ``started`` is the ``time.perf_counter()`` reading taken before the call: a failed call's
    latency is measured from it (a reply brings the client's own measure, queueing included).
    ``purpose`` defaults to the request's (a judge logs its own name instead); ``ids`` are the
    event's identifiers (run, conversation, turn, agent, ...).
    """
    sent = dict(model=request.model, role=role, purpose=purpose or request.purpose,
                messages=request.messages, call_seed=request.seed,
                temperature=request.temperature, max_tokens=request.max_tokens)
    if isinstance(outcome, ModelError):
        return ModelCall(**ids, **sent, structured=request.schema is not None,
                         latency_s=time.perf_counter() - started, error=str(outcome),
                         error_kind=outcome.kind, attempts=outcome.attempts)
    return ModelCall(
        **ids, **sent, response=outcome.text, structured=outcome.structured,
        prompt_tokens=outcome.prompt_tokens, completion_tokens=outcome.completion_tokens,
        latency_s=outcome.latency_s, attempts=outcome.attempts, cached=outcome.cached,
        structured_mode=outcome.structured_mode, endpoint=outcome.endpoint,
        # Absent rather than zero or empty: the log stays compact for the common case.
        queued_s=round(outcome.queued_s, 6) or None,
        dropped_params=list(outcome.dropped_params) or None)


async def recorded_call(client: Completes, request: ModelRequest,
                        record: Callable[[ModelCall], None], *, role: str,
                        purpose: str | None = None, **ids: Any) -> ModelReply:
    """Answer ``request`` with ``client`` and ``record`` its :func:`model_call` event; a
    ModelError is recorded, then raised."""
    started = time.perf_counter()
    try:
        reply = await client.complete(request)
    except ModelError as error:
        record(model_call(request, error, started=started, role=role, purpose=purpose, **ids))
        raise
    record(model_call(request, reply, started=started, role=role, purpose=purpose, **ids))
    return reply
