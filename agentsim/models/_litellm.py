"""The one module that imports litellm: agentsim's providers and the completion call.

litellm takes seconds to import, so this module is imported only when a model is first called;
``agentsim --help``, ``validate`` and ``report`` never load it. The cost map is read from the
installed package, never from the network.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
from litellm import CustomLLM  # noqa: E402

from agentsim.models import scripted  # noqa: E402
from agentsim.models.base import ModelRequest  # noqa: E402
from agentsim.models.local import shared_models  # noqa: E402
from agentsim.models.names import parse_model_name  # noqa: E402

litellm.suppress_debug_info = True
litellm.telemetry = False

# Errors no retry can fix: wrong key, wrong model, bad request.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    litellm.AuthenticationError,
    litellm.NotFoundError,
    litellm.BadRequestError,
    litellm.PermissionDeniedError,
)


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
    """``scripted/<profile>?knobs``: the deterministic test model (see agentsim.models.scripted)."""

    async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response,
                          print_verbose, encoding, api_key, logging_obj, optional_params,
                          acompletion=None, litellm_params=None, logger_fn=None, headers=None,
                          timeout=None, client=None):  # noqa: ANN001, D102 - litellm's signature
        context, attempt, schema = _request_of(model, messages, optional_params, litellm_params)
        request = ModelRequest(
            model=f"scripted/{model}", messages=messages, schema=schema,
            seed=int(optional_params.get("seed", 0)), purpose=context.get("purpose", "chat"),
            context=context,
        )
        text = await scripted.respond(parse_model_name(request.model), request, attempt)
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


async def acompletion(request: ModelRequest, attempt: int, timeout_s: float) -> tuple[str, Any]:
    """One litellm call for ``request``; returns (text, usage)."""
    name = parse_model_name(request.model)
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": request.messages,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "seed": request.seed,
        "timeout": timeout_s,
    }
    if request.schema is not None:
        if name.is_ours:
            kwargs["response_format"] = {"type": "json_object", "schema": request.schema}
        else:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "decision", "schema": request.schema, "strict": True},
            }
    if name.is_ours:
        kwargs["metadata"] = {
            "agentsim_context": {**request.context, "purpose": request.purpose},
            "agentsim_attempt": attempt,
        }
    response = await litellm.acompletion(**kwargs)
    return response.choices[0].message.content or "", getattr(response, "usage", None)


def supports_schema(model: str) -> bool:
    """litellm's knowledge of whether a hosted model takes a JSON schema."""
    try:
        return bool(litellm.supports_response_schema(model=model))
    except Exception:  # unknown models: ask for the text format instead
        return False
