"""Checks of the command line before anything runs: ranges of numeric options, options that do
not apply to the scenarios being run, and key-shaped values anywhere on the command line.

Every refusal is exit status 2 with a message naming the option. An option that applies to some
of the scenarios being run but not to others (``--bias`` on a folder mixing clinical and
workplace scenarios) is a warning — the run is reasonable, the option simply reaches fewer
scenarios than the user may think — recorded in the manifest and repeated by the summary.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Ranges of the run options. Rounds and doctor turns: what the scenario schema accepts
# (protocol.rounds 0-20, protocol.max_turns 1-100).
MAX_ROUNDS = 20
MAX_TURNS = 100
MAX_REPLICATES = 10_000
MAX_CONCURRENCY = 1_024
MAX_TOKENS = 1_000_000
MAX_SEED = 2**63 - 1


def number(kind: type, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> Any:
    """An argparse type: ``kind`` (int or float) between ``low`` and ``high`` (inclusive;
    ``low_open``: strictly above ``low``). The message names the option (argparse adds it)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if kind is float and value != value:  # NaN
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and value > high
        if too_low or too_high:
            if high is None:
                bounds = f"{'above' if low_open else 'at least'} {low:g}"
            elif low is None:
                bounds = f"at most {high:g}"
            else:
                bounds = f"between {low:g}{' (excluded)' if low_open else ''} and {high:g}"
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: must be {bounds}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def path(text: str) -> Path:
    """An argparse type for a path that must not be empty (``''`` would mean the current
    folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return Path(text)


def refuse_secrets(argv: Sequence[str]) -> None:
    """Refuse a key-shaped value anywhere on the command line, before anything is written
    (the manifest records the options). The message names the option, never the value."""
    from agentsim.errors import InputError
    from agentsim.models.client import key_problem

    for index, token in enumerate(argv):
        option, value = None, token
        if token.startswith("--") and "=" in token:
            option, value = token.split("=", 1)
        problem = key_problem(value)
        if problem is None:
            continue
        if option is None:
            previous = argv[index - 1] if index else ""
            option = previous if previous.startswith("-") else f"argument {index + 1}"
        raise InputError(
            f"this value holds what looks like a key ({problem}); a key on the command line "
            "would be written to the run's manifest and log. Give keys only through "
            "environment variables (OPENAI_API_KEY, ...) or a models config's api_key_env / "
            "api_key_file (see README, Running on your own servers)", source=option)


def _is_case_file(path: Path) -> bool:
    from agentsim.scenario.loader import CASE_FILE_SUFFIXES

    return path.suffix in CASE_FILE_SUFFIXES


def _share(some: int, total: int, kind: str) -> str:
    return f"{some} of the {total} scenarios {'is' if some == 1 else 'are'} {kind}"


def _all_protocols() -> list[str]:
    from agentsim.registry import REGISTRY

    return REGISTRY.names("protocol")


def applicable(args: argparse.Namespace, scenarios: Sequence[tuple[Path, Any]]) -> list[str]:
    """Refuse options that apply to none of the scenarios being run; return warnings for
    options that apply to some of them only."""
    from agentsim.errors import InputError

    from agentsim.orchestrator.kernel import plugin_for

    warnings: list[str] = []
    total = len(scenarios)
    protocols = [s.protocol.name for _, s in scenarios]

    def only(option: str, given: bool) -> None:
        # Each protocol says which run options it takes (ConversationProtocol.takes).
        if not given:
            return
        name = option.removeprefix("--").replace("-", "_")
        count = sum(1 for _, s in scenarios
                    if plugin_for(s.protocol.name).takes(name, s, args.setting))
        kind = " and ".join(n for n in _all_protocols() if name in plugin_for(n).options)
        if count == 0:
            raise InputError(f"applies to {kind} scenarios only, and none is being run "
                             f"({total} scenario(s): {', '.join(sorted(set(protocols)))}); "
                             "drop the option", source=option)
        if count < total:
            warnings.append(f"{option} applies to {kind} scenarios only: "
                            f"{_share(count, total, kind)}; the others run without it")

    only("--bias", bool(args.bias))
    only("--max-turns", args.max_turns is not None)
    only("--bias-catalogue", args.bias_catalogue is not None)
    if args.bias_catalogue is not None and not args.bias and not any(
            getattr(s.protocol, "biases", ()) for _, s in scenarios):
        raise InputError("no bias condition runs (no --bias, and no clinical scenario lists "
                         "protocol.biases), so the catalogue would not be read; add --bias or "
                         "drop the option", source="--bias-catalogue")
    only("--setting", args.setting is not None)
    only("--rounds", args.rounds is not None)
    if (args.cases or args.limit is not None) and not any(_is_case_file(p)
                                                          for p, _ in scenarios):
        option = "--cases" if args.cases else "--limit"
        raise InputError("selects cases of .jsonl case files, and no .jsonl file is being run; "
                         "drop the option (YAML scenarios are chosen by path or --tag)",
                         source=option)
    if args.vary and args.no_variants:
        raise InputError("--vary replaces the declared variants already; give one of "
                         "--vary and --no-variants", source="--no-variants")
    return warnings


FORK_OPTIONS = (("model", "--model"), ("role", "--role"), ("mitigation", "--mitigation"),
                ("set", "--set"), ("out", "--out"))


def fork_only(args: argparse.Namespace) -> None:
    """Options of ``replay`` that only a fork (``--from-turn``) uses are errors without it."""
    from agentsim.errors import InputError

    if args.from_turn is not None:
        return
    for dest, option in FORK_OPTIONS:
        if getattr(args, dest, None):
            raise InputError("applies to a fork only; add --from-turn K (and --conversation "
                             "ID) to continue a conversation from turn K", source=option)
    if args.replicates != 1:
        raise InputError("applies to a fork only; add --from-turn K", source="--replicates")
