"""The single model client: every model call of agentsim goes through :class:`ModelClient`.

Routing is litellm's (hosted names, plus agentsim's ``local/`` and ``scripted/`` providers, which
are registered with litellm as custom providers). The client adds what a research run needs on top:
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

from agentsim.errors import ModelError
from agentsim.models import scripted
from agentsim.models.base import ModelReply, ModelRequest
from agentsim.models.local import resolve_local
from agentsim.models.names import parse_model_name

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
    """Free in-process models if any were loaded (no-op when litellm was never imported)."""
    if _backend.cache_info().currsize:
        _backend().LOCAL.models.close()


class ModelClient:
    """Calls models with retries; one instance serves a whole run."""

    def __init__(self, *, retries: int = 3, backoff_s: float = 0.5, timeout_s: float = 300.0,
                 seed: int = 0) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._jitter = random.Random(seed)  # jitter only; never affects results

    def supports_schema(self, model: str) -> bool:
        """True when the model can be constrained to a JSON schema."""
        name = parse_model_name(model)
        return True if name.is_ours else _backend().supports_schema(model)

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer ``request``; transient errors are retried, then raised as ModelError."""
        backend = _backend()
        started = time.perf_counter()
        last: BaseException | None = None
        for attempt in range(1, self.retries + 2):
            try:
                text, usage = await backend.acompletion(request, attempt, self.timeout_s)
            except backend.PERMANENT_ERRORS as error:
                raise ModelError(redact(str(error)), model=request.model, retryable=False) from None
            except Exception as error:  # transient by default: rate limits, 5xx, timeouts
                last = error
                log.debug("model %s attempt %d failed: %s", request.model, attempt, error)
                if attempt <= self.retries:
                    delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + self._jitter.random())
                    await asyncio.sleep(delay)
                continue
            latency = time.perf_counter() - started
            log.debug("model %s %s %.3fs attempt %d", request.model, request.purpose, latency,
                      attempt)
            return ModelReply(
                text=text, model=request.model,
                prompt_tokens=getattr(usage, "prompt_tokens", None),
                completion_tokens=getattr(usage, "completion_tokens", None),
                latency_s=latency, attempts=attempt, structured=request.schema is not None,
            )
        message = redact(f"{type(last).__name__}: {last}")
        raise ModelError(f"failed after {self.retries + 1} attempts: {message}",
                         model=request.model)
