"""The reader of a stored run: its manifest, scenarios as they ran (variants applied) and events.

Judges, the arm comparison, fork, resume and the public API all read a run through this one
class; it never sees live objects, so re-judging a stored run is the path of judging a fresh one.

**Judges' model calls.** A judge that calls a model does so through the run's client
(:attr:`RunView.client`: the judging driver builds it from the run's stored options, so its calls
get the run's endpoints, cache, retries and rate limits), asking :meth:`RunView.client_for` for
the unit it judges. Each call is kept in :attr:`RunView.calls` as a ``model_call`` event — agent
and role ``judge``, purpose the judge's name, the judged conversation (or the run id for a
run-level call) and no turn — which the driver appends after the judges finish; judges never
write the log. Every call of a conversation has its turn, so :func:`is_judge_call` tells the two
apart (a setup's termination judge also answers in the model role 'judge', at a turn).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any

from agentsim.core.calls import recorded_call
from agentsim.core.events import EventBase, ModelCall
from agentsim.core.log_stream import ConversationLog, conversations
from agentsim.core.store import RunStore
from agentsim.models.base import ModelReply, ModelRequest
from agentsim.scenario.loader import parse_scenario
from agentsim.scenario.schema import Scenario
from agentsim.scenario.variants import BASE, Variant, apply_variant


JUDGE_ROLE = "judge"  # role (and agent) of every model call a judge makes


def is_judge_call(event: EventBase) -> bool:
    """True for a ``model_call`` a judge made while judging, False for a conversation's own."""
    return (event.type == "model_call" and getattr(event, "role", None) == JUDGE_ROLE
            and event.turn is None)


class JudgeCalls:
    """The run's client as one judge's calls about one conversation see it (``complete`` and
    ``supports_schema``, like any client); each call, answered or failed, goes to ``record`` as
    a ``model_call`` event carrying ``ids``."""

    def __init__(self, client: Any, record: Callable[[ModelCall], None],
                 ids: dict[str, Any]) -> None:
        self.client, self._record, self._ids = client, record, ids

    def supports_schema(self, model: str) -> bool:
        """Whether the model's answers can be constrained to a JSON schema."""
        return self.client.supports_schema(model)

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer ``request`` with the run's client and record the call (see
        :func:`agentsim.core.calls.recorded_call`: the fields of a conversation's calls)."""
        return await recorded_call(self.client, request, self._record, **self._ids)


