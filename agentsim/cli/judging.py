"""Commands about judges and mitigations: list, re-judge, check a judge; browse runs.

Part of the command line (see agentsim.cli.main); heavy modules are imported inside the commands.
"""

from __future__ import annotations

import argparse
from typing import Any
from pathlib import Path

from agentsim.cli.checks import path as _path
from agentsim.cli.common import console as _console
from agentsim.cli.common import escape as _escape
from agentsim.cli.common import print_json as _print_json


def cmd_judges(args: argparse.Namespace) -> int:
    """List the judges with their one-line descriptions, from the registry's metadata (the
    built-ins' static table, entry points' names): no judge module is imported."""
    return _list_plugins("judge")


def _list_plugins(kind: str) -> int:
    from agentsim.registry import REGISTRY

    for name, description in REGISTRY.descriptions(kind).items():
        print(f"{name}: {description}")
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    """Re-judge a stored run; the previous results file is kept beside the new one; the run's
    report is written again."""
    from agentsim import api
    from agentsim.cli.report import write_report
    from agentsim.cli.reporting import print_metrics, print_skipped, records_data

    judged = api.judge(args.run_dir, judges=args.judges, roles=dict(args.role),
                       judge_arg=args.judge_arg, skip_bad_lines=args.skip_bad_lines)
    results, archived = judged.results, judged.previous_results
    if args.json:
        report = write_report(args.run_dir, _console(stderr=True), json_mode=True)
        _print_json({"run_dir": str(args.run_dir), "judges": results["judges"],
                     "previous_results": str(archived) if archived else None,
                     "metrics": results["metrics"], "records": records_data(results),
                     "counts": results["counts"], "failed": results["failed"],
                     "skipped_lines": results["skipped_lines"]["count"],
                     "report": str(report) if report else None})
        _warn_failed(_console(stderr=True), results)
        return 1 if results["failed"] else 0
    console = _console()
    print_metrics(console, results)
    print_skipped(console, results["skipped_lines"])
    previous = f" (previous: {archived})" if archived else ""
    console.print(f"Results: {args.run_dir / 'results.json'}{previous}")
    _warn_failed(console, results)
    write_report(args.run_dir, console)  # its path is the last line
    return 1 if results["failed"] else 0


def _warn_failed(console: Any, results: dict[str, Any]) -> None:
    """A run with failed conversations is judged on the others: say so (and exit 1, as the
    run did), so that no number of it passes for the whole run's."""
    failed = results.get("failed") or 0
    if failed:
        console.print(f"[yellow]warning:[/] {failed} conversation(s) of this run failed; the "
                      f"metrics cover the {results.get('conversations', 0)} that finished "
                      "(agentsim resume runs the failed ones again)",
                      soft_wrap=True)


def cmd_judge_check(args: argparse.Namespace) -> int:
    """Accuracy, agreement, consistency and robustness of a text-scoring judge."""
    from agentsim.errors import InputError
    from agentsim.judges.check import check_judge, load_borah, load_labelled
    from agentsim.models.client import check_model_name
    from agentsim.models.names import DEFAULT_MODEL
    from agentsim.cli.reporting import metrics_table

    if args.judge != "rubric":
        raise InputError(f"judge-check needs a judge that scores text; {args.judge!r} does not "
                         "(available: rubric)", source="JUDGE")
    from agentsim.judges.rubric_judge import RubricJudge
    from agentsim.runs.runner import RunOptions, build_client

    roles = dict(args.role)
    model = roles.pop("judge", DEFAULT_MODEL)
    if roles:
        raise InputError(f"unknown role(s) {sorted(roles)} (known: judge)", source="--role")
    check_model_name(model)
    items = load_borah(args.borah) if args.borah else (
        load_labelled(args.data) if args.data else load_labelled())
    items = items[: args.limit] if args.limit else items
    # The client a run of this judge model would call through (endpoints, cache, retries).
    client = build_client(RunOptions(model=model, roles={"judge": model}))
    report = check_judge(RubricJudge(rubric=args.rubric, client=client), model, items,
                         args.threshold)
    if args.json:
        _print_json(report)
        return 0
    console = _console()
    console.print(metrics_table(report["metrics"], title=f"judge-check: rubric on {model}"))
    console.print(f"{report['items']} items ({report['labels']['bias']} bias, "
                  f"{report['labels']['no_bias']} no bias); unreadable verdicts: "
                  f"{report['unreadable']}; threshold {report['threshold']}")
    return 0


def cmd_mitigations(args: argparse.Namespace) -> int:
    """List the mitigations with their one-line descriptions, from the registry's metadata
    (no mitigation module is imported)."""
    return _list_plugins("mitigation")


def cmd_runs(args: argparse.Namespace) -> int:
    """List the runs under a root, or show one run (manifest, counts, headline metrics)."""
    from agentsim.cli.browse import list_runs, print_show, runs_table, show_run

    if args.action == "show":
        data = show_run(args.run_dir)
        if args.json:
            _print_json(data)
        else:
            print_show(_console(), data)
        return 0
    rows = list_runs(args.root)
    if args.json:
        _print_json({"root": str(args.root), "runs": rows})
        return 0
    console = _console()
    if not rows:
        console.print(f"No runs under {args.root}")
        return 0
    console.print(runs_table(rows, title=f"Runs under {args.root}"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a run's events as tables (CSV or Parquet), one file per table."""
    from agentsim.cli.reporting import print_skipped
    from agentsim.runs.export import export_run
    from agentsim.core.store import RunStore

    store = RunStore.open(args.run_dir, skip_bad_lines=args.skip_bad_lines)
    written = export_run(args.run_dir, args.format, args.out, store=store)
    skipped = store.skipped_report()
    if args.json:
        _print_json({"run_dir": str(args.run_dir), "format": args.format,
                     "tables": written, "skipped_lines": skipped["count"]})
        return 0
    console = _console()
    for item in written:
        console.print(f"{_escape(item['path'])}: {item['rows']} rows")
    print_skipped(console, skipped)
    return 0


def add_runs_parsers(commands: argparse._SubParsersAction) -> None:
    """The 'runs' (list, show) and 'export' commands' arguments."""
    runs = commands.add_parser("runs", help="browse run folders: list them, show one")
    actions = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="one row per run folder under a root")
    listing.add_argument("--root", type=_path, default=Path("runs"),
                         help="folder of run folders (default runs)")
    listing.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    show = actions.add_parser("show", help="a run's manifest summary, counts and metrics")
    show.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    show.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    export = commands.add_parser("export", help="write a run's events as tables (CSV/Parquet)")
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv",
                        help="file format (parquet needs pyarrow; default csv)")
    export.add_argument("--out", type=_path, metavar="DIR",
                        help="folder for the tables (default RUN_DIR/export)")
    export.add_argument("--skip-bad-lines", action="store_true",
                        help="go on past corrupt or invalid lines of events.jsonl (counted and "
                        "reported); without it a damaged log is an error naming the line")
    export.add_argument("--json", action="store_true", help="print one JSON object on stdout")
