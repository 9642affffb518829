"""Where a model name is served and how to talk to it: the models config and resolved endpoints.

A model name on the command line (``--model``, ``--role NAME=MODEL``) is either a litellm name
(``openai/gpt-4o-mini``, ``hosted_vllm/mistral``, ``ollama/llama3``), one of agentsim's own
(``local/...``, ``scripted/...``), a short name defined in a models config file
(``--models-config FILE``), or a ``model_name`` of a litellm Router ``model_list``
(``--router-config FILE``). Every name resolves to one :class:`Endpoint`: the litellm model to
call, its API base, the *name* of the variable holding its key (never the key), how structured
output is requested, rate limits, timeout and retries.

Models config (YAML)::

    defaults:            # apply to every model unless an entry says otherwise
      timeout: 120
    models:
      smollm2-server:
        model: openai/smollm2            # the litellm name to call
        api_base: http://127.0.0.1:8080/v1
        api_key_env: LLAMA_SERVER_KEY    # or api_key_file: ~/.keys/llama; both optional
        structured: auto                 # auto | json_schema | json_object | vllm | ollama | text
        rpm: 600                         # requests per minute
        tpm: 200000                      # tokens per minute (prompt + completion, estimated)
        max_in_flight: 4                 # calls in flight at once
        timeout: 60                      # seconds per call
        retries: 6                       # retries of transient errors
        params: {top_p: 0.9}             # extra litellm keyword arguments, passed as given
        input_cost_per_token: 0.0        # US dollars per token, over litellm's cost map
        output_cost_per_token: 0.0       #   (agentsim.models.prices; --max-cost, usage)

This module parses and resolves; it never imports litellm and never reads a key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentsim.errors import InputError
from agentsim.models.names import in_process_providers, parse_model_name

StructuredMode = Literal["auto", "json_schema", "json_object", "vllm", "ollama", "text"]
# How an endpoint is asked for schema-constrained output:
#   json_schema  OpenAI-style response_format {"type": "json_schema", ...} (hosted APIs, vLLM,
#                llama.cpp's C++ server, LiteLLM proxies)
#   json_object  {"type": "json_object", "schema": S} (llama-cpp-python's server)
#   vllm         vLLM's own parameters (structured_outputs / guided_json in the request body)
#   ollama       Ollama's ``format`` field holding the schema
#   text         no constraint: the prompt describes the format and the tolerant parser reads it
#   native       agentsim's in-process providers (local/, scripted/) take the schema directly
MODES = ("json_schema", "json_object", "vllm", "ollama", "text")

# Environment variables whose names look like they hold secrets.
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)", re.IGNORECASE)


class ModelLimits(BaseModel):
    """Limits and patience of one model; every field optional (unset: the defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: float | None = Field(default=None, gt=0, description="Requests per minute.")
    tpm: float | None = Field(default=None, gt=0, description="Tokens per minute (estimated "
                              "prompt tokens plus the completion limit).")
    max_in_flight: int | None = Field(default=None, ge=1, description="Calls in flight at once.")
    timeout: float | None = Field(default=None, gt=0, description="Seconds one call may take.")
    retries: int | None = Field(default=None, ge=0, le=100,
                                description="Retries of a transient error (rate limit, timeout, "
                                "5xx, connection).")
    structured: StructuredMode | None = Field(default=None, description="How structured output "
                                              "is requested; 'auto' probes the endpoint once.")


class ModelEntry(ModelLimits):
    """One named model of a models config file."""

    model: str | None = Field(default=None, description="litellm model name to call (default: "
                              "the entry's own name).")
    api_base: str | None = Field(default=None, description="Base URL of the server.")
    api_key_env: str | None = Field(default=None, description="Name of the environment variable "
                                    "holding the key (the key itself is never written anywhere).")
    api_key_file: str | None = Field(default=None, description="A file holding the key.")
    params: dict[str, Any] = Field(default_factory=dict, description="Extra litellm keyword "
                                   "arguments (e.g. top_p, extra_body, api_version).")
    input_cost_per_token: float | None = Field(default=None, ge=0, description="US dollars per "
                                               "prompt token (over litellm's cost map; for "
                                               "self-hosted or unlisted models).")
    output_cost_per_token: float | None = Field(default=None, ge=0, description="US dollars "
                                                "per completion token.")

    @field_validator("api_key_env")
    @classmethod
    def _is_a_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("api_key_env names an environment variable (e.g. MY_API_KEY), not a "
                             "key; put the key in that variable")
        return value

    @field_validator("params")
    @classmethod
    def _no_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if "key" in key.lower() or key in {"api_base", "model", "messages"}:
                raise ValueError(f"params.{key}: set it with the entry's own fields (model, "
                                 "api_base, api_key_env), not params")
        return value


class ModelsConfig(BaseModel):
    """A models config file: named models and defaults for every model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: ModelLimits = Field(default_factory=ModelLimits, description="Limits of every "
                                  "model unless its entry says otherwise.")
    models: dict[str, ModelEntry] = Field(default_factory=dict, description="Named models.")


@dataclass(frozen=True)
class Endpoint:
    """A resolved model: what to call, where, and how. Holds no secret."""

    name: str  # the name the user wrote (a config key, a router name or a litellm name)
    model: str  # litellm model name, or local/..., scripted/...
    api_base: str | None = None
    api_key_env: str | None = None
    api_key_file: str | None = None
    structured: str = "auto"  # one of MODES, "native", or "auto" until probed
    mode_source: str = "default"  # config, option, in-process, known, probe, default
    rpm: float | None = None
    tpm: float | None = None
    max_in_flight: int | None = None
    timeout: float = 120.0
    retries: int = 8
    router: bool = False  # served by the litellm Router (model_list of --router-config)
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    # A router group's deployments as "model@api_base" (no keys): who may answer.
    deployments: tuple[str, ...] = ()
    # Prices the models config gives (US dollars per token; None: litellm's cost map decides).
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None

    @property
    def in_process(self) -> bool:
        """True for agentsim's own providers, called without HTTP."""
        return self.model.split("/", 1)[0] in in_process_providers() and not self.router

    @property
    def structured_output(self) -> bool:
        """True when decisions can be constrained to a JSON schema."""
        return self.structured not in ("text", "auto")

    def identity(self) -> str:
        """What determines who answers: cached answers are keyed by it (with the request)."""
        material = {"model": self.model, "api_base": self.api_base, "router": self.router,
                    "structured": self.structured, "params": self.params}
        if self.deployments:  # a router group: the same name on other servers is another model
            material["deployments"] = list(self.deployments)
        return hashlib.sha256(json.dumps(material, sort_keys=True, default=str)
                              .encode()).hexdigest()[:16]

    def public(self) -> dict[str, Any]:
        """The endpoint as the manifest records it: no key, credentials cut from the URL."""
        data = {"model": self.model, "api_base": safe_url(self.api_base),
                "api_key_env": self.api_key_env,
                "api_key_file": self.api_key_file and str(Path(self.api_key_file).name),
                "structured": self.structured, "mode_source": self.mode_source,
                "rpm": self.rpm, "tpm": self.tpm, "max_in_flight": self.max_in_flight,
                "timeout": self.timeout, "retries": self.retries, "router": self.router,
                "deployments": list(self.deployments), "params": sorted(self.params)}
        return {k: v for k, v in data.items() if v not in (None, [], False)}


def safe_url(url: str | None) -> str | None:
    """A URL without user info and without its query string (where keys hide)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def url_problem(url: str) -> str | None:
    """Why a URL may not be used as an api_base (it carries a credential), or None."""
    parts = urlsplit(url)
    if parts.password or (parts.username and "@" in parts.netloc):
        return "the URL carries credentials (user:password@); put the key in a variable " \
               "named by api_key_env"
    for key in (parts.query or "").split("&"):
        if SECRET_NAME.search(key.split("=", 1)[0]) or key.split("=", 1)[0].lower() == "key":
            return "the URL carries a key in its query string; put the key in a variable " \
                   "named by api_key_env"
    return None


# A config file is a few dozen lines; anything much larger is not one.
MAX_CONFIG_BYTES = 1 << 20


def _read_yaml(source: Path, what: str) -> Any:
    """A small YAML file, safely loaded; errors name the file."""
    import yaml

    try:
        if source.stat().st_size > MAX_CONFIG_BYTES:
            raise InputError(f"the {what} is larger than {MAX_CONFIG_BYTES} bytes", source=source)
        return yaml.safe_load(source.read_text("utf-8")) or {}
    except OSError as error:
        raise InputError(f"cannot read the {what} ({error.strerror})", source=source) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InputError(f"not valid YAML: {error}", source=source) from None


def load_models_config(path: str | Path) -> ModelsConfig:
    """Read and validate a models config file (YAML); errors name the file and the field."""
    source = Path(path)
    data = _read_yaml(source, "models config")
    try:
        config = ModelsConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field_name = ".".join(str(part) for part in first["loc"])
        message = ("unknown field" if first["type"] == "extra_forbidden"
                   else first["msg"].removeprefix("Value error, "))
        raise InputError(message, source=source, field=field_name) from None
    for name, entry in config.models.items():
        problem = entry.api_base and url_problem(entry.api_base)
        if problem:
            raise InputError(problem, source=source, field=f"models.{name}.api_base")
    return config


def load_router_config(path: str | Path) -> list[dict[str, Any]]:
    """A litellm Router ``model_list`` (YAML: ``model_list: [...]``), checked for literal keys.

    Keys are written as litellm's ``os.environ/NAME`` references, so that no file agentsim
    writes ever holds one.
    """
    source = Path(path)
    data = _read_yaml(source, "router config")
    items = data.get("model_list") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise InputError("expected 'model_list:' with at least one deployment", source=source,
                         field="model_list")
    for index, item in enumerate(items):
        where = f"model_list[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("model_name"), str):
            raise InputError("each deployment needs model_name and litellm_params", source=source,
                             field=where)
        params = item.get("litellm_params")
        if not isinstance(params, dict) or not isinstance(params.get("model"), str):
            raise InputError("litellm_params.model is required", source=source,
                             field=f"{where}.litellm_params")
        for key, value in params.items():
            secret = "key" in key.lower() or SECRET_NAME.search(key)
            if secret and value is not None and not (
                    isinstance(value, str) and value.startswith("os.environ/")):
                raise InputError("write keys as os.environ/VARIABLE, never the key itself",
                                 source=source, field=f"{where}.litellm_params.{key}")
        problem = isinstance(params.get("api_base"), str) and url_problem(params["api_base"])
        if problem:
            raise InputError(problem, source=source, field=f"{where}.litellm_params.api_base")
    return items


@dataclass(frozen=True)
class EndpointOverrides:
    """Per-model settings from the command line; the key ``*`` applies to every model."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_name(self, name: str) -> dict[str, Any]:
        """The settings for ``name``: those for every model, then its own."""
        return {**self.values.get("*", {}), **self.values.get(name, {})}


class EndpointResolver:
    """Turns model names into endpoints, from a models config, a router list and options."""

    def __init__(self, config: ModelsConfig | None = None,
                 router_list: list[dict[str, Any]] | None = None,
                 overrides: EndpointOverrides | None = None) -> None:
        self.config = config or ModelsConfig()
        self.router_list = router_list or []
        self.router_names = {item["model_name"] for item in self.router_list}
        self.overrides = overrides or EndpointOverrides()
        self._resolved: dict[str, Endpoint] = {}

    def resolve(self, name: str) -> Endpoint:
        """The endpoint of a model name (validated; an unknown provider is an InputError)."""
        if name not in self._resolved:
            self._resolved[name] = self._build(name)
        return self._resolved[name]

    def set_mode(self, name: str, mode: str, source: str) -> Endpoint:
        """Record the structured-output mode chosen for ``name`` (after a probe)."""
        endpoint = replace(self.resolve(name), structured=mode, mode_source=source)
        self._resolved[name] = endpoint
        return endpoint

    def resolved(self) -> dict[str, Endpoint]:
        """Every endpoint resolved so far, by name."""
        return dict(self._resolved)

    def _build(self, name: str) -> Endpoint:
        if not name or not name.strip():
            raise InputError("empty model name", source="--model")
        entry = self.config.models.get(name)
        router = name in self.router_names
        model = (entry.model if entry and entry.model else name)
        if not router:
            parse_model_name(model)  # the shape provider/name
        settings: dict[str, Any] = {}
        for layer in (self.config.defaults, entry):
            if layer is not None:
                settings |= {k: v for k, v in layer.model_dump().items() if v is not None
                             and k in ModelLimits.model_fields}
        cli = self.overrides.for_name(name)
        settings |= {k: v for k, v in cli.items() if v is not None and k != "api_base"}
        api_base = cli.get("api_base") or (entry.api_base if entry else None)
        if cli.get("api_base") and (problem := url_problem(cli["api_base"])):
            raise InputError(problem, source="--api-base")
        deployments = tuple(sorted(
            f"{item['litellm_params'].get('model')}@"
            f"{safe_url(item['litellm_params'].get('api_base')) or ''}"
            for item in self.router_list if item.get("model_name") == name)) if router else ()
        endpoint = Endpoint(
            name=name, model=model, api_base=api_base.rstrip("/") if api_base else None,
            api_key_env=entry.api_key_env if entry else None,
            api_key_file=str(Path(entry.api_key_file).expanduser())
            if entry and entry.api_key_file else None,
            router=router, params=dict(entry.params) if entry else {}, deployments=deployments,
            input_cost_per_token=entry.input_cost_per_token if entry else None,
            output_cost_per_token=entry.output_cost_per_token if entry else None,
            **{k: settings[k] for k in ("rpm", "tpm", "max_in_flight") if k in settings},
            **({"timeout": float(settings["timeout"])} if "timeout" in settings else {}),
            **({"retries": int(settings["retries"])} if "retries" in settings else {}),
        )
        mode = settings.get("structured")
        if endpoint.in_process:  # takes the schema directly, unless asked for text answers
            if mode == "text":
                return replace(endpoint, structured="text",
                               mode_source="option" if "structured" in cli else "config")
            return replace(endpoint, structured="native", mode_source="in-process")
        if mode and mode != "auto":
            source = "option" if "structured" in cli else "config"
            return replace(endpoint, structured=mode, mode_source=source)
        return endpoint


def read_key(endpoint: Endpoint) -> str | None:
    """The key of an endpoint from its variable or file, at call time; None when not named."""
    if endpoint.api_key_env:
        return os.environ.get(endpoint.api_key_env)
    if endpoint.api_key_file:
        try:
            return Path(endpoint.api_key_file).read_text("utf-8").strip() or None
        except OSError:
            return None
    return None
