"""One registry for every plugin kind: protocols, judges, mitigations, executors.

Built-ins register with a decorator when their module is imported; third-party plugins are found
through the entry-point group ``agentsim.<kind>s`` (e.g. ``agentsim.judges``), loaded the first
time a kind is looked up. A plugin is looked up by name; unknown names raise a clear error listing
the known ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from agentsim.errors import PluginError

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
