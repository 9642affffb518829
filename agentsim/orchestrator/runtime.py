"""The runtime context of a conversation graph and the two calls every agent node makes.

LangGraph passes :class:`ConversationContext` to each node (``runtime.context``): the job, the
scenario, the model client and the event sink. Nothing here is global, so conversations can run
concurrently in one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentsim.agents.decisions import assignment_schema, parse_assignment
from agentsim.errors import DecisionParseError, ModelError
from agentsim.labels.assignment import NotApplicable, problem_for
from agentsim.models.base import ModelReply, ModelRequest
from agentsim.core.jobs import ConversationJob, derive_seed
from agentsim.core.events import Decision, EventBase, MitigationApplied, ModelCall
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
    """What a decision is: its kind, JSON schema and parser (text → (value, 'json'|'text')),
    the decision point it answers (custom setups) and facts for the scripted model."""

    kind: str
    schema: dict[str, Any]
    parse: Callable[[str], tuple[dict[str, str], str]]
    point: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


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
    decision_context: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Facts for the scripted model (it plants decisions with a known label); real models
        # never see them.
        try:
            problem = problem_for(self.scenario)
            self.decision_context = {
                "problem": {
                    "attribute": problem.attribute,
                    "groups": list(problem.groups),
                    "people": list(problem.people),
                    "person_group": list(problem.person_group),
                    "tasks": list(problem.tasks),
                    "task_code": list(problem.task_code),
                }
            }
        except NotApplicable:
            self.decision_context = {}
        self.decision_context["names"] = {p.id: p.name for p in self.scenario.personas}

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
        """Call the model of (agent, role), log a ``model_call`` event, return the reply."""
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
        )
        started = time.perf_counter()
        try:
            reply = await self.client.complete(request)
        except ModelError as error:
            self.emit(
                ModelCall(
                    **self.ids(turn=turn, agent=agent),
                    model=model, role=role, purpose=purpose, messages=messages,
                    structured=schema is not None, latency_s=time.perf_counter() - started,
                    error=str(error), error_kind=error.kind, attempts=error.attempts,
                    call_seed=request.seed, temperature=request.temperature,
                    max_tokens=request.max_tokens,
                )
            )
            raise
        self.emit(
            ModelCall(
                **self.ids(turn=turn, agent=agent),
                model=model, role=role, purpose=purpose, messages=messages,
                response=reply.text, structured=reply.structured,
                prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                latency_s=reply.latency_s, attempts=reply.attempts, cached=reply.cached,
                call_seed=request.seed, temperature=request.temperature,
                max_tokens=request.max_tokens, structured_mode=reply.structured_mode,
                endpoint=reply.endpoint, queued_s=round(reply.queued_s, 6) or None,
                dropped_params=list(reply.dropped_params) or None,
            )
        )
        return reply

    def structured(self, agent: str, role: str) -> bool:
        """Whether decisions of (agent, role) use JSON-schema constrained output."""
        return self.client.supports_schema(self.model_of(agent, role, log=False))

    async def _after_decision(self, agent: str, role: str, phase: str, value: dict[str, str],
                              messages: list[dict[str, str]], turn: int,
                              round_number: int | None) -> dict[str, str]:
        hook = self.hook(turn=turn, agent=agent, role=role, round_number=round_number)
        for mitigation in self.mitigations:
            revised = await mitigation.after_decision(hook, agent, phase, value, messages)
            if revised is not None and revised != value:
                self.applied(mitigation, "after_decision", turn, agent, phase=phase,
                             before=value, after=revised)
                value = revised
        return value

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
        describes another kind (a custom setup's rank, pick or rate point). Returns the parsed
        value, or None when it could not be parsed after the re-asks; an unparsed decision is
        logged with its raw text and counted, never dropped. Mitigations' ``after_decision``
        hooks see assignments only.
        """
        spec = decision or DecisionSpec(
            kind="assignment", schema=assignment_schema(self.scenario),
            parse=lambda text: parse_assignment(text, self.scenario))
        schema = spec.schema if self.structured(agent, role) else None
        context = {**self.decision_context, "phase": phase, "agent": agent,
                   "round": round_number, "rounds": self.job.rounds, **spec.context}
        purpose = "probe" if phase == "probe" else "decision"
        if current:
            context["current"] = current
        raw, error = "", ""
        for attempt in range(DECISION_REASKS + 1):
            reply = await self.call(
                agent=agent, role=role, purpose=purpose, messages=messages, turn=turn,
                schema=schema, context=context, attempt=attempt,
            )
            raw = reply.text
            try:
                value, parsed_by = spec.parse(raw)
            except DecisionParseError as parse_error:
                error = str(parse_error)
                continue
            if spec.kind == "assignment":
                value = await self._after_decision(agent, role, phase, value, messages, turn,
                                                   round_number)
            self.emit(
                Decision(**self.ids(turn=turn, agent=agent), phase=phase, round=round_number,
                         kind=spec.kind, point=spec.point, value=value, parsed_by=parsed_by,
                         raw=raw)
            )
            return value
        self.emit(
            Decision(**self.ids(turn=turn, agent=agent), phase=phase, round=round_number,
                     kind=spec.kind, point=spec.point, value=None, raw=raw, parse_error=error)
        )
        return None
