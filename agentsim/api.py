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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from agentsim.errors import InputError

__all__ = ["Run", "RunSettings", "compare", "fork", "judge", "load_scenarios", "open_run",
           "resume", "run"]

# Ranges of the numeric options, (type, low, high) inclusive; the command line's parser takes
# them from here. Rounds and doctor turns: what the scenario schema accepts.
NUMBERS: dict[str, tuple[type, float | None, float | None]] = {
    "rounds": (int, 0, 20), "replicates": (int, 1, 10_000), "seed": (int, 0, 2**63 - 1),
    "concurrency": (int, 1, 1_024), "temperature": (float, 0, 2),
    "max_tokens": (int, 1, 1_000_000), "max_turns": (int, 1, 100), "limit": (int, 1, None),
    "from_turn": (int, 0, None),
}
# Options given per model ('*': every model); api_base takes a URL, structured one of MODES.
PER_MODEL: dict[str, tuple[type, float | None, float | None]] = {
    "api_base": (str, None, None), "structured": (str, None, None), "rpm": (float, 0.001, None),
    "tpm": (float, 1, None), "max_in_flight": (int, 1, None), "timeout": (float, 0.001, None),
    "retries": (int, 0, 100),
}
MODES = ("auto", "json_schema", "json_object", "vllm", "ollama", "text")
SETTINGS = ("interaction", "no-interaction", "goal")
PATHS = ("out", "cache_dir", "models_config", "router_config", "bias_catalogue")

Paths = str | Path | Sequence[str | Path]
# Frame kind → the event type it holds and the event's class in agentsim.core.events (Run.frame).
FRAMES: dict[str, tuple[str, str]] = {
    "messages": ("message", "Message"), "decisions": ("decision", "Decision"),
    "model_calls": ("model_call", "ModelCall"),
    "conversations": ("conversation_started", "ConversationStarted"),
    "judge_results": ("judge_result", "JudgeResult"),
    "mitigations": ("mitigation_applied", "MitigationApplied"),
}
CONVERSATION_COLUMNS = ["run_id", "conversation_id", "scenario_id", "protocol", "setting",
                        "variant", "arm", "bias", "replicate", "seed", "ok", "turns", "started",
                        "finished"]
EXIT_STATUS = {"finished": 0, "incomplete": 1, "stopped": 3}


def flag(option: str) -> str:
    """The command-line spelling of an option: ``max_tokens`` → ``--max-tokens``."""
    return "--" + option.replace("_", "-")


def check_number(option: str, value: Any) -> None:
    """Refuse a number of the wrong type or out of :data:`NUMBERS`' (or :data:`PER_MODEL`'s)
    range for ``option``; None (not given) passes."""
    if value is None:
        return
    kind, low, high = NUMBERS.get(option) or PER_MODEL[option]
    whole = kind is int
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float) \
            or value != value:  # NaN
        raise InputError(f"expected {'a whole number' if whole else 'a number'}, got {value!r}",
                         source=flag(option))
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise InputError(f"{value!r} is out of range: must be {bounds}", source=flag(option))


def strings(value: str | Sequence[str] | None, option: str) -> list[str]:
    """A repeatable option as a list of strings (one string is a list of one)."""
    items = [] if value is None else [value] if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str):
            raise InputError(f"expected text, got {item!r}", source=option)
    return items


def plugin_options(value: Any, option: str) -> dict[str, dict[str, Any]]:
    """``PLUGIN:NAME=VALUE`` strings (as on the command line) or {plugin: {name: value}}."""
    if isinstance(value, Mapping):
        return {str(name): dict(opts) for name, opts in value.items()}
    from agentsim.runs.judging import parse_judge_args

    return parse_judge_args(strings(value, option), source=option)


