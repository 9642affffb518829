"""The test servers work: the stub of model APIs (tests/support/stub_server.py) answers litellm
for every provider agentsim routes to, its fault knobs behave, and the real llama-cpp-python
server (tests/support/llama_server.py) answers schema-constrained chat and restarts on its port.

No traffic leaves 127.0.0.1: a guard in this module refuses any other address and fails the test
that tried.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest

# litellm fetches catalogues from the internet at import or first use unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import jsonschema  # noqa: E402  (a litellm dependency)
import litellm  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from support.stub_server import StubServer, schema_instance  # noqa: E402

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", None, ""}


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch):
    """Refuse (and fail on) any connection or name look-up that is not 127.0.0.1."""
    attempts: list[object] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def allowed(address: object) -> bool:
        if isinstance(address, (str, bytes)):  # AF_UNIX
            return True
        return isinstance(address, tuple) and address[0] in LOCAL_HOSTS

    def connect(self, address):
        if not allowed(address):
            attempts.append(address)
            raise OSError(f"test guard: connection to {address!r} refused")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not allowed(address):
            attempts.append(address)
            raise OSError(f"test guard: connection to {address!r} refused")
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in LOCAL_HOSTS:
            attempts.append(name)
            raise socket.gaierror(f"test guard: look-up of {name!r} refused")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    assert not attempts, f"traffic to outside 127.0.0.1 was attempted: {attempts}"


def complete(**kwargs):
    kwargs.setdefault("messages", [{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "Who takes task 1?"}])
    kwargs.setdefault("api_key", "sk-test-123")
    kwargs.setdefault("num_retries", 0)
    kwargs.setdefault("max_retries", 0)
    return asyncio.run(litellm.acompletion(**kwargs))


def http(url: str, body: object | None = None, headers: dict | None = None):
    """(status, headers, parsed body) of one plain HTTP request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"null")


# ---- the schema-instance generator ------------------------------------------------------------

SCHEMAS = [
    {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
     "required": ["name", "age"], "additionalProperties": False},
    {"type": "string", "minLength": 7, "maxLength": 9},
    {"type": "string", "pattern": "^[A-Z][0-9]$"},
    {"type": "string", "format": "date-time"},
    {"type": "integer", "minimum": 5, "maximum": 9},
    {"type": "integer", "exclusiveMinimum": 5},
    {"type": "number", "maximum": -2.5},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.1},
    {"type": "integer", "minimum": 7, "multipleOf": 5},
    {"type": "boolean"},
    {"type": "null"},
    {"enum": ["task 1", "task 2"]},
    {"const": 42},
    {"type": ["string", "null"], "minLength": 2},
    {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 3, "maxItems": 3},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "minItems": 2},
    {"type": "array", "items": {"type": "integer"}, "minItems": 3, "uniqueItems": True},
    {"anyOf": [{"type": "integer", "minimum": 3}, {"type": "string"}]},
    {"oneOf": [{"type": "string", "enum": ["x"]}, {"type": "integer"}]},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
               {"properties": {"b": {"type": "integer"}}, "required": ["b"]}]},
    {"type": "object", "minProperties": 2, "additionalProperties": {"type": "integer"}},
    {"type": "object", "required": ["extra"], "additionalProperties": {"type": "boolean"}},
    # pydantic-style: $defs and $ref, nested arrays of objects, Optional fields
    {"$defs": {"Person": {"type": "object",
                          "properties": {"name": {"type": "string", "minLength": 1},
                                         "gender": {"enum": ["woman", "man", "nonbinary"]}},
                          "required": ["name", "gender"]}},
     "type": "object",
     "properties": {"assignments": {"type": "array", "minItems": 2,
                                    "items": {"$ref": "#/$defs/Person"}},
                    "lead": {"$ref": "#/$defs/Person"},
                    "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}},
     "required": ["assignments", "lead"]},
    {"definitions": {"Task": {"type": "integer", "minimum": 1, "maximum": 2}},
     "type": "object", "properties": {"task": {"$ref": "#/definitions/Task"}},
     "required": ["task"]},
    # Gemini's OpenAPI-style upper-case type names
    {"type": "OBJECT", "properties": {"ok": {"type": "BOOLEAN"}}, "required": ["ok"]},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s)[:40])
def test_schema_instance_validates(schema):
    instance = schema_instance(schema)
    lowered = json.loads(json.dumps(schema).replace('"OBJECT"', '"object"')
                         .replace('"BOOLEAN"', '"boolean"'))
    jsonschema.Draft202012Validator(lowered).validate(instance)


@settings(max_examples=200, deadline=None)
@given(low=st.integers(-1000, 1000), width=st.integers(0, 50), exclusive=st.booleans(),
       integer=st.booleans(), min_items=st.integers(0, 4))
