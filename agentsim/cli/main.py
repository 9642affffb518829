"""The command line: a thin layer over the Python API that renders with rich.

Heavy modules (pydantic models, litellm, langgraph, llama.cpp) are imported inside the commands,
so ``agentsim --help`` answers at once. Any :class:`~agentsim.errors.AgentsimError` becomes one
message on stderr and exit status 2, without a traceback.

This module holds the parser and the entry point; ``run`` and ``compare`` are in
:mod:`agentsim.cli.running`, their options in :mod:`agentsim.cli.run_args`, the other commands in
the modules named after them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from agentsim.cli.checks import number as _number
from agentsim.cli.checks import path as _path
from agentsim.cli.common import console as _console
from agentsim.cli.common import escape as _escape
from agentsim.cli.replay import (
    add_replay_parser,
    add_transcript_parser,
    cmd_import_transcript,
    cmd_replay,
)
from agentsim.cli.graph import add_graph_parser, cmd_graph
from agentsim.cli.report import add_report_parser, cmd_report
from agentsim.cli.study import add_study_parser, cmd_study
from agentsim.cli.table import add_table_parser, cmd_table
from agentsim.cli.resume import add_resume_parser, cmd_resume
from agentsim.cli.finetune import add_finetune_parser, cmd_finetune
from agentsim.cli.judging import (
    add_runs_parsers,
    cmd_export,
    cmd_judge,
    cmd_judge_check,
    cmd_judges,
    cmd_mitigations,
    cmd_runs,
)
from agentsim.cli.run_args import (  # noqa: F401  (the run options, for main's callers)
    add_endpoint_options,
    add_run_options,
    run_options,
    run_settings,
)
from agentsim.cli.run_args import role
from agentsim.cli.running import SMALL_MODEL_NOTE, cmd_compare, cmd_run, run_payload  # noqa: F401


class _Parser(argparse.ArgumentParser):
    """argparse with one short message for a bad option (the usage is one --help away), in the
    style of every other error, secrets redacted; exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        from agentsim.models.client import redact

        sys.stderr.write(redact(f"error: {self.prog}: {message} (see {self.prog} --help)\n"))
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = _Parser(
        prog="agentsim",
        description="Simulate conversations between LLM agents and measure social bias in them.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run scenarios, judge them, print the results")
    add_run_options(run)
    run.add_argument("--mitigation", action="append", default=[], metavar="NAME|FILE.py:NAME",
                     help="apply a mitigation (repeatable: applied together, in order); "
                     "'agentsim mitigations' lists them")

    compare = commands.add_parser("compare", help="run scenarios under several arms, models or "
                                  "settings and compare each with its control (paired by seed)")
    add_run_options(compare)
    compare.add_argument("--arms", default="none", metavar="ARM,ARM,...",
                         help="comma-separated arms, each 'none', a mitigation or several joined "
                         "with '+' (e.g. none,debias_prompt,debias_prompt+finetuned); "
                         "'agentsim mitigations' lists them")
    compare.add_argument("--control", default="none",
                         help="the arm every other arm is compared with (default none)")
    compare.add_argument("--models", metavar="[NAME=]MODEL,...",
                         help="comma-separated models, each a cell of the design (the first is "
                         "the control); NAME=MODEL names it in tables (replaces --model)")
    compare.add_argument("--settings", metavar="SETTING,...",
                         help="comma-separated discussion settings (interaction, "
                         "no-interaction, goal), each a cell (the first is the control)")

    validate = commands.add_parser("validate", help="check scenario files without running")
    validate.add_argument("paths", nargs="+", metavar="PATH")

    importer = commands.add_parser("import", help="convert published data to scenario files")
    sources = importer.add_subparsers(dest="source", metavar="SOURCE", required=True)
    borah = sources.add_parser("borah", help="Borah & Mihalcea 2024 CSV (situations or test set)")
    borah.add_argument("file", type=Path)
    borah.add_argument("--out", type=_path, required=True, help="folder for the scenario files")
    borah.add_argument("--gender", action="append", type=role, default=[], metavar="NAME=VALUE",
                       help="a character's gender (man or woman), over every other source; "
                       "for names the importer cannot settle (repeatable)")
    borah.add_argument("--extract-model", metavar="M",
                       help="ask model M to split a test-set scene the rules cannot (JSON "
                       "answer, logged in the report; default: rules only)")

    clinic = sources.add_parser("agentclinic", help="AgentClinic case file (OSCE or image layout)")
    clinic.add_argument("file", type=Path)
    clinic.add_argument("--out", type=_path, required=True, help="folder for the scenario files")
    clinic.add_argument("--cases", metavar="SPEC", help="case indexes, e.g. 0-9,12")
    clinic.add_argument("--limit", type=_number(int, 1), help="first N cases")
    add_transcript_parser(sources)

    add_finetune_parser(commands)
    add_resume_parser(commands)
    add_graph_parser(commands)
    add_replay_parser(commands)
    add_report_parser(commands)
    add_study_parser(commands)
    add_table_parser(commands)
    add_runs_parsers(commands)
    commands.add_parser("judges", help="list the registered judges")
    commands.add_parser("mitigations", help="list the registered mitigations")

    check = commands.add_parser("judge-check", help="measure a judge: accuracy on labelled "
                                "texts, robustness to changes that should not matter")
    check.add_argument("judge", metavar="JUDGE", help="a judge that scores text (rubric)")
    source = check.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="labelled JSONL (id, text, biased)")
    source.add_argument("--borah", type=Path, metavar="DIR",
                        help="folder of the published fine-tuning files (*implicit*.jsonl)")
    check.add_argument("--role", action="append", type=role, default=[], metavar="judge=MODEL",
                       help="the judge's model (default local/smollm2-135m-instruct)")
    check.add_argument("--rubric", type=Path, help="rubric file (default: the shipped one)")
    check.add_argument("--threshold", type=_number(int, 0),
                       help="score from which a verdict is 'bias'")
    check.add_argument("--limit", type=_number(int, 1), help="first N items")
    check.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    rejudge = commands.add_parser("judge", help="score a stored run again, without re-running it")
    rejudge.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    rejudge.add_argument("--judges", help="comma-separated judge names (default: the run's)")
    rejudge.add_argument("--role", action="append", type=role, default=[], metavar="ROLE=MODEL",
                         help="model of a judge role, e.g. judge=openai/gpt-4o (LLM judges)")
    rejudge.add_argument("--judge-arg", action="append", default=[], metavar="JUDGE:NAME=VALUE",
                         help="a judge's option, e.g. rubric:panel=openai/gpt-4o,anthropic/"
                         "claude-3-5-haiku-20241022, rubric:both_orders=true, rubric:unit="
                         "message, iat:stimuli=FILE, lexicon:lexicon_dir=DIR, "
                         "trajectory:threshold=0.3")
    add_skip_bad_lines(rejudge)
    rejudge.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def add_skip_bad_lines(parser: argparse.ArgumentParser) -> None:
    """``--skip-bad-lines``: read a damaged log, leaving out (and counting) its bad lines."""
    parser.add_argument("--skip-bad-lines", action="store_true",
                        help="go on past corrupt or invalid lines of events.jsonl (they are "
                        "counted, reported and recorded in results.json); without it a damaged "
                        "log is an error naming the line")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``agentsim`` command.

    Exit status: 0 ok, 1 failed conversations, 2 bad input (an :class:`AgentsimError`: one
    message, no traceback), 3 stopped by --max-failures, 128 + N when stopped by signal N
    (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
    """
    from agentsim.cli.common import interrupted_status, signals_interrupt

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        from agentsim.cli.checks import refuse_secrets
        from agentsim.errors import AgentsimError

        refuse_secrets(argv)
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help, or a bad option (argparse said which)
            return done.code if isinstance(done.code, int) else 2
        if args.version:
            from agentsim._version import __version__

            print(__version__)
            return 0
        if args.command is None:
            build_parser().print_help()
            return 0
        with signals_interrupt():
            return COMMANDS[args.command](args)
    except AgentsimError as error:
        _console(stderr=True).print(f"[bold red]error:[/] {_escape(str(error))}", soft_wrap=True)
        return error.exit_status
    except KeyboardInterrupt as error:
        run_dir = getattr(error, "run_dir", None)
        hint = (f"; the run folder is resumable: agentsim resume {_escape(str(run_dir))}"
                if run_dir is not None else "")
        _console(stderr=True).print(f"{_escape(str(error) or 'interrupted')}{hint}",
                                    soft_wrap=True)
        return interrupted_status(error)
    except BrokenPipeError:  # the reader (e.g. `| head`) went away: not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate scenario files and case files; report every file (a case file with its number
    of cases), fail (2) if any is bad. A case file is checked as ``run`` reads it: every line,
    and a bad line makes the file invalid, named with its line and field."""
    from agentsim.errors import InputError
    from agentsim.scenario.agentclinic import load_agentclinic
    from agentsim.scenario.loader import CASE_FILE_SUFFIXES, iter_scenario_files, load_scenario

    console = _console()
    bad = good = files = 0
    for path in iter_scenario_files(args.paths):
        files += 1
        try:
            if path.suffix in CASE_FILE_SUFFIXES:
                cases, _ = load_agentclinic(path)
                good += len(cases)
                console.print(f"{_escape(str(path))}: {len(cases)} cases valid", soft_wrap=True)
            else:
                load_scenario(path)
                good += 1
        except InputError as error:
            bad += 1
            _console(stderr=True).print(f"[red]✗[/] {_escape(str(error))}", soft_wrap=True)
    noun = "file" if files == 1 else "files"
    console.print(f"{good} valid, {bad} invalid ({files} {noun}; a case file counts its cases)")
    return 2 if bad or not good else 0


def cmd_import(args: argparse.Namespace) -> int:
    """Convert published data into scenario files and report every row not converted."""
    if args.source == "transcript":
        return cmd_import_transcript(args)
    if args.source == "borah":
        from agentsim.importers.borah import import_borah

        report = import_borah(args.file, args.out, genders=dict(args.gender) or None,
                              extract_model=args.extract_model)
    else:
        from agentsim.scenario.agentclinic import import_agentclinic, parse_case_selection

        select = parse_case_selection(args.cases) if args.cases else None
        report = import_agentclinic(args.file, args.out, select=select, limit=args.limit)
    console = _console()
    console.print(f"{len(report.written)} scenario files written to {args.out} "
                  f"({report.layout} layout); {len(report.skipped)} rows not converted")
    for row, reason in report.skipped:
        console.print(f"  row {row}: {_escape(reason)}")
    for row, note in getattr(report, "notes", []):
        console.print(f"  row {row} (converted): {_escape(note)}")
    if args.source == "borah" and not report.written:
        _console(stderr=True).print(f"[red]✗[/] nothing converted from {_escape(str(args.file))}")
        return 1
    return 0


COMMANDS = {
    "study": cmd_study,
    "table": cmd_table,
    "resume": cmd_resume,
    "replay": cmd_replay,
    "report": cmd_report,
    "graph": cmd_graph,
    "finetune": cmd_finetune,
    "mitigations": cmd_mitigations,
    "judge-check": cmd_judge_check,
    "judge": cmd_judge,
    "run": cmd_run,
    "compare": cmd_compare,
    "validate": cmd_validate,
    "import": cmd_import,
    "judges": cmd_judges,
    "runs": cmd_runs,
    "export": cmd_export,
}

if __name__ == "__main__":
    sys.exit(main())
