"""One registry for every plugin kind: protocols, judges, mitigations, executors, providers.

Built-ins are listed in a static table (:data:`BUILTINS`: name → ``module:attribute`` and a
one-line description), so listing them (``agentsim judges``, ``agentsim mitigations``) imports
none of their modules; they register with a decorator when their module is imported, and looking
one up by name imports that plugin's module only. A conformance test checks that the table
equals what importing the modules registers (names, objects and descriptions), so it cannot
drift. Third-party plugins are found through the entry-point group ``agentsim.<kind>s`` (e.g.
``agentsim.judges``): their names are read from the installed packages' metadata without
loading them, and an entry point is loaded when its name is first looked up. Unknown names raise
a clear error listing the known ones; a built-in name claimed by an entry point is an error.

Every plugin kind's options are a pydantic model (:func:`options_model`): the ``Options`` class a
plugin declares, else one made from its typed ``__init__``. :func:`check_options` validates what a
user gave before anything runs; :func:`recorded_options` is what a run's manifest keeps.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from agentsim.errors import InputError, PluginError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from pydantic import BaseModel

T = TypeVar("T")
KINDS = ("protocol", "judge", "mitigation", "executor", "provider")


class Builtin(NamedTuple):
    """A built-in plugin as the static table lists it: where it is defined and what it does."""

    target: str  # "module:attribute", or "module" when the module itself is the plugin
    description: str  # :func:`describe` of the registered object (one line)

    @property
    def module(self) -> str:
        """The module that registers it when imported."""
        return self.target.partition(":")[0]


# The built-in plugins of every kind, without importing them. Keep in step with the decorators:
# tests/cli/test_startup.py imports every module and compares.
BUILTINS: dict[str, dict[str, Builtin]] = {
    "protocol": {
        "clinical": Builtin(
            "agentsim.orchestrator.clinical:Clinical",
            "A doctor/patient consultation with a measurement agent, a moderator and the "
            "patient's perception afterwards; bias conditions inject instructions into the "
            "doctor or patient."),
        "discussion": Builtin(
            "agentsim.orchestrator.discussion:Discussion",
            "Borah & Mihalcea's discussion: first decisions, rounds of turns, final "
            "decisions."),
        "setup": Builtin(
            "agentsim.orchestrator.setup:Setup",
            "A conversation set up in the scenario file: roles, who hears whom, turn policy, "
            "decision points and stop conditions."),
    },
    "judge": {
        "assignment_bias": Builtin(
            "agentsim.judges.assignment_judge:AssignmentBiasJudge",
            "Borah & Mihalcea's assignment label; bias first, reflected and last, escalation "
            "and self-correction with CIs"),
        "clinical": Builtin(
            "agentsim.judges.clinical_judge:ClinicalJudge",
            "diagnostic accuracy (moderator and normaliser), turns, tests, perception, gaps"),
        "counterfactual": Builtin(
            "agentsim.judges.counterfactual_judge:CounterfactualJudge",
            "counterfactual vs placebo flip rates, excess flips (paired sign-flip), paired bias "
            "differences, demographic parity and relative decision bias (Holm)"),
        "fork": Builtin(
            "agentsim.judges.fork_judge:ForkJudge",
            "a forked run against its parent from the fork turn on: bias change, changed "
            "decisions, trajectory (discussion); accuracy and diagnosis change (clinical)"),
        "iat": Builtin(
            "agentsim.judges.iat:IatJudge",
            "implicit-association probe (Bai et al. 2024) of each agent's model, fresh and "
            "after the transcript it saw: iat_before, iat_after, iat_change"),
        "influence": Builtin(
            "agentsim.judges.influence_judge:InfluenceJudge",
            "who adopted whose proposals between rounds: influence graph, shares by group vs "
            "head count, first-speaker anchoring, moves per agent-round"),
        "lexicon": Builtin(
            "agentsim.judges.lexicon_judge:LexiconJudge",
            "word counts (gendered, agentic vs communal) by speaker group and in sentences "
            "naming each group; agentic share and man − woman gap, no model calls"),
        "rubric": Builtin(
            "agentsim.judges.rubric_judge:RubricJudge",
            "LLM panel scores units on a rubric (default: stereotyping); agreement; pairwise"),
        "selection": Builtin(
            "agentsim.judges.selection_judge:SelectionJudge",
            "rank/pick/rate decision points of setups: score per group, selection gap, "
            "counterfactual and placebo gaps, gap per round and slope (Holm)"),
        "trajectory": Builtin(
            "agentsim.judges.trajectory_judge:TrajectoryJudge",
            "assignment bias after each discussion round (probes): per-round bias, escalation "
            "slope, final - first, threshold round"),
    },
    "mitigation": {
        "anonymise": Builtin(
            "agentsim.mitigations.anonymise:Anonymise",
            "Decision-makers do not see the measured attribute (doctor: no race, no name)."),
        "debias_prompt": Builtin(
            "agentsim.mitigations.builtin:DebiasPrompt",
            "A fairness instruction in every decision-maker's system prompt."),
        "fair_moderator": Builtin(
            "agentsim.mitigations.moderator:FairModerator",
            "A moderator flags stereotyped reasoning between discussion rounds."),
        "finetuned": Builtin(
            "agentsim.mitigations.builtin:Finetuned",
            "Decision-makers use the fine-tuned model named by the role 'finetuned'."),
        "ice": Builtin(
            "agentsim.mitigations.reflection:InContextExamples",
            "In-context examples for self_reflection's prompts; use as self_reflection+ice."),
        "self_reflection": Builtin(
            "agentsim.mitigations.reflection:SelfReflection",
            "Agents critique their first assignment for implicit bias and assign again "
            "(privately, or said in the shared conversation as published)."),
    },
    "executor": {
        "local": Builtin(
            "agentsim.executors.local:LocalExecutor",
            "Run jobs with at most ``concurrency`` in flight; ``on_done(job, ok)`` after each."),
        "processes": Builtin(
            "agentsim.executors.processes:ProcessExecutor",
            "Conversations in worker processes on this machine; the driver writes the log."),
        "ray": Builtin(
            "agentsim.executors.ray_cluster:RayExecutor",
            "Conversations on Ray workers, on this machine or a cluster; the driver writes the "
            "log."),
    },
    # In-process model providers beside the embedded llama.cpp one: the scripted test models.
    "provider": {
        "scripted": Builtin(
            "agentsim.testing.scripted",
            "The scripted model: deterministic, seeded, offline, schema-valid answers with "
            "knobs."),
    },
}
# The modules that register the built-ins of each kind (derived from the table).
BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    kind: tuple(dict.fromkeys(entry.module for entry in table.values()))
    for kind, table in BUILTINS.items()
}


def describe(obj: Any) -> str:
    """A plugin's one-line description: its ``description`` attribute, else the first
    paragraph of its docstring on one line (a class's, an instance's class's, or a module's)."""
    description = getattr(obj, "description", None)
    if isinstance(description, str):
        return description
    doc = obj.__doc__ if isinstance(obj, type) or inspect.ismodule(obj) else type(obj).__doc__
    paragraph = inspect.cleandoc(doc or "").split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def _defined_in(obj: Any) -> str:
    """The module defining ``obj``: a module's own name, a class's module, an instance's
    class's module."""
    if inspect.ismodule(obj):
        return obj.__name__
    cls = obj if isinstance(obj, type) else type(obj)
    return str(getattr(cls, "__module__", ""))


