"""The runtime context of a conversation graph and the calls every agent node makes.

LangGraph passes :class:`ConversationContext` to each node (``runtime.context``): the job, the
scenario, the model client and the event sink. Nothing here is global, so conversations can run
concurrently in one process.

Three things happen in one place each: a model call and its ``model_call`` event
(:meth:`ConversationContext.call`, through :func:`agentsim.core.calls.recorded_call`); a decision
event, written from its typed value (:meth:`ConversationContext.decided`); and the facts an
in-process provider asked for about the conversation (agentsim.models.facts), taken once when the
context is built and attached to that provider's requests alone.
"""

from __future__ import annotations

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

    def __post_init__(self) -> None:
        for model in self.job.models.values():
            self.facts_for(model)

    def facts_for(self, model: str) -> Mapping[str, Any] | None:
        """The facts ``model``'s provider asked for about this conversation (None for a
        provider without a ``conversation_facts`` hook); its hook runs once per conversation."""
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
            temperature=self.job.temperature,
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
        """Whether decisions of (agent, role) use JSON-schema constrained output."""
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
        return event.value

    async def _after_decision(self, spec: DecisionSpec, typed: DecisionModel, agent: str,
                              role: str, phase: str, messages: list[dict[str, str]], turn: int,
                              round_number: int | None) -> DecisionModel:
        hook = self.hook(turn=turn, agent=agent, role=role, round_number=round_number)
        for mitigation in self.mitigations:
            value = stored_value(typed)
            revised = await mitigation.after_decision(hook, agent, phase, value, messages)
            if revised is not None and revised != value:
                # A revision is a decision too: one that does not fit its kind fails here.
                typed = typed_value(spec.kind, revised)
                self.applied(mitigation, "after_decision", turn, agent, phase=phase,
                             before=value, after=stored_value(typed))
        return typed

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
        hooks see assignments only.
        """
        spec = decision or assignment_spec(self.scenario)
        schema = spec.schema if self.structured(agent, role) else None
        context: dict[str, Any] = {"phase": phase, "agent": agent, "round": round_number}
        if spec.point is not None:
            context["point"] = spec.point
        if current:
            context["current"] = current
        purpose = "probe" if phase == "probe" else "decision"
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
            if spec.kind == "assignment":
                typed = await self._after_decision(spec, typed, agent, role, phase, messages,
                                                   turn, round_number)
            return self.decided(typed, kind=spec.kind, turn=turn, agent=agent, phase=phase,
                                round_number=round_number, point=spec.point,
                                parsed_by=parsed_by, raw=raw)
        return self.decided(None, kind=spec.kind, turn=turn, agent=agent, phase=phase,
                            round_number=round_number, point=spec.point, raw=raw,
                            parse_error=error)
