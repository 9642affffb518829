"""The papers' tables, made from run folders (``agentsim table``).

Layouts (:data:`LAYOUTS`):

* ``borah-table1`` — Borah & Mihalcea (2024), Table 1: per model × setting × response the
  shares of neutral, stereotypical and anti-stereotypical assignments and the bias score with
  its interval (:mod:`agentsim.tables.borah`); ``by="domain"`` adds a row per domain;
* ``agentclinic-bias`` — AgentClinic: accuracy and normalised accuracy per injected bias,
  grouped doctor / patient and cognitive / implicit, with group averages
  (:mod:`agentsim.tables.clinical`);
* ``mitigation`` — each arm's level and paired delta against the control arm, measure by
  measure (:mod:`agentsim.tables.mitigation`).

Several run folders make one table when they share a design (one run per model, made on
different days, say); otherwise :func:`make_table` raises an :class:`~agentsim.errors.InputError`
naming what differs. Formats (:data:`FORMATS`): ``csv`` (shares as fractions 0–1, intervals in
their own columns), ``markdown``, ``latex`` (booktabs) and ``rich`` (shares as percentages).

    from agentsim.tables import make_table, render
    table = make_table(["runs/a", "runs/b"], "borah-table1")
    print(render(table, "markdown"))
    table.frame()  # a pandas DataFrame with the CSV's columns
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agentsim.errors import InputError
from agentsim.tables.formats import FORMATS, RENDERERS, rich_table
from agentsim.tables.table import Column, Table

__all__ = ["BY", "FORMATS", "LAYOUTS", "Column", "Table", "make_table", "render", "rich_table"]

LAYOUTS = ("borah-table1", "agentclinic-bias", "mitigation")
BY = ("domain",)  # the breakdowns a layout may add (borah-table1 only)


def make_table(run_dirs: Sequence[str | Path] | str | Path, layout: str,
               by: str | None = None) -> Table:
    """The table ``layout`` over one or more run folders that share a design.

    ``by="domain"`` breaks ``borah-table1`` down by the scenarios' domain. Bad input (an
    unknown layout, runs of different designs, a run without the results a layout reads) raises
    :class:`~agentsim.errors.InputError` with one message.
    """
    from agentsim.tables.runs import open_runs

    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})",
                         source="--layout")
    if by is not None and (by not in BY or layout != "borah-table1"):
        raise InputError(f"--by {by} is not a breakdown of {layout} (borah-table1 takes --by "
                         "domain)", source="--by")
    paths = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
    runs = open_runs(paths)
    if layout == "borah-table1":
        from agentsim.tables.borah import borah_table

        return borah_table(runs, by)
    if layout == "agentclinic-bias":
        from agentsim.tables.clinical import clinical_table

        return clinical_table(runs)
    from agentsim.tables.mitigation import mitigation_table

    return mitigation_table(runs)


def render(table: Table, format: str = "markdown") -> str:
    """The table as text in ``format``: csv, markdown, latex or rich (plain text)."""
    if format not in RENDERERS:
        raise InputError(f"unknown format {format!r} (known: {', '.join(FORMATS)})",
                         source="--format")
    return RENDERERS[format](table)
