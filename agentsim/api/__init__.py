"""The Python API: what the command line wraps, for notebooks and scripts.

    import agentsim
    run = agentsim.run("scenarios/workplace", model="scripted/stereotyped", replicates=2)
    run.metrics()            # judge, metric, value, ci_low, ci_high, n, p; a column per breakdown
    run.frame("decisions")   # the decision events as a DataFrame

Options are named as the long options of ``agentsim run`` (``--max-tokens`` → ``max_tokens``,
``--mitigation`` → ``mitigation``): a repeatable option takes a list, ``--role A=B`` is
``roles={"A": "B"}``, a per-model option (``--rpm``, ``--timeout``, ...) a value for every model
or a dict model → value ("*": every model). They are checked as the command line checks them,
before anything is written: a bad value is an :class:`~agentsim.errors.InputError` naming the
option (``--rounds``). Library code never prints: warnings are in ``Run.summary.warnings`` and
reach ``on_warning`` when it is given. Heavy modules load inside the functions.

This module holds the functions; :mod:`agentsim.api.settings` the options (:class:`RunSettings`
and its checks) and :mod:`agentsim.api.run_folder` the :class:`Run` they return.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# The options' ranges, choices and checks (settings) and the run folder's frame kinds
# (run_folder) stay importable from here, where they lived before the API became a package.
from agentsim.api.run_folder import CONVERSATION_COLUMNS, EXIT_STATUS, FRAMES, Run  # noqa: F401
from agentsim.api.settings import (  # noqa: F401
    MODES,
    NUMBERS,
    PATHS,
    PER_MODEL,
    SETTINGS,
    RunSettings,
    check_number,
    flag,
    parse_models,
    parse_settings,
    plugin_options,
    settings_of,
    strings,
)
from agentsim.errors import InputError

__all__ = ["Run", "RunSettings", "compare", "fork", "judge", "load_scenarios", "open_run",
           "report", "resume", "run"]

Paths = str | Path | Sequence[str | Path]


def load_scenarios(paths: Paths, *, tag: Sequence[str] | str = (), cases: str | None = None,
                   limit: int | None = None) -> list[tuple[Path, Any]]:
    """The (path, scenario) pairs under ``paths`` (files, folders, ``.jsonl`` case files) that
    a run of these options would run: ``cases`` (``"0-9,12"``) and ``limit`` select cases of
    case files, ``tag`` keeps scenarios carrying any of the tags. Every file is validated."""
    from agentsim.scenario.agentclinic import parse_case_selection
    from agentsim.scenario.loader import load_scenarios as load

    check_number("limit", limit)
    tags = strings(tag, "--tag")
    selected = parse_case_selection(cases) if cases else None
    scenarios = load(_paths(paths), cases=selected, limit=limit)
    if tags:
        scenarios = [(p, s) for p, s in scenarios if set(tags) & set(s.tags)]
        if not scenarios:
            raise InputError(f"no scenario carries the tag(s) {', '.join(tags)}", source="--tag")
    return scenarios


def _paths(paths: Paths) -> list[str | Path]:
    return [paths] if isinstance(paths, str | Path) else list(paths)


Hook = Callable[..., Any] | None


def run(paths: Paths, *, mitigation: Sequence[str] | str = (), on_start: Hook = None,
        on_done: Hook = None, on_warning: Hook = None, **options: Any) -> Run:
    """Run scenarios, judge them and return the run (``agentsim run``).

    ``options``: those of :class:`RunSettings` (the long options of
    ``agentsim run``); ``mitigation``: mitigations applied together, in order. Hooks:
    ``on_start(total)``, ``on_done(job, ok)`` after each conversation, ``on_warning(text)``.
    """
    settings = settings_of(options)
    arm = "+".join(strings(mitigation, "--mitigation")) or "none"
    summary = _execute(paths, settings, (arm,), "agentsim run", on_start, on_done, on_warning)
    return Run(summary.run_dir, summary)


def compare(paths: Paths, *, arms: str | Sequence[str] = "none", control: str = "none",
            models: str | Sequence[str] | Mapping[str, str] | None = None,
            settings: str | Sequence[str] | None = None,
            on_start: Hook = None, on_done: Hook = None, on_warning: Hook = None,
            **options: Any) -> Run:
    """Run every cell of a design in one run folder and compare each level of each factor
    with its control, paired by seed (``agentsim compare``); writes ``comparison.json`` and
    the forest plot into the folder.

    ``arms``: ``"none,debias_prompt"`` or a list, each an arm of mitigations joined with '+'
    (``control`` is the control arm); ``models``: ``"a=MODEL,b=MODEL"``, a list of
    ``[NAME=]MODEL`` or a mapping name → model, the first the control; ``settings``:
    ``"interaction,goal"`` or a list, the first the control. At least one factor needs two
    levels; with several arms and several models, each arm is also compared within each model.
    """
    from agentsim.analysis.compare import parse_arms

    chosen = parse_arms(arms if isinstance(arms, str) else ",".join(arms))
    labels = parse_models(models)
    levels = parse_settings(settings)
    # Checked before anything runs: a comparison without its control would waste the run.
    if control not in chosen:
        raise InputError(f"the control arm {control!r} is not among the arms "
                         f"({', '.join(chosen)}); add it to --arms or choose another --control",
                         source="--control")
    if len(chosen) < 2 and len(labels) < 2 and len(levels) < 2:
        raise InputError("compare needs two levels of a factor: the control arm and another "
                         "(--arms), two models (--models) or two settings (--settings)",
                         source="--arms")
    if labels and (options.get("model") is not None or options.get("roles")):
        raise InputError("--models names every cell's model; drop --model and --role, or "
                         "give each model as NAME=MODEL", source="--models")
    controls = {"arm": control} if len(chosen) > 1 else {}
    controls |= {"model": next(iter(labels))} if len(labels) > 1 else {}
    controls |= {"setting": levels[0]} if len(levels) > 1 else {}
    run_settings = settings_of({**options, **({"model": next(iter(labels.values()))}
                                              if labels else {})})

    def design(run_options: Any) -> Any:
        from dataclasses import replace

        return replace(run_options,
                       study_models={k: {"model": v} for k, v in labels.items()} or None,
                       settings=tuple(levels) or None)

    made: dict[str, Any] = {}
    summary = _execute(paths, run_settings, chosen, "agentsim compare", on_start, on_done,
                       on_warning, comparison_finalizer(controls, made), design=design)
    return Run(summary.run_dir, summary, comparison=made["comparison"], plots=made["plots"])


def comparison_finalizer(controls: dict[str, str], made: dict[str, Any]) -> Hook:
    """The ``finalize`` of a run of several cells: compare each factor's levels with its
    control (model × arm too), write ``comparison.json`` and the forest plot while the folder
    is still locked; ``made`` receives the comparison and the plots' paths."""

    def finalize(store: Any, summary: Any) -> None:
        from agentsim.analysis.compare import (COMPARISON_FILE, compare_design,
                                               comparison_as_data, deltas_of)
        from agentsim.analysis.forest import forest_plot
        from agentsim.core.reader import RunView

        # The judges' options as the run's judging pass used them (a preset's bias rule).
        options = summary.results.get("judge_options") or {}
        both = "arm" in controls and "model" in controls
        made["comparison"] = comparison = compare_design(
            RunView(store), controls or {"arm": "none"}, options,
            interaction=("arm", "model") if both else None)
        store.write_results(comparison_as_data(comparison), COMPARISON_FILE)
        made["plots"] = forest_plot(deltas_of(comparison["metrics"]), store.run_dir / "forest")

    return finalize


