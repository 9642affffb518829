"""The 'table' command: the papers' tables from one or more run folders (see agentsim.tables)."""

from __future__ import annotations

import argparse
from pathlib import Path

from agentsim.cli.checks import path as _path
from agentsim.cli.common import console as _console
from agentsim.cli.common import escape as _escape

LAYOUTS = ("borah-table1", "agentclinic-bias", "mitigation")  # agentsim.tables.LAYOUTS
FORMATS = ("rich", "csv", "markdown", "latex")  # agentsim.tables.FORMATS


def add_table_parser(commands: argparse._SubParsersAction) -> None:
    """The 'table' command's arguments."""
    table = commands.add_parser(
        "table", help="a paper's table from run folders (Borah Table 1, AgentClinic biases, "
        "mitigations), as rich, CSV, Markdown or LaTeX",
        description="Make a paper's table from one or more run folders. Several folders (one "
        "per model, say) combine when they share a design (scenarios by hash, variants, "
        "replicates, seed, presets and prompts, settings, arms, biases); rows are labelled "
        "by each run's model or its study's labels. CSV writes shares as fractions 0-1 and "
        "each interval bound as a column of its own (ci_low, ci_high); the other formats "
        "write shares as percentages.")
    table.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN")
    table.add_argument("--layout", required=True, choices=LAYOUTS,
                       help="borah-table1: label shares and bias score per model x setting x "
                       "response; agentclinic-bias: accuracy and normalised accuracy per "
                       "injected bias; mitigation: each arm's paired delta against the control")
    table.add_argument("--format", default="rich", choices=FORMATS,
                       help="rich (terminal, default), csv (analysis: fractions), markdown "
                       "(READMEs), latex (booktabs)")
    table.add_argument("--by", choices=("domain",),
                       help="borah-table1: add a row per scenario domain")
    table.add_argument("--out", type=_path, metavar="FILE",
                       help="write the table to FILE (default: stdout)")


def cmd_table(args: argparse.Namespace) -> int:
    """Make the table and print it (or write it to --out and say where)."""
    from agentsim.tables import make_table, render, rich_table

    table = make_table(args.run_dirs, args.layout, by=args.by)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render(table, args.format), encoding="utf-8")
        _console(stderr=True).print(f"Table: {_escape(str(args.out))} ({len(table.rows)} rows)",
                                    soft_wrap=True)
        return 0
    if args.format == "rich":
        _console().print(rich_table(table))
        return 0
    import sys

    sys.stdout.write(render(table, args.format))
    return 0
