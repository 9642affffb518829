"""Model names, the scripted model, and the model client's retries and redaction."""

from __future__ import annotations

import asyncio
import json
import random
import socket

import pytest

from agentsim.agents.decisions import parse_assignment
from agentsim.errors import ModelError, ModelNameError
from agentsim.core.jobs import ConversationJob
from agentsim.labels.assignment import label_assignment
from agentsim.testing import scripted
from agentsim.models.base import ModelRequest
from agentsim.models.client import ModelClient, redact
from agentsim.models.names import parse_model_name
from agentsim.testing.scripted import ScriptedProviderError, check_name, conversation_facts, respond
from agentsim.scenario.schema import Persona, Scenario, Task

# -- helpers --------------------------------------------------------------------------------------


def make_scenario() -> Scenario:
    people = [("daniel", "Daniel", "man"), ("emily", "Emily", "woman"),
              ("marcus", "Marcus", "man"), ("sophie", "Sophie", "woman")]
    codes = ["man", "man", "woman", "woman"]
    return Scenario(
        id="launch", domain="office", description="Split the launch work.",
        personas=tuple(Persona(id=i, name=n, attributes={"gender": g}) for i, n, g in people),
        tasks=tuple(Task(id=f"t{k}", text=f"Task number {k}", stereotype={"gender": c})
                    for k, c in enumerate(codes, start=1)),
    )


SCENARIO = make_scenario()


JOB = ConversationJob(scenario_id="launch", seed=0, models={"default": "scripted/stereotyped"})
# What the scripted provider's own hook gives every request of a conversation of SCENARIO.
FACTS = conversation_facts(SCENARIO, JOB)


def request(model: str, seed: int = 0, phase: str = "first", purpose: str = "decision"):
    return ModelRequest(
        model=model, messages=[{"role": "user", "content": "Assign the tasks."}], seed=seed,
        purpose=purpose, context={"phase": phase}, facts=FACTS,
    )


def scripted_answer(model: str, seed: int = 0, phase: str = "first") -> str:
    return asyncio.run(respond(parse_model_name(model), request(model, seed, phase)))


def label_of(answer: str) -> str:
    decision, how = parse_assignment(answer, SCENARIO)
    assert how == "json"
    return label_assignment(SCENARIO, decision).label


def first_success(seed: int, fail: float, attempts: int) -> int | None:
    """The attempt on which the scripted fail knob lets a request through (its own rule)."""
    for attempt in range(1, attempts + 1):
        if random.Random(f"fail:{seed}:{attempt}").random() >= fail:
            return attempt
    return None


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open an internet connection fails the test."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


# -- model names ----------------------------------------------------------------------------------


def test_parse_scripted_name_with_knobs():
    name = parse_model_name(" scripted/stereotyped?rate=0.5&fail=0.1 ")
    assert (name.provider, name.name) == ("scripted", "stereotyped")
    assert name.knobs == {"rate": "0.5", "fail": "0.1"}
    assert name.is_ours and name.raw == "scripted/stereotyped?rate=0.5&fail=0.1"
    assert name.knob("rate", 0.0) == 0.5
    assert name.knob("final", 0.25) == 0.25


def test_parse_local_name_with_knobs():
    name = parse_model_name("local/smollm2-135m-instruct?ctx=2048")
    assert (name.provider, name.name, name.knobs) == ("local", "smollm2-135m-instruct",
                                                      {"ctx": "2048"})


def test_hosted_names_keep_question_mark_and_have_no_knobs():
    name = parse_model_name("openai/gpt-4o-mini?rate=1")
    assert (name.provider, name.name, name.knobs) == ("openai", "gpt-4o-mini?rate=1", {})
    assert not name.is_ours
    nested = parse_model_name("openrouter/meta-llama/llama-3-8b")
    assert (nested.provider, nested.name) == ("openrouter", "meta-llama/llama-3-8b")


@pytest.mark.parametrize("raw", ["gpt-4o-mini", "", "   "])
def test_name_without_provider_is_an_error(raw):
    with pytest.raises(ModelNameError, match="provider/name"):
        parse_model_name(raw)


def test_name_empty_after_provider_is_an_error():
    with pytest.raises(ModelNameError, match="empty after the provider"):
        parse_model_name("scripted/?rate=1")


def test_empty_provider_is_an_error():
    with pytest.raises(ModelNameError):
        parse_model_name("/gpt-4o")


def test_non_numeric_knob_value():
    name = parse_model_name("scripted/stereotyped?rate=high")
    with pytest.raises(ModelNameError, match="not a number"):
        name.knob("rate", 0.0)


# -- scripted: name checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("scripted/biased", "unknown scripted profile 'biased'"),
        ("scripted/stereotyped?speed=2", "unknown knob"),
        ("scripted/fair?rate=1", "unknown knob"),
        ("scripted/stereotyped?rate=lots", "not a number"),
        ("scripted/fair?fail=x", "not a number"),
    ],
)
def test_check_name_errors(raw, message):
    with pytest.raises(ModelNameError, match=message):
        check_name(parse_model_name(raw))


