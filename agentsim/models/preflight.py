"""Before a run: every model name routes, every key is there, every server answers, and each
endpoint's way of asking for structured output is known.

For an endpoint whose structured-output mode is ``auto`` (the default), the choice is:

* in-process providers (``local/``, ``scripted/``): the schema goes straight to them;
* a hosted model litellm knows to take a JSON schema, with no custom API base: ``json_schema``,
  without a call;
* anything else (a server of your own, a model name litellm does not know, a router group): a
  *probe* — one tiny request per candidate mode, whose schema allows a single string the prompt
  never mentions, so only a constrained answer can match it. The first mode that constrains wins;
  when none does, the endpoint answers in free text and the run says so up front.

Every probe and its outcome is recorded in the manifest. A server that cannot be reached, a
missing key, an unknown model or a mistyped provider stops the run here, before anything is
written (exit status 2).
"""

from __future__ import annotations

import asyncio
import difflib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from agentsim.errors import EndpointError, ModelError
from agentsim.models.base import ModelRequest
from agentsim.models.endpoints import Endpoint, read_key
from agentsim.models.failures import no_key_given

PROBE_VALUE = "agentsim-probe-7"
PROBE_SCHEMA = {"type": "object", "properties": {"probe": {"type": "string",
                                                            "enum": [PROBE_VALUE]}},
                "required": ["probe"], "additionalProperties": False}
PROBE_MESSAGES = [{"role": "user", "content": "Reply with one short JSON object."}]
# Errors that mean the endpoint itself is unusable, not just the mode being probed.
FATAL_KINDS = {"connection", "auth", "not_found", "unknown_provider", "timeout"}
# Attempts at reaching a server that is not answering yet (it may still be loading weights).
REACH_ATTEMPTS = 3
REACH_PAUSE_S = 2.0


def probe_order(endpoint: Endpoint) -> list[str]:
    """Candidate modes for an endpoint, most likely first."""
    provider = endpoint.model.split("/", 1)[0]
    if provider in ("ollama", "ollama_chat"):
        return ["ollama", "json_schema"]
    if provider == "hosted_vllm":
        return ["json_schema", "vllm", "json_object"]
    return ["json_schema", "json_object", "vllm"]


def constrained(text: str) -> bool:
    """True when a probe answer is exactly what the probe schema allows."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return False
    return isinstance(data, dict) and data == {"probe": PROBE_VALUE}


@dataclass
class Preflight:
    """What the preflight found: endpoints by name, probes, and warnings for the user."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    probes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    served: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def manifest_entry(self) -> dict[str, Any]:
        """The ``endpoints`` section of a manifest: each model as resolved, without secrets."""
        return {name: {**endpoint.public(),
                       **({"probe": self.probes[name]} if name in self.probes else {}),
                       **self.served.get(name, {})}
                for name, endpoint in self.endpoints.items()}


def _where(endpoint: Endpoint) -> str:
    from agentsim.models.endpoints import safe_url

    base = safe_url(endpoint.api_base)
    label = endpoint.name if endpoint.name == endpoint.model else \
        f"{endpoint.name} ({endpoint.model})"
    return f"{label} at {base}" if base else label


