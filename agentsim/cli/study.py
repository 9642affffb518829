"""``agentsim study run|plan|power FILE``: a study file's design run into one folder, planned
before anything is paid for, and its power estimated. Part of the command line (see
:mod:`agentsim.cli.main`); ``plan`` is :mod:`agentsim.cli.study_plan`, ``power``
:mod:`agentsim.cli.study_power`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agentsim.cli.common import console as _console
from agentsim.cli.common import escape as _escape
from agentsim.cli.common import print_json as _print_json

__all__ = ["add_study_parser", "cmd_study"]


def add_study_parser(commands: Any) -> None:
    """The ``study`` command and its subcommands."""
    from agentsim.cli.run_args import _bounded, add_endpoint_options
    from agentsim.cli.checks import path as _path
    from agentsim.cli.study_plan import add_plan_arguments
    from agentsim.cli.study_power import add_power_arguments

    study = commands.add_parser("study", help="run, plan or size a study file (models x "
                                "settings x arms over the same scenarios and seeds)")
    actions = study.add_subparsers(dest="study_command", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="run every cell of the study into one run folder, "
                             "judge each cell, compare each factor with its control")
    run.add_argument("file", type=Path, metavar="FILE", help="a study file (e.g. "
                     "scenarios/studies/borah2024-table1.yaml)")
    run.add_argument("--out", type=_path, help="run folder (default runs/<run_id>)")
    run.add_argument("--concurrency", type=_bounded("concurrency"),
                     help="conversations in flight (default 1 with a local model, else 8)")
    run.add_argument("--executor", default="local", metavar="NAME",
                     help="local (default), processes or ray")
    run.add_argument("--ray-address", metavar="ADDRESS", help="the Ray --executor ray joins")
    run.add_argument("--no-cache", action="store_true",
                     help="do not read or write the cache of model calls")
    run.add_argument("--cache-dir", type=_path, help="cache folder")
    add_design_overrides(run)
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (cells, calls, tokens, cost, time) and run nothing")
    add_endpoint_options(run)
    run.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_plan_arguments(actions.add_parser(
        "plan", help="cells, conversations, model calls, tokens, cost and time of a study, "
        "without calling any model"))
    add_power_arguments(actions.add_parser(
        "power", help="replicates and scenarios needed to detect an effect, by simulation "
        "of the clustered design"))


def add_design_overrides(parser: argparse.ArgumentParser) -> None:
    """``--models``, ``--replicates``, ``--set``: a study's fields replaced for one run (and
    its plan), recorded in the manifest beside the file's hash."""
    from agentsim.cli.run_args import _bounded

    parser.add_argument("--models", metavar="NAME=MODEL,...",
                        help="replace the study's models for this run (recorded in the "
                        "manifest): the same design on other models, or a smoke test")
    parser.add_argument("--replicates", type=_bounded("replicates"),
                        help="replace the study's replicates for this run (recorded)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=YAML",
                        dest="sets", help="replace a field of the study for this run, e.g. "
                        "replicates=1 or 'scenarios=[../workplace/office-product-launch."
                        "yaml]' (a smoke test; recorded in the manifest)")


def open_study_of(args: argparse.Namespace) -> Any:
    """The study file of ``args`` with its design overrides applied."""
    from agentsim.studies import open_study

    return open_study(args.file, getattr(args, "models", None),
                      getattr(args, "replicates", None), getattr(args, "sets", None))


RUN_TIME_FLAGS = ("out", "concurrency", "executor", "ray_address", "no_cache", "cache_dir",
                  "no_probe", "max_failures", "max_cost", "models_config", "router_config")
PER_MODEL_FLAGS = ("api_base", "structured", "rpm", "tpm", "max_in_flight", "timeout",
                   "retries")


def run_time_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run-time options given on the command line (defaults left out)."""
    given: dict[str, Any] = {}
    for name in RUN_TIME_FLAGS:
        value = getattr(args, name, None)
        if value not in (None, False) and not (name == "executor" and value == "local"):
            given[name] = value
    for name in PER_MODEL_FLAGS:
        if getattr(args, name, None):
            given[name] = list(getattr(args, name))
    return given


def cmd_study(args: argparse.Namespace) -> int:
    """Dispatch ``agentsim study ACTION``."""
    if args.study_command == "plan" or (args.study_command == "run" and args.dry_run):
        from agentsim.cli.study_plan import cmd_study_plan

        return cmd_study_plan(args)
    if args.study_command == "power":
        from agentsim.cli.study_power import cmd_study_power

        return cmd_study_power(args)
    return cmd_study_run(args)


def cmd_study_run(args: argparse.Namespace) -> int:
    """Run a study file; print each cell's headline metrics and the factors' comparison."""
    from agentsim.cli.report import write_report
    from agentsim.cli.running import _progress, run_payload
    from agentsim.studies import run_study

    console = _console(stderr=args.json)
    with _progress(args, console) as hooks:
        made = run_study(args.file, models=args.models, replicates=args.replicates,
                         sets=args.sets, **run_time_options(args), **hooks)
    summary = made.summary
    if args.json:
        from agentsim.analysis.compare import comparison_as_data

        report = write_report(summary.run_dir, console, json_mode=True)
        comparison = made.comparison
        _print_json({**run_payload(summary, records=False),
                     "cells": summary.results.get("cells", []),
                     "comparison": comparison_as_data(comparison) if comparison else None,
                     "report": str(report) if report else None})
        return summary.exit_status
    print_cells(console, summary.results.get("cells", []))
    if made.comparison is not None:
        from agentsim.analysis.compare import comparison_tables

        for table in comparison_tables(made.comparison):
            console.print(table)
    from agentsim.cli.reporting import print_run_summary

    print_run_summary(console, summary)
    write_report(summary.run_dir, console)  # its path is the last line
    return summary.exit_status


HEADLINE = ("bias_first", "bias_last", "escalation", "flip_rate", "accuracy",
            "selection_gap")


def print_cells(console: Any, cells: list[dict[str, Any]]) -> None:
    """One row per cell: its factors, conversations and headline metrics with intervals."""
    from rich.table import Table

    if not cells:
        return
    shown = [m for m in HEADLINE if any(m in c["metrics"] for c in cells)]
    table = Table(title="Cells of the study", title_justify="left")
    for column in ("model", "setting", "arm", "n"):
        table.add_column(column, justify="right" if column == "n" else "left", no_wrap=True)
    for metric in shown:
        table.add_column(metric, justify="right")
    for cell in cells:
        row = [_escape(cell["model"]), _escape(cell["setting"]), _escape(cell["arm"]),
               str(cell["conversations"])]
        for metric in shown:
            found = cell["metrics"].get(metric)
            row.append("—" if not found or found.get("value") is None else
                       f"{found['value']:+.3f}\n[{found['ci_low']:+.2f}, {found['ci_high']:+.2f}]"
                       if found.get("ci_low") is not None else f"{found['value']:+.3f}")
        table.add_row(*row)
    console.print(table)
