"""The 'resume' command: finish a run that was killed (see agentsim.runs.resume)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agentsim.cli.common import console as _console
from agentsim.cli.common import print_json as _print_json


def add_resume_parser(commands: argparse._SubParsersAction) -> None:
    """The 'resume' command's arguments."""
    resume = commands.add_parser("resume", help="finish a run that was interrupted or killed")
    resume.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    resume.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    resume.add_argument("--no-retry-failed", dest="retry_failed", action="store_false",
                        help="run only unfinished conversations, not failed ones")
    resume.add_argument("--skip-bad-lines", action="store_true",
                        help="go on past corrupt or invalid lines of events.jsonl (counted and "
                        "reported); without it a damaged log is an error naming the line")
    from agentsim.api import NUMBERS
    from agentsim.cli.checks import number as _number

    resume.add_argument("--max-cost", type=_number(*NUMBERS["max_cost"]), metavar="USD",
                        help="the spending limit from now on, over the run's own (the spend "
                        "already logged counts); stops again once reached, exit status 3")


def cmd_resume(args: argparse.Namespace) -> int:
    """Run only the conversations that did not finish, then judge the whole run."""
    from agentsim import api
    from agentsim.cli.report import write_report
    from agentsim.cli.reporting import print_run_summary, records_data

    console = _console(stderr=args.json)
    state: dict[str, Any] = {}

    def on_start(remaining: int, done: int) -> None:
        state.update(remaining=remaining, done=done)
        console.print(f"{done} conversations already done; running {remaining}")

    def on_warning(text: str) -> None:
        console.print(f"[yellow]warning:[/] {text}", soft_wrap=True, markup=False)

    summary = api.resume(args.run_dir, retry_failed=args.retry_failed,
                         skip_bad_lines=args.skip_bad_lines, on_start=on_start,
                         on_warning=on_warning,
                         max_cost=getattr(args, "max_cost", None)).summary
    if args.json:
        report = write_report(summary.run_dir, console, json_mode=True)
        _print_json({"run_dir": str(summary.run_dir), "conversations": summary.conversations,
                     "failed": summary.failed, "resumed": state.get("remaining", 0),
                     "errors": summary.errors, "exit_status": summary.exit_status,
                     "skipped_lines": summary.skipped_lines,
                     "metrics": summary.results["metrics"],
                     "records": records_data(summary.results),
                     "report": str(report) if report else None})
    else:
        print_run_summary(console, summary)
        write_report(summary.run_dir, console)  # its path is the last line
    return summary.exit_status
