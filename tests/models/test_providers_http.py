"""Each provider family over HTTP, against the stub of tests/support: what agentsim sends (only
the parameters the provider takes; structured output asked for the way that provider takes it),
what the probe chooses for each kind of server, and what a run records (manifest ``endpoints``,
each ``model_call``'s ``structured_mode``, ``endpoint`` and ``dropped_params``).

Calls go through ModelClient with an EndpointResolver whose models config points at the stub,
after ``run_preflight``, as a run does; then whole runs through the CLI. No traffic leaves
127.0.0.1 (a guard below fails any test that tries).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from agentsim.models.base import ModelRequest
from agentsim.models.client import ModelClient
from agentsim.models.endpoints import EndpointResolver, ModelsConfig
from agentsim.models.preflight import PROBE_SCHEMA, run_preflight
from support.network import LOOPBACK, only_loopback  # noqa: F401 - autouse fixture

REPO = Path(__file__).resolve().parents[2]
FLAT = REPO / "scenarios" / "workplace" / "family-shared-flat-move.yaml"
SCHEMA = {"type": "object", "properties": {"task": {"type": "string", "enum": ["t1", "t2"]}},
          "required": ["task"], "additionalProperties": False}
KEY = "stub-secret-0123456789"  # planted in the variable a models config names




def prepare(entry: dict, users: list[str] | None = None):
    """(client, preflight) for one model 'm' described by a models-config entry."""
    resolver = EndpointResolver(ModelsConfig.model_validate({"models": {"m": entry}}))
    checked = asyncio.run(run_preflight(resolver, ["m"], users={"m": users or ["aisha"]}))
    return ModelClient(resolver=resolver, retries=0), checked


def ask(client: ModelClient, schema: dict | None = SCHEMA):
    request = ModelRequest(model="m", messages=[{"role": "user", "content": "Who takes t1?"}],
                           schema=schema, temperature=0.3, max_tokens=40, seed=5)
    return asyncio.run(client.complete(request))


def is_probe(record) -> bool:
    return PROBE_SCHEMA["properties"]["probe"]["enum"][0] in json.dumps(record.body)


def calls(stub, path: str) -> list:
    """Bodies of the requests to ``path`` that were not probes."""
    return [r.body for r in stub.requests_to(path) if not is_probe(r)]


# ---- one provider family at a time, through ModelClient ---------------------------------------

def test_openai_gets_json_schema_and_every_sampling_parameter(stub_server):
    client, checked = prepare({"model": "openai/served", "api_base": stub_server.base_url})
    reply = ask(client)
    (body,) = calls(stub_server, "/v1/chat/completions")
    assert body["model"] == "served"
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": SCHEMA, "strict": True}}
    assert (body["seed"], body["temperature"], body["max_tokens"]) == (5, 0.3, 40)
    assert set(body) == {"model", "messages", "seed", "temperature", "max_tokens",
                         "response_format"}
    assert json.loads(reply.text) == {"task": "t1"}
    assert reply.structured and reply.structured_mode == "json_schema"
    assert reply.dropped_params == ()
    assert reply.endpoint == stub_server.base_url and reply.served_model == "served"
    assert checked.endpoints["m"].structured == "json_schema"


def test_anthropic_gets_no_seed_and_a_forced_tool(stub_server, monkeypatch):
    monkeypatch.setenv("STUB_ANTHROPIC_KEY", KEY)
    stub_server.require_key = KEY
    client, checked = prepare({"model": "anthropic/claude-3-5-haiku-20241022",
                               "api_base": stub_server.url, "api_key_env": "STUB_ANTHROPIC_KEY"})
    reply = ask(client)
    (record,) = [r for r in stub_server.requests_to("/v1/messages") if not is_probe(r)]
    body = record.body
    assert record.header("x-api-key") == KEY
    assert "seed" not in body  # Anthropic takes none: dropped, and the drop recorded
    assert reply.dropped_params == ("seed",)
    assert (body["temperature"], body["max_tokens"]) == (0.3, 40)
    assert body["tool_choice"]["type"] == "tool"
    (tool,) = body["tools"]
    assert tool["name"] == body["tool_choice"]["name"]
    assert tool["input_schema"]["properties"] == SCHEMA["properties"]
    assert tool["input_schema"]["required"] == ["task"]
    assert "response_format" not in body
    assert json.loads(reply.text) == {"task": "t1"}
    assert reply.structured_mode == "json_schema" == checked.endpoints["m"].structured


def test_gemini_gets_response_json_schema_and_its_seed(stub_server, monkeypatch):
    monkeypatch.setenv("STUB_GEMINI_KEY", KEY)
    stub_server.require_key = KEY
    client, _ = prepare({"model": "gemini/gemini-2.5-flash",
                         "api_base": f"{stub_server.url}/v1beta", "api_key_env": "STUB_GEMINI_KEY"})
    reply = ask(client)
    (record,) = [r for r in stub_server.requests_to("/v1beta/models/gemini-2.5-flash:")
                 if not is_probe(r)]
    assert record.header("x-goog-api-key") == KEY
    config = record.body["generationConfig"]
    assert config["response_json_schema"] == SCHEMA
    assert config["response_mime_type"] == "application/json"
    assert (config["seed"], config["temperature"], config["max_output_tokens"]) == (5, 0.3, 40)
    assert reply.dropped_params == () and reply.structured_mode == "json_schema"
    assert json.loads(reply.text) == {"task": "t1"}


@pytest.mark.parametrize("provider, path", [("ollama", "/api/generate"),
                                            ("ollama_chat", "/api/chat")])
def test_ollama_gets_the_schema_in_format(stub_server, provider, path):
    client, checked = prepare({"model": f"{provider}/llama3", "api_base": stub_server.url})
    assert checked.endpoints["m"].structured == "ollama"
    assert checked.probes["m"] == [{"mode": "ollama", "result": "constrained"}]
    reply = ask(client)
    (body,) = calls(stub_server, path)
    assert body["format"] == SCHEMA
    assert "response_format" not in body
    assert body["options"] == {"temperature": 0.3, "num_predict": 40, "seed": 5}
    assert body["stream"] is False
    assert stub_server.count("/api/show") == 0  # no model look-up before each call
    assert reply.structured_mode == "ollama" and json.loads(reply.text) == {"task": "t1"}


def test_vllm_mode_sends_structured_outputs_and_guided_json(stub_server):
    stub_server.schema_support = "vllm"
    client, checked = prepare({"model": "hosted_vllm/mistral", "api_base": stub_server.base_url,
                               "structured": "vllm", "params": {"extra_body": {"top_k": 5}}})
    assert checked.endpoints["m"].mode_source == "config"
    assert checked.probes["m"] == [{"mode": "vllm", "result": "constrained"}]
    reply = ask(client)
    (body,) = calls(stub_server, "/v1/chat/completions")
    assert body["structured_outputs"] == {"json": SCHEMA}
    assert body["guided_json"] == SCHEMA
    assert body["top_k"] == 5  # the entry's own extra_body is kept beside them
    assert "response_format" not in body
    assert body["seed"] == 5
    assert reply.structured_mode == "vllm" and json.loads(reply.text) == {"task": "t1"}


def test_a_call_without_schema_asks_for_no_format(stub_server):
    client, _ = prepare({"model": "openai/served", "api_base": stub_server.base_url})
    reply = ask(client, schema=None)
    (body,) = calls(stub_server, "/v1/chat/completions")
    assert "response_format" not in body and reply.structured_mode is None
    assert reply.text == stub_server.text and not reply.structured


# ---- the probe ---------------------------------------------------------------------------------

@pytest.mark.parametrize("support, model, mode, trail", [
    ("openai", "openai/served", "json_schema", ["json_schema constrained"]),
    ("llamacpp", "openai/served", "json_object",
     ["json_schema rejected (server)", "json_object constrained"]),
    ("vllm", "hosted_vllm/served", "json_schema", ["json_schema constrained"]),
    ("none", "openai/served", "text", ["json_schema not constrained",
                                       "json_object not constrained", "vllm not constrained"]),
])
def test_the_probe_chooses_the_mode_the_server_honours(stub_server, support, model, mode, trail):
    stub_server.schema_support = support
    client, checked = prepare({"model": model, "api_base": stub_server.base_url},
                              users=["aisha", "emily"])
    endpoint = checked.endpoints["m"]
    assert (endpoint.structured, endpoint.mode_source) == (mode, "probe")
    assert [f"{t['mode']} {t['result']}" for t in checked.probes["m"]] == trail
    assert checked.manifest_entry()["m"]["structured"] == mode
    assert checked.manifest_entry()["m"]["probe"] == checked.probes["m"]
    probes = stub_server.requests_to("/v1/chat/completions")
    assert len(probes) == len(trail) and all(is_probe(r) for r in probes)
    if support == "llamacpp":
        assert probes[0].status == 500  # json_schema is what this server refuses
    if mode == "text":
        (warning,) = checked.warnings
        assert "no structured output" in warning and "aisha, emily" in warning
        assert "free text" in warning
    else:
        assert checked.warnings == []
    reply = ask(client)
    assert reply.structured_mode == mode
    assert reply.structured is (mode != "text")
    if mode != "text":
        assert json.loads(reply.text) == {"task": "t1"}


def test_a_configured_mode_the_server_ignores_is_warned_about(stub_server):
    stub_server.schema_support = "none"
    _, checked = prepare({"model": "hosted_vllm/served", "api_base": stub_server.base_url,
                          "structured": "vllm"})
    assert checked.endpoints["m"].structured == "vllm"  # as configured ...
    assert any("did not constrain" in w for w in checked.warnings)  # ... but said


# ---- whole runs through the command line -------------------------------------------------------

def run_cli(tmp_path: Path, *args: str, name: str = "run") -> tuple[int, Path]:
    from agentsim.cli.main import main

    out = tmp_path / name
    code = main(["run", str(FLAT), "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                 "--json", *map(str, args)])
    return code, out


def run_events(run: Path, kind: str | None = None) -> list[dict]:
    lines = (run / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if kind is None or e["type"] == kind]


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def test_a_run_through_openai_records_the_mode_and_the_endpoint(stub_server, tmp_path):
    code, run = run_cli(tmp_path, "--model", "openai/served", "--api-base", stub_server.base_url,
                        "--rounds", "1")
    assert code == 0
    entry = manifest(run)["endpoints"]["openai/served"]
    assert entry["structured"] == "json_schema" and entry["mode_source"] == "probe"
    assert entry["api_base"] == stub_server.base_url and entry["served_model"] == "served"
    assert entry["probe"] == [{"mode": "json_schema", "result": "constrained"}]
    model_calls = run_events(run, "model_call")
    decisions = [c for c in model_calls if c.get("structured")]
    assert len(decisions) >= 4  # first and final decision of both persons
    assert {c.get("structured_mode") for c in decisions} == {"json_schema"}
    assert {c.get("endpoint") for c in model_calls} == {stub_server.base_url}
    assert not any(c.get("dropped_params") for c in model_calls)
    bodies = calls(stub_server, "/v1/chat/completions")
    assert len(bodies) == len(model_calls)
    assert all("seed" in b for b in bodies)
    assert sum("response_format" in b for b in bodies) == len(decisions)
    results = json.loads((run / "results.json").read_text())
    assert results["parsing"]["unparsed"] == 0


def test_a_persona_on_anthropic_has_its_seed_dropped_in_the_log(stub_server, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv("STUB_ANTHROPIC_KEY", KEY)
    config = tmp_path / "models.yaml"
    config.write_text(yaml.safe_dump({"models": {
        "gpt": {"model": "openai/served", "api_base": stub_server.base_url},
        "claude": {"model": "anthropic/claude-3-5-haiku-20241022", "api_base": stub_server.url,
                   "api_key_env": "STUB_ANTHROPIC_KEY"}}}))
    code, run = run_cli(tmp_path, "--models-config", config, "--model", "gpt",
                        "--role", "aisha=claude", "--rounds", "1")
    assert code == 0
    endpoints = manifest(run)["endpoints"]
    assert endpoints["claude"]["structured"] == "json_schema"
    assert endpoints["claude"]["api_key_env"] == "STUB_ANTHROPIC_KEY"
    model_calls = run_events(run, "model_call")
    aisha = [c for c in model_calls if c["agent"] == "aisha"]
    thomas = [c for c in model_calls if c["agent"] == "thomas"]
    assert aisha and thomas
    assert all(c["model"] == "claude" and c.get("dropped_params") == ["seed"] for c in aisha)
    assert not any(c.get("dropped_params") for c in thomas)
    assert {c.get("structured_mode") for c in aisha if c.get("structured")} == {"json_schema"}
    assert {c.get("endpoint") for c in aisha} == {stub_server.url}
    assert calls(stub_server, "/v1/messages") and all(
        "seed" not in b for b in calls(stub_server, "/v1/messages"))
    assert all("seed" in b for b in calls(stub_server, "/v1/chat/completions"))
    parsing = json.loads((run / "results.json").read_text())["parsing"]
    assert parsing["by_agent"]["aisha"]["unparsed"] == 0


def test_a_persona_on_a_server_without_structured_output_is_named_up_front(stub_server,
                                                                           tmp_path):
    stub_server.schema_support = "none"
    code, run = run_cli(tmp_path, "--model", "scripted/fair", "--role", "aisha=openai/served",
                        "--api-base", f"openai/served={stub_server.base_url}", "--rounds", "1")
    assert code == 0
    data = manifest(run)
    assert data["endpoints"]["openai/served"]["structured"] == "text"
    assert data["endpoints"]["scripted/fair"]["structured"] == "native"
    (warning,) = [w for w in data["warnings"] if "no structured output" in w]
    assert "decisions of aisha" in warning
    by_agent = json.loads((run / "results.json").read_text())["parsing"]["by_agent"]
    assert by_agent["aisha"]["modes"] == ["text"] and by_agent["thomas"]["modes"] == ["native"]
    assert by_agent["aisha"]["constrained_calls"] == 0 < by_agent["thomas"]["constrained_calls"]
    model_calls = [c for c in run_events(run, "model_call") if c["agent"] == "aisha"]
    assert model_calls and all(c.get("structured_mode") in ("text", None) for c in model_calls)
    assert all("response_format" not in b for b in calls(stub_server, "/v1/chat/completions"))


def test_a_busy_server_during_the_probe_keeps_its_best_mode(stub_server):
    stub_server.fail_next(1, 429, retry_after=1)
    _, checked = prepare({"model": "openai/served", "api_base": stub_server.base_url})
    assert checked.endpoints["m"].structured == "json_schema"
