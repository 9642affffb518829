"""One writer of ``model_call`` events: a conversation's calls and a judge's carry the same
fields, answered or failed, because both go through agentsim.core.calls."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agentsim.core.calls import model_call
from agentsim.core.jobs import ConversationJob
from agentsim.core.reader import JudgeCalls
from agentsim.errors import ModelError
from agentsim.models.base import ModelReply, ModelRequest
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.scenario import load_scenarios

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
MODEL = "openai/gpt-4o-mini"
# Identifiers differ by who called; every other field must be written alike.
IDS = {"run_id", "conversation_id", "turn", "agent", "variant", "arm", "replicate", "seed",
       "ts", "role", "purpose"}
REPLY = ModelReply(text="an answer", model=MODEL, prompt_tokens=11, completion_tokens=3,
                   latency_s=0.25, attempts=2, structured=True, cached=False,
                   structured_mode="json_schema", endpoint="https://api.example/v1",
                   queued_s=0.1234567, dropped_params=("seed",))


class Client:
    """Answers every request with ``outcome`` (a reply, or a ModelError to raise)."""

    def __init__(self, outcome: ModelReply | ModelError) -> None:
        self.outcome, self.requests = outcome, []

    def supports_schema(self, model: str) -> bool:
        return True

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        if isinstance(self.outcome, ModelError):
            raise self.outcome
        return self.outcome


def conversation_call(client: Client) -> tuple[list, ModelRequest]:
    ((_, scenario),) = load_scenarios([LAUNCH])
    job = ConversationJob(scenario_id=scenario.id, seed=3, models={"default": MODEL},
                          temperature=0.3, max_tokens=64)
    log: list = []
    ctx = ConversationContext(run_id="r", job=job, scenario=scenario, client=client,
                              emit=log.append)
    call = ctx.call(agent=scenario.personas[0].id, role="agent", purpose="decision",
                    messages=[{"role": "user", "content": "Who?"}], turn=4,
                    schema={"type": "object"}, max_tokens=32)
    try:
        asyncio.run(call)
    except ModelError:
        pass
    return log, client.requests[0]


def judge_call(client: Client, request: ModelRequest) -> list:
    log: list = []
    calls = JudgeCalls(client, log.append, {"run_id": "r", "conversation_id": "c",
                                            "agent": "judge", "role": "judge",
                                            "purpose": "rubric"})
    try:
        asyncio.run(calls.complete(request))
    except ModelError:
        pass
    return log


def fields(event) -> dict:
    return {k: v for k, v in event.model_dump(exclude_none=True).items()
            if k not in IDS and k != "latency_s"}


def test_an_answered_call_is_logged_alike_by_a_conversation_and_by_a_judge():
    (conversation,), request = conversation_call(Client(REPLY))
    (judged,) = judge_call(Client(REPLY), request)
    assert fields(conversation) == fields(judged)
    assert fields(judged) == {
        "type": "model_call", "model": MODEL, "messages": request.messages,
        "response": "an answer", "structured": True, "call_seed": request.seed,
        "temperature": 0.3, "max_tokens": 32, "prompt_tokens": 11, "completion_tokens": 3,
        "attempts": 2, "cached": False, "structured_mode": "json_schema",
        "endpoint": "https://api.example/v1", "queued_s": 0.123457, "dropped_params": ["seed"]}
    assert conversation.latency_s == judged.latency_s == 0.25  # the client's own measure
    assert (conversation.role, conversation.purpose) == ("agent", "decision")
    assert (judged.role, judged.purpose, judged.turn) == ("judge", "rubric", None)


def test_a_failed_call_is_logged_alike_and_still_raised():
    failure = ModelError("refused", model=MODEL, kind="auth", retryable=False, attempts=1)
    (conversation,), request = conversation_call(Client(failure))
    (judged,) = judge_call(Client(failure), request)
    assert fields(conversation) == fields(judged)
    assert fields(judged) == {
        "type": "model_call", "model": MODEL, "messages": request.messages,
        "structured": True, "call_seed": request.seed, "temperature": 0.3, "max_tokens": 32,
        "attempts": 1, "cached": False, "error": str(failure), "error_kind": "auth"}
    with pytest.raises(ModelError):
        asyncio.run(JudgeCalls(Client(failure), lambda e: None, {
            "run_id": "r", "agent": "judge", "role": "judge"}).complete(request))


def test_the_builder_measures_a_failure_from_the_start_and_keeps_empty_fields_absent():
    request = ModelRequest(model=MODEL, messages=[], purpose="chat")
    failed = model_call(request, ModelError("x", model=MODEL, kind="timeout"),
                        started=time.perf_counter() - 2.0, role="agent", run_id="r")
    assert failed.latency_s >= 2.0 and failed.structured is False and failed.purpose == "chat"
    answered = model_call(request, ModelReply(text="t", model=MODEL), started=0.0,
                          role="judge", purpose="iat", run_id="r")
    assert answered.queued_s is None and answered.dropped_params is None
    assert answered.purpose == "iat"
