"""The one module that imports litellm: agentsim's providers, the completion call, probes.

litellm takes seconds to import, so this module is imported only when a model is first called;
``agentsim --help``, ``validate`` and ``report`` never load it. The cost map is read from the
installed package, never from the network.

What is sent depends on the endpoint (agentsim.models.endpoints): its API base and key (read from
the named variable at call time, never stored), the structured-output mode, and only the sampling
parameters the provider takes (litellm's ``get_supported_openai_params``; a parameter it does not
take, such as ``seed`` for Anthropic, is dropped and the drop recorded with the call). litellm's
own retries are off: the client's retry loop is the only one. Every litellm error becomes a
:class:`ModelError` that says whether a retry can help; other exceptions are bugs and propagate,
also when litellm wrapped one in its ``APIConnectionError`` (:func:`wrapped_original`); what a
failure says of itself (``Retry-After``, a lost connection) is read by agentsim.models.failures.

A request's ``facts`` (agentsim.models.facts) are never sent, not even as litellm metadata: an
in-process provider reached through litellm's route reads them from the request being sent,
which :func:`acompletion` keeps in a context variable for the length of the call.
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

# Never reach for the network at import or on a first call (cost map, Anthropic beta headers).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")

import litellm  # noqa: E402
from litellm import CustomLLM  # noqa: E402

from agentsim.errors import ModelError  # noqa: E402
from agentsim.registry import REGISTRY  # noqa: E402
from agentsim.models.base import ModelRequest  # noqa: E402
from agentsim.models.endpoints import Endpoint, read_key, safe_url  # noqa: E402
from agentsim.models.failures import (  # noqa: E402
    lost_connection,
    network_error,
    no_key_given,
    retry_after,
)
from agentsim.models.local import shared_models  # noqa: E402
from agentsim.models.names import in_process_providers, parse_model_name  # noqa: E402

litellm.suppress_debug_info = True
litellm.telemetry = False
# litellm warns on stderr when a run's event loop differs from the preflight's; agentsim reports
# what matters itself, and library code never prints.
logging.getLogger("LiteLLM").setLevel(logging.ERROR)

# Sampling parameters agentsim sends; each is dropped for a provider that does not take it.
SAMPLING = ("temperature", "max_tokens", "seed")
# Providers whose servers a user may run without a key (the OpenAI SDK still wants one).
SELF_HOSTED = {"openai", "hosted_vllm", "text-completion-openai"}
# HTTP statuses worth a retry.
TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}


# The request acompletion is sending to an in-process provider through litellm (None otherwise):
# the provider's handler runs in the caller's context, so the facts reach it without litellm.
SENDING: ContextVar[ModelRequest | None] = ContextVar("agentsim_sending", default=None)


def _request_of(model: str, messages: list, optional: dict, litellm_params: dict) -> tuple:
    metadata = (litellm_params or {}).get("metadata") or {}
    schema = (optional.get("response_format") or {}).get("schema")
    return metadata.get("agentsim_context") or {}, int(metadata.get("agentsim_attempt", 1)), schema


def _fill(model_response: Any, text: str, prompt_tokens: int, completion_tokens: int) -> Any:
    model_response.choices[0].message.content = text
    model_response.usage = litellm.Usage(
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )
    return model_response


class _SyncFromAsync(CustomLLM):
    """litellm's synchronous ``completion`` for providers written as ``acompletion``."""

    def completion(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102 - litellm's signature
        return asyncio.run(self.acompletion(*args, **kwargs))


class ScriptedProvider(_SyncFromAsync):
    """``scripted/<profile>?knobs``: the deterministic test model (see agentsim.testing.scripted)."""

    async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response,
                          print_verbose, encoding, api_key, logging_obj, optional_params,
                          acompletion=None, litellm_params=None, logger_fn=None, headers=None,
                          timeout=None, client=None):  # noqa: ANN001, D102 - litellm's signature
        context, attempt, schema = _request_of(model, messages, optional_params, litellm_params)
        sending = SENDING.get()
        request = ModelRequest(
            model=f"scripted/{model}", messages=messages, schema=schema,
            seed=int(optional_params.get("seed", 0)), purpose=context.get("purpose", "chat"),
            context=context, facts=sending.facts if sending is not None else None,
        )
        text = await REGISTRY.get("provider", "scripted").respond(
            parse_model_name(request.model), request, attempt)
        words = sum(len(m.get("content", "").split()) for m in messages)
        return _fill(model_response, text, words, len(text.split()))