class RunView:
    """Read-only access to a stored run for judges: its scenarios, its events and the model
    client of the judging pass (``client``; see the module docstring)."""

    def __init__(self, store: RunStore, roles: dict[str, str] | None = None,
                 client: Any = None) -> None:
        self.store = store
        self.roles = dict(roles or {})
        self._client = client
        self.calls: list[ModelCall] = []  # judges' calls through client_for, for the driver
        self._applied: dict[tuple[str, str | None], Scenario] = {}
        self._protocols: frozenset[str] | None = None  # see for_protocols
        self._only: frozenset[str] | None = None  # conversation ids; see for_conversations

    @property
    def client(self) -> Any:
        """The model client judges call through: the judging driver's, built from the run's
        stored options. A view opened without one (by hand, in a test) makes a plain
        ``ModelClient()`` on first use: default endpoints, no cache."""
        if self._client is None:
            from agentsim.models.client import ModelClient  # lazy: slow imports

            self._client = ModelClient()
        return self._client

    @client.setter
    def client(self, client: Any) -> None:
        self._client = client

    def client_for(self, judge: str, conversation_id: str | None = None) -> JudgeCalls:
        """:attr:`client` for the calls of ``judge`` about one conversation (None: about the
        run as a whole), each recorded in :attr:`calls`."""
        ids = {"run_id": self.store.run_id, "conversation_id": conversation_id
               or self.store.run_id, "agent": JUDGE_ROLE, "role": JUDGE_ROLE, "purpose": judge}
        return JudgeCalls(self.client, self.calls.append, ids)

    def model_for(self, role: str) -> str:
        """The model of a judge role ('judge', ...): --role at judging time, else the run's
        own role mapping, else the run's default model."""
        models = self.manifest.get("models") or {}
        from agentsim.models.names import DEFAULT_MODEL

        return self.roles.get(role) or models.get(role) or models.get("default", DEFAULT_MODEL)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The run's manifest."""
        return self.store.read_manifest()

    @cached_property
    def scenarios(self) -> dict[str, Scenario]:
        """Scenarios of the run, rebuilt from the manifest (the files may have changed since)."""
        return {
            sid: parse_scenario(entry["data"], f"{self.store.run_dir}/manifest.json#{sid}")
            for sid, entry in self.manifest["scenarios"].items()
        }

    @cached_property
    def variants(self) -> dict[tuple[str, str], Variant]:
        """(scenario id, variant id) → the variant, from the manifest."""
        stored = self.manifest.get("variants") or {}
        if isinstance(stored, list):  # runs made before variants were per scenario
            stored = {sid: stored for sid in self.manifest["scenarios"]}
        return {(sid, v["id"]): Variant.model_validate(v)
                for sid, items in stored.items() for v in items}

    def scenario_for(self, scenario_id: str, variant_id: str | None) -> Scenario:
        """The scenario as the conversation ran it: the file with its variant applied."""
        key = (scenario_id, variant_id)
        if key not in self._applied:  # applying validates a scenario: do it once per variant
            base = self.scenarios[scenario_id]
            variant = self.variants.get((scenario_id, variant_id or BASE))
            self._applied[key] = apply_variant(base, variant) if variant is not None else base
        return self._applied[key]

    def for_protocols(self, protocols: Iterable[str] | None) -> RunView:
        """This view with only the conversations of ``protocols`` (a judge's declared ones;
        None: all). It shares the store, the client and the recorded calls."""
        view = copy.copy(self)
        view._protocols = None if protocols is None else frozenset(protocols)
        return view

    def for_conversations(self, ids: Iterable[str] | None) -> RunView:
        """This view with only the conversations ``ids`` (a cell of a design; None: all) and
        the events about them. It shares the store, the client and the recorded calls."""
        view = copy.copy(self)
        view._only = None if ids is None else frozenset(ids)
        return view

    @cached_property
    def _conversation_protocols(self) -> dict[str, str]:
        """Conversation id → protocol, as each conversation logged it when it started."""
        return {e.conversation_id: e.protocol
                for e in self.store.iter_events({"conversation_started"}, complete_only=True)}

    def allows(self, protocol: str, conversation_id: str | None = None) -> bool:
        """Whether this view shows conversations of ``protocol`` (see :meth:`for_protocols`),
        and the conversation ``conversation_id`` when it is given (:meth:`for_conversations`)."""
        return ((self._protocols is None or protocol in self._protocols)
                and (self._only is None or conversation_id is None
                     or conversation_id in self._only))

    def conversations(self, types: Iterable[str] = (),
                      views: Mapping[str, type] | None = None,
                      ) -> Iterator[ConversationLog]:
        """Each successfully finished conversation of the view, with its events of ``types``
        (those in ``views`` read as their views), in one pass over the log
        (:func:`agentsim.core.log_stream.conversations`)."""
        return (c for c in conversations(self.store, types, views=views)
                if self.allows(c.protocol, c.id))

    def events(self, *types: str) -> Iterator[EventBase]:
        """Stream the run's events of the given types (all when none given), of conversations
        that finished successfully only: a failed conversation's partial decisions never enter
        a metric (the run's summary counts and explains the failures). A view limited with
        :meth:`for_protocols` leaves out other protocols' conversations."""
        events = self.store.iter_events(set(types) if types else None, complete_only=True)
        if self._only is not None:
            only = self._only
            events = (e for e in events if e.conversation_id in only)
        if self._protocols is None:
            return events
        protocols, allowed = self._conversation_protocols, self._protocols
        return (e for e in events
                if e.conversation_id not in protocols or protocols[e.conversation_id] in allowed)
