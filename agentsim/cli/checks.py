"""Checks of the command line before anything runs: ranges of numeric options (the API's
tables), paths, fork-only options, and key-shaped values anywhere on the command line.

Every refusal is exit status 2 with a message naming the option. Options checked against the
scenarios being run (an option no scenario takes is refused, one only some take is a warning)
are checked by the API (:meth:`agentsim.api.RunSettings.applicable`), so a notebook gets the
same refusals as the command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The ranges of the run options are the API's (agentsim.api.NUMBERS); the commands that have
# no API function of their own take theirs from there too.
from agentsim.api import NUMBERS  # noqa: E402

MAX_REPLICATES = int(NUMBERS["replicates"][2])
MAX_TOKENS = int(NUMBERS["max_tokens"][2])
MAX_SEED = int(NUMBERS["seed"][2])


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
    if not _may_hold_key(argv):
        return
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


# The anchors of agentsim.models.client's key shapes (equal: tests/cli/test_startup.py).
KEY_ANCHORS = ("sk-", "pk-", "rk-", "AIza", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
               "xox", "AKIA", "Bearer ")


def _may_hold_key(argv: Sequence[str]) -> bool:
    """Whether any token could hold what :func:`agentsim.models.client.key_problem` refuses,
    decided without importing the model stack (slow: pydantic, sqlite3): a token needs the full
    check when it holds ``=`` (a query-string key), ``@`` (user:password@), a key anchor
    (sk-, Bearer ...), 32 or more characters (a long token) or the value of any environment
    variable of 8 or more characters (secret values are that long). Once the model stack is
    imported (secrets may be registered in it), every command line gets the full check."""
    import os
    import sys

    if "agentsim.models.client" in sys.modules:
        return True
    values = [value for value in os.environ.values() if len(value) >= 8]
    return any("=" in token or "@" in token or len(token) >= 32
               or any(anchor in token for anchor in KEY_ANCHORS)
               or any(value in token for value in values) for token in argv)


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