class Registry:
    """Named plugins of each kind: the built-ins of a static table, imported one module at a
    time on lookup; entry points, loaded on lookup; and whatever registered itself."""

    def __init__(self, builtins: Mapping[str, Mapping[str, Builtin]] | None = None) -> None:
        self._items: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self._builtins = {kind: dict((builtins or BUILTINS).get(kind, {})) for kind in KINDS}
        self._entries: dict[str, dict[str, EntryPoint]] | None = None

    def register(self, kind: str, name: str, obj: Any) -> Any:
        """Register ``obj`` as plugin ``name`` of ``kind``; a second, different one is an error,
        and so is a built-in's name given to an object its module does not define."""
        items = self._items[kind]
        if name in items and items[name] is not obj:
            raise PluginError(f"{kind} {name!r} is registered twice")
        builtin = self._builtins[kind].get(name)
        if builtin is not None and _defined_in(obj) != builtin.module:
            raise PluginError(f"{kind} {name!r} is registered twice (it is the built-in "
                              f"{builtin.target})")
        items[name] = obj
        return obj

    def entry_points(self, kind: str) -> dict[str, EntryPoint]:
        """The entry points of ``kind``'s group by name, read from the installed packages'
        metadata (once per process) without loading any."""
        if self._entries is None:
            from importlib.metadata import entry_points

            found = entry_points()
            self._entries = {k: {e.name: e for e in found.select(group=f"agentsim.{k}s")}
                             for k in KINDS}
        return self._entries[kind]

    def builtins(self, kind: str) -> dict[str, Builtin]:
        """The static table of ``kind``'s built-ins."""
        return dict(self._builtins[kind])

    def get(self, kind: str, name: str) -> Any:
        """The plugin ``name`` of ``kind``, importing only the module that defines it."""
        items = self._items[kind]
        if name in items:
            return items[name]
        builtin = self._builtins[kind].get(name)
        if builtin is not None:
            importlib.import_module(builtin.module)
            if name not in items:
                raise PluginError(f"built-in {kind} {name!r}: {builtin.module} did not register "
                                  "it (agentsim.registry.BUILTINS is out of date)")
            return items[name]
        entry = self.entry_points(kind).get(name)
        if entry is not None:
            try:
                obj = entry.load()
            except Exception as error:  # a broken third-party plugin must not hide the others
                raise PluginError(
                    f"entry point {entry.value!r} for {kind} {name!r} failed to load: {error}"
                ) from error
            return self.register(kind, name, obj)
        known = ", ".join(self.names(kind)) or "none"
        raise PluginError(f"unknown {kind} {name!r} (known: {known})")

    def names(self, kind: str) -> list[str]:
        """Every name of ``kind`` (built-ins, entry points, registered), sorted; imports none.
        An entry point claiming a built-in's name is a PluginError."""
        entries = self.entry_points(kind)
        clashes = sorted(set(entries) & set(self._builtins[kind]))
        if clashes:
            raise PluginError(f"entry point(s) {clashes} of group 'agentsim.{kind}s' use the "
                              f"name of a built-in {kind}")
        return sorted({*self._builtins[kind], *entries, *self._items[kind]})

    def descriptions(self, kind: str) -> dict[str, str]:
        """Name → one-line description of every plugin of ``kind``, without importing any:
        built-ins from the static table, registered ones from the object, entry points not yet
        loaded by where they point."""
        described: dict[str, str] = {}
        entries = self.entry_points(kind)
        for name in self.names(kind):
            if name in self._items[kind] and name not in self._builtins[kind]:
                described[name] = describe(self._items[kind][name])
            elif name in self._builtins[kind]:
                described[name] = self._builtins[kind][name].description
            else:
                entry = entries[name]
                dist = getattr(entry.dist, "name", None)
                described[name] = (f"(entry point {entry.value}"
                                   f"{f' of {dist}' if dist else ''}; not loaded)")
        return described

    def load_all(self, kind: str) -> dict[str, Any]:
        """Import and load every plugin of ``kind`` (built-ins and entry points): name → object."""
        return {name: self.get(kind, name) for name in self.names(kind)}

    def decorator(self, kind: str, name: str) -> Callable[[T], T]:
        """A decorator registering the decorated object under ``name``."""

        def register(obj: T) -> T:
            self.register(kind, name, obj)
            return obj

        return register


