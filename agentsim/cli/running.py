"""``agentsim run`` and ``agentsim compare``: the API's run functions with a progress bar,
then the results as terminal tables or one JSON object, and the run's HTML report (its path
printed last; ``report`` in the JSON). Part of the command line
(see :mod:`agentsim.cli.main`).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from agentsim.cli.common import console as _console
from agentsim.cli.common import escape as _escape
from agentsim.cli.common import print_json as _print_json
from agentsim.cli.report import write_report
from agentsim.cli.run_args import run_settings

__all__ = ["SMALL_MODEL_NOTE", "cmd_compare", "cmd_run", "run_payload"]

SMALL_MODEL_NOTE = (
    "Note: the embedded SmolLM2-135M model is a smoke test of the pipeline, not a finding about "
    "bias in language models; use a larger model for evidence."
)


@contextlib.contextmanager
def _progress(args: argparse.Namespace, console: Any) -> Iterator[dict[str, Any]]:
    """A progress bar (none with --json, whose stdout is the JSON) and the hooks of the API's
    run functions that drive it and print warnings."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                        disable=args.json)
    task: dict[str, Any] = {}

    def on_start(total: int) -> None:
        task["id"] = progress.add_task("conversations", total=total)

    def on_done(job: Any, ok: bool) -> None:
        progress.advance(task["id"])

    def on_warning(text: str) -> None:
        console.print(f"[yellow]warning:[/] {_escape(text)}", soft_wrap=True)

    with progress:
        yield {"on_start": on_start, "on_done": on_done, "on_warning": on_warning}


def _small_model_note(console: Any, args: argparse.Namespace) -> None:
    models = {args.model, *dict(args.role).values()}
    if args.model is None or any(m.startswith("local/smollm2") for m in models if m):
        console.print(f"[yellow]{SMALL_MODEL_NOTE}[/]")


def run_payload(summary: Any, records: bool = True) -> dict[str, Any]:
    """The JSON object of a finished run (``run --json``; ``compare --json`` adds its
    comparison to it and goes without ``records``)."""
    from agentsim.cli.reporting import records_data

    results = summary.results
    return {"run_dir": str(summary.run_dir), "conversations": summary.conversations,
            "failed": summary.failed, "errors": summary.errors,
            "failures": results.get("failures", {}), "not_run": summary.not_run,
            "stopped": summary.stopped, "exit_status": summary.exit_status,
            "warnings": summary.warnings, "parsing": results.get("parsing", {}),
            "usage": results.get("usage", {}),
            "metrics": results["metrics"], "counts": results["counts"],
            **({"records": records_data(results)} if records else {})}


def cmd_run(args: argparse.Namespace) -> int:
    """Run scenarios, judge them and print metrics (or JSON)."""
    from agentsim import api

    console = _console(stderr=args.json)
    with _progress(args, console) as hooks:
        summary = api.run(args.paths, mitigation=args.mitigation, **run_settings(args),
                          **hooks).summary
    if args.json:
        report = write_report(summary.run_dir, console, json_mode=True)
        _print_json(run_payload(summary) | {"report": str(report) if report else None})
    else:
        from agentsim.cli.reporting import print_run_summary

        print_run_summary(console, summary)
        _small_model_note(console, args)
        write_report(summary.run_dir, console)  # its path is the last line
    return summary.exit_status


def cmd_compare(args: argparse.Namespace) -> int:
    """Run every arm in one run folder, compare each with the control, write the comparison
    (``comparison.json``) and its forest plot (``forest.png``/``.svg``) into the folder."""
    from agentsim import api
    from agentsim.analysis.compare import COMPARISON_FILE, comparison_as_data, comparison_tables

    console = _console(stderr=args.json)
    with _progress(args, console) as hooks:
        made = api.compare(args.paths, arms=args.arms, control=args.control,
                           models=args.models, settings=args.settings,
                           **run_settings(args), **hooks)
    summary, comparison, plots = made.summary, made.comparison, made.plots
    if args.json:
        report = write_report(summary.run_dir, console, json_mode=True)
        _print_json({**run_payload(summary, records=False),
                     "comparison": comparison_as_data(comparison),
                     "plots": [str(p) for p in plots],
                     "report": str(report) if report else None})
        return summary.exit_status
    for table in comparison_tables(comparison):
        console.print(table)
    failed = f"{summary.failed} failed" if summary.failed else "none failed"
    cells = "; ".join(f"{len(levels)} {factor}s: {', '.join(levels)}"
                      for factor, levels in comparison["levels"].items())
    console.print(f"{summary.conversations} conversations ({failed}) in {cells}")
    for note in comparison["notes"]:
        console.print(f"[dim]{_escape(note)}[/]")
    console.print(f"Comparison: [bold]{summary.run_dir / COMPARISON_FILE}[/]")
    console.print("Plots: " + ", ".join(str(p) for p in plots))
    if summary.failed or summary.not_run:
        from agentsim.cli.reporting import print_run_summary

        print_run_summary(console, summary)
    console.print(f"Run folder: [bold]{summary.run_dir}[/]")
    _small_model_note(console, args)
    write_report(summary.run_dir, console)  # its path is the last line
    return summary.exit_status