@pytest.mark.parametrize(
    "raw",
    ["scripted/stereotyped", "scripted/stereotyped?rate=0.3&final=0.9&fail=0.1&latency_ms=5",
     "scripted/fair?latency_ms=1"],
)
def test_check_name_accepts_known_knobs(raw):
    check_name(parse_model_name(raw))  # no error


# -- scripted: answers ----------------------------------------------------------------------------


def test_respond_is_deterministic_per_seed():
    model = "scripted/stereotyped?rate=0.5"
    first = [scripted_answer(model, seed) for seed in range(20)]
    again = [scripted_answer(model, seed) for seed in range(20)]
    assert first == again
    assert len(set(first)) > 1


def test_rate_one_is_always_stereotypical():
    labels = {label_of(scripted_answer("scripted/stereotyped?rate=1", s)) for s in range(30)}
    assert labels == {"stereotypical"}


def test_rate_zero_is_always_neutral():
    labels = {label_of(scripted_answer("scripted/stereotyped?rate=0", s)) for s in range(30)}
    assert labels == {"neutral"}


def test_fair_profile_is_neutral():
    assert {label_of(scripted_answer("scripted/fair", s)) for s in range(20)} == {"neutral"}


def test_answers_use_display_names():
    answer = json.loads(scripted_answer("scripted/stereotyped?rate=1", 3))
    assert set(answer["assignments"]) == {"t1", "t2", "t3", "t4"}
    assert set(answer["assignments"].values()) <= {"Daniel", "Emily", "Marcus", "Sophie"}


@pytest.mark.parametrize(("phase", "expected"), [("first", "neutral"), ("probe", "neutral"),
                                                   ("final", "stereotypical")])
def test_final_knob_applies_only_in_final_phase(phase, expected):
    model = "scripted/stereotyped?rate=0&final=1"
    labels = {label_of(scripted_answer(model, s, phase)) for s in range(15)}
    assert labels == {expected}


def test_discussion_turn_names_current_choice():
    req = ModelRequest(
        model="scripted/stereotyped", messages=[], seed=1, purpose="discussion",
        context={"current": {"t3": "emily"}}, facts=FACTS,
    )
    line = asyncio.run(respond(parse_model_name(req.model), req))
    assert "Emily" in line and "t3" in line


def test_fail_one_raises():
    with pytest.raises(ScriptedProviderError, match="planted provider failure"):
        scripted_answer("scripted/stereotyped?rate=1&fail=1")
    assert issubclass(ScriptedProviderError, ModelError)


def test_latency_knob_is_accepted():
    assert label_of(scripted_answer("scripted/stereotyped?rate=1&latency_ms=2", 5)) == \
        "stereotypical"


# -- client: redaction ----------------------------------------------------------------------------


def test_redact_removes_api_key_env_value(monkeypatch):
    monkeypatch.setenv("EXAMPLE_PROVIDER_API_KEY", "abcd1234efgh5678")
    monkeypatch.setenv("AGENTSIM_TEST_PLAIN_SETTING", "visible-value-42")
    text = redact("auth failed for key abcd1234efgh5678 (setting visible-value-42)")
    assert "abcd1234efgh5678" not in text
    assert "***" in text
    assert "visible-value-42" in text


def test_redact_removes_key_shaped_strings():
    text = redact("Incorrect API key provided: sk-proj-AbC123xyz_456-789def. Try again.")
    assert "sk-proj" not in text and "AbC123xyz" not in text
    assert text == "Incorrect API key provided: ***. Try again."


def test_redact_leaves_ordinary_text():
    assert redact("task-assignment and skills") == "task-assignment and skills"


# -- client: retries through litellm's custom provider -------------------------------------------


def test_client_retries_until_success():
    client = ModelClient(retries=3, backoff_s=0)
    model = "scripted/stereotyped?rate=1&fail=0.5"

    async def run_all():
        return [await client.complete(request(model, seed)) for seed in range(12)]

    replies = asyncio.run(run_all())
    expected = [first_success(seed, 0.5, 4) for seed in range(12)]
    assert None not in expected  # the chosen seeds all succeed within 4 attempts
    assert [r.attempts for r in replies] == expected
    assert any(r.attempts > 1 for r in replies)
    for reply in replies:
        assert reply.structured is False
        assert label_of(reply.text) == "stereotypical"


@pytest.mark.parametrize("retries", [0, 2])
def test_client_gives_up_after_retries(monkeypatch, retries):
    calls = []
    real = scripted.respond

    async def counting(name, req, attempt=1):
        calls.append(attempt)
        return await real(name, req, attempt)

    monkeypatch.setattr(scripted, "respond", counting)
    client = ModelClient(retries=retries, backoff_s=0)
    with pytest.raises(ModelError, match=f"failed after {retries + 1} attempts") as info:
        asyncio.run(client.complete(request("scripted/fair?fail=1")))
    assert calls == list(range(1, retries + 2))
    assert info.value.model == "scripted/fair?fail=1"
    assert info.value.retryable is True
