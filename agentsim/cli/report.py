"""The 'report' command: one self-contained HTML file of a run (see agentsim.report), and the
step that writes it into the run folder at the end of ``run``, ``compare`` and ``judge``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agentsim.cli.checks import path as _path
from agentsim.cli.common import console as _console
from agentsim.cli.common import escape as _escape
from agentsim.cli.common import print_json as _print_json


def add_report_parser(commands: argparse._SubParsersAction) -> None:
    """The 'report' command's arguments."""
    report = commands.add_parser("report", help="write a run's HTML report: overview, plots "
                                 "and a browser of its conversations (one file, no network)")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    report.add_argument("--out", type=_path, metavar="FILE",
                        help="where to write it (default RUN_DIR/report.html)")
    report.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report and print its path (the last line of the output)."""
    from agentsim import api

    path = api.report(args.run_dir, out=args.out)
    if args.json:
        _print_json({"run_dir": str(args.run_dir), "report": str(path),
                     "bytes": path.stat().st_size})
    else:
        _console().print(f"Report: {_escape(str(path))}", soft_wrap=True, highlight=False)
    return 0


def write_report(run_dir: Path, console: Any, json_mode: bool = False) -> Path | None:
    """The report of a run just made or judged, in its folder; its path is printed last
    (on stderr with ``--json``, whose stdout is the JSON). A report that cannot be made is a
    warning: the run and its results stand without it."""
    from agentsim import api
    from agentsim.errors import AgentsimError

    try:
        path = api.report(run_dir)
    except (AgentsimError, OSError) as error:
        console.print(f"[yellow]warning:[/] no report written ({_escape(str(error))})",
                      soft_wrap=True)
        return None
    if not json_mode:
        console.print(f"Report: {_escape(str(path))}", soft_wrap=True, highlight=False)
    return path