REGISTRY = Registry()


def protocol(name: str) -> Callable[[T], T]:
    """Register a protocol: a subclass of
    :class:`agentsim.orchestrator.kernel.ConversationProtocol` (one instance serves every
    conversation, so it keeps no per-conversation state)."""

    def register(cls: T) -> T:
        cls.name = name  # type: ignore[attr-defined]
        REGISTRY.register("protocol", name, cls() if isinstance(cls, type) else cls)
        return cls

    return register


def judge(name: str) -> Callable[[T], T]:
    """Register a judge class."""
    return REGISTRY.decorator("judge", name)


def executor(name: str) -> Callable[[T], T]:
    """Register an executor class."""
    return REGISTRY.decorator("executor", name)


def model_provider(name: str) -> Callable[[T], T]:
    """Register an in-process model provider: answers ``<name>/...`` model names (see
    :class:`agentsim.models.base.InProcessProvider`)."""
    return REGISTRY.decorator("provider", name)


def options_model(cls: type) -> type[BaseModel]:
    """The pydantic model of a plugin's options: the ``Options`` class it declares, else one
    made from its ``__init__`` keyword parameters and their annotations (a user's plugin needs
    nothing more than a typed ``__init__``)."""
    from typing import get_type_hints

    from pydantic import BaseModel, ConfigDict, create_model

    declared = cls.__dict__.get("Options")
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        return declared
    try:
        hints = get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - a user's annotation that does not resolve: accept Any
        hints = {}
    fields: dict[str, Any] = {}
    if cls.__init__ is not object.__init__:
        for parameter in inspect.signature(cls.__init__).parameters.values():
            if parameter.name == "self" or parameter.kind not in (
                    parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                continue
            default = ... if parameter.default is parameter.empty else parameter.default
            fields[parameter.name] = (hints.get(parameter.name, Any), default)
    return create_model(f"{cls.__name__}Options",
                        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
                        **fields)


def check_options(kind: str, key: str, cls: type, given: Mapping[str, Any],
                  source: str) -> dict[str, Any]:
    """``given`` validated by the options model of plugin ``key`` of ``kind`` (only the options
    given, so the plugin's own defaults apply); an unknown or wrongly typed option is an
    InputError naming ``source`` (the command-line option or file that gave it)."""
    from pydantic import ValidationError

    model = options_model(cls)
    known = ", ".join(sorted(model.model_fields)) or "none"
    unknown = sorted(set(given) - set(model.model_fields))
    if unknown:  # a mistyped option must not be silently ignored
        raise InputError(f"{kind} {key!r} has no option(s) {unknown} (options: {known})",
                         source=source)
    try:
        validated = model.model_validate(dict(given))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}"
                             for e in error.errors())
        raise InputError(f"{kind} {key!r}: {problems} (options: {known})",
                         source=source) from None
    return validated.model_dump(include=set(given))