def _execute(paths: Paths, settings: RunSettings, arms: tuple[str, ...], command: str,
             on_start: Hook, on_done: Hook, on_warning: Hook, finalize: Hook = None,
             design: Hook = None) -> Any:
    """Load and check (nothing written yet), then plan, run and judge; the RunSummary.
    ``design(options)``: the runner's options with a design's factors (compare, studies)."""
    settings.check()
    scenarios = load_scenarios(paths, tag=settings.tag, cases=settings.cases,
                               limit=settings.limit)
    return execute_settings(scenarios, settings, arms, command, on_start, on_done, on_warning,
                            finalize, design)


def execute_settings(scenarios: list[tuple[Path, Any]], settings: RunSettings,
                     arms: tuple[str, ...], command: str, on_start: Hook, on_done: Hook,
                     on_warning: Hook, finalize: Hook = None, design: Hook = None,
                     manifest_fields: dict[str, Any] | None = None,
                     warnings: Sequence[str] = ()) -> Any:
    """Plan, run and judge ``scenarios`` with checked ``settings`` (see :func:`_execute`);
    ``manifest_fields`` and ``warnings`` go into the manifest (a study's record)."""
    warnings = [*warnings, *settings.applicable(scenarios)]
    options = settings.run_options(arms)
    if design is not None:
        options = design(options)
    for warning in warnings:
        if on_warning is not None:
            on_warning(warning)
    # Imported once the files are read: the runner pulls in LangGraph and the model stack, and
    # a hostile file must be refused before that memory is spent (tests cap the address space).
    from agentsim.runs.runner import run_experiment

    return run_experiment(scenarios, options,
                          out=Path(settings.out) if settings.out is not None else None,
                          on_start=on_start, on_done=on_done, on_warning=on_warning,
                          warnings=warnings, finalize=finalize, command=command,
                          manifest_fields=manifest_fields)