@dataclass(frozen=True)
class RunSettings:
    """The options of ``agentsim run`` and ``agentsim compare``, as Python values (see the
    module docstring); :meth:`check` refuses what the command line refuses."""

    model: str | None = None
    """Model of every agent (default local/smollm2-135m-instruct)."""
    roles: Mapping[str, str] = field(default_factory=dict)
    """Role or persona id → model (agent, single, judge, moderator, doctor, ...)."""
    setting: str | None = None
    """interaction, no-interaction or goal (default: the file's)."""
    rounds: int | None = None
    """Discussion rounds, 0-20 (default: the file's)."""
    replicates: int = 1
    """Conversations per scenario."""
    seed: int = 0
    """Run seed."""
    concurrency: int | None = None
    """Conversations in flight (default 1 with a local model, else 8)."""
    temperature: float = 0.7
    """Sampling temperature, 0-2."""
    max_tokens: int = 200
    """Token limit of each answer."""
    out: str | Path | None = None
    """Run folder (default runs/<run_id>)."""
    mitigation_arg: Sequence[str] | Mapping[str, Mapping[str, Any]] = ()
    """Mitigation options: NAME:OPTION=VALUE strings or {mitigation: {option: value}}."""
    tag: Sequence[str] = ()
    """Run only scenarios carrying any of these tags."""
    no_cache: bool = False
    """Neither read nor write the cache of model calls."""
    cache_dir: str | Path | None = None
    """Cache folder (default $AGENTSIM_CACHE_DIR or ~/.cache/agentsim/calls)."""
    models_config: str | Path | None = None
    """YAML file naming models: provider, api_base, key variable, structured mode, limits."""
    router_config: str | Path | None = None
    """YAML file with a litellm Router model_list."""
    api_base: Any = None
    """Base URL of the server, for every model or {model: URL}."""
    structured: Any = None
    """How structured output is requested (one of MODES), for every model or per model."""
    rpm: Any = None
    """Requests per minute, for every model or per model."""
    tpm: Any = None
    """Tokens per minute, for every model or per model."""
    max_in_flight: Any = None
    """Model calls in flight at once, for every model or per model."""
    timeout: Any = None
    """Seconds one call may take, for every model or per model."""
    retries: Any = None
    """Retries of a transient error, for every model or per model."""
    no_probe: bool = False
    """Do not probe servers for their structured-output mode."""
    max_failures: str | int | None = None
    """Stop starting conversations once more than N (or 'P%') have failed."""
    max_turns: int | None = None
    """Doctor turn budget of consultations, 1-100."""
    bias: Sequence[str] = ()
    """Bias conditions from the catalogue (ROLE:NAME[+ROLE:NAME]), each beside the unbiased."""
    bias_catalogue: str | Path | None = None
    """Bias catalogue file (default: the shipped one)."""
    cases: str | None = None
    """Case indexes of .jsonl case files, e.g. '0-9,12'."""
    limit: int | None = None
    """First N cases of .jsonl case files."""
    vary: Sequence[str] = ()
    """Counterfactual variants PERSONA.FIELD=V1,V2 (all combinations); replace the files'."""
    probes: bool = False
    """After each discussion round, ask every agent privately for its current decision."""
    no_variants: bool = False
    """Run only the scenarios as written, not their declared variants."""

    def per_model(self, option: str) -> dict[str, Any]:
        """A per-model option as model → value ('*': every model)."""
        value = getattr(self, option)
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, list | tuple) and all(isinstance(v, tuple) for v in value):
            return dict(value)  # the command line's (model, value) pairs, in order
        return {"*": value}

    def check(self) -> None:
        """Refuse values the command line refuses (types, ranges, choices, empty values, keys
        in values), each an InputError naming the option; nothing is read or written."""
        from agentsim.models.client import key_problem

        for option in (f.name for f in fields(self) if f.name in NUMBERS):
            check_number(option, getattr(self, option))
        if self.setting is not None and self.setting not in SETTINGS:
            raise InputError(f"invalid choice {self.setting!r} (choose from "
                             f"{', '.join(SETTINGS)})", source="--setting")
        for option in PER_MODEL:
            for model, value in self.per_model(option).items():
                if PER_MODEL[option][0] is not str:
                    check_number(option, value)
                elif option == "structured" and value not in MODES:
                    raise InputError(f"invalid choice {value!r} (choose from "
                                     f"{', '.join(MODES)})", source=flag(option))
                elif not isinstance(value, str) or not value.strip() or not model:
                    raise InputError(f"expected [MODEL=]VALUE, got {model}={value!r}",
                                     source=flag(option))
        for name, model in dict(self.roles).items():
            if not (isinstance(name, str) and isinstance(model, str) and name.strip()
                    and model.strip()):
                raise InputError(f"expected NAME=MODEL with both given, got {name!r}="
                                 f"{model!r}", source="--role")
        for option in PATHS:
            if getattr(self, option) is not None and not str(getattr(self, option)).strip():
                raise InputError("expected a path, got an empty string", source=flag(option))
        for option, text in self._texts():
            problem = key_problem(text)
            if problem is not None:  # the message names the option, never the value
                raise InputError(f"this value holds what looks like a key ({problem}); a key "
                                 "in an option would be written to the run's manifest and log. "
                                 "Give keys only through environment variables or a models "
                                 "config's api_key_env / api_key_file", source=flag(option))

    def _texts(self) -> list[tuple[str, str]]:
        found = []
        for item in fields(self):
            value = getattr(self, item.name)
            values = (value.items() if isinstance(value, Mapping)
                      else value if isinstance(value, list | tuple) else [value])
            for part in values:
                for text in part if isinstance(part, tuple) else (part,):
                    if isinstance(text, str | Path):
                        found.append((item.name, str(text)))
        return found

    def applicable(self, scenarios: Sequence[tuple[Path, Any]]) -> list[str]:
        """Refuse options that apply to none of the scenarios being run; return warnings for
        options that apply to some of them only (recorded in the manifest)."""
        from agentsim.scenario.loader import CASE_FILE_SUFFIXES

        from agentsim.orchestrator.kernel import plugin_for
        from agentsim.registry import REGISTRY

        warnings: list[str] = []
        total = len(scenarios)
        protocols = [s.protocol.name for _, s in scenarios]

        def only(option: str, given: bool) -> None:
            # Each protocol says which run options it takes (ConversationProtocol.takes).
            if not given:
                return
            name = option.removeprefix("--").replace("-", "_")
            count = sum(1 for _, s in scenarios
                        if plugin_for(s.protocol.name).takes(name, s, self.setting))
            kind = " and ".join(n for n in REGISTRY.names("protocol")
                                if name in plugin_for(n).options)
            if count == 0:
                raise InputError(f"applies to {kind} scenarios only, and none is being run "
                                 f"({total} scenario(s): {', '.join(sorted(set(protocols)))}); "
                                 "drop the option", source=option)
            if count < total:
                verb = "is" if count == 1 else "are"
                warnings.append(f"{option} applies to {kind} scenarios only: {count} of the "
                                f"{total} scenarios {verb} {kind}; the others run without it")

        only("--bias", bool(self.bias))
        only("--max-turns", self.max_turns is not None)
        only("--bias-catalogue", self.bias_catalogue is not None)
        if self.bias_catalogue is not None and not self.bias and not any(
                getattr(s.protocol, "biases", ()) for _, s in scenarios):
            raise InputError("no bias condition runs (no --bias, and no scenario lists "
                             "protocol.biases), so the catalogue would not be read; add --bias "
                             "or drop the option", source="--bias-catalogue")
        only("--setting", self.setting is not None)
        only("--rounds", self.rounds is not None)
        if (self.cases or self.limit is not None) and not any(
                Path(p).suffix in CASE_FILE_SUFFIXES for p, _ in scenarios):
            raise InputError("selects cases of .jsonl case files, and no .jsonl file is being "
                             "run; drop the option (YAML scenarios are chosen by path or --tag)",
                             source="--cases" if self.cases else "--limit")
        if self.vary and self.no_variants:
            raise InputError("--vary replaces the declared variants already; give one of "
                             "--vary and --no-variants", source="--no-variants")
        return warnings

    def run_options(self, arms: tuple[str, ...]) -> Any:
        """The runner's :class:`~agentsim.runs.runner.RunOptions` with these ``arms``."""
        from agentsim.models.endpoints import load_models_config, load_router_config
        from agentsim.models.names import DEFAULT_MODEL
        from agentsim.runs.runner import RunOptions
        from agentsim.scenario.variants import BASE_VARIANT, parse_vary

        endpoints: dict[str, dict[str, Any]] = {}
        for option in PER_MODEL:
            for model, value in self.per_model(option).items():
                endpoints.setdefault(model, {})[option] = value
        vary = strings(self.vary, "--vary")
        return RunOptions(
            model=DEFAULT_MODEL if self.model is None else self.model, roles=dict(self.roles),
            setting=self.setting, rounds=self.rounds, replicates=self.replicates,
            seed=self.seed, concurrency=self.concurrency, temperature=self.temperature,
            max_tokens=self.max_tokens,
            models_config=(load_models_config(self.models_config).model_dump()
                           if self.models_config else None),
            router_list=load_router_config(self.router_config) if self.router_config else None,
            endpoint_options=endpoints,
            max_failures=None if self.max_failures is None else str(self.max_failures),
            probe=not self.no_probe, biases=tuple(strings(self.bias, "--bias")),
            variants=(tuple(parse_vary(vary)) if vary
                      else (BASE_VARIANT,) if self.no_variants else None),
            max_turns=self.max_turns, probes=self.probes, arms=arms,
            mitigation_options=plugin_options(self.mitigation_arg, "--mitigation-arg"),
            cache=not self.no_cache, cache_dir=str(self.cache_dir) if self.cache_dir else None,
            bias_catalogue=str(self.bias_catalogue) if self.bias_catalogue else None)