def recorded_options(cls: type, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of a plugin as it runs (the validated ``given`` over the model's defaults),
    JSON-ready, for the manifest; options without a JSON form are recorded by their repr."""
    model = options_model(cls)
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name in given:
            values[name] = given[name]
        elif not field.is_required():
            values[name] = field.get_default(call_default_factory=True)
    return {name: _json_ready(value) for name, value in values.items()}


def taken_options(cls: type, recorded: Mapping[str, Any] | None) -> dict[str, Any]:
    """The recorded options (a judging pass's record: every option, defaults and test hooks
    such as a null ``client`` included) that the plugin takes, set ones only: what remakes it
    as it ran."""
    if not recorded:
        return {}
    known = options_model(cls).model_fields
    return {k: v for k, v in recorded.items() if k in known and v is not None}


def make_plugin(kind: str, name: str, options: Mapping[str, Any] | None = None,
                source: str | None = None) -> Any:
    """An instance of the registered plugin ``name`` of ``kind``, its options checked first."""
    cls = REGISTRY.get(kind, name)
    source = source or f"--{kind}-arg"
    checked = check_options(kind, name, cls, options or {}, source)
    try:
        return cls(**checked)
    except TypeError as error:
        raise InputError(f"{kind} {name!r} does not take these options: {error}",
                         source=source) from None


def _json_ready(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_json_ready(item) for item in items]
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    model_dump = getattr(value, "model_dump", None)  # a pydantic model
    if callable(model_dump) and not isinstance(value, type):
        return model_dump(mode="json")
    return repr(value)
