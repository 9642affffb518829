"""Presets: published protocols as settings plus a prompt file, chosen by name.

``--preset borah2024`` (every scenario of the run) or ``preset: borah2024`` in a scenario's
``protocol:`` mapping runs the protocol as a publication ran it: the preset gives settings (what
each agent sees and when, rounds, length limits, sampling) and prompts (a prompt file quoting the
published prompts, with their sources); what the scenario's own mapping sets wins. A preset may
also give options of judges (``judges:``, e.g. the published bias rule), which a run uses when
the user gives that judge none.

A preset file (package data, ``agentsim/scenario/presets/<name>.yaml``)::

    id: borah2024
    protocol: discussion
    title: Borah & Mihalcea (2024), multi-agent task assignment
    source: MichiganNLP/MultiAgent_ImplicitBias @ 54cc8b5, Code/scenes_discussion_newtasks.py
    settings: {rounds: 2, speaking_order: fixed, ...}
    prompts: borah2024.prompts.yaml       # a prompt file beside it
    judges: {assignment_bias: {rule: published}}
    mitigations: {self_reflection: {placement: shared}}   # when an arm has it
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentsim.resources import asset
from agentsim.scenario.safe_input import parse_yaml

__all__ = ["Preset", "apply_preset", "load_preset", "preset_names"]


class Preset(BaseModel):
    """A published protocol's settings, prompts and judge options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="The name users choose it by.")
    protocol: str = Field(description="The protocol it configures.")
    title: str = Field(description="What it reproduces, in a few words.")
    source: str = Field(description="Where the published protocol is (code, commit, paper).")
    settings: dict[str, Any] = Field(default_factory=dict,
                                     description="Protocol settings as published.")
    prompts: str | None = Field(default=None, description="Its prompt file, beside it.")
    judges: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Judge options as published (judge → options).")
    bias_catalogue: str | None = Field(
        default=None, description="A bias catalogue shipped in agentsim/scenario/data/ (the "
        "published bias texts), used when the run names none (--bias-catalogue).")
    mitigations: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Mitigation options as published (mitigation → "
        "options), used when the run's arms include the mitigation.")


def preset_names() -> list[str]:
    """The shipped presets, by name."""
    folder = asset("agentsim.scenario", "presets")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml") and not p.name.endswith(".prompts.yaml"))


@lru_cache(maxsize=8)
def load_preset(name: str) -> Preset:
    """The shipped preset ``name``; ValueError naming the known ones."""
    if name not in preset_names():
        raise ValueError(f"unknown preset {name!r} (presets: {', '.join(preset_names())})")
    node = asset("agentsim.scenario", "presets", f"{name}.yaml")
    return Preset.model_validate(parse_yaml(node.read_text(encoding="utf-8"), str(node)))


@lru_cache(maxsize=8)
def preset_prompts(name: str) -> tuple[tuple[str, str], ...]:
    """The prompts of preset ``name``'s prompt file."""
    from agentsim.scenario.prompt_files import read_prompt_file
    from agentsim.scenario.protocol_settings import settings_model

    preset = load_preset(name)
    if preset.prompts is None:
        return ()
    node = asset("agentsim.scenario", "presets", preset.prompts)
    texts, _ = read_prompt_file(node, preset.protocol, settings_model(preset.protocol).prompt_spec)
    return tuple(texts.items())


def apply_preset(data: dict[str, Any]) -> dict[str, Any]:
    """A scenario's ``protocol:`` mapping with its preset's settings and prompts under it."""
    name = data.get("preset")
    if name is None:
        return data
    if not isinstance(name, str):
        raise ValueError(f"protocol.preset must be a preset's name, got {name!r}")
    preset = load_preset(name)
    protocol = data.get("name", "discussion")
    if preset.protocol != protocol:
        raise ValueError(f"protocol.preset: {name!r} is a preset of protocol "
                         f"{preset.protocol!r}, not of {protocol!r}")
    given = data.get("prompts") or {}
    if not isinstance(given, dict):
        raise ValueError("protocol.prompts must map prompt names to texts")
    return {**preset.settings, **data, "prompts": {**dict(preset_prompts(name)), **given}}
