"""The limits of the files users hand to agentsim, and the error of going over one.

Limits and how to raise them (environment variable, default). Each can also be passed as a
keyword: ``Limits.from_env(depth=200)`` or ``Limits(...)`` to ``load_scenario(path, limits=...)``,
``load_scenarios``, ``load_agentclinic`` and ``read_yaml``. What is checked, and how, is in
:mod:`agentsim.scenario.safe_input` (which re-exports every name here).

=============================  ===========  ===================================================
variable                       default      what it bounds
=============================  ===========  ===================================================
AGENTSIM_MAX_FILE_BYTES        1 MiB        size of a YAML file (scenario, catalogue, rubric)
AGENTSIM_MAX_CASE_FILE_BYTES   64 MiB       size of a ``.jsonl`` file (case file, transcript)
AGENTSIM_MAX_STRING_CHARS      100,000      characters of one string (one YAML scalar / JSON
                                            string or key)
AGENTSIM_MAX_DEPTH             64           nesting of mappings and lists (with aliases
                                            expanded)
AGENTSIM_MAX_ALIASES           200          alias uses (``*name``) in one YAML file
AGENTSIM_MAX_NODES             100,000      values (scalars, mappings, lists) in one YAML
                                            document with aliases expanded, or in one JSON line
AGENTSIM_MAX_EXPANDED_CHARS    8 MiB        characters of all strings of one YAML document with
                                            aliases expanded
AGENTSIM_MAX_CASES             10,000       non-blank lines (cases) of one ``.jsonl`` file
=============================  ===========  ===================================================
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from agentsim.errors import InputError

__all__ = ["LimitExceeded", "Limits", "MiB", "env_name"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on input files; see the module docstring for each and its environment variable."""

    file_bytes: int = 1 * MiB
    case_file_bytes: int = 64 * MiB
    string_chars: int = 100_000
    depth: int = 64
    aliases: int = 200
    nodes: int = 100_000
    expanded_chars: int = 8 * MiB
    cases: int = 10_000

    @classmethod
    def from_env(cls, **overrides: int) -> Limits:
        """The defaults, replaced by ``AGENTSIM_MAX_<NAME>`` variables, then by ``overrides``."""
        values: dict[str, int] = {}
        for field in dataclasses.fields(cls):
            variable = env_name(field.name)
            raw = os.environ.get(variable)
            if raw is None or not raw.strip():
                continue
            try:
                value = int(raw.strip().replace("_", ""))
            except ValueError:
                raise InputError(f"must be a whole number, found {raw!r}",
                                 source=variable) from None
            if value < 1:
                raise InputError(f"must be at least 1, found {value}", source=variable)
            values[field.name] = value
        return cls(**{**values, **overrides})


def env_name(limit: str) -> str:
    """The environment variable of a limit field: ``depth`` → ``AGENTSIM_MAX_DEPTH``."""
    return f"AGENTSIM_MAX_{limit.upper()}"


def _raise_hint(limit: str) -> str:
    return f"set {env_name(limit)} to raise the limit"


class LimitExceeded(InputError):
    """An input over one of the :class:`Limits`; ``limit`` names it (e.g. ``depth``)."""

    def __init__(self, message: str, *, limit: str, **where: Any) -> None:
        self.limit = limit
        super().__init__(f"{message} ({_raise_hint(limit)})", **where)