def settings_of(options: Mapping[str, Any]) -> RunSettings:
    """RunSettings from keyword arguments; an unknown name is an InputError naming it."""
    known = [f.name for f in fields(RunSettings)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} (options: "
                         f"{', '.join(known)})", source=flag(unknown[0]))
    return RunSettings(**options)


class Run:
    """A run folder: its manifest, results, metrics and events as pandas frames.

    ``summary`` (the :class:`~agentsim.runs.runner.RunSummary`) is there for a run made, resumed
    or forked by this process; ``comparison`` and ``plots`` for one made by :func:`compare`;
    ``previous_results`` (the archived results file) after :func:`judge`.
    """

    def __init__(self, path: str | Path, summary: Any = None, *, comparison: Any = None,
                 plots: Sequence[Path] = (), previous_results: Path | None = None,
                 skip_bad_lines: bool = False) -> None:
        from agentsim.core.store import RunStore

        self.path = Path(path)
        RunStore.open(self.path)  # not a run folder: RunStoreError now, not at first use
        self.summary = summary
        self.plots = list(plots)
        self.previous_results = previous_results
        self.skip_bad_lines = skip_bad_lines
        self._comparison = comparison

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.manifest.get('status')!r})"

    def _store(self) -> Any:
        from agentsim.core.store import RunStore

        return RunStore.open(self.path, skip_bad_lines=self.skip_bad_lines)

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest (resolved options, scenarios, models, seeds, status), read afresh."""
        return self._store().read_manifest()

    @property
    def results(self) -> dict[str, Any]:
        """``results.json``, read afresh (a later judging replaces it); RunStoreError when the
        run was never judged."""
        from agentsim.core.store import RESULTS
        from agentsim.errors import RunStoreError

        if not (self.path / RESULTS).exists():
            raise RunStoreError(f"{self.path}: no {RESULTS}: the run has not been judged "
                                f"(status {self.manifest.get('status')!r}); resume or judge it")
        return self._store().read_results()

    @property
    def exit_status(self) -> int | None:
        """The command line's exit status for this run: 0 everything planned succeeded, 1
        conversations failed or were not run, 3 stopped by max_failures; None while unfinished."""
        if self.summary is not None:
            return self.summary.exit_status
        return EXIT_STATUS.get(self.manifest.get("status", ""))

    @property
    def comparison(self) -> dict[str, Any] | None:
        """The arm comparison (:func:`agentsim.analysis.compare.compare_arms`: control, arms,
        metrics as Estimates, counts, notes), or None when the run has none."""
        if self._comparison is None and (self.path / "comparison.json").exists():
            from agentsim.core.metrics import estimate_of

            data = self._store().read_results("comparison.json")
            self._comparison = {**data, "metrics": {k: estimate_of(v)
                                                    for k, v in data["metrics"].items()}}
        return self._comparison

    def records(self, comparison: bool = False) -> list[Any]:
        """The metrics as :class:`~agentsim.core.metrics.MetricRecord` (results written before
        records existed are converted from their names); ``comparison``: the arm comparison's,
        judge ``compare``, a bracket without a key read as the arm."""
        from agentsim.core.metrics import records_from_results, records_of

        if not comparison:
            return records_from_results(self.results)
        if self.comparison is None:
            raise InputError(f"{self.path} holds no comparison (made by agentsim compare)",
                             source="comparison")
        return records_of("compare", self.comparison["metrics"], unnamed="arm")

    def metrics(self, comparison: bool = False) -> Any:
        """The metrics as a DataFrame, one row per metric: ``judge``, ``metric``, one column per
        breakdown dimension (``round``, ``variant``, ``kind``, ...; missing where a metric has
        no such breakdown), ``value``, ``ci_low``, ``ci_high``, ``n``, ``p``, then ``p_raw``,
        ``clusters``, ``method`` and ``name`` (its key in results.json's ``metrics``)."""
        from agentsim.core.metrics import records_frame

        return records_frame(self.records(comparison))

    def frame(self, kind: str, *, complete_only: bool = True) -> Any:
        """The events of one kind as a DataFrame, a column per event field (``type`` left out).

        Kinds: ``messages``, ``decisions``, ``model_calls``, ``mitigations`` (events
        ``message``, ``decision``, ``model_call``, ``mitigation_applied``), ``conversations``
        (one row per conversation from its ``conversation_started`` and
        ``conversation_finished``: ids, scenario, protocol, setting, bias, ok, turns, times) and
        ``judge_results`` (the ``judge_result`` verdicts of the judging whose results are in
        results.json). The log is read as judges read it: of a conversation run more than once
        only its last attempt counts, and (``complete_only``, the default) only conversations
        whose last attempt finished successfully; ``complete_only=False`` adds failed ones.
        """
        import pandas as pd

        if kind not in FRAMES:
            raise InputError(f"unknown frame kind {kind!r}; kinds: {', '.join(FRAMES)}",
                             source="kind")
        from agentsim.core import events
        from agentsim.runs.judging import pass_verdicts

        store = self._store()
        if kind == "conversations":
            return pd.DataFrame(_conversations(store, complete_only), columns=CONVERSATION_COLUMNS)
        kind_type, class_name = FRAMES[kind]
        found = (pass_verdicts(store) if kind == "judge_results"
                 else store.iter_events({kind_type}, complete_only=complete_only))
        columns = [n for n in getattr(events, class_name).model_fields if n != "type"]
        return pd.DataFrame([e.model_dump(exclude={"type"}) for e in found], columns=columns)


def _conversations(store: Any, complete_only: bool) -> list[dict[str, Any]]:
    """One row per conversation: its start's identifiers and job, its finish's outcome."""
    rows: dict[str, dict[str, Any]] = {}
    ids = {"run_id", "conversation_id", "scenario_id", "protocol", "setting", "variant", "arm",
           "replicate", "seed"}
    for event in store.iter_events({"conversation_started", "conversation_finished"},
                                   complete_only=complete_only):
        if event.type == "conversation_started":
            rows[event.conversation_id] = {**event.model_dump(include=ids),
                                           "bias": event.job.get("bias"), "started": event.ts}
        elif event.conversation_id in rows:
            rows[event.conversation_id] |= {"ok": event.ok, "turns": event.turns,
                                            "finished": event.ts}
    return list(rows.values())


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


def compare(paths: Paths, *, arms: str | Sequence[str], control: str = "none",
            on_start: Hook = None, on_done: Hook = None, on_warning: Hook = None,
            **options: Any) -> Run:
    """Run every arm in one run folder and compare each with ``control``, paired by seed
    (``agentsim compare``); writes ``comparison.json`` and the forest plot into the folder.
    ``arms``: ``"none,debias_prompt"`` or a list; each an arm of mitigations joined with '+'."""
    from agentsim.analysis.compare import parse_arms

    settings = settings_of(options)
    chosen = parse_arms(arms if isinstance(arms, str) else ",".join(arms))
    # Checked before anything runs: a comparison without its control would waste the run.
    if control not in chosen:
        raise InputError(f"the control arm {control!r} is not among the arms "
                         f"({', '.join(chosen)}); add it to --arms or choose another --control",
                         source="--control")
    if len(chosen) < 2:
        raise InputError("compare needs the control and at least one other arm",
                         source="--arms")
    made: dict[str, Any] = {}

    def finalize(store: Any, summary: Any) -> None:
        from agentsim.analysis.compare import (COMPARISON_FILE, compare_arms,
                                               comparison_as_data, deltas_of)
        from agentsim.analysis.forest import forest_plot
        from agentsim.core.reader import RunView

        # Written while the run folder is still locked by this process.
        made["comparison"] = comparison = compare_arms(RunView(store), control=control)
        store.write_results(comparison_as_data(comparison), COMPARISON_FILE)
        made["plots"] = forest_plot(deltas_of(comparison["metrics"]), store.run_dir / "forest")

    summary = _execute(paths, settings, chosen, "agentsim compare", on_start, on_done,
                       on_warning, finalize)
    return Run(summary.run_dir, summary, comparison=made["comparison"], plots=made["plots"])


def _execute(paths: Paths, settings: RunSettings, arms: tuple[str, ...], command: str,
             on_start: Hook, on_done: Hook, on_warning: Hook, finalize: Hook = None) -> Any:
    """Load and check (nothing written yet), then plan, run and judge; the RunSummary."""
    settings.check()
    scenarios = load_scenarios(paths, tag=settings.tag, cases=settings.cases,
                               limit=settings.limit)
    warnings = settings.applicable(scenarios)
    options = settings.run_options(arms)
    for warning in warnings:
        if on_warning is not None:
            on_warning(warning)
    # Imported once the files are read: the runner pulls in LangGraph and the model stack, and
    # a hostile file must be refused before that memory is spent (tests cap the address space).
    from agentsim.runs.runner import run_experiment

    return run_experiment(scenarios, options,
                          out=Path(settings.out) if settings.out is not None else None,
                          on_start=on_start, on_done=on_done, on_warning=on_warning,
                          warnings=warnings, finalize=finalize, command=command)


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
           on_start: Hook = None, on_done: Hook = None, on_warning: Hook = None) -> Run:
    """Finish a run that was interrupted (``agentsim resume``): its unfinished conversations and,
    with ``retry_failed``, its failed ones; then judge the whole run. ``on_start(remaining,
    done)`` hears how many are left."""
    from agentsim.runs.resume import resume_run

    summary = resume_run(Path(run_dir), on_start=on_start, on_done=on_done,
                         retry_failed=retry_failed, on_warning=on_warning,
                         skip_bad_lines=skip_bad_lines)
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