def check_access(endpoint: Endpoint, backend: Any) -> None:
    """The provider exists and the key is where the endpoint says (no network)."""
    if endpoint.in_process or endpoint.router:
        return
    provider = endpoint.model.split("/", 1)[0]
    known = backend.known_providers()
    if provider not in known:
        close = difflib.get_close_matches(provider, sorted(known), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise EndpointError(f"unknown provider '{provider}' in '{endpoint.model}'{hint}",
                            source=endpoint.name)
    if endpoint.api_key_env and not read_key(endpoint):
        raise EndpointError(f"the key variable {endpoint.api_key_env} is not set (named by "
                            "api_key_env in the models config)", source=endpoint.name)
    if endpoint.api_key_file and not read_key(endpoint):
        raise EndpointError(f"cannot read a key from {endpoint.api_key_file}",
                            source=endpoint.name)
    if endpoint.api_base or endpoint.api_key_env or endpoint.api_key_file:
        return  # a server of the user's: it may take no key at all
    missing = backend.missing_keys(endpoint.model)
    if missing:
        raise EndpointError(f"set {', '.join(missing)} in the environment (needed by "
                            f"{endpoint.model}); keys are read from the environment only",
                            source=endpoint.name)


async def _probe_once(endpoint: Endpoint, mode: str, backend: Any,
                      router_list: list | None) -> tuple[str, dict[str, Any]]:
    request = ModelRequest(model=endpoint.name, messages=PROBE_MESSAGES, schema=PROBE_SCHEMA,
                           temperature=0.0, max_tokens=24, seed=0, purpose="probe")
    text, _, meta = await backend.acompletion(replace(endpoint, structured=mode), request, 1,
                                              router_list, timeout=min(endpoint.timeout, 60.0))
    return text, meta


async def probe(endpoint: Endpoint, backend: Any, router_list: list | None,
                modes: list[str]) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """(chosen mode, trail of probes, what the server reported) for ``endpoint``."""
    trail: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    for index, mode in enumerate(modes):
        for attempt in range(1, REACH_ATTEMPTS + 1):
            try:
                text, meta = await _probe_once(endpoint, mode, backend, router_list)
            except ModelError as error:
                reachable = bool(trail)
                busy = error.kind == "rate_limit" or (error.kind == "server"
                                                      and error.retry_after is not None)
                if busy and attempt < REACH_ATTEMPTS:  # a busy server, not a refused mode
                    await asyncio.sleep(error.retry_after or REACH_PAUSE_S)
                    continue
                if error.kind in FATAL_KINDS and not reachable:
                    if error.kind in ("connection", "timeout") and attempt < REACH_ATTEMPTS:
                        await asyncio.sleep(REACH_PAUSE_S)
                        continue
                    raise EndpointError(_fatal_message(endpoint, error),
                                        source=endpoint.name) from None
                # A 500 stays a rejection: it is how llama-cpp-python refuses json_schema.
                trail.append({"mode": mode, "result": f"rejected ({error.kind})"})
                break
            ok = constrained(text)
            trail.append({"mode": mode, "result": "constrained" if ok else "not constrained"})
            if ok:
                return mode, trail, meta
            break
        if index == len(modes) - 1 and not any(t["result"] == "not constrained" for t in trail):
            # Every mode was refused: check that the server answers at all.
            try:
                text, meta = await _probe_once(endpoint, "text", backend, router_list)
            except ModelError as error:
                raise EndpointError(_fatal_message(endpoint, error),
                                    source=endpoint.name) from None
    return "text", trail, meta


def _fatal_message(endpoint: Endpoint, error: ModelError) -> str:
    hints = {
        "connection": "cannot connect; is the server running, and is api_base right?",
        "timeout": "no answer in time; is the server overloaded or stalled?",
        "auth": "the server refused the key; check the key variable",
        "not_found": "the server does not know this model; check the model name",
        "unknown_provider": "litellm does not know this provider",
    }
    from agentsim.models.client import redact

    hint = hints.get(error.kind, error.kind)
    if error.kind == "auth" and no_key_given(error.detail):
        hint = ("no key given: name its variable with api_key_env in the models config, or set "
                "the provider's usual variable (e.g. ANTHROPIC_API_KEY)")
    return f"{_where(endpoint)}: {hint} ({redact(error.detail)[:300]})"


async def run_preflight(resolver: Any, names: list[str], backend: Any | None = None,
                        users: dict[str, list[str]] | None = None,
                        probe_servers: bool = True) -> Preflight:
    """Resolve, check and (where needed) probe every model name a run uses.

    ``users`` maps a model name to the roles and personas that use it, for the warnings.
    """
    result = Preflight()
    for name in dict.fromkeys(names):
        endpoint = resolver.resolve(name)
        if endpoint.in_process:
            result.endpoints[name] = endpoint
            continue
        if backend is None:
            from agentsim.models import _litellm as backend  # noqa: N813 - slow import, lazy
        check_access(endpoint, backend)
        needs_probe = endpoint.api_base is not None or endpoint.router
        if endpoint.structured == "auto":
            if not needs_probe and backend.supports_schema(endpoint.model):
                endpoint = resolver.set_mode(name, "json_schema", "known")
            elif probe_servers:
                mode, trail, meta = await probe(endpoint, backend, resolver.router_list,
                                                probe_order(endpoint))
                endpoint = resolver.set_mode(name, mode, "probe")
                result.probes[name] = trail
                result.served[name] = _served(meta)
            else:
                endpoint = resolver.set_mode(name, "text", "default")
        elif needs_probe and probe_servers and endpoint.structured != "text":
            mode, trail, meta = await probe(endpoint, backend, resolver.router_list,
                                            [endpoint.structured])
            result.probes[name] = trail
            result.served[name] = _served(meta)
            if mode == "text":
                result.warnings.append(
                    f"{_where(endpoint)}: structured mode '{endpoint.structured}' did not "
                    "constrain a probe answer; decisions may fall back to the text parser")
        result.endpoints[name] = endpoint
        if endpoint.structured == "text":
            who = ", ".join((users or {}).get(name, [])) or "its roles"
            result.warnings.append(
                f"{_where(endpoint)} gives no structured output "
                f"({_trail_text(result.probes.get(name))}): decisions of {who} are read from "
                "free text by the tolerant parser and parse less often; the summary reports the "
                "unparsed share per persona")
    return result


def _served(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta[k] for k in ("served_model", "fingerprint") if meta.get(k)}


def _trail_text(trail: list[dict[str, Any]] | None) -> str:
    if not trail:
        return "mode 'text'"
    return "probed: " + ", ".join(f"{t['mode']} {t['result']}" for t in trail)