def test_schema_instance_respects_numeric_bounds(low, width, exclusive, integer, min_items):
    high = low + width + (2 if exclusive else 0)
    bounds = ({"exclusiveMinimum": low, "exclusiveMaximum": high} if exclusive
              else {"minimum": low, "maximum": high})
    schema = {"type": "array", "minItems": min_items,
              "items": {"type": "integer" if integer else "number", **bounds}}
    instance = schema_instance(schema)
    assert len(instance) == min_items
    jsonschema.Draft202012Validator(schema).validate(instance)


# ---- litellm reaches the stub for each provider -----------------------------------------------

PERSON = {"type": "object",
          "properties": {"choice": {"type": "string", "enum": ["Emily", "John"]},
                         "task": {"type": "integer", "minimum": 1, "maximum": 2}},
          "required": ["choice", "task"], "additionalProperties": False}
JSON_SCHEMA_FORMAT = {"type": "json_schema",
                      "json_schema": {"name": "assignment", "schema": PERSON, "strict": True}}


def test_openai_provider(stub_server):
    plain = complete(model="openai/stub-m", api_base=stub_server.base_url, seed=7,
                     temperature=0.3, max_tokens=40)
    assert plain.choices[0].message.content == "I agree with the plan."
    assert plain.usage.completion_tokens == 5 and plain.usage.prompt_tokens > 0
    shaped = complete(model="openai/stub-m", api_base=stub_server.base_url, seed=7,
                      response_format=JSON_SCHEMA_FORMAT)
    jsonschema.validate(json.loads(shaped.choices[0].message.content), PERSON)

    first, second = stub_server.requests_to("/v1/chat/completions")
    assert first.method == "POST" and first.header("authorization") == "Bearer sk-test-123"
    assert first.body["model"] == "stub-m" and first.body["seed"] == 7
    assert first.body["temperature"] == 0.3 and first.body["max_tokens"] == 40
    assert first.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "response_format" not in first.body
    assert second.body["response_format"] == JSON_SCHEMA_FORMAT
    assert stub_server.count() == 2


def test_hosted_vllm_provider(stub_server):
    stub_server.schema_support = "vllm"
    reply = complete(model="hosted_vllm/served-m", api_base=stub_server.base_url, seed=3,
                     extra_body={"guided_json": PERSON})
    jsonschema.validate(json.loads(reply.choices[0].message.content), PERSON)
    reply = complete(model="hosted_vllm/served-m", api_base=stub_server.base_url,
                     extra_body={"structured_outputs": {"json": PERSON}})
    jsonschema.validate(json.loads(reply.choices[0].message.content), PERSON)
    reply = complete(model="hosted_vllm/served-m", api_base=stub_server.base_url,
                     response_format=JSON_SCHEMA_FORMAT)
    jsonschema.validate(json.loads(reply.choices[0].message.content), PERSON)

    guided, outputs, schema = stub_server.requests_to("/v1/chat/completions")
    assert guided.body["model"] == "served-m" and guided.body["seed"] == 3
    assert guided.body["guided_json"] == PERSON and "extra_body" not in guided.body
    assert outputs.body["structured_outputs"] == {"json": PERSON}
    assert schema.body["response_format"]["json_schema"]["schema"] == PERSON


def test_anthropic_provider(stub_server):
    plain = complete(model="anthropic/claude-3-5-haiku-20241022", api_base=stub_server.url,
                     seed=7, temperature=0.2, max_tokens=64, drop_params=True)
    assert plain.choices[0].message.content == "I agree with the plan."
    assert plain.usage.prompt_tokens > 0 and plain.usage.completion_tokens == 5
    shaped = complete(model="anthropic/claude-3-5-haiku-20241022", api_base=stub_server.url,
                      response_format=JSON_SCHEMA_FORMAT, max_tokens=64)
    jsonschema.validate(json.loads(shaped.choices[0].message.content), PERSON)

    first, second = stub_server.requests_to("/v1/messages")
    assert first.header("x-api-key") == "sk-test-123" and first.header("anthropic-version")
    assert "seed" not in first.body  # dropped: Anthropic has no seed
    assert first.body["system"] == [{"type": "text", "text": "Be brief."}]
    assert [m["role"] for m in first.body["messages"]] == ["user"]
    assert first.body["max_tokens"] == 64 and first.body["temperature"] == 0.2
    # older Claude models get structured output as a forced tool call
    assert second.body["tool_choice"] == {"type": "tool", "name": "json_tool_call"}
    assert second.body["tools"][0]["input_schema"] == PERSON


