"""The command line: a thin layer over the Python API that renders with rich.

Heavy modules (pydantic models, litellm, langgraph, llama.cpp) are imported inside the commands,
so ``agentsim --help`` answers at once. Any :class:`~agentsim.errors.AgentsimError` becomes one
message on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentsim.api import MODES, NUMBERS, PER_MODEL, SETTINGS
from agentsim.cli.checks import number as _number
from agentsim.cli.checks import path as _path
from agentsim.cli.common import console as _console
from agentsim.cli.common import escape as _escape
from agentsim.cli.common import print_json as _print_json
from agentsim.cli.replay import (
    add_replay_parser,
    add_transcript_parser,
    cmd_import_transcript,
    cmd_replay,
)
from agentsim.cli.graph import add_graph_parser, cmd_graph
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

SMALL_MODEL_NOTE = (
    "Note: the embedded SmolLM2-135M model is a smoke test of the pipeline, not a finding about "
    "bias in language models; use a larger model for evidence."
)


def _role(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=MODEL, got {text!r}")
    name, model = text.split("=", 1)
    if not name.strip() or not model.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=MODEL with both given, got {text!r}")
    return name.strip(), model.strip()


def _per_model(kind: Any, low: float | None = None, high: float | None = None,
               url: bool = False) -> Any:
    """An argparse type for ``VALUE`` (every model) or ``MODEL=VALUE`` (one model)."""

    def parse(text: str) -> tuple[str, Any]:
        if url:
            head, sep, tail = text.partition("=")
            model, raw = (head, tail) if sep and "://" not in head else ("*", text)
        else:
            model, sep, raw = text.rpartition("=")
            model = model if sep else "*"
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected [MODEL=]VALUE, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
            raise argparse.ArgumentTypeError(f"{raw!r} is out of range: must be {bounds}")
        return model.strip() or "*", value

    return parse


def _mode(text: str) -> str:
    if text not in MODES:
        raise ValueError(text)
    return text


def _bounded(option: str) -> Any:
    """The argparse type of a numeric run option, with the API's range (agentsim.api.NUMBERS)."""
    return _number(*NUMBERS[option])


def _model_bounded(option: str) -> Any:
    """The argparse type of a per-model numeric option, with the API's range."""
    kind, low, high = PER_MODEL[option]
    return _per_model(kind, low=low, high=high)


