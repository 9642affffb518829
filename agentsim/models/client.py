"""The single model client: every model call of agentsim goes through :class:`ModelClient`.

A model name resolves to an :class:`~agentsim.models.endpoints.Endpoint` (where it is served,
how structured output is requested, its limits). Hosted models and model servers are called
through litellm (``agentsim.models._litellm``); agentsim's own in-process providers (``local/``
and ``scripted/``) are registered with litellm as custom providers, so ``litellm.completion``
reaches them too, but the client calls them directly: litellm's per-call bookkeeping costs
several milliseconds, more than the scripted model itself (see bench/overhead.py).

What the client adds on top: rate limits enforced before a call is sent (requests and tokens per
minute, calls in flight; 429 answers and ``Retry-After`` slow the endpoint down), retries with
exponential backoff of transient errors only (rate limits, timeouts, 5xx, lost connections,
empty replies), no retry of permanent ones (bad key, unknown model, rejected request), and after a
permanent error the endpoint fails fast, so the error is reported once and not per call. A bug
(any other exception) is raised at once. Every reply records tokens, latency, time queued, the
structured-output mode, the endpoint and parameters the provider does not take.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import time
from dataclasses import replace
from functools import lru_cache
from typing import Any

from agentsim.errors import ModelError
from agentsim.registry import REGISTRY
from agentsim.models.base import ModelReply, ModelRequest
from agentsim.models.cache import DiskCache
from agentsim.models.endpoints import (
    SECRET_NAME,
    Endpoint,
    EndpointOverrides,
    EndpointResolver,
)
from agentsim.models.limits import Limiter
from agentsim.models.local import LocalModels, resolve_local, shared_models
from agentsim.models.names import ModelName, parse_model_name

log = logging.getLogger("agentsim.models")
# Backoff between retries: base * 2**k, capped, with jitter. With the defaults (8 retries) a
# transient outage of about a minute and a half is ridden out.
BACKOFF_CAP_S = 20.0
# Kinds of permanent error: never retried, whatever the error's ``retryable`` says (a provider
# that raises ModelError(kind="auth") and forgets retryable=False must not be asked 9 times).
PERMANENT_KINDS = {"auth", "not_found", "bad_request", "unsupported_param", "unknown_provider"}
# Kinds of permanent error after which the endpoint fails fast for the rest of the run.
DEAD_KINDS = {"auth", "not_found", "unknown_provider"}


# Key-shaped strings, by provider habit: OpenAI/Anthropic (sk-, sk-proj-, sk-ant-), publishable
# and restricted keys (pk-, rk-), Google (AIza...), Hugging Face (hf_), GitHub (ghp_ and kin),
# Slack (xox?-), AWS access key ids, and bearer tokens in echoed headers.
KEY_SHAPES = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{12,}"
    r"|\bAIza[0-9A-Za-z_\-]{30,}"
    r"|\bhf_[A-Za-z0-9]{30,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}"
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|(?<=Bearer )[A-Za-z0-9_\-.=+/]{8,}")
KEY_ANCHORS = ("sk-", "pk-", "rk-", "AIza", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
               "xox", "AKIA", "Bearer ")
# A key in a query string (?api_key=..., &key=..., ?token=...), and user:password@ in a URL.
QUERY_KEY = re.compile(r"(?i)([?&;](?:api[_-]?key|key|token|access[_-]?token|secret|password"
                       r"|auth)=)[^&\s\"'#]+")
URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@\"']+:[^/\s@\"']+@")
# A long random token: 32 or more letters and digits in a row, upper and lower case and digits
# mixed (hashes are one case; words and model names have separators). Refused in options; not
# redacted from logs, where hashes and ids of that length are legitimate.
LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[A-Z])"
                        r"(?=[A-Za-z0-9]*[0-9])[A-Za-z0-9]{32,}(?![A-Za-z0-9])")
MIN_SECRET = 8  # shorter values of secret variables are not redacted (too many false hits)
# Secrets that do not live in a secret-looking variable: the values of variables a models
# config names (api_key_env), the contents of key files, router os.environ/NAME references.
_REGISTERED: set[str] = set()


def register_secret(value: str | None) -> None:
    """Treat ``value`` as a secret from now on: :func:`redact` removes it wherever it appears."""
    if value and len(value.strip()) >= MIN_SECRET:
        _REGISTERED.add(value.strip())


def secret_values() -> list[str]:
    """The secrets known now: values of secret-looking environment variables (KEY, TOKEN,
    SECRET, PASSWORD, CREDENTIAL in the name) and registered ones, longest first."""
    values = {value for name, value in os.environ.items()
              if SECRET_NAME.search(name) and len(value) >= MIN_SECRET}
    return sorted(values | _REGISTERED, key=len, reverse=True)


class Redactor:
    """:func:`redact` with the known secrets taken once (scanning the environment costs about
    0.2 ms, too much for every line of a log); a run folder's writer keeps one."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        values = secret_values() if secrets is None else secrets
        forms: set[str] = set()
        for value in values:
            forms.add(value)
            forms.add(json.dumps(value)[1:-1])  # as it appears inside a JSON string
        self._secrets = re.compile("|".join(map(re.escape, sorted(forms, key=len, reverse=True)))) \
            if forms else None

    def __call__(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub("***", text)
        # Substring tests first: the patterns cost far more than a scan for their anchors, and
        # every log line passes through here.
        if any(anchor in text for anchor in KEY_ANCHORS):
            text = KEY_SHAPES.sub("***", text)
        if "://" in text and "@" in text:
            text = URL_USERINFO.sub(r"\1***@", text)
        if "=" in text:
            text = QUERY_KEY.sub(r"\1***", text)
        return text


def redact(text: str) -> str:
    """Remove the values of secret-looking environment variables and registered secrets, and
    key-shaped strings (sk-..., bearer tokens, key= in query strings, user:password@ in URLs)."""
    return Redactor()(text)


def _random_enough(found: str) -> bool:
    """Whether a key-shaped match looks random: an upper-case letter after its prefix, or a
    run of 20 or more letters and digits (a lower-case hex key). A folder named
    ``sk-clin-agentclinic2024`` is words joined by hyphens, not a key; the redactor still
    treats every match as one (a false hit there costs nothing)."""
    tail = found.split("-", 1)[-1] if found[:3] in ("sk-", "pk-", "rk-") else found
    return any(c.isupper() for c in tail) or re.search(r"[A-Za-z0-9]{20,}", tail) is not None


def key_problem(text: str) -> str | None:
    """What makes ``text`` look like it holds a key, or None: for refusing such a value in an
    option before anything is written."""
    if not text:
        return None
    for value in secret_values():
        if value in text:
            return "the value of a secret environment variable"
    if any(_random_enough(found.group()) for found in KEY_SHAPES.finditer(text)):
        return "a key-shaped string (such as sk-...)"
    if QUERY_KEY.search(text):
        return "a key in a query string (key=, api_key=, token=)"
    if URL_USERINFO.search(text):
        return "a password in a URL (user:password@)"
    if LONG_TOKEN.search(text):
        return "a long random token"
    return None


@lru_cache(maxsize=1)
def _backend() -> Any:
    from agentsim.models import _litellm  # imported on first call: litellm is slow to import

    return _litellm


def check_model_name(model: str) -> None:
    """Validate a model name before a run starts (unknown local model, bad scripted knob)."""
    name = parse_model_name(model)
    if name.provider in REGISTRY.names("provider"):
        REGISTRY.get("provider", name.provider).check_name(name)
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
    if name.provider != "local":
        text = await REGISTRY.get("provider", name.provider).respond(name, request, attempt)
        words = sum(len(m.get("content", "").split()) for m in request.messages)
        return text, _Usage(words, len(text.split()))
    try:
        result = await asyncio.to_thread(
            local.complete, name.name, request.messages, schema=request.schema,
            temperature=request.temperature, max_tokens=request.max_tokens, seed=request.seed)
    except ValueError as error:  # llama.cpp's one complaint about a request: its length
        if "context window" not in str(error):
            raise
        raise ModelError(f"{error}: the prompt and max_tokens ({request.max_tokens}) do not fit "
                         "the model's context; lower max_tokens or rounds, or use a model "
                         "with a longer context", model=str(name), kind="context_window",
                         retryable=False) from None
    usage = result.get("usage") or {}
    return (result["choices"][0]["message"].get("content") or "",
            _Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))))


