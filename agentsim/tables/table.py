"""The data of a table: its columns, its rows and its notes, before any format.

A :class:`Table` holds numbers, never text made from them: each format
(:mod:`agentsim.tables.formats`) decides how a share or an interval is written. CSV writes every
value as it is (shares as fractions 0–1, intervals as their own columns); the formats for
reading (rich, Markdown, LaTeX) write shares as percentages and an estimate with its interval
in one cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["text", "count", "share", "number", "signed", "p"]


@dataclass(frozen=True)
class Column:
    """One column: ``key`` in each row, ``label`` its header in the formats for reading.

    ``kind`` says how its values read: ``text``, ``count`` (an integer), ``share`` (a fraction,
    written as a percentage for reading), ``number``, ``signed`` (a difference, written with its
    sign) or ``p`` (a p-value). ``low``/``high`` name the row keys of its interval, which CSV
    writes as columns of their own; ``interval`` says whether the formats for reading show it
    beside the value. ``csv``/``shown``: whether CSV, and the formats for reading, have the
    column at all.
    """

    key: str
    label: str
    kind: Kind = "text"
    low: str | None = None
    high: str | None = None
    interval: bool = True
    csv: bool = True
    shown: bool = True

    @property
    def csv_keys(self) -> list[str]:
        """The CSV columns it fills: its key, then its interval's bounds."""
        if not self.csv:
            return []
        return [self.key] + [k for k in (self.low, self.high) if k]


@dataclass
class Table:
    """A table of one layout over one or more runs.

    ``rows`` are dicts keyed by the columns' keys (and their intervals'); a missing or NaN value
    is an empty cell. ``sections``: the keys whose change of value starts a new block of rows
    (a rule between models, say). ``notes`` say how the numbers were made; ``runs`` the run
    folders read.
    """

    layout: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sections: tuple[str, ...] = ()
    runs: list[str] = field(default_factory=list)

    def csv_columns(self) -> list[str]:
        """The header of the CSV: every column's keys, in order."""
        return [key for column in self.columns for key in column.csv_keys]

    def shown_columns(self) -> list[Column]:
        """The columns the formats for reading show."""
        return [c for c in self.columns if c.shown]

    def frame(self) -> Any:
        """The rows as a pandas DataFrame with the CSV's columns (for notebooks)."""
        import pandas as pd

        return pd.DataFrame([{k: clean(row.get(k)) for k in self.csv_columns()}
                             for row in self.rows], columns=self.csv_columns())


def clean(value: Any) -> Any:
    """None for a missing or NaN value, else the value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def estimate_fields(prefix: str, estimate: Any) -> dict[str, Any]:
    """An estimate (an :class:`~agentsim.stats.inference.Estimate` or its dict in
    ``results.json``) as row fields: ``<prefix>``, ``<prefix>_ci_low``, ``<prefix>_ci_high``,
    ``<prefix>_n`` and ``<prefix>_p``; all None when there is no estimate."""
    if estimate is None:
        return {f"{prefix}{suffix}": None for suffix in ("", "_ci_low", "_ci_high", "_n", "_p")}
    data = estimate.as_dict() if hasattr(estimate, "as_dict") else dict(estimate)
    return {prefix: clean(data.get("value")), f"{prefix}_ci_low": clean(data.get("ci_low")),
            f"{prefix}_ci_high": clean(data.get("ci_high")), f"{prefix}_n": data.get("n"),
            f"{prefix}_p": clean(data.get("p"))}
