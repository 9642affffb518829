"""Model names: litellm names plus agentsim's ``local/<name>`` and ``scripted/<profile>?knobs``."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from agentsim.errors import ModelNameError

DEFAULT_MODEL = "local/smollm2-135m-instruct"


def in_process_providers() -> frozenset[str]:
    """Providers answered inside agentsim: the embedded llama.cpp one ('local') and every
    registered in-process provider (the scripted test models, a plugin's)."""
    from agentsim.registry import REGISTRY

    return frozenset({"local", *REGISTRY.names("provider")})


@dataclass(frozen=True)
class ModelName:
    """A parsed model name: ``provider/name?knob=value&...``."""

    provider: str
    name: str
    knobs: dict[str, str] = field(default_factory=dict, hash=False)
    raw: str = ""

    @property
    def is_ours(self) -> bool:
        """True for the in-process providers (local, scripted)."""
        return self.provider in in_process_providers()

    def knob(self, key: str, default: float) -> float:
        """A numeric knob, with a clear error when it is not a number."""
        if key not in self.knobs:
            return default
        try:
            return float(self.knobs[key])
        except ValueError:
            raise ModelNameError(
                f"knob {key}={self.knobs[key]!r} is not a number", source=self.raw
            ) from None


def parse_model_name(raw: str) -> ModelName:
    """Split a model name into provider, name and knobs (knobs only for agentsim providers)."""
    raw = raw.strip()
    if "/" not in raw:
        raise ModelNameError(
            "model names look like 'provider/name' (e.g. openai/gpt-4o-mini, "
            "local/smollm2-135m-instruct, scripted/stereotyped?rate=0.5)",
            source=raw or "<empty model name>",
        )
    provider, rest = raw.split("/", 1)
    if not provider:
        raise ModelNameError("model name has an empty provider before '/'", source=raw)
    knobs: dict[str, str] = {}
    if "?" in rest and provider in in_process_providers():
        rest, query = rest.split("?", 1)
        knobs = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False))
    if not rest:
        raise ModelNameError("model name is empty after the provider", source=raw)
    return ModelName(provider=provider, name=rest, knobs=knobs, raw=raw)