def judge(run_dir: str | Path, *, judges: str | Sequence[str] | None = None,
          roles: Mapping[str, str] | None = None,
          judge_arg: Sequence[str] | Mapping[str, Mapping[str, Any]] = (),
          skip_bad_lines: bool = False) -> Run:
    """Score a stored run again without re-running it (``agentsim judge``): ``judges`` (default:
    the run's), ``roles`` ({"judge": MODEL} for LLM judges), ``judge_arg`` (``JUDGE:NAME=VALUE``
    strings or {judge: {option: value}}). The previous results are archived beside the new ones
    (``Run.previous_results``); this judging's verdicts are added to the log."""
    from agentsim.runs.judging import rejudge

    names = strings(judges.split(",") if isinstance(judges, str) else judges or (), "--judges")
    roles = dict(roles or {})
    RunSettings(roles=roles).check()  # empty names or models, keys in them
    unknown = sorted(set(roles) - {"judge"})
    if unknown:
        raise InputError(f"unknown judge role(s) {unknown} (known: judge)", source="--role")
    _, archived = rejudge(Path(run_dir), [n.strip() for n in names if n.strip()] or None,
                          roles=roles, options=plugin_options(judge_arg, "--judge-arg"),
                          skip_bad_lines=skip_bad_lines)
    return Run(run_dir, previous_results=archived, skip_bad_lines=skip_bad_lines)


def resume(run_dir: str | Path, *, retry_failed: bool = True, skip_bad_lines: bool = False,
           on_start: Hook = None, on_done: Hook = None, on_warning: Hook = None,
           max_cost: float | None = None) -> Run:
    """Finish a run that was interrupted (``agentsim resume``): its unfinished conversations and,
    with ``retry_failed``, its failed ones; then judge the whole run. ``on_start(remaining,
    done)`` hears how many are left. ``max_cost``: a new spending limit (US dollars, the spend
    already logged included) over the run's own, recorded for later resumes."""
    from agentsim.runs.resume import resume_run

    summary = resume_run(Path(run_dir), on_start=on_start, on_done=on_done,
                         retry_failed=retry_failed, on_warning=on_warning,
                         skip_bad_lines=skip_bad_lines, max_cost=max_cost)
    return Run(summary.run_dir, summary, skip_bad_lines=skip_bad_lines)


def fork(run_dir: str | Path, conversation: str, from_turn: int, *, model: str | None = None,
         roles: Mapping[str, str] | None = None, mitigation: str | None = None,
         sets: Sequence[str] = (), replicates: int = 1, out: str | Path | None = None,
         skip_bad_lines: bool = False) -> Run:
    """Continue one logged conversation live from turn ``from_turn`` into a new run (``agentsim
    replay --conversation ID --from-turn K``): the turns before come verbatim from the log, the
    rest under ``model``/``roles``/``mitigation`` and persona changes ``sets``
    (``PERSONA.FIELD=VALUE``), ``replicates`` times."""
    from agentsim.runs.fork import fork_run

    check_number("from_turn", from_turn)
    RunSettings(model=model, roles=dict(roles or {}), replicates=replicates, out=out).check()
    summary = fork_run(Path(run_dir), conversation, from_turn, model=model,
                       roles=dict(roles or {}), mitigation=mitigation,
                       sets=strings(sets, "--set"), replicates=replicates,
                       out=Path(out) if out is not None else None,
                       skip_bad_lines=skip_bad_lines)
    return Run(summary.run_dir, summary, skip_bad_lines=skip_bad_lines)


def open_run(path: str | Path, *, skip_bad_lines: bool = False) -> Run:
    """A stored run folder, for reading (``skip_bad_lines``: read past damaged log lines)."""
    return Run(path, skip_bad_lines=skip_bad_lines)


def report(run_dir: str | Path, *, out: str | Path | None = None) -> Path:
    """Write the run's self-contained HTML report (``agentsim report``): overview, headline
    metrics in words, plots and a browser of every conversation, in one file that opens from
    disk without any network; ``out`` defaults to ``RUN_DIR/report.html``. Returns its path."""
    from agentsim.report import build_report

    return build_report(Path(run_dir), out=Path(out) if out is not None else None)