class LocalProvider(_SyncFromAsync):
    """``local/<name>``: the embedded llama.cpp model, serialised and run in a worker thread."""

    def __init__(self) -> None:
        super().__init__()
        self.models = shared_models()

    async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response,
                          print_verbose, encoding, api_key, logging_obj, optional_params,
                          acompletion=None, litellm_params=None, logger_fn=None, headers=None,
                          timeout=None, client=None):  # noqa: ANN001, D102 - litellm's signature
        _, _, schema = _request_of(model, messages, optional_params, litellm_params)
        result = await asyncio.to_thread(
            self.models.complete, model, messages, schema=schema,
            temperature=float(optional_params.get("temperature", 0.7)),
            max_tokens=int(optional_params.get("max_tokens", 256)),
            seed=int(optional_params.get("seed", 0)),
        )
        usage = result.get("usage") or {}
        text = result["choices"][0]["message"].get("content") or ""
        return _fill(model_response, text, int(usage.get("prompt_tokens", 0)),
                     int(usage.get("completion_tokens", 0)))


LOCAL = LocalProvider()
litellm.custom_provider_map = [
    *[p for p in litellm.custom_provider_map if p["provider"] not in {"local", "scripted"}],
    {"provider": "scripted", "custom_handler": ScriptedProvider()},
    {"provider": "local", "custom_handler": LOCAL},
]
LOCAL_MODELS = LOCAL.models


# -- what to send ------------------------------------------------------------------------------
def provider_of(model: str) -> str:
    """The provider prefix of a litellm name (``openai`` for ``openai/gpt-4o-mini``)."""
    return model.split("/", 1)[0] if "/" in model else ""


def known_providers() -> set[str]:
    """Every provider prefix litellm routes, plus agentsim's own."""
    names = {str(getattr(p, "value", p)) for p in litellm.provider_list}
    return names | in_process_providers()


@lru_cache(maxsize=256)
def supported_params(model: str) -> frozenset[str] | None:
    """The OpenAI-style parameters litellm maps for this model's provider (None: unknown)."""
    provider = provider_of(model)
    try:
        params = litellm.get_supported_openai_params(model=model.split("/", 1)[-1],
                                                     custom_llm_provider=provider or None)
    except Exception:  # noqa: BLE001 - an unmapped provider: send everything, as OpenAI would
        return None
    return frozenset(params) if params is not None else None


def structured_kwargs(mode: str, schema: dict[str, Any], params: dict[str, Any]) -> dict:
    """The keyword arguments that ask an endpoint in ``mode`` for output matching ``schema``."""
    if mode == "json_schema":
        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": schema, "strict": True}}}
    if mode == "json_object":  # llama-cpp-python's server reads the schema from here
        return {"response_format": {"type": "json_object", "schema": schema}}
    if mode == "vllm":  # newer vLLM reads structured_outputs, older guided_json
        extra = dict(params.get("extra_body") or {})
        extra |= {"structured_outputs": {"json": schema}, "guided_json": schema}
        return {"extra_body": extra}
    if mode == "ollama":
        return {"format": schema}
    return {}


def call_kwargs(endpoint: Endpoint, request: ModelRequest, timeout: float) -> tuple[dict, list]:
    """(litellm keyword arguments, dropped parameter names) for one call."""
    kwargs: dict[str, Any] = {**endpoint.params, "model": endpoint.model if not endpoint.router
                              else endpoint.name, "messages": request.messages,
                              "timeout": timeout}
    supported = None if endpoint.router or endpoint.in_process \
        else supported_params(endpoint.model)
    dropped = []
    sampling = [("temperature", request.temperature), ("max_tokens", request.max_tokens),
                ("seed", request.seed)]
    if request.top_p is not None:  # sent only when asked for: the provider's default otherwise
        sampling.append(("top_p", request.top_p))
    for name, value in sampling:
        if supported is not None and name not in supported:
            dropped.append(name)
        else:
            kwargs[name] = value
    if endpoint.api_base and not endpoint.router:
        kwargs["api_base"] = endpoint.api_base
    key = read_key(endpoint)
    if key:
        kwargs["api_key"] = key
    elif endpoint.api_base and not endpoint.router \
            and provider_of(endpoint.model) in SELF_HOSTED:
        kwargs["api_key"] = "not-needed"  # self-hosted servers take none; the SDK wants one
    if request.schema is not None:
        kwargs |= structured_kwargs(endpoint.structured, request.schema, endpoint.params)
    if not endpoint.router:
        kwargs["max_retries"] = 0  # the client's retry loop is the only one
    return kwargs, dropped


