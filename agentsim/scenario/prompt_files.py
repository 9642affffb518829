"""Prompt files: every prompt of a protocol in one YAML file a user can copy, edit and pass.

A protocol's settings model declares its prompts (``prompt_spec``: each prompt's name, purpose
and the placeholders it may use) and its shipped prompt file (``prompt_file``, package data).
A run uses the shipped prompts, with over them those of a preset, of ``--prompts FILE`` or of
the scenario's own ``protocol.prompts`` mapping. A prompt file::

    protocol: discussion            # the protocol whose prompts these are
    source: |                       # optional: where quoted published text comes from
      Borah & Mihalcea (2024), scenes_discussion_newtasks.py lines 119-121
    prompts:
      first_decision: "{identity} Before talking with the others, ... {answer_format}"

Templates are the inert ``{name}`` language of :mod:`agentsim.scenario.templates`. A file may
give only some prompts; the others stay the shipped ones. A prompt the protocol does not have,
or a placeholder its prompt does not take, is an error naming the file and the field.

The prompts a scenario runs with are part of its protocol settings, so the manifest (which keeps
every scenario as it ran) keeps them, and a resume or a fork runs the same prompts even when the
file changed or is gone; the manifest also records their sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from agentsim.errors import InputError
from agentsim.resources import asset
from agentsim.scenario.safe_input import load_yaml_file, parse_yaml
from agentsim.scenario.templates import TemplateError, check, fill

__all__ = ["PromptSet", "PromptTemplate", "check_prompts", "read_prompt_file", "prompt_set_for",
           "shipped_prompts"]

FILE_KEYS = {"protocol", "source", "description", "prompts"}


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt a protocol has: what it is for and the placeholders it may use."""

    purpose: str
    placeholders: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PromptSet:
    """The prompts a protocol's conversations use: name → template text."""

    protocol: str
    texts: Mapping[str, str]
    sha256: str = field(default="")

    def __post_init__(self) -> None:
        if not self.sha256:
            data = json.dumps(dict(sorted(self.texts.items())), ensure_ascii=False)
            object.__setattr__(self, "sha256", hashlib.sha256(data.encode()).hexdigest())

    def fill(self, prompt: str, /, **values: Any) -> str:
        """Prompt ``prompt`` with its placeholders filled in (positional: a placeholder may
        be called ``prompt`` or ``name``)."""
        try:
            return fill(self.texts[prompt], values)
        except TemplateError as error:  # a protocol bug: the texts were checked at load
            raise TemplateError(f"prompt {prompt!r} of {self.protocol!r}: {error}") from None


def check_prompts(spec: Mapping[str, PromptTemplate], texts: Mapping[str, Any],
                  where: str = "protocol.prompts") -> None:
    """ValueError naming the prompt when ``texts`` holds a prompt ``spec`` does not declare,
    a text that is not a string, or a placeholder its prompt does not take."""
    for name, text in texts.items():
        if name not in spec:
            known = ", ".join(sorted(spec)) or "none: this protocol has no prompts of its own"
            raise ValueError(f"{where}.{name}: no such prompt (prompts: {known})")
        if not isinstance(text, str):
            raise ValueError(f"{where}.{name}: a prompt is a text")
        check(text, spec[name].placeholders, f"{where}.{name}")


def read_prompt_file(path: str | Path | Any, protocol: str,
                     spec: Mapping[str, PromptTemplate]) -> tuple[dict[str, str], str | None]:
    """The prompts of a prompt file (a path, or shipped package data) and its citation; an
    InputError naming the file and the field for anything wrong."""
    where = str(path)
    if isinstance(path, (str, Path)):
        data = load_yaml_file(Path(path))
    else:  # shipped package data
        data = parse_yaml(path.read_text(encoding="utf-8"), Path(where))
    if not isinstance(data, dict):
        raise InputError("a prompt file is a mapping with 'protocol' and 'prompts'", source=where)
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        raise InputError(f"unknown key (a prompt file has {', '.join(sorted(FILE_KEYS))})",
                         source=where, field=unknown[0])
    if data.get("protocol") != protocol:
        raise InputError(f"these are prompts of protocol {data.get('protocol')!r}, not of "
                         f"{protocol!r}", source=where, field="protocol")
    prompts = data.get("prompts")
    if not isinstance(prompts, dict) or not prompts:
        raise InputError("'prompts' must map prompt names to texts", source=where,
                         field="prompts")
    try:
        check_prompts(spec, prompts, "prompts")
    except (ValueError, TemplateError) as error:
        field_name, _, message = str(error).partition(": ")
        raise InputError(message, source=where, field=field_name) from None
    source = data.get("source")
    if source is not None and not isinstance(source, str):
        raise InputError("'source' is a text", source=where, field="source")
    return dict(prompts), source


def prompt_file_protocol(path: str | Path) -> str:
    """The protocol a prompt file names (InputError when it names none)."""
    data = load_yaml_file(Path(path))
    protocol = data.get("protocol") if isinstance(data, dict) else None
    if not isinstance(protocol, str):
        raise InputError("a prompt file names its protocol ('protocol: discussion')",
                         source=path, field="protocol")
    return protocol


@lru_cache(maxsize=16)
def shipped_prompts(package: str, name: str, protocol: str) -> dict[str, str]:
    """The shipped prompt file of a protocol (every prompt it declares must be there)."""
    from agentsim.scenario.protocol_settings import settings_model

    spec = settings_model(protocol).prompt_spec
    texts, _ = read_prompt_file(asset(package, "prompts", name), protocol, spec)
    missing = sorted(set(spec) - set(texts))
    if missing:  # a packaging bug, found by the tests
        raise InputError(f"missing prompt(s) {missing}", source=f"{package}/prompts/{name}")
    return texts


def prompt_set_for(settings: Any) -> PromptSet:
    """The prompt set of a protocol's settings: shipped prompts with the settings' over them."""
    return _cached_set(type(settings).__name__, settings.name,
                       tuple(sorted(settings.prompts.items())), type(settings).prompt_file)


@lru_cache(maxsize=64)
def _cached_set(_model: str, protocol: str, given: tuple[tuple[str, str], ...],
                shipped: tuple[str, str] | None) -> PromptSet:
    texts = shipped_prompts(*shipped, protocol) if shipped else {}
    return PromptSet(protocol, {**texts, **dict(given)})
