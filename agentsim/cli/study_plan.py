"""``agentsim study plan FILE`` (and ``study run --dry-run``): the plan of a study before
anything is paid for. Part of the command line (see :mod:`agentsim.cli.study`); the numbers
come from :func:`agentsim.studies.estimate.estimate_plan`, this module only renders them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agentsim.cli.common import console as _console
from agentsim.cli.common import escape as _escape
from agentsim.cli.common import print_json as _print_json


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``study plan``."""
    from agentsim.cli.checks import path as _path
    from agentsim.cli.study import add_design_overrides

    parser.add_argument("file", type=Path, metavar="FILE", help="a study file")
    add_design_overrides(parser)
    parser.add_argument("--models-config", type=_path, metavar="FILE",
                        help="a models config (limits, prices) for a study without one")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def cmd_study_plan(args: argparse.Namespace) -> int:
    """Print the study's plan: cells, conversations, calls, tokens, cost and time, without
    calling any model. ``study run --dry-run`` passes its own arguments: its run-time options
    (models config, per-model limits) count, the others are not read."""
    from agentsim.cli.study import open_study_of, run_time_options
    from agentsim.studies.estimate import estimate_plan

    study = open_study_of(args)
    given = run_time_options(args)
    plan = estimate_plan(study, given)
    data = {"study": study.id, **plan.as_data()}
    if getattr(args, "json", False):
        _print_json(data)
        return 0
    print_plan(_console(), data)
    return 0


def _money(value: Any) -> str:
    return "unknown" if value == "unknown" else f"${value:,.4f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not bounded by a limit"
    if seconds < 120:
        return f"≥ {seconds:.0f} s"
    if seconds < 7200:
        return f"≥ {seconds / 60:.1f} min"
    return f"≥ {seconds / 3600:.1f} h"


def print_plan(console: Any, data: dict[str, Any]) -> None:
    """The plan as tables: the cells, then each model's calls, tokens, cost and time."""
    from rich.table import Table

    cells = data["cells"]
    console.print(f"[bold]Plan of study {_escape(data['study'])}[/]: {len(cells)} cells, "
                  f"{data['conversations']} conversations, {data['model_calls']} model calls "
                  "(no model was called)")
    table = Table(title="Cells (model × setting × arm)", title_justify="left")
    for column in ("model", "setting", "arm", "conversations", "model calls"):
        table.add_column(column, justify="right" if " " in column or column ==
                         "conversations" else "left", no_wrap=True)
    for cell in cells:
        table.add_row(_escape(cell["model"]), _escape(cell["setting"] or "—"),
                      _escape(cell["arm"]), str(cell["conversations"]),
                      str(cell["model_calls"]))
    console.print(table)
    table = Table(title="Per model (tokens; time the rpm/tpm limits allow)",
                  title_justify="left")
    for column in ("model", "calls", "prompt", "completion", "cost", "time"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, row in data["models"].items():
        calls = str(row["calls"]) + (f" (≤ {row['calls_max']})"
                                     if row["calls_max"] != row["calls"] else "")
        price = row["price"]
        table.add_row(
            _escape(name), calls, f"{row['prompt_tokens']:,}",
            f"{row['completion_tokens']:,} (≤ {row['completion_tokens_max']:,})",
            ("unknown price" if price is None else _money(row["cost"])
             + ("" if row["cost_max"] == row["cost"] else f" (≤ {_money(row['cost_max'])})")
             + ("" if price["source"] == "litellm" else f", {_escape(price['source'])}")),
            "no limit" if row["seconds"] is None else _duration(row["seconds"]))
    console.print(table)
    tokens, cost = data["tokens"], data["cost"]
    calls = f"{data['model_calls']:,}" + (f" (at most {data['model_calls_max']:,})"
                                         if data["model_calls_max"] != data["model_calls"]
                                         else "")
    console.print(f"Model calls: {calls}; tokens: {tokens['prompt']:,} prompt + "
                  f"{tokens['completion']:,} completion (at most {tokens['completion_max']:,})")
    console.print(f"Cost: {_money(cost['total'])}"
                  + ("" if cost["total_max"] in (cost["total"], "unknown")
                     else f" (at most {_money(cost['total_max'])})")
                  + f"; time: {_duration(data['time']['seconds_at_least'])}"
                  + (f" ({', '.join(data['time']['not_bounded'])} not bounded by a limit)"
                     if data["time"]["seconds_at_least"] is not None
                     and data["time"]["not_bounded"] else ""), soft_wrap=True)
    if data.get("max_cost") is not None:
        limit, estimate = data["max_cost"], cost["total"]
        verdict = ("the cost is unknown" if estimate == "unknown" else
                   "the estimate reaches it: the run will stop early (resumable)"
                   if estimate >= limit else "the estimate is within it")
        console.print(f"Spending limit: {_money(limit)}; {verdict}")
    for note in data["notes"]:
        console.print(f"[dim]{_escape(note)}[/]", soft_wrap=True)
    for warning in data["warnings"]:
        console.print(f"[yellow]warning:[/] {_escape(warning)}", soft_wrap=True)
