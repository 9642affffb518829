"""What the conformance suite runs every plugin on, computed from the registry at collection time.

Nothing here names a plugin except where a plugin's own needs must be told (the scripted model
that plays a protocol's roles): a plugin registered tomorrow is collected by every contract of
its kind without a new test. Known bugs are xfail marks given per case by the test modules.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from agentsim.registry import REGISTRY
from agentsim.runs.runner import RunOptions
from agentsim.scenario import load_scenarios
from agentsim.scenario.schema import Scenario
from agentsim.scenario.variants import declared_variants

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "scenarios"

# The scripted profile that plays the roles of a protocol's conversations: the clinical profile
# answers as doctor, patient and moderator; ``stereotyped`` answers discussion turns,
# assignments and setup decisions (rank, pick, rate), so it serves every other protocol.
SCRIPTED = {"clinical": "scripted/clinical"}
DEFAULT_SCRIPTED = "scripted/stereotyped"
JUDGE_MODEL = "scripted/judge"  # the role 'judge' of LLM judges (rubric)


def options(**given: Any) -> RunOptions:
    """Run options of the suite: no judges (each contract calls the plugin it checks), no
    model cache (a second run must really run), no waiting between retries."""
    return RunOptions(**{"judges": (), "cache": False, "backoff_s": 0.0, **given})


def names(kind: str) -> list[str]:
    """The registered plugins of ``kind``: what every contract is parametrised over."""
    return REGISTRY.names(kind)


def scripted_model(protocol: str) -> str:
    """The scripted model that plays ``protocol``'s conversations."""
    return SCRIPTED.get(protocol, DEFAULT_SCRIPTED)


@cache
def shipped() -> dict[str, tuple[tuple[Path, Scenario], ...]]:
    """Shipped scenarios by protocol name; those declaring counterfactual variants first (so
    that judges pairing variants have pairs), then by path."""
    by_protocol: dict[str, list[tuple[Path, Scenario]]] = {}
    for path, scenario in load_scenarios([SHIPPED]):
        by_protocol.setdefault(scenario.protocol.name, []).append((path, scenario))
    return {name: tuple(sorted(items, key=lambda item: (len(declared_variants(item[1])) < 2,
                                                         str(item[0]))))
            for name, items in by_protocol.items()}


def shipped_of(protocol: str, count: int = 1) -> list[tuple[Path, Scenario]]:
    """The first ``count`` shipped scenarios of ``protocol``; a protocol without one fails
    its contracts with a message saying so."""
    found = list(shipped().get(protocol, ()))[:count]
    if not found:
        pytest.fail(f"protocol {protocol!r} has no shipped scenario under {SHIPPED}: ship one "
                    "so that the conformance suite can run it")
    return found


def settings_of(protocol: str) -> list[str | None]:
    """The settings a protocol declares (the Literal of its settings model's ``setting`` field,
    e.g. discussion's interaction, no-interaction and goal); [None] when it has none."""
    model = getattr(REGISTRY.get("protocol", protocol), "settings", None)
    field = getattr(model, "model_fields", {}).get("setting")
    values = typing.get_args(field.annotation) if field is not None else ()
    return list(values) or [None]


@dataclass(frozen=True)
class Kind:
    """A kind of conversation: a protocol in one of its settings."""

    protocol: str
    setting: str | None = None

    @property
    def id(self) -> str:
        """``protocol`` or ``protocol[setting]``."""
        return self.protocol if self.setting is None else f"{self.protocol}[{self.setting}]"


def kinds() -> list[Kind]:
    """Every registered protocol in every setting it declares."""
    return [Kind(name, setting) for name in names("protocol") for setting in settings_of(name)]


def basic_kind() -> Kind:
    """The kind of the runs that are about something else than a protocol (failures, an empty
    plan, one conversation, a fork): the discussion, in its first setting."""
    return next(kind for kind in kinds() if kind.protocol == "discussion")


# Runs that are not a protocol run: every conversation failed, no conversation at all, one
# conversation, a fork of that one (the only run the fork judge applies to), and a hand-written
# log whose every decision is unparsed.
EMPTY_RUNS = ("failed", "zero")


def judge_runs() -> list[str]:
    """The ids of every run a judge is run on."""
    return [*EMPTY_RUNS, "one", *(kind.id for kind in kinds()), "fork", "unparsed"]


def params(cases: Iterable[tuple[Any, ...]],
           bugs: Mapping[tuple[str, ...], str] | None = None) -> list[Any]:
    """pytest params of ``cases`` (tuples of plugin names / case ids; the id joins them), each
    case listed in ``bugs`` marked xfail(strict) with the bug's description."""
    out = []
    for case in cases:
        key = tuple(getattr(part, "id", part) for part in case)
        reason = (bugs or {}).get(key)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(*case, id="-".join(map(str, key)), marks=marks))
    return out
