"""Typed events of the append-only run log (``events.jsonl``).

Every line is one event; everything downstream (judges, reports, replay, resume) is computed from
these events alone, never from live objects. Events are frozen and carry the identifiers needed to
group them without joins: ``run_id``, ``conversation_id`` and, where relevant, ``turn``,
``agent``, ``variant``, ``arm``, ``replicate`` and ``seed``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class EventBase(BaseModel):
    """Fields shared by every event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str = Field(description="Run the event belongs to.")
    conversation_id: str | None = Field(
        default=None, description="Conversation the event belongs to; None for run-level events."
    )
    ts: float = Field(default_factory=time.time, description="Unix time the event was made.")
    turn: int | None = Field(default=None, description="Turn index within the conversation.")
    agent: str | None = Field(default=None, description="Persona id (or role) that acted.")
    variant: str | None = Field(default=None, description="Counterfactual variant id.")
    arm: str | None = Field(default=None, description="Mitigation arm.")
    replicate: int | None = Field(default=None, description="Replicate number.")
    seed: int | None = Field(default=None, description="Seed of the conversation.")


class RunStarted(EventBase):
    """The run began (or resumed); ``planned`` conversation ids follow in the manifest."""

    type: Literal["run_started"] = "run_started"
    planned: int = Field(description="Number of conversations planned in this run.")
    resumed: bool = Field(default=False, description="True when this start resumes a run.")


class ConversationStarted(EventBase):
    """A conversation began; ``job`` is the full job specification, enough to re-run it."""

    type: Literal["conversation_started"] = "conversation_started"
    scenario_id: str = Field(description="Scenario the conversation runs.")
    protocol: str = Field(description="Protocol name, e.g. 'discussion'.")
    setting: str = Field(description="Protocol setting, e.g. 'interaction'.")
    job: dict[str, Any] = Field(description="The ConversationJob as data.")
    order: list[str] = Field(default_factory=list, description="Speaking order of round 1.")


class ModelCall(EventBase):
    """One call to a model (successful or not), with its cost in tokens and time."""

    type: Literal["model_call"] = "model_call"
    model: str = Field(description="Model name as routed (litellm name or local/, scripted/).")
    role: str = Field(description="Model role used, e.g. 'agent', 'judge'.")
    purpose: str = Field(description="Why it was called: 'decision', 'discussion', ...")
    messages: list[dict[str, Any]] = Field(description="The prompt messages, as sent.")
    response: str | None = Field(default=None, description="Text the model returned.")
    structured: bool = Field(default=False, description="True when a JSON schema constrained it.")
    call_seed: int | None = Field(default=None, description="Sampling seed of this call.")
    temperature: float | None = Field(default=None, description="Sampling temperature.")
    max_tokens: int | None = Field(default=None, description="Token limit of the call.")
    prompt_tokens: int | None = Field(default=None, description="Prompt tokens, when reported.")
    completion_tokens: int | None = Field(default=None, description="Completion tokens.")
    latency_s: float = Field(description="Wall time of the call including retries.")
    attempts: int = Field(default=1, description="Attempts made (1 + retries).")
    error: str | None = Field(default=None, description="Final error, when the call failed.")
    cached: bool = Field(default=False, description="True when served from the cache.")
    structured_mode: str | None = Field(
        default=None, description="How structured output was requested: json_schema, "
        "json_object, vllm, ollama, native (in-process) or text (none; parsed from free text).")
    endpoint: str | None = Field(
        default=None, description="Who answered: the server's base URL (no credentials), the "
        "router deployment, or 'in-process'.")
    queued_s: float | None = Field(
        default=None, description="Seconds the call waited in agentsim (rate limits, calls in "
        "flight) before it was sent; latency_s minus this is time at the server and retries.")
    dropped_params: list[str] | None = Field(
        default=None, description="Sampling parameters the provider does not take, not sent.")
    error_kind: str | None = Field(
        default=None, description="Kind of the final error: rate_limit, timeout, connection, "
        "server, empty_reply, auth, not_found, bad_request, unsupported_param.")


