"""The single model client: every model call of agentsim goes through :class:`ModelClient`.

Hosted models are routed by litellm. agentsim's own in-process providers (``local/`` and
``scripted/``) are registered with litellm as custom providers, so ``litellm.completion`` reaches
them too, but the client calls them directly: litellm's per-call bookkeeping (cost maps, logging
objects) costs several milliseconds, more than the scripted model itself, and would dominate the
framework overhead (see bench/overhead.py). The client adds what a research run needs on top:
retries with exponential backoff and jitter for transient errors, no retry for permanent ones,
redaction of secrets from error text, and a reply that records tokens, latency and attempts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import time
from functools import lru_cache
from typing import Any

from agentsim.errors import AgentsimError, ModelError
from agentsim.models import scripted
from agentsim.models.base import ModelReply, ModelRequest
from agentsim.models.cache import DiskCache
from agentsim.models.local import LocalModels, resolve_local, shared_models
from agentsim.models.names import ModelName, parse_model_name

log = logging.getLogger("agentsim.models")
SECRET_NAMES = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)


def redact(text: str) -> str:
    """Remove the values of secret-looking environment variables and key-shaped strings."""
    for name, value in os.environ.items():
        if SECRET_NAMES.search(name) and len(value) >= 8:
            text = text.replace(value, "***")
    return re.sub(r"\b(sk|pk|rk)-[A-Za-z0-9_\-]{12,}", "***", text)


@lru_cache(maxsize=1)
def _backend() -> Any:
    from agentsim.models import _litellm  # imported on first call: litellm is slow to import

    return _litellm


def check_model_name(model: str) -> None:
    """Validate a model name before a run starts (unknown local model, bad scripted knob)."""
    name = parse_model_name(model)
    if name.provider == "scripted":
        scripted.check_name(name)
    elif name.provider == "local":
        resolve_local(name.name)


def close_local_models() -> None:
    """Free in-process models, if any were loaded."""
    shared_models().close()


class _Usage:
    """Token counts of an in-process call, shaped like litellm's usage object."""

    def __init__(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


async def in_process_completion(name: ModelName, request: ModelRequest, attempt: int,
                                local: LocalModels) -> tuple[str, _Usage]:
    """Answer a request with agentsim's own providers, without litellm."""
    if name.provider == "scripted":
        text = await scripted.respond(name, request, attempt)
        words = sum(len(m.get("content", "").split()) for m in request.messages)
        return text, _Usage(words, len(text.split()))
    result = await asyncio.to_thread(
        local.complete, name.name, request.messages, schema=request.schema,
        temperature=request.temperature, max_tokens=request.max_tokens, seed=request.seed)
    usage = result.get("usage") or {}
    return (result["choices"][0]["message"].get("content") or "",
            _Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))))


class ModelClient:
    """Calls models with retries; one instance serves a whole run."""

    def __init__(self, *, retries: int = 3, backoff_s: float = 0.5, timeout_s: float = 300.0,
                 seed: int = 0, local: LocalModels | None = None,
                 via_litellm: bool = False, cache: DiskCache | None = None) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.local = local or shared_models()
        self.via_litellm = via_litellm  # route in-process providers through litellm too
        self.cache = cache
        self._jitter = random.Random(seed)  # jitter only; never affects results

    def supports_schema(self, model: str) -> bool:
        """True when the model can be constrained to a JSON schema."""
        name = parse_model_name(model)
        return True if name.is_ours else _backend().supports_schema(model)

    async def _once(self, name: ModelName, request: ModelRequest, attempt: int) -> tuple:
        if name.is_ours and not self.via_litellm:
            return await in_process_completion(name, request, attempt, self.local)
        backend = _backend()
        try:
            return await backend.acompletion(request, attempt, self.timeout_s)
        except backend.PERMANENT_ERRORS as error:
            raise ModelError(redact(str(error)), model=request.model, retryable=False) from None

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer ``request``; transient errors are retried, then raised as ModelError."""
        name = parse_model_name(request.model)
        started = time.perf_counter()
        if self.cache is not None and (hit := self.cache.get(request)) is not None:
            return ModelReply(text=hit["text"], model=request.model,
                              prompt_tokens=hit.get("prompt_tokens"),
                              completion_tokens=hit.get("completion_tokens"),
                              latency_s=time.perf_counter() - started,
                              structured=request.schema is not None, cached=True)
        last: BaseException | None = None
        for attempt in range(1, self.retries + 2):
            try:
                text, usage = await self._once(name, request, attempt)
            except Exception as error:  # transient by default: rate limits, 5xx, timeouts
                permanent = isinstance(error, ModelError) and not error.retryable
                if permanent or (isinstance(error, AgentsimError)
                                 and not isinstance(error, ModelError)):
                    raise
                last = error
                log.debug("model %s attempt %d failed: %s", request.model, attempt, error)
                if attempt <= self.retries:
                    delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + self._jitter.random())
                    await asyncio.sleep(delay)
                continue
            latency = time.perf_counter() - started
            log.debug("model %s %s %.3fs attempt %d", request.model, request.purpose, latency,
                      attempt)
            reply = ModelReply(
                text=text, model=request.model,
                prompt_tokens=getattr(usage, "prompt_tokens", None),
                completion_tokens=getattr(usage, "completion_tokens", None),
                latency_s=latency, attempts=attempt, structured=request.schema is not None,
            )
            if self.cache is not None:
                self.cache.put(request, {"text": reply.text, "prompt_tokens": reply.prompt_tokens,
                                         "completion_tokens": reply.completion_tokens})
            return reply
        message = redact(f"{type(last).__name__}: {last}")
        raise ModelError(f"failed after {self.retries + 1} attempts: {message}",
                         model=request.model)