def test_gemini_provider(stub_server):
    plain = complete(model="gemini/gemini-2.0-flash", api_base=stub_server.url, seed=7,
                     max_tokens=30)
    assert plain.choices[0].message.content == "I agree with the plan."
    assert plain.usage.prompt_tokens > 0 and plain.usage.completion_tokens == 5
    shaped = complete(model="gemini/gemini-2.0-flash", api_base=stub_server.url,
                      response_format=JSON_SCHEMA_FORMAT)
    jsonschema.validate(json.loads(shaped.choices[0].message.content), PERSON)

    first, second = stub_server.requests_to("/models/gemini-2.0-flash:generateContent")
    assert first.header("x-goog-api-key") == "sk-test-123"
    assert first.body["generationConfig"]["seed"] == 7
    assert first.body["generationConfig"]["max_output_tokens"] == 30
    texts = [p["text"] for c in first.body["contents"] for p in c["parts"]]
    assert "Who takes task 1?" in texts
    config = second.body["generationConfig"]
    assert config["response_mime_type"] == "application/json"
    assert config["response_json_schema"] == PERSON


@pytest.mark.parametrize("model,path", [("ollama/llama3", "/api/generate"),
                                        ("ollama_chat/llama3", "/api/chat")])
def test_ollama_providers(stub_server, model, path):
    plain = complete(model=model, api_base=stub_server.url, seed=7, max_tokens=25)
    assert plain.choices[0].message.content == "I agree with the plan."
    assert plain.usage.completion_tokens == 5
    shaped = complete(model=model, api_base=stub_server.url, response_format=JSON_SCHEMA_FORMAT)
    jsonschema.validate(json.loads(shaped.choices[0].message.content), PERSON)

    first, second = stub_server.requests_to(path)
    assert first.body["model"] == "llama3" and first.body["stream"] is False
    assert first.body["options"] == {"seed": 7, "num_predict": 25}
    assert "format" not in first.body
    assert second.body["format"] == PERSON
    if path == "/api/chat":
        assert first.body["messages"][1]["content"] == "Who takes task 1?"
    else:
        assert "Who takes task 1?" in first.body["prompt"]


def test_streaming_reaches_the_stub(stub_server):
    async def collect(**kwargs):
        stream = await litellm.acompletion(
            messages=[{"role": "user", "content": "hi"}], api_key="k", stream=True,
            num_retries=0, **kwargs)
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream])

    for model, base in [("openai/m", stub_server.base_url), ("ollama_chat/m", stub_server.url),
                        ("anthropic/claude-3-5-haiku-20241022", stub_server.url),
                        ("gemini/gemini-2.0-flash", stub_server.url)]:
        assert asyncio.run(collect(model=model, api_base=base)) == "I agree with the plan.", model
    gemini = stub_server.requests_to("/models/")[0]
    assert gemini.path.endswith(":streamGenerateContent") and gemini.query["alt"] == ["sse"]


