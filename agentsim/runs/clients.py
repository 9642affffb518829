"""The model client of a run: endpoints from the options, the keys it must redact, the cache,
the check of every model before anything is written, and what servers said about themselves.
Part of the runner (:mod:`agentsim.runs.runner` re-exports every name).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentsim._aio import run_sync
from agentsim.core.store import RunStore
from agentsim.models.cache import DiskCache
from agentsim.models.client import ModelClient
from agentsim.models.endpoints import EndpointOverrides, EndpointResolver, ModelsConfig
from agentsim.models.preflight import Preflight, run_preflight
from agentsim.runs.options import RunOptions
from agentsim.scenario.schema import Scenario

__all__ = ["RedactingCache", "build_client", "model_users", "preflight", "record_served",
           "register_config_secrets"]


def _redactor() -> Any:
    """What readies an answer for the cache's file: its text redacted with the secrets known
    now (made by the cache's writer thread once a batch, off the event loop)."""
    from agentsim.models.client import Redactor

    redact = Redactor()

    def prepare(answer: dict[str, Any]) -> dict[str, Any]:
        if isinstance(answer.get("text"), str):
            return {**answer, "text": redact(answer["text"])}
        return answer

    return prepare


class RedactingCache(DiskCache):
    """The disk cache with secrets removed from what it stores (a server may echo a key)."""

    prepare_for_disk = _redactor


def register_config_secrets(options: RunOptions) -> None:
    """Make the keys a models config or router list points to known to the redactor: the
    values of the variables they name (whatever the variable is called) and of key files."""
    import os

    from agentsim.models.client import register_secret

    for entry in ((options.models_config or {}).get("models") or {}).values():
        if not isinstance(entry, dict):
            continue
        if entry.get("api_key_env"):
            register_secret(os.environ.get(str(entry["api_key_env"])))
        if entry.get("api_key_file"):
            try:
                register_secret(Path(str(entry["api_key_file"])).expanduser()
                                .read_text("utf-8"))
            except (OSError, UnicodeDecodeError):
                pass  # preflight reports a key file it cannot read
    for item in options.router_list or ():
        for value in (item.get("litellm_params") or {}).values():
            if isinstance(value, str) and value.startswith("os.environ/"):
                register_secret(os.environ.get(value.removeprefix("os.environ/")))


def build_client(options: RunOptions) -> ModelClient:
    """The model client of a run: endpoints from the models config, the router list and the
    per-model options; the cache unless switched off."""
    register_config_secrets(options)
    overrides = {key: dict(value) for key, value in options.endpoint_options.items()}
    every = overrides.setdefault("*", {})
    if options.retries is not None:
        every.setdefault("retries", options.retries)
    if options.timeout is not None:
        every.setdefault("timeout", options.timeout)
    resolver = EndpointResolver(ModelsConfig.model_validate(options.models_config or {}),
                                options.router_list, EndpointOverrides(overrides))
    return ModelClient(backoff_s=options.backoff_s, seed=options.seed, resolver=resolver,
                       cache=RedactingCache(options.cache_dir) if options.cache else None)


def model_users(options: RunOptions, scenarios: Sequence[Scenario]) -> dict[str, list[str]]:
    """Model name → the roles and personas that use it (for warnings and the manifest); in a
    study each use is named after its model cell too."""
    users: dict[str, list[str]] = {}
    personas = {p.id for s in scenarios for p in s.personas}
    for label, models in options.model_sets():
        cell = "" if label is None else f" of {label}"
        roles = {k: v for k, v in models.items() if k != "default"}
        for key, model in roles.items():
            users.setdefault(model, []).append(key + cell)
        rest = sorted(personas - set(roles))
        default = models["default"]
        users.setdefault(default, []).append(
            ("every other agent" if roles else "every agent") + cell)
        if rest and len(rest) <= 12 and roles:
            users[default][-1] += f" ({', '.join(rest)})"
    return users


def preflight(client: ModelClient, options: RunOptions,
              scenarios: Sequence[Scenario]) -> Preflight:
    """Check and probe every model of the run before anything is written."""
    names = options.all_models()
    return run_sync(run_preflight(client.resolver, names, users=model_users(options, scenarios),
                                  probe_servers=options.probe))


def record_served(store: RunStore, served: dict[str, dict[str, Any]]) -> None:
    """Add what servers reported about themselves (model name, fingerprint) to the manifest."""
    manifest = store.read_manifest()
    endpoints = manifest.get("endpoints") or {}
    for name, facts in served.items():
        endpoints.setdefault(name, {}).update(facts)
    store.update_manifest(endpoints=endpoints)
