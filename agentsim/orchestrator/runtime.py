"""The runtime context of a conversation graph and the calls every agent node makes.

LangGraph passes :class:`ConversationContext` to each node (``runtime.context``): the job, the
scenario, the model client and the event sink. Nothing here is global, so conversations can run
concurrently in one process.

Three things happen in one place each: a model call and its ``model_call`` event
(:meth:`ConversationContext.call`, through :func:`agentsim.core.calls.recorded_call`); a decision
event, written from its typed value (:meth:`ConversationContext.decided`); and the facts an
in-process provider asked for about the conversation (agentsim.models.facts), taken once when the
context is built and attached to that provider's requests alone.

Mitigations reach decisions in two ways. ``after_decision`` follows one decision: a mitigation
returns a plain replacement (logged in the decision's own event, the change as
``mitigation_applied``) or a :class:`Revision`, the decision asked for again, which is logged as
a decision of its own phase (self-reflection: ``reflected``) after the decision it revises, so
the first answer stays the first decision. :meth:`ConversationContext.after_first_decisions` runs
once every agent has decided for the first time: the turns mitigations say then in the shared
conversation (the published self-reflection), as :class:`SharedTurns`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentsim.agents.decisions import assignment_schema, parse_assignment
from agentsim.core.calls import recorded_call
from agentsim.core.decisions import (
    AssignmentDecision,
    DecisionModel,
    decision_event,
    stored_value,
    typed_value,
)
from agentsim.core.events import EventBase, MitigationApplied
from agentsim.core.jobs import ConversationJob, derive_seed
from agentsim.errors import DecisionParseError
from agentsim.models.base import ModelReply, ModelRequest
from agentsim.models.facts import conversation_facts, provider_of
from agentsim.scenario.biases import BiasCatalogue
from agentsim.scenario.schema import Scenario

# A decision whose answer cannot be parsed is asked again this many times, with a new seed.
DECISION_REASKS = 1


@dataclass(frozen=True)
class Revision:
    """A decision a mitigation asked for again (self-reflection's re-decision).

    Returned by ``after_decision``; logged as a ``decision`` of ``phase`` on the turn, round and
    point of the decision it revises, which keeps its own phase and value. ``typed`` None: the
    second answer could not be parsed (``parse_error`` says why); it is logged unparsed and the
    conversation keeps the first decision."""

    phase: str
    typed: DecisionModel | None
    raw: str
    parsed_by: str | None = None
    parse_error: str | None = None


@dataclass(frozen=True)
class SharedTurns:
    """What a mitigation said in the shared conversation after the first decisions."""

    said: list[Any]  # the utterances (kernel ``Utterance``), each said on its own turn
    decisions: dict[str, dict[str, str]]  # agent → the decision it holds now (reflected)
    turn: int  # the next free turn


class ModelClientProtocol(Protocol):
    """What the orchestrator needs from a model client."""

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer a request or raise ModelError after retries."""
        ...

    def supports_schema(self, model: str) -> bool:
        """True when the model can be constrained to a JSON schema."""
        ...


@dataclass(frozen=True)
class DecisionSpec:
    """What a decision is: its kind, JSON schema and parser, and the decision point it answers
    (custom setups). The parser reads an answer into the kind's typed model (a registered
    :class:`~agentsim.core.decisions.DecisionModel`) and says how ('json' or 'text'); it raises
    DecisionParseError for an answer it cannot read."""

    kind: str
    schema: dict[str, Any]
    parse: Callable[[str], tuple[DecisionModel, str]]
    point: str | None = None


def assignment_spec(scenario: Scenario, point: str | None = None) -> DecisionSpec:
    """The task-assignment decision (task id → persona id) of ``scenario``: the discussion's
    decisions, a setup's ``assign`` points, a self-reflection's re-decision."""

    def parse(text: str) -> tuple[DecisionModel, str]:
        value, how = parse_assignment(text, scenario)
        return AssignmentDecision(assignments=value), how

    return DecisionSpec(kind="assignment", schema=assignment_schema(scenario), parse=parse,
                        point=point)


@dataclass
class ConversationContext:
    """Dependencies of one conversation, passed to every node by LangGraph."""

    run_id: str
    job: ConversationJob
    scenario: Scenario
    client: ModelClientProtocol
    emit: Callable[[EventBase], None]
    catalogue: BiasCatalogue | None = None
    mitigations: list[Any] = field(default_factory=list)
    resume_state: dict[str, Any] | None = None  # forks: the graph state at the fork turn
    # Provider prefix → what its conversation_facts hook returned (None: no hook), for the
    # providers of the job's models; a model a mitigation swaps in adds its provider on use.
    provider_facts: dict[str, Mapping[str, Any] | None] = field(default_factory=dict,
                                                                 init=False)
    # Agent → the text of its latest decision (a protocol may say it in the transcript).
    answers: dict[str, str] = field(default_factory=dict, init=False)
    # (agent, phase) → the messages of its latest decision call of that phase: a mitigation that
    # speaks for the agent later (the shared self-reflection) reuses its system prompt.
    decision_prompts: dict[tuple[str, str], list[dict[str, str]]] = field(
        default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for model in self.job.models.values():
            self.facts_for(model)

    def facts_for(self, model: str) -> Mapping[str, Any] | None:
        """The facts ``model``'s provider asked for about this conversation (None for a
        provider without a ``conversation_facts`` hook); its hook runs once per conversation."""
        resolver = getattr(self.client, "resolver", None)
        if resolver is not None:  # a models-config name: the provider of what it routes to
            try:
                model = resolver.resolve(model).model
            except Exception:  # noqa: BLE001 - an unroutable name fails at its call instead
                pass
        provider = provider_of(model)
        if provider not in self.provider_facts:
            self.provider_facts[provider] = conversation_facts(provider, self.scenario,
                                                               self.job)
        return self.provider_facts[provider]

    @property
    def plugin(self) -> Any:
        """The registered protocol running this conversation."""
        from agentsim.orchestrator.kernel import plugin_for

        return plugin_for(self.job.protocol)

    def speaker_name(self, agent: str) -> str:
        """The name listeners read for ``agent``."""
        return self.plugin.speaker_name(self.scenario, agent)

    def hook(self, *, turn: int | None, agent: str | None, role: str | None,
             round_number: int | None = None, transcript: Any = ()) -> Any:
        """The typed context a mitigation hook receives at this moment."""
        from agentsim.orchestrator.kernel import HookContext

        return HookContext(conversation=self, protocol=self.job.protocol, turn=turn,
                           round=round_number, agent=agent, role=role,
                           transcript=tuple(transcript))

    def ids(self, **extra: Any) -> dict[str, Any]:
        """Identifiers every event of this conversation carries."""
        return {
            "run_id": self.run_id,
            "conversation_id": self.job.conversation_id,
            "variant": self.job.variant,
            "arm": self.job.arm,
            "replicate": self.job.replicate,
            "seed": self.job.seed,
            **extra,
        }

    def applied(self, mitigation: Any, hook: str, turn: int | None = None,
                agent: str | None = None, **detail: Any) -> None:
        """Log one application of a mitigation."""
        self.emit(MitigationApplied(**self.ids(turn=turn, agent=agent),
                                    mitigation=mitigation.name, hook=hook, detail=detail))

    def system_prompt(self, agent: str, prompt: str, turn: int | None = None,
                      role: str | None = None) -> str:
        """The system prompt of ``agent`` after every mitigation of the arm has shaped it."""
        hook = self.hook(turn=turn, agent=agent, role=role)
        for mitigation in self.mitigations:
            shaped = mitigation.system_prompt(hook, agent, prompt)
            if shaped != prompt:
                self.applied(mitigation, "system_prompt", turn, agent,
                             chars_before=len(prompt), chars_after=len(shaped))
                prompt = shaped
        return prompt

    def model_of(self, agent: str, role: str, turn: int | None = None,
                 log: bool = True) -> str:
        """The model of (agent, role): the job's choice (persona id, then role, then the
        default), then the arm's replacements, each logged when ``log``. The one resolver of
        a conversation's models."""
        model = self.job.model_for(agent, role)
        hook = self.hook(turn=turn, agent=agent, role=role)
        for mitigation in self.mitigations:
            replaced = mitigation.model_for(hook, role, model)
            if replaced != model and log:
                self.applied(mitigation, "model_for", turn, agent, role=role, before=model,
                             after=replaced)
            model = replaced
        return model

    async def call(
        self,
        *,
        agent: str,
        role: str,
        purpose: str,
        messages: list[dict[str, str]],
        turn: int,
        schema: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        attempt: int = 0,
        max_tokens: int | None = None,
    ) -> ModelReply:
        """Call the model of (agent, role), log a ``model_call`` event, return the reply.

        ``context`` is the call's generic metadata (see ``ModelRequest``: phase, round, the
        decision point...); the provider's conversation facts are attached here, and only here.
        """
        model = self.model_of(agent, role, turn)
        request = ModelRequest(
            model=model,
            messages=messages,
            schema=schema,
            temperature=self.job.temperature, top_p=self.job.top_p,
            max_tokens=min(max_tokens or self.job.max_tokens, self.job.max_tokens),
            seed=derive_seed(self.job.seed, turn, agent, purpose, attempt),
            purpose=purpose,
            context=context or {},
            replicate=self.job.replicate,
            facts=self.facts_for(model),
        )
        return await recorded_call(self.client, request, self.emit, role=role,
                                   **self.ids(turn=turn, agent=agent))

    def structured(self, agent: str, role: str) -> bool:
        """Whether decisions of (agent, role) use JSON-schema constrained output: when the model
        takes a schema, unless the protocol's settings ask for text answers (as published)."""
        if not getattr(self.scenario.protocol, "structured", True):
            return False
        return self.client.supports_schema(self.model_of(agent, role, log=False))

    def decided(self, typed: DecisionModel | None, *, turn: int | None, agent: str | None,
                phase: str, raw: str, kind: str | None = None, round_number: int | None = None,
                point: str | None = None, parsed_by: str | None = None,
                parse_error: str | None = None) -> dict[str, str] | None:
        """Log a ``decision`` event from its typed value (None: unparsed, of ``kind``) and
        return the stored value: the one place a conversation writes a decision."""
        event = decision_event(typed, kind=kind, **self.ids(turn=turn, agent=agent), phase=phase,
                               round=round_number, point=point, parsed_by=parsed_by, raw=raw,
                               parse_error=parse_error)
        self.emit(event)
        if agent is not None:
            self.answers[agent] = raw
        return event.value

    def last_answer(self, agent: str) -> str:
        """The text of ``agent``'s latest decision as the model wrote it ('' before any)."""
        return self.answers.get(agent, "")

    async def _after_decision(self, spec: DecisionSpec, typed: DecisionModel, agent: str,
                              role: str, phase: str, messages: list[dict[str, str]], turn: int,
                              round_number: int | None,
                              log: Callable[[DecisionModel], None]) -> tuple[DecisionModel, bool]:
        """The decision the conversation continues with after the arm's ``after_decision``
        hooks, and whether ``log`` has already written the decision's own event: it is written
        before the first mitigation that revises as a phase of its own (``revision_phase``), so
        the log reads decision, then revision."""
        hook = self.hook(turn=turn, agent=agent, role=role, round_number=round_number)
        logged = False
        for mitigation in self.mitigations:
            value = stored_value(typed)
            if getattr(mitigation, "revision_phase", None) and not logged:
                log(typed)
                logged = True
            revised = await mitigation.after_decision(hook, agent, phase, value, messages)
            if isinstance(revised, Revision):
                if not logged:
                    log(typed)
                    logged = True
                self.decided(revised.typed, kind=spec.kind, turn=turn, agent=agent,
                             phase=revised.phase, round_number=round_number, point=spec.point,
                             parsed_by=revised.parsed_by, raw=revised.raw,
                             parse_error=revised.parse_error)
                revised = None if revised.typed is None else stored_value(revised.typed)
            if revised is not None and revised != value:
                # A revision is a decision too: one that does not fit its kind fails here.
                typed = typed_value(spec.kind, revised)
                self.applied(mitigation, "after_decision", turn, agent, phase=phase,
                             before=value, after=stored_value(typed))
        return typed, logged

    async def decide(
        self,
        *,
        agent: str,
        role: str,
        phase: str,
        messages: list[dict[str, str]],
        turn: int,
        current: dict[str, str] | None = None,
        round_number: int | None = None,
        decision: DecisionSpec | None = None,
    ) -> dict[str, str] | None:
        """Ask for a decision, parse it, log a ``decision`` event.

        By default the decision is a task assignment (task id → persona id); ``decision``
        describes another kind (a custom setup's rank, pick or rate point). Returns the stored
        value, or None when it could not be parsed after the re-asks; an unparsed decision is
        logged with its raw text and counted, never dropped. Mitigations' ``after_decision``
        hooks see assignments only; after a :class:`Revision` the value returned is the revised
        one (what the conversation continues with), while the event of ``phase`` keeps the
        answer as given.
        """
        spec = decision or assignment_spec(self.scenario)
        schema = spec.schema if self.structured(agent, role) else None
        context: dict[str, Any] = {"phase": phase, "agent": agent, "round": round_number}
        if spec.point is not None:
            context["point"] = spec.point
        if current:
            context["current"] = current
        purpose = "probe" if phase == "probe" else "decision"
        self.decision_prompts[(agent, phase)] = messages
        raw, error = "", ""
        for attempt in range(DECISION_REASKS + 1):
            reply = await self.call(
                agent=agent, role=role, purpose=purpose, messages=messages, turn=turn,
                schema=schema, context=context, attempt=attempt,
            )
            raw = reply.text
            try:
                typed, parsed_by = spec.parse(raw)
            except DecisionParseError as parse_error:
                error = str(parse_error)
                continue
            log = functools.partial(self.decided, kind=spec.kind, turn=turn, agent=agent,
                                    phase=phase, round_number=round_number, point=spec.point,
                                    parsed_by=parsed_by, raw=raw)
            if spec.kind == "assignment" and self.mitigations:
                typed, logged = await self._after_decision(spec, typed, agent, role, phase,
                                                           messages, turn, round_number, log)
                if logged:
                    return stored_value(typed)
            return log(typed)
        return self.decided(None, kind=spec.kind, turn=turn, agent=agent, phase=phase,
                            round_number=round_number, point=spec.point, raw=raw,
                            parse_error=error)

    async def after_first_decisions(self, transcript: list[Any],
                                    current: dict[str, dict[str, str]],
                                    turn: int) -> SharedTurns:
        """The turns the arm's mitigations say in the shared conversation once every agent has
        made its first decision, before round 1 (the published self-reflection: each agent's
        reflection, which everyone then hears); a protocol with first decisions calls it after
        them, with its transcript, each agent's decision and the next free turn.

        A mitigation takes part by defining ``after_first_decisions(ctx, transcript, current)``
        (``ctx.turn``: its first turn), which says and logs its own turns and returns
        :class:`SharedTurns` or None. Returns everything said, the decisions the agents hold
        afterwards and the next free turn.
        """
        said: list[Any] = []
        holding = dict(current)
        for mitigation in self.mitigations:
            speak = getattr(mitigation, "after_first_decisions", None)
            if speak is None:
                continue
            heard_so_far = [*transcript, *said]
            hook = self.hook(turn=turn, agent=None, role=None, round_number=0,
                             transcript=heard_so_far)
            shared = await speak(hook, heard_so_far, dict(holding))
            if shared is not None:
                said += shared.said
                holding.update(shared.decisions)
                turn = shared.turn
        return SharedTurns(said=said, decisions=holding, turn=turn)