# -- errors ------------------------------------------------------------------------------------
# Packages whose exceptions only wrap another one on its way up (litellm's mapping, the SDKs
# litellm calls): the exception underneath says what happened.
WRAPPERS = ("litellm", "openai")


def wrapped_original(error: BaseException) -> BaseException | None:
    """The exception litellm's ``APIConnectionError`` wraps when that one is no network error,
    else None.

    litellm maps every exception it does not recognise, a TypeError in one of agentsim's own
    in-process providers included, to ``APIConnectionError``, which the client would retry as a
    lost connection. litellm raises its error while handling the original, which it keeps as
    ``__context__`` (or ``__cause__``); below its own exceptions and the SDKs' lies either a
    network error (a connection error indeed) or something else: a bug, or an agentsim error
    (a provider's :class:`ModelError`, with its own kind), to be raised as it is.
    """
    if not isinstance(error, litellm.APIConnectionError):
        return None
    cause = error.__cause__ or error.__context__
    for _ in range(8):  # chains are short; a bound guards against a cycle
        if cause is None or network_error(cause):
            return None
        if type(cause).__module__.split(".")[0] not in WRAPPERS:
            return cause
        cause = cause.__cause__ or cause.__context__
    return None



def classify(error: BaseException, model: str) -> ModelError | None:
    """A litellm or transport error as a ModelError (None: not a provider error, a bug).

    When litellm wrapped an exception that is no network error (:func:`wrapped_original`), that
    exception is re-raised instead: call this outside the ``except`` block that caught ``error``,
    so that re-raising leaves the original's own chain as it was.
    """
    original = wrapped_original(error)
    if original is not None:
        raise original
    text = str(error)
    status = getattr(error, "status_code", None)
    if isinstance(error, litellm.RateLimitError):
        return ModelError(text, model=model, kind="rate_limit", retry_after=retry_after(error))
    if isinstance(error, litellm.Timeout | asyncio.TimeoutError):
        return ModelError(text, model=model, kind="timeout")
    if isinstance(error, litellm.AuthenticationError | litellm.PermissionDeniedError):
        return ModelError(text, model=model, kind="auth", retryable=False)
    if no_key_given(text):  # raised before any request (the SDK's own check), as a 500
        return ModelError(text, model=model, kind="auth", retryable=False)
    if isinstance(error, litellm.NotFoundError):
        return ModelError(text, model=model, kind="not_found", retryable=False)
    if isinstance(error, litellm.UnsupportedParamsError):
        return ModelError(text, model=model, kind="unsupported_param", retryable=False)
    if isinstance(error, litellm.ContextWindowExceededError):
        return ModelError(text, model=model, kind="context_window", retryable=False)
    if isinstance(error, litellm.BadRequestError | litellm.UnprocessableEntityError):
        if "LLM Provider NOT provided" in text:
            return ModelError(text, model=model, kind="unknown_provider", retryable=False)
        return ModelError(text, model=model, kind="bad_request", retryable=False)
    if isinstance(error, litellm.APIConnectionError) or (
            isinstance(error, litellm.InternalServerError) and lost_connection(error)):
        return ModelError(text, model=model, kind="connection")
    if isinstance(error, litellm.InternalServerError | litellm.ServiceUnavailableError
                  | litellm.BadGatewayError | litellm.APIError) or status is not None:
        if status in (401, 403):
            return ModelError(text, model=model, kind="auth", retryable=False)
        if isinstance(status, int) and 400 <= status < 500 and status not in TRANSIENT_STATUS:
            return ModelError(text, model=model, kind="bad_request", retryable=False)
        return ModelError(text, model=model, kind="server",
                          retry_after=retry_after(error))
    import httpx

    if isinstance(error, httpx.TransportError | ConnectionError):
        return ModelError(text, model=model, kind="connection")
    return None


# -- the call ----------------------------------------------------------------------------------
_ROUTERS: dict[str, Any] = {}