def cached_as(request: ModelRequest, endpoint: Endpoint) -> ModelRequest:
    """``request`` as the cache keys it: its facts count only when an in-process provider
    answers (the one that can read them); a hosted model's answer cannot depend on them."""
    if request.facts is None or endpoint.in_process:
        return request
    return replace(request, facts=None)


def estimated_tokens(request: ModelRequest) -> int:
    """Tokens a call may use, for the tokens-per-minute limit: about 4 characters a token."""
    chars = sum(len(str(m.get("content", ""))) for m in request.messages)
    return chars // 4 + request.max_tokens


class ModelClient:
    """Calls models with limits and retries; one instance serves a whole run.

    ``retries`` and ``timeout_s``, when given, apply to every endpoint (the command line's
    ``--retries`` and ``--timeout`` without a model); otherwise each endpoint's own values hold.
    """

    def __init__(self, *, retries: int | None = None, backoff_s: float = 1.0,
                 timeout_s: float | None = None, seed: int = 0,
                 local: LocalModels | None = None, via_litellm: bool = False,
                 cache: DiskCache | None = None,
                 resolver: EndpointResolver | None = None) -> None:
        overrides = {k: v for k, v in {"retries": retries, "timeout": timeout_s}.items()
                     if v is not None}
        self.resolver = resolver or EndpointResolver(
            overrides=EndpointOverrides({"*": overrides} if overrides else {}))
        self.backoff_s = backoff_s
        self.local = local or shared_models()
        self.via_litellm = via_litellm  # route in-process providers through litellm too
        self.cache = cache
        self._jitter = random.Random(seed)  # jitter only; never affects results
        self._limiters: dict[str, Limiter] = {}
        self._dead: dict[str, ModelError] = {}
        self.served: dict[str, dict[str, Any]] = {}  # endpoint name → what the server reported

    def endpoint(self, model: str) -> Endpoint:
        """The endpoint of a model name; an unprepared 'auto' endpoint gets litellm's knowledge
        (json_schema for models it knows take a schema, else text) — runs probe first."""
        endpoint = self.resolver.resolve(model)
        if endpoint.structured == "auto":
            known = _backend().supports_schema(endpoint.model) and not endpoint.api_base
            endpoint = self.resolver.set_mode(model, "json_schema" if known else "text",
                                              "known" if known else "default")
        return endpoint

    def supports_schema(self, model: str) -> bool:
        """True when the model's answers can be constrained to a JSON schema."""
        return self.endpoint(model).structured_output

    def limiter(self, endpoint: Endpoint) -> Limiter:
        """The limiter of an endpoint (one per endpoint name for the whole run)."""
        if endpoint.name not in self._limiters:
            self._limiters[endpoint.name] = Limiter(endpoint.rpm, endpoint.tpm,
                                                    endpoint.max_in_flight)
        return self._limiters[endpoint.name]

    async def _once(self, endpoint: Endpoint, request: ModelRequest,
                    attempt: int) -> tuple[str, Any, dict[str, Any]]:
        if endpoint.in_process and not self.via_litellm:
            text, usage = await in_process_completion(parse_model_name(endpoint.model),
                                                      request, attempt, self.local)
            return text, usage, {"endpoint": "in-process"}
        backend = _backend()
        if endpoint.in_process:  # via_litellm: agentsim's providers through litellm's route
            return await backend.acompletion(endpoint, request, attempt)
        call = backend.acompletion(endpoint, request, attempt, self.resolver.router_list)
        try:
            # litellm's own timeout covers the request; this one also covers a stalled stream.
            return await asyncio.wait_for(call, timeout=endpoint.timeout + 5)
        except TimeoutError:
            raise ModelError(f"no answer within {endpoint.timeout:g} s", model=request.model,
                             kind="timeout") from None

    def _delay(self, attempt: int, error: ModelError) -> float:
        delay = min(BACKOFF_CAP_S, self.backoff_s * 2 ** (attempt - 1))
        delay *= 0.8 + 0.4 * self._jitter.random()
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay

    def _cached(self, request: ModelRequest, endpoint: Endpoint) -> ModelReply | None:
        if self.cache is None:
            return None
        hit = self.cache.get(cached_as(request, endpoint), endpoint.identity())
        if hit is None:
            return None
        return ModelReply(text=hit["text"], model=request.model,
                          prompt_tokens=hit.get("prompt_tokens"),
                          completion_tokens=hit.get("completion_tokens"),
                          structured=request.schema is not None and endpoint.structured_output,
                          cached=True, structured_mode=endpoint.structured,
                          endpoint=hit.get("endpoint"))

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer ``request``; transient errors are retried, then raised as ModelError.

        Only a :class:`ModelError` is retried, and only a transient one (``retryable`` and a kind
        outside :data:`PERMANENT_KINDS`: rate limit, timeout, connection, 5xx, empty reply),
        after a backoff of at least the server's ``Retry-After``. Any other exception is a bug
        (in a provider or here): it propagates at once, unchanged, after one attempt."""
        endpoint = self.endpoint(request.model)
        if endpoint.name in self._dead:
            raise self._dead[endpoint.name]
        started = time.perf_counter()
        if (hit := self._cached(request, endpoint)) is not None:
            return replace(hit, latency_s=time.perf_counter() - started)
        limiter = self.limiter(endpoint)
        queued, sent = 0.0, request
        attempts = endpoint.retries + 1
        for attempt in range(1, attempts + 1):
            queued += await limiter.acquire(estimated_tokens(request))
            try:
                text, usage, meta = await self._once(endpoint, sent, attempt)
                if not text.strip():
                    raise ModelError("empty reply", model=request.model, kind="empty_reply")
            except ModelError as error:
                failure = error
            else:
                failure = None
            finally:
                limiter.release()  # before any backoff: a waiting call holds no slot
            if failure is None:
                limiter.success()
                return self._reply(request, endpoint, text, usage, meta, started, queued,
                                   attempt)
            failure.attempts = attempt
            if failure.kind == "rate_limit":
                limiter.throttle(failure.retry_after)
            if not failure.retryable or failure.kind in PERMANENT_KINDS:
                failure = ModelError(redact(failure.detail), model=request.model,
                                     retryable=False, kind=failure.kind, attempts=attempt)
                if failure.kind in DEAD_KINDS:
                    self._dead[endpoint.name] = failure
                raise failure
            log.debug("model %s attempt %d failed: %s", request.model, attempt, failure)
            if attempt == attempts:
                raise ModelError(f"failed after {attempt} attempts: {redact(failure.detail)}",
                                 model=request.model, kind=failure.kind, attempts=attempt)
            await asyncio.sleep(self._delay(attempt, failure))
            if failure.kind == "empty_reply":  # the same seed would give the same nothing
                sent = replace(request, seed=request.seed + attempt)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _reply(self, request: ModelRequest, endpoint: Endpoint, text: str, usage: Any,
               meta: dict[str, Any], started: float, queued: float, attempt: int) -> ModelReply:
        latency = time.perf_counter() - started
        log.debug("model %s %s %.3fs attempt %d", request.model, request.purpose, latency,
                  attempt)
        if meta.get("served_model") and endpoint.name not in self.served:
            self.served[endpoint.name] = {k: meta[k] for k in ("served_model", "fingerprint")
                                          if meta.get(k)}
        reply = ModelReply(
            text=text, model=request.model,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            latency_s=latency, attempts=attempt,
            structured=request.schema is not None and endpoint.structured_output,
            structured_mode=endpoint.structured if request.schema is not None else None,
            endpoint=meta.get("endpoint"), queued_s=queued,
            dropped_params=tuple(meta.get("dropped", ())), served_model=meta.get("served_model"),
        )
        if self.cache is not None:
            answer = {"text": reply.text, "prompt_tokens": reply.prompt_tokens,
                      "completion_tokens": reply.completion_tokens, "endpoint": reply.endpoint}
            self.cache.put(cached_as(request, endpoint), answer, endpoint.identity())
        return reply
