"""The Mitigation interface: named hook points where a mitigation changes a conversation.

A mitigation overrides any of six hooks (the base class makes each a no-op):

* ``system_prompt`` — shape an agent's system prompt (a debiasing instruction, anonymised
  personas);
* ``between_rounds`` — add turns to the conversation after a discussion round (a fairness
  moderator);
* ``after_decision`` — transform an agent's decision or ask it again (self-reflection): return
  a replacement, or a :class:`agentsim.orchestrator.runtime.Revision`, which is logged as a
  decision of its own phase (``revision_phase``, e.g. ``reflected``) while the first stays;
* ``after_first_decisions`` — say turns in the shared conversation once every agent has made its
  first decision (the published self-reflection, said to all), returning the turns said and the
  decisions the agents then hold;
* ``model_for`` — replace the model of a role (a fine-tuned model);
* ``reflect_diagnosis`` — revise a doctor's diagnosis before it becomes final (clinical).

Every hook receives a :class:`agentsim.orchestrator.kernel.HookContext` as ``ctx``: the moment it
runs (``turn``, ``round``, ``agent``, its model ``role``, the ``protocol``, what has been said so
far) and, through it, the conversation (``scenario``, ``job``, ``call``, ``structured``,
``applied``). A mitigation declares the protocols it supports (``protocols``; None: all); the run
checks them when it is planned, and a mitigation is not applied to conversations of a protocol
it does not support.

Mitigations register with :func:`mitigation` (built-ins and entry points of the group
``agentsim.mitigations``), or are loaded from a file the user names
(``--mitigation mitigations/my_fix.py:name``). An arm is one mitigation or several joined with
``+``, applied in order. Every application is logged as a ``mitigation_applied`` event, so what
a mitigation did can be read, counted and re-judged from the log alone.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from agentsim.errors import InputError, PluginError
from agentsim.registry import REGISTRY, check_options

T = TypeVar("T")
NONE = "none"
# The hook points a mitigation overrides; ``mitigation_applied`` events name one of them or a
# step the mitigation declares (``Mitigation.steps``).
HOOKS = frozenset({"system_prompt", "between_rounds", "after_decision", "after_first_decisions",
                   "model_for", "reflect_diagnosis"})


class Mitigation:
    """Base class of mitigations: every hook does nothing until overridden.

    ``name`` is the arm name; ``options`` are keyword arguments from the command line or a file.
    Hooks receive the conversation's runtime context (scenario, job, model client, event sink).
    """

    name = "mitigation"
    protocols: ClassVar[frozenset[str] | None] = None  # protocols it supports; None: all
    # Steps of its own it logs as ``mitigation_applied`` beside the hooks (a check that changed
    # nothing is a result too, e.g. fair_moderator's 'moderator_check').
    steps: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **options: Any) -> None:
        self.options = options

    def supports(self, protocol: str) -> bool:
        """Whether this mitigation applies to conversations of ``protocol``."""
        return self.protocols is None or protocol in self.protocols

    def check_arm(self, arm: list[Mitigation]) -> None:
        """Raise :class:`agentsim.errors.InputError` when this mitigation cannot serve in
        ``arm`` (the whole chain it is part of); called when the run is planned."""

    def system_prompt(self, ctx: Any, agent: str, prompt: str) -> str:
        """Return the system prompt ``agent`` should get (the same one to change nothing)."""
        return prompt

    async def between_rounds(self, ctx: Any, round_number: int,
                             transcript: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Turns to add after ``round_number`` as {"speaker", "content"}; [] to add none."""
        return []

    async def after_decision(self, ctx: Any, agent: str, phase: str, decision: dict[str, str],
                             messages: list[dict[str, str]]) -> dict[str, str] | None:
        """A replacement for ``decision`` (e.g. after asking again), or None to keep it."""
        return None

    # The phase a revision returned by ``after_decision`` is logged as (None: a replacement).
    revision_phase: str | None = None

    async def after_first_decisions(self, ctx: Any, transcript: list[dict[str, Any]],
                                    current: dict[str, dict[str, str]]) -> Any:
        """Turns said to everyone after all first decisions, as
        :class:`agentsim.orchestrator.runtime.SharedTurns`; None to say nothing."""
        return None

    def model_for(self, ctx: Any, role: str, model: str) -> str:
        """The model ``role`` should use instead of ``model`` (the same one to keep it)."""
        return model

    async def reflect_diagnosis(self, ctx: Any, messages: list[dict[str, str]], diagnosis: str,
                                *, turn: int, context: dict[str, Any]) -> str | None:
        """A revised diagnosis (clinical; e.g. after a critique), or None to keep it."""
        return None


def mitigation(name: str) -> Callable[[T], T]:
    """Register a Mitigation subclass under ``name``."""

    def register(cls: T) -> T:
        cls.name = name  # type: ignore[attr-defined]
        return REGISTRY.decorator("mitigation", name)(cls)

    return register


def load_file_mitigation(spec: str) -> type[Mitigation]:
    """A Mitigation class from ``path/to/file.py:name`` (a class, or a registered name)."""
    path_text, sep, attribute = spec.rpartition(":")
    path = Path(path_text)
    if not sep or not attribute or path.suffix != ".py":
        raise InputError(f"expected FILE.py:NAME, got {spec!r}", source="--mitigation")
    if not path.is_file():
        raise InputError("no such file", source=path)
    module_name = f"agentsim_user_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise InputError("not a Python file", source=path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:  # the user's code: say where it failed, without our traceback
        raise InputError(f"failed to load: {type(error).__name__}: {error}", source=path) from None
    found = getattr(module, attribute, None)
    if found is None:
        try:
            return REGISTRY.get("mitigation", attribute)
        except PluginError:
            raise InputError(f"defines no {attribute!r}", source=path) from None
    if not (isinstance(found, type) and issubclass(found, Mitigation)):
        raise InputError(f"{attribute!r} is not a Mitigation subclass", source=path)
    return found


def resolve_arm(arm: str, options: dict[str, dict[str, Any]] | None = None) -> list[Mitigation]:
    """The mitigations of an arm ('none', 'a', 'a+b', or parts given as FILE.py:NAME)."""
    if arm == NONE:
        return []
    chain = []
    for part in arm.split("+"):
        cls = load_file_mitigation(part) if ".py:" in part else REGISTRY.get("mitigation", part)
        key = getattr(cls, "name", part)
        checked = check_options("mitigation", key, cls, (options or {}).get(key, {}),
                                "--mitigation-arg")
        try:
            chain.append(cls(**checked))
        except TypeError as error:
            raise InputError(f"mitigation {key!r} does not take these options: {error}",
                             source="--mitigation-arg") from None
    return chain