def router_for(model_list: list[dict[str, Any]]) -> Any:
    """One litellm Router per model list (its own retries off: the client retries).

    Routers are kept by the list's content, not its ``id``: the list of an earlier run may be
    freed and a new one (other servers) allocated at the same address.
    """
    import json

    key = json.dumps(model_list, sort_keys=True, default=str)
    if key not in _ROUTERS:
        deployments = []
        for item in model_list:
            params = dict(item["litellm_params"])
            if params.get("api_base") and not params.get("api_key") \
                    and provider_of(params["model"]) in SELF_HOSTED:
                params["api_key"] = "not-needed"  # a server of the user's that takes no key
            deployments.append({**item, "litellm_params": params})
        _ROUTERS[key] = litellm.Router(model_list=deployments, num_retries=0,
                                       disable_cooldowns=True)
    return _ROUTERS[key]


async def acompletion(endpoint: Endpoint, request: ModelRequest, attempt: int,
                      router_list: list[dict[str, Any]] | None = None,
                      timeout: float | None = None) -> tuple[str, Any, dict[str, Any]]:
    """One call for ``request`` at ``endpoint``; returns (text, usage, meta)."""
    kwargs, dropped = call_kwargs(endpoint, request, timeout or endpoint.timeout)
    if endpoint.in_process:  # agentsim's own providers through litellm's route (tests)
        kwargs.pop("max_retries", None)
        if request.schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.schema}
        kwargs["metadata"] = {"agentsim_context": {**request.context, "purpose": request.purpose},
                              "agentsim_attempt": attempt}
    sending = SENDING.set(request if endpoint.in_process else None)
    try:
        if endpoint.router:
            response = await router_for(router_list or []).acompletion(**kwargs)
        else:
            response = await litellm.acompletion(**kwargs)
    except Exception as error:  # noqa: BLE001 - classified below; bugs re-raised as they are
        failure: Exception | None = error
    else:
        failure = None
    finally:
        SENDING.reset(sending)
    if failure is not None:  # outside the handler: a re-raised original keeps its own context
        raise classify(failure, request.model) or failure
    hidden = getattr(response, "_hidden_params", None) or {}
    served_base = hidden.get("api_base") or endpoint.api_base
    meta = {"endpoint": "in-process" if endpoint.in_process else safe_url(served_base)
            or provider_of(endpoint.model),
            "dropped": dropped, "served_model": getattr(response, "model", None),
            "fingerprint": getattr(response, "system_fingerprint", None)}
    choice = response.choices[0]
    return (choice.message.content or "", getattr(response, "usage", None), meta)


def supports_schema(model: str) -> bool:
    """litellm's knowledge of whether a hosted model takes a JSON schema."""
    try:
        return bool(litellm.supports_response_schema(model=model))
    except Exception:  # noqa: BLE001 - unknown models: ask for the text format instead
        return False


def missing_keys(model: str) -> list[str]:
    """Environment variables litellm needs for ``model`` that are not set."""
    try:
        report = litellm.validate_environment(model=model)
    except Exception:  # noqa: BLE001 - a provider litellm cannot check: nothing to report
        return []
    return list(report.get("missing_keys") or []) if not report.get("keys_in_environment") \
        else []


def cost_per_token(model: str) -> tuple[float, float] | None:
    """(US dollars per prompt token, per completion token) of a litellm model name from the
    installed cost map (a dictionary read, never the network: ``get_model_info`` may ask an
    Ollama server), or None when the map has no price for it."""
    provider, _, bare = model.partition("/")
    for key in (model, bare):
        entry = litellm.model_cost.get(key)
        if not entry or (key == bare and provider and entry.get("litellm_provider")
                         not in (provider, None)):
            continue
        prompt, completion = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
        if prompt is not None and completion is not None:
            return float(prompt), float(completion)
    return None


def count_tokens(model: str, messages: list[dict[str, Any]]) -> int:
    """Prompt tokens of ``messages`` by litellm's counter (tiktoken, shipped with litellm: it
    never downloads a tokenizer for the OpenAI-family names it is used for)."""
    return int(litellm.token_counter(model=model, messages=messages))


def max_input_tokens(model: str) -> int | None:
    """The context a litellm model name accepts (prompt tokens), from the installed cost map
    (a dictionary read, never the network), or None when the map does not say."""
    provider, _, bare = model.partition("/")
    for key in (model, bare):
        entry = litellm.model_cost.get(key)
        if entry and (key == model or entry.get("litellm_provider") in (provider, None)):
            found = entry.get("max_input_tokens") or entry.get("max_tokens")
            if isinstance(found, int) and found > 0:
                return found
    return None