def add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    """Where models are served and how they are called (``run``, ``compare``)."""
    group = parser.add_argument_group(
        "model servers", "VALUE applies to every model, MODEL=VALUE to one (a --model/--role "
        "name or a models-config name)")
    group.add_argument("--models-config", type=_path, metavar="FILE",
                       help="YAML file naming models: provider, api_base, key variable, "
                       "structured-output mode, rate limits, timeout (see README)")
    group.add_argument("--router-config", type=_path, metavar="FILE",
                       help="YAML file with a litellm Router model_list: one model name "
                       "balanced over several servers")
    group.add_argument("--api-base", action="append", default=[], metavar="[MODEL=]URL",
                       type=_per_model(str, url=True), help="base URL of the server")
    group.add_argument("--structured", action="append", default=[], metavar="[MODEL=]MODE",
                       type=_per_model(_mode), help="how structured output is requested: auto "
                       "(probe once; default), json_schema, json_object (llama.cpp's server), "
                       "vllm, ollama or text")
    group.add_argument("--rpm", action="append", default=[], metavar="[MODEL=]N",
                       type=_model_bounded("rpm"), help="requests per minute")
    group.add_argument("--tpm", action="append", default=[], metavar="[MODEL=]N",
                       type=_model_bounded("tpm"), help="tokens per minute")
    group.add_argument("--max-in-flight", action="append", default=[], metavar="[MODEL=]N",
                       type=_model_bounded("max_in_flight"), help="model calls in flight at once")
    group.add_argument("--timeout", action="append", default=[], metavar="[MODEL=]SECONDS",
                       type=_model_bounded("timeout"), help="seconds one call may take "
                       "(default 120)")
    group.add_argument("--retries", action="append", default=[], metavar="[MODEL=]N",
                       type=_model_bounded("retries"), help="retries of a transient "
                       "error: rate limit, timeout, 5xx, lost connection (default 8, about 90 s "
                       "of backoff)")
    group.add_argument("--no-probe", action="store_true",
                       help="do not probe servers for their structured-output mode")
    parser.add_argument("--max-failures", metavar="N|P%",
                        help="stop starting conversations once more than N (or P%% of the "
                        "planned) have failed; exit status 3, resumable")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of a run, shared by ``run`` and ``compare`` (see :func:`run_settings`)."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    parser.add_argument("--no-cache", action="store_true",
                        help="do not read or write the cache of model calls")
    parser.add_argument("--cache-dir", type=_path,
                        help="cache folder (default $AGENTSIM_CACHE_DIR or ~/.cache/agentsim/"
                        "calls)")
    parser.add_argument("--mitigation-arg", action="append", default=[],
                        metavar="NAME:OPTION=VALUE",
                        help="a mitigation's option, e.g. debias_prompt:file=my_prompt.txt, "
                        "anonymise:names=false")
    parser.add_argument("--tag", action="append", default=[],
                        help="run only scenarios carrying this tag (repeatable: any of them)")
    parser.add_argument("--model", default=None,
                        help="model of every agent (default local/smollm2-135m-instruct)")
    parser.add_argument("--role", action="append", type=_role, default=[], metavar="NAME=MODEL",
                        help="model of one role (agent, single, judge, moderator, finetuned) or "
                        "persona id")
    parser.add_argument("--setting", choices=SETTINGS)
    parser.add_argument("--rounds", type=_bounded("rounds"),
                        help=f"discussion rounds, 0-{NUMBERS['rounds'][2]} (default: from the "
                        "file)")
    parser.add_argument("--replicates", type=_bounded("replicates"), default=1,
                        help="conversations per scenario")
    parser.add_argument("--seed", type=_bounded("seed"), default=0, help="run seed (default 0)")
    parser.add_argument("--concurrency", type=_bounded("concurrency"),
                        help="conversations in flight (default 1 with a local model, else 8)")
    parser.add_argument("--temperature", type=_bounded("temperature"), default=0.7,
                        help="sampling temperature, 0-2 (default 0.7)")
    parser.add_argument("--max-tokens", type=_bounded("max_tokens"), default=200,
                        help="token limit of each answer (default 200)")
    add_endpoint_options(parser)
    parser.add_argument("--out", type=_path, help="run folder (default runs/<run_id>)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    clinical = parser.add_argument_group("clinical consultations")
    clinical.add_argument("--max-turns", type=_bounded("max_turns"),
                          help=f"doctor turn budget, 1-{NUMBERS['max_turns'][2]} (default 20)")
    clinical.add_argument("--bias", action="append", default=[], metavar="ROLE:NAME[+ROLE:NAME]",
                          help="inject a bias from the catalogue, e.g. doctor:race (repeatable; "
                          "each is a condition run beside the unbiased one)")
    clinical.add_argument("--bias-catalogue", type=_path, metavar="FILE",
                          help="bias catalogue (default scenarios/clinical/biases.yaml)")
    clinical.add_argument("--cases", metavar="SPEC", help="case indexes of .jsonl case files, "
                          "e.g. 0-9,12")
    clinical.add_argument("--limit", type=_bounded("limit"),
                          help="first N cases of .jsonl case files")
    parser.add_argument("--vary", action="append", default=[], metavar="PERSONA.FIELD=V1,V2",
                        help="counterfactual variants, e.g. patient.race=Black,White (repeatable: "
                        "all combinations); replaces the variants the files declare")
    parser.add_argument("--probes", action="store_true",
                        help="after each discussion round, ask every agent privately for its "
                        "current decision (per-round trajectories; agents x rounds extra calls)")
    parser.add_argument("--no-variants", action="store_true",
                        help="run only the scenarios as written, not their declared variants")


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

    compare = commands.add_parser("compare", help="run scenarios under several mitigation arms "
                                  "and compare each arm with a control (paired by seed)")
    add_run_options(compare)
    compare.add_argument("--arms", required=True, metavar="ARM,ARM,...",
                         help="comma-separated arms, each 'none', a mitigation or several joined "
                         "with '+' (e.g. none,debias_prompt,debias_prompt+finetuned); "
                         "'agentsim mitigations' lists them")
    compare.add_argument("--control", default="none",
                         help="the arm every other arm is compared with (default none)")

    validate = commands.add_parser("validate", help="check scenario files without running")
    validate.add_argument("paths", nargs="+", metavar="PATH")

    importer = commands.add_parser("import", help="convert published data to scenario files")
    sources = importer.add_subparsers(dest="source", metavar="SOURCE", required=True)
    borah = sources.add_parser("borah", help="Borah & Mihalcea 2024 CSV (situations or test set)")
    borah.add_argument("file", type=Path)
    borah.add_argument("--out", type=_path, required=True, help="folder for the scenario files")
    borah.add_argument("--gender", action="append", type=_role, default=[], metavar="NAME=VALUE",
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
    check.add_argument("--role", action="append", type=_role, default=[], metavar="judge=MODEL",
                       help="the judge's model (default local/smollm2-135m-instruct)")
    check.add_argument("--rubric", type=Path, help="rubric file (default: the shipped one)")
    check.add_argument("--threshold", type=_number(int, 0),
                       help="score from which a verdict is 'bias'")
    check.add_argument("--limit", type=_number(int, 1), help="first N items")
    check.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    rejudge = commands.add_parser("judge", help="score a stored run again, without re-running it")
    rejudge.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    rejudge.add_argument("--judges", help="comma-separated judge names (default: the run's)")
    rejudge.add_argument("--role", action="append", type=_role, default=[], metavar="ROLE=MODEL",
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
    """Validate scenario files; report every file, fail (2) if any is bad."""
    from agentsim.errors import InputError
    from agentsim.scenario.loader import iter_scenario_files, load_scenario

    console, bad, good = _console(), 0, 0
    for path in iter_scenario_files(args.paths):
        try:
            load_scenario(path)
            good += 1
        except InputError as error:
            bad += 1
            _console(stderr=True).print(f"[red]✗[/] {_escape(str(error))}", soft_wrap=True)
    console.print(f"{good} valid, {bad} invalid")
    return 2 if bad or not good else 0


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The options :func:`add_run_options` defined, as keyword arguments of
    :func:`agentsim.api.run` and :func:`agentsim.api.compare`."""
    from dataclasses import fields

    from agentsim.api import RunSettings

    # --role NAME=MODEL (repeatable) is the API's roles={NAME: MODEL}; the others share names.
    return {f.name: getattr(args, f.name) for f in fields(RunSettings) if f.name != "roles"} | {
        "roles": dict(args.role)}


def run_options(args: argparse.Namespace, arms: tuple[str, ...]) -> Any:
    """The runner's RunOptions of these options with these ``arms``, as the API builds them."""
    from agentsim.api import settings_of

    return settings_of(run_settings(args)).run_options(arms)


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
        _print_json(run_payload(summary))
    else:
        from agentsim.cli.reporting import print_run_summary

        print_run_summary(console, summary)
        _small_model_note(console, args)
    return summary.exit_status


def cmd_compare(args: argparse.Namespace) -> int:
    """Run every arm in one run folder, compare each with the control, write the comparison
    (``comparison.json``) and its forest plot (``forest.png``/``.svg``) into the folder."""
    from agentsim import api
    from agentsim.analysis.compare import COMPARISON_FILE, comparison_as_data, comparison_tables

    console = _console(stderr=args.json)
    with _progress(args, console) as hooks:
        made = api.compare(args.paths, arms=args.arms, control=args.control,
                           **run_settings(args), **hooks)
    summary, comparison, plots = made.summary, made.comparison, made.plots
    if args.json:
        _print_json({**run_payload(summary, records=False),
                     "comparison": comparison_as_data(comparison),
                     "plots": [str(p) for p in plots]})
        return summary.exit_status
    for table in comparison_tables(comparison):
        console.print(table)
    failed = f"{summary.failed} failed" if summary.failed else "none failed"
    console.print(f"{summary.conversations} conversations ({failed}) in "
                  f"{len(comparison['arms'])} arms: {', '.join(comparison['arms'])}")
    for note in comparison["notes"]:
        console.print(f"[dim]{_escape(note)}[/]")
    console.print(f"Comparison: [bold]{summary.run_dir / COMPARISON_FILE}[/]")
    console.print("Plots: " + ", ".join(str(p) for p in plots))
    if summary.failed or summary.not_run:
        from agentsim.cli.reporting import print_run_summary

        print_run_summary(console, summary)
    console.print(f"Run folder: [bold]{summary.run_dir}[/]")
    _small_model_note(console, args)
    return summary.exit_status


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
    "resume": cmd_resume,
    "replay": cmd_replay,
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
