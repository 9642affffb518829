"""One registry for every plugin kind: protocols, judges, mitigations, executors.

Built-ins register with a decorator when their module is imported; third-party plugins are found
through the entry-point group ``agentsim.<kind>s`` (e.g. ``agentsim.judges``), loaded the first
time a kind is looked up. A plugin is looked up by name; unknown names raise a clear error listing
the known ones.

Every plugin kind's options are a pydantic model (:func:`options_model`): the ``Options`` class a
plugin declares, else one made from its typed ``__init__``. :func:`check_options` validates what a
user gave before anything runs; :func:`recorded_options` is what a run's manifest keeps.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from agentsim.errors import InputError, PluginError

T = TypeVar("T")
KINDS = ("protocol", "judge", "mitigation", "executor", "provider")
# Modules that register the built-ins of each kind; imported on first lookup so that the CLI
# stays fast when a command needs none of them.
BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "protocol": ("agentsim.orchestrator.discussion", "agentsim.orchestrator.clinical",
                 "agentsim.orchestrator.setup"),
    "judge": ("agentsim.judges.builtin",),
    "mitigation": ("agentsim.mitigations.builtin",),
    "executor": ("agentsim.executors.local",),
    # In-process model providers beside the embedded llama.cpp one: the scripted test models.
    "provider": ("agentsim.testing.scripted",),
}


class Registry:
    """Named plugins of each kind."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self._loaded: set[str] = set()

    def register(self, kind: str, name: str, obj: Any) -> Any:
        """Register ``obj`` as plugin ``name`` of ``kind``; a second, different one is an error."""
        items = self._items[kind]
        if name in items and items[name] is not obj:
            raise PluginError(f"{kind} {name!r} is registered twice")
        items[name] = obj
        return obj

    def _load(self, kind: str) -> None:
        if kind in self._loaded:
            return
        self._loaded.add(kind)
        for module in BUILTIN_MODULES[kind]:
            importlib.import_module(module)
        for entry in entry_points(group=f"agentsim.{kind}s"):
            try:
                self.register(kind, entry.name, entry.load())
            except Exception as error:  # a broken third-party plugin must not hide the others
                raise PluginError(
                    f"entry point {entry.value!r} for {kind} {entry.name!r} failed to load: "
                    f"{error}"
                ) from error

    def get(self, kind: str, name: str) -> Any:
        """The plugin ``name`` of ``kind``."""
        self._load(kind)
        try:
            return self._items[kind][name]
        except KeyError:
            known = ", ".join(sorted(self._items[kind])) or "none"
            raise PluginError(f"unknown {kind} {name!r} (known: {known})") from None

    def names(self, kind: str) -> list[str]:
        """Registered names of ``kind``, sorted."""
        self._load(kind)
        return sorted(self._items[kind])

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
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return repr(value)
