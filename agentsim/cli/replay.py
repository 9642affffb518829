"""The 'replay' command and the 'import transcript' source (see agentsim.cli.render and
agentsim.runs.transcripts)."""

from __future__ import annotations

import argparse
from pathlib import Path

from agentsim.cli.checks import MAX_REPLICATES
from agentsim.cli.checks import number as _number
from agentsim.cli.checks import path as _path
from agentsim.cli.common import console as _console
from agentsim.cli.common import escape as _escape
from agentsim.cli.common import print_json as _print_json


def add_replay_parser(commands: argparse._SubParsersAction) -> None:
    """The 'replay' command's arguments."""
    replay = commands.add_parser("replay", help="show a stored run's conversations again")
    replay.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    replay.add_argument("--conversation", metavar="ID", help="show only this conversation")
    fork = replay.add_argument_group("fork: continue a conversation live from a turn")
    fork.add_argument("--from-turn", type=_number(int, 0), metavar="K",
                      help="turns before K come verbatim from the log, the rest is generated")
    fork.add_argument("--model", help="model of every agent after the fork")
    fork.add_argument("--role", action="append", default=[], metavar="NAME=MODEL",
                      help="model of one role or persona after the fork")
    fork.add_argument("--mitigation", metavar="NAME|FILE.py:NAME", help="mitigation arm")
    fork.add_argument("--set", action="append", default=[], metavar="PERSONA.FIELD=VALUE",
                      help="change a persona for the continuation")
    fork.add_argument("--replicates", type=_number(int, 1, MAX_REPLICATES), default=1,
                      help="continuations of the conversation (default 1)")
    fork.add_argument("--out", type=_path, help="run folder of the fork")
    fork.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    replay.add_argument("--skip-bad-lines", action="store_true",
                        help="go on past corrupt or invalid lines of the log (counted and "
                        "reported); without it a damaged log is an error naming the line")


def add_transcript_parser(sources: argparse._SubParsersAction) -> None:
    """The 'import transcript' source's arguments."""
    transcript = sources.add_parser("transcript", help="JSONL transcript (one message a line) "
                                    "→ a run folder the judges can score")
    transcript.add_argument("file", type=Path)
    transcript.add_argument("--out", type=_path, required=True, help="run folder to create")
    transcript.add_argument("--scenario", type=_path, metavar="SCENARIO.yaml",
                            help="scenario of every conversation (speakers must be its "
                            "personas); default: one minimal scenario per conversation")
    transcript.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def cmd_replay(args: argparse.Namespace) -> int:
    """Re-render a stored run's conversations, or fork one at a turn (--from-turn)."""
    from agentsim.cli.checks import fork_only
    from agentsim.errors import InputError
    from agentsim.cli.render import render_run

    fork_only(args)
    if args.from_turn is None:
        render_run(_console(), args.run_dir, args.conversation,
                   skip_bad_lines=args.skip_bad_lines)
        return 0
    if not args.conversation:
        raise InputError("a fork needs --conversation ID", source="--from-turn")
    from agentsim import api
    from agentsim.cli.report import write_report
    from agentsim.cli.reporting import print_run_summary

    roles = {}
    for spec in args.role:
        name, sep, model = spec.partition("=")
        if not sep:
            raise InputError(f"expected NAME=MODEL, got {spec!r}", source="--role")
        roles[name] = model
    summary = api.fork(args.run_dir, args.conversation, args.from_turn, model=args.model,
                       roles=roles, mitigation=args.mitigation, sets=args.set,
                       replicates=args.replicates, out=args.out,
                       skip_bad_lines=args.skip_bad_lines).summary
    if args.json:
        report = write_report(summary.run_dir, _console(stderr=True), json_mode=True)
        _print_json({"run_dir": str(summary.run_dir), "conversations": summary.conversations,
                     "failed": summary.failed, "parent": str(args.run_dir),
                     "metrics": summary.results["metrics"],
                     "report": str(report) if report else None})
    else:
        print_run_summary(_console(), summary)
        write_report(summary.run_dir, _console())  # its path is the last line
    return summary.exit_status


def cmd_import_transcript(args: argparse.Namespace) -> int:
    """Import a transcript as a run folder and report what was written."""
    from agentsim.runs.transcripts import import_transcript

    from agentsim.cli.report import write_report

    report = import_transcript(args.file, args.out, args.scenario)
    if getattr(args, "json", False):
        page = write_report(report.run_dir, _console(stderr=True), json_mode=True)
        _print_json({"run_dir": str(report.run_dir), "conversations": report.conversations,
                     "messages": report.messages, "decisions": report.decisions,
                     "notes": report.notes, "report": str(page) if page else None})
        return 0
    console = _console()
    console.print(f"{report.conversations} conversations, {report.messages} messages, "
                  f"{report.decisions} decisions imported to {_escape(str(report.run_dir))}")
    for note in report.notes:
        console.print(f"[dim]{_escape(note)}[/]")
    if report.results is not None:
        console.print("Judged with assignment_bias; see it with "
                      f"'agentsim replay {_escape(str(report.run_dir))}'")
    write_report(report.run_dir, console)  # its path is the last line
    return 0