def test_plain_http_routes(stub_server):
    status, _, models = http(stub_server.base_url + "/models")
    assert status == 200 and models["data"][0]["id"] == "stub-model"
    status, _, tags = http(stub_server.url + "/api/tags")
    assert status == 200 and tags["models"][0]["name"] == "stub-model:latest"
    status, _, version = http(stub_server.url + "/api/version")
    assert status == 200 and version["version"]
    status, _, answer = http(stub_server.url + "/chat/completions",
                             {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert status == 200 and answer["choices"][0]["message"]["content"] == "I agree with the plan."
    status, _, missing = http(stub_server.url + "/nowhere")
    assert status == 404 and "error" in missing
    assert [r.path for r in stub_server.requests] == [
        "/v1/models", "/api/tags", "/api/version", "/chat/completions", "/nowhere"]
    assert stub_server.requests[3].body["model"] == "m"
    stub_server.clear()
    assert stub_server.count() == 0


# ---- schema_support modes -------------------------------------------------------------------


def test_schema_support_modes(stub_server):
    ask = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    as_llamacpp = {**ask, "response_format": {"type": "json_object", "schema": PERSON}}
    as_openai = {**ask, "response_format": JSON_SCHEMA_FORMAT}
    as_vllm = {**ask, "guided_json": PERSON}
    url = stub_server.base_url + "/chat/completions"

    def content(body):
        status, _, answer = http(url, body)
        return status, answer

    stub_server.schema_support = "llamacpp"
    status, answer = content(as_openai)
    assert status == 500 and "json_object" in answer["error"]["message"]
    status, answer = content(as_llamacpp)
    jsonschema.validate(json.loads(answer["choices"][0]["message"]["content"]), PERSON)

    stub_server.schema_support = "vllm"
    for body in (as_vllm, as_openai):
        status, answer = content(body)
        jsonschema.validate(json.loads(answer["choices"][0]["message"]["content"]), PERSON)

    stub_server.schema_support = "openai"
    status, answer = content(as_vllm)  # guided_json is not OpenAI's: ignored
    assert answer["choices"][0]["message"]["content"] == "I agree with the plan."

    stub_server.schema_support = "none"
    stub_server.text = "Plain words."
    for body in (as_openai, as_llamacpp, as_vllm):
        status, answer = content(body)
        assert status == 200 and answer["choices"][0]["message"]["content"] == "Plain words."


# ---- fault knobs ----------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(stub_server):
    complete(model="openai/m", api_base=stub_server.base_url)  # litellm's lazy imports done
    stub_server.clear()
    stub_server.rate_limit_per_s = 2
    url = stub_server.base_url + "/chat/completions"
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    statuses = [http(url, body) for _ in range(3)]
    assert [s for s, _, _ in statuses] == [200, 200, 429]
    assert statuses[2][1]["Retry-After"] == "1"  # whole seconds until the window frees a slot
    assert statuses[2][2]["error"]["type"] == "rate_limit_error"

    with pytest.raises(litellm.RateLimitError) as caught:
        complete(model="openai/m", api_base=stub_server.base_url)
    assert caught.value.response.headers["retry-after"] == "1"
    assert stub_server.rate_limited == 2 and stub_server.count() == 4

    time.sleep(1.05)  # the sliding window empties
    assert complete(model="openai/m", api_base=stub_server.base_url).choices[0].message.content


def test_fail_next_then_recovers(stub_server):
    stub_server.fail_next(2, status=503)
    for _ in range(2):
        with pytest.raises(litellm.ServiceUnavailableError):
            complete(model="openai/m", api_base=stub_server.base_url)
    assert complete(model="openai/m", api_base=stub_server.base_url).choices[0].message.content
    assert [r.status for r in stub_server.requests] == [503, 503, 200]


def test_stall_times_out(stub_server):
    stub_server.stall_s = 3
    began = time.monotonic()
    with pytest.raises(litellm.Timeout):
        complete(model="openai/m", api_base=stub_server.base_url, timeout=0.5)
    assert time.monotonic() - began < 2.5
    stub_server.stall_s = 0
    assert complete(model="openai/m", api_base=stub_server.base_url).choices[0].message.content


def test_echo_returns_headers_and_body(stub_server):
    stub_server.echo = True
    reply = complete(model="openai/m", api_base=stub_server.base_url, api_key="sk-SECRET-42")
    text = reply.choices[0].message.content
    assert text.startswith("I agree with the plan.")
    assert "Bearer sk-SECRET-42" in text and "Who takes task 1?" in text


def test_require_key(stub_server):
    stub_server.require_key = "right-key"
    for model, base in [("openai/m", stub_server.base_url),
                        ("anthropic/claude-3-5-haiku-20241022", stub_server.url),
                        ("gemini/gemini-2.0-flash", stub_server.url),
                        ("ollama_chat/m", stub_server.url)]:
        with pytest.raises(litellm.AuthenticationError):
            complete(model=model, api_base=base, api_key="wrong-key")
        assert complete(model=model, api_base=base, api_key="right-key").choices[0].message.content
    assert [r.status for r in stub_server.requests] == [401, 200] * 4
    status, _, _ = http(stub_server.base_url + "/models?key=right-key")
    assert status == 200


def test_stub_stop_start_same_port():
    with StubServer(text="first") as stub:
        port = stub.port
        stub.stop()
        with pytest.raises(OSError):
            http(stub.base_url + "/models")
        stub.start()
        assert stub.port == port and http(stub.base_url + "/models")[0] == 200


# ---- the real llama-cpp-python server -------------------------------------------------------


def test_llama_server_json_object_schema_and_restart(llama_server):
    schema = {"type": "object",
              "properties": {"name": {"type": "string"}, "task": {"type": "integer"}},
              "required": ["name", "task"]}
    reply = complete(model=f"openai/{llama_server.alias}", api_base=llama_server.base_url,
                     api_key="none", temperature=0, max_tokens=40, seed=1,
                     messages=[{"role": "user",
                                "content": "Who should take task 1, Emily or John? Answer JSON."}],
                     response_format={"type": "json_object", "schema": schema})
    jsonschema.validate(json.loads(reply.choices[0].message.content), schema)
    assert reply.model.endswith(llama_server.alias) and reply.usage.completion_tokens > 0

    port = llama_server.port
    llama_server.stop()
    try:
        assert not llama_server.running
        with pytest.raises(OSError):
            http(llama_server.base_url + "/models")
    finally:
        llama_server.start()
    assert llama_server.port == port and llama_server.base_url == f"http://127.0.0.1:{port}/v1"
    status, _, models = http(llama_server.base_url + "/models")
    assert status == 200 and models["data"][0]["id"] == llama_server.alias


def test_llama_server_pair_are_two_servers(llama_server_pair):
    first, second = llama_server_pair
    assert first.port != second.port
    for server in (first, second):
        status, _, models = http(server.base_url + "/models")
        assert status == 200 and models["data"][0]["id"] == server.alias