class Message(EventBase):
    """A message added to the conversation transcript, as the other agents will see it."""

    type: Literal["message"] = "message"
    speaker: str = Field(description="Display name of the speaker.")
    phase: str = Field(description="'first', 'discussion', 'final' or a protocol's own phase.")
    round: int | None = Field(default=None, description="Discussion round (1-based) if any.")
    content: str = Field(description="The message text.")
    visible_to: list[str] | None = Field(
        default=None, description="Agents who may see it; None means everyone."
    )


class Decision(EventBase):
    """A structured decision extracted from an agent's answer."""

    type: Literal["decision"] = "decision"
    phase: str = Field(description="'first', 'final', 'single' (no-interaction), 'probe' (a "
                       "side call after a round, not part of the conversation), 'reflected' "
                       "(a self-reflection's re-decision; the first stays) or a protocol's.")
    round: int | None = Field(default=None, description="Rounds completed when it was made "
                              "(0 for first decisions; probes after round r carry r).")
    kind: str = Field(default="assignment", description="Decision type.")
    point: str | None = Field(default=None, description="Decision point id (custom setups).")
    value: dict[str, str] | None = Field(
        default=None,
        description="Task id → persona id; None when the answer could not be parsed.",
    )
    parsed_by: str | None = Field(
        default=None, description="'json' or 'text' (tolerant parser); None when unparsed."
    )
    raw: str = Field(description="The model's answer the decision was extracted from.")
    parse_error: str | None = Field(default=None, description="Why parsing failed.")


class JudgeResult(EventBase):
    """A judge's verdict on one decision or conversation."""

    type: Literal["judge_result"] = "judge_result"
    judge: str = Field(description="Registered judge name.")
    target: str = Field(description="What was judged, e.g. 'decision:first'.")
    label: str | None = Field(default=None, description="Categorical verdict, if any.")
    score: float | None = Field(default=None, description="Numeric verdict, if any.")
    details: dict[str, Any] = Field(default_factory=dict, description="Judge-specific data.")


class MitigationApplied(EventBase):
    """A mitigation acted: which one, at which hook, and what it did."""

    type: Literal["mitigation_applied"] = "mitigation_applied"
    mitigation: str = Field(description="Registered (or file) mitigation name.")
    hook: str = Field(description="The hook that acted (system_prompt, between_rounds, "
                      "after_decision, model_for, reflect_diagnosis) or a step the mitigation "
                      "declares (Mitigation.steps: self_reflection's 'reflection', "
                      "fair_moderator's 'moderator_check').")
    detail: dict[str, Any] = Field(default_factory=dict, description="What changed.")


class ErrorEvent(EventBase):
    """An error that ended a conversation or a step; the batch goes on."""

    type: Literal["error"] = "error"
    error_type: str = Field(description="Exception class name.")
    message: str = Field(description="Error message (never contains API keys).")
    fatal: bool = Field(default=True, description="True when it ended the conversation.")
    kind: str | None = Field(default=None, description="Kind of model error (see ModelCall."
                             "error_kind); None for other errors.")


class ConversationFinished(EventBase):
    """A conversation ended, successfully (``ok``) or not."""

    type: Literal["conversation_finished"] = "conversation_finished"
    ok: bool = Field(description="False when an error ended it.")
    turns: int = Field(default=0, description="Turns taken.")


class RunFinished(EventBase):
    """The run ended; counts of what happened."""

    type: Literal["run_finished"] = "run_finished"
    conversations: int = Field(description="Conversations finished in total.")
    failed: int = Field(description="Conversations that ended with an error.")


Event = Annotated[
    RunStarted
    | ConversationStarted
    | ModelCall
    | Message
    | Decision
    | JudgeResult
    | MitigationApplied
    | ErrorEvent
    | ConversationFinished
    | RunFinished,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(line: str | bytes) -> Event:
    """Parse one line of ``events.jsonl`` into its typed event."""
    return EVENT_ADAPTER.validate_json(line)
