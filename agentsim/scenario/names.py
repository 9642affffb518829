"""The shipped list of first names and their usual gender, used to read a character's gender from
a name (importers) and to draw counterfactual names (variants)."""

from __future__ import annotations

import csv
import io
from functools import lru_cache

from agentsim.errors import InputError
from agentsim.resources import asset

NAME_LIST = asset("agentsim.scenario", "data", "first_names.csv")


@lru_cache(maxsize=1)
def first_names() -> dict[str, str]:
    """The shipped name list as {case-folded first name: 'man' | 'woman'}."""
    names: dict[str, str] = {}
    rows = csv.DictReader(io.StringIO(NAME_LIST.read_text(encoding="utf-8")))
    for line, row in enumerate(rows, start=2):
        name, gender = row["name"].strip().casefold(), row["gender"].strip()
        if gender not in {"man", "woman"} or names.get(name, gender) != gender:
            raise InputError(f"bad or conflicting entry {row}", source=str(NAME_LIST), line=line)
        names[name] = gender
    return names
