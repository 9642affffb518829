"""Runs against a real model server: llama-cpp-python's OpenAI-compatible server on 127.0.0.1,
serving the embedded SmolLM2 weights (the ``llama_server`` fixtures start and stop it).

These are the paths a user with their own server takes: the probe must find the server's way of
constraining output, every decision must be schema-constrained over HTTP as in-process, one
persona on a server must not lose decisions the others keep, a router must spread calls, and a
server that dies mid-run must not fail the run.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from agentsim.cli.main import main
from agentsim.core.store import RunStore

REPO = Path(__file__).resolve().parents[2]
OFFICE = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
HIRING = REPO / "scenarios" / "setups" / "hiring-committee.yaml"
CLINICAL = REPO / "scenarios" / "clinical" / "clinical-celiac-disease.yaml"


def run_cli(*args: str) -> int:
    return main(["run", *map(str, args), "--no-cache", "--seed", "3", "--max-tokens", "80"])


def calls_of(run_dir: Path, purposes=("decision",)) -> list:
    store = RunStore.open(run_dir)
    return [c for c in store.iter_events({"model_call"}) if c.purpose in purposes]


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def test_discussion_over_http_is_schema_constrained(llama_server, tmp_path):
    out = tmp_path / "run"
    code = run_cli(OFFICE, "--model", f"openai/{llama_server.alias}", "--api-base",
                   llama_server.base_url, "--rounds", "1", "--out", out)
    assert code == 0
    endpoint = manifest(out)["endpoints"][f"openai/{llama_server.alias}"]
    # llama-cpp-python's server refuses OpenAI's json_schema (HTTP 500) and honours
    # {"type": "json_object", "schema": ...}: the probe must find that.
    assert endpoint["structured"] == "json_object" and endpoint["mode_source"] == "probe"
    assert endpoint["probe"][0] == {"mode": "json_schema", "result": "rejected (server)"}
    assert endpoint["served_model"] == llama_server.alias
    decisions = calls_of(out)
    assert len(decisions) == 8
    assert all(c.structured and c.structured_mode == "json_object" for c in decisions)
    assert {c.endpoint for c in decisions} == {llama_server.base_url}
    parsing = json.loads((out / "results.json").read_text())["parsing"]
    assert parsing["decisions"] == 8 and parsing["unparsed"] == 0


def test_hosted_vllm_name_reaches_the_same_server_constrained(llama_server, tmp_path):
    out = tmp_path / "run"
    code = run_cli(OFFICE, "--model", f"hosted_vllm/{llama_server.alias}", "--api-base",
                   llama_server.base_url, "--setting", "no-interaction", "--out", out)
    assert code == 0
    (call,) = calls_of(out)
    assert call.structured and call.structured_mode in ("json_object", "vllm")
    decisions = list(RunStore.open(out).iter_events({"decision"}))
    assert decisions[0].value is not None and decisions[0].parsed_by == "json"


def test_clinical_doctor_acts_through_structured_output(llama_server, tmp_path):
    out = tmp_path / "run"
    code = run_cli(CLINICAL, "--model", f"openai/{llama_server.alias}", "--api-base",
                   llama_server.base_url, "--max-turns", "3", "--no-variants", "--out", out)
    assert code == 0
    store = RunStore.open(out)
    doctor = [c for c in store.iter_events({"model_call"}) if c.role == "doctor"]
    assert doctor and all(c.structured and c.structured_mode == "json_object" for c in doctor)
    actions = [d for d in store.iter_events({"decision"}) if d.kind == "doctor_action"]
    assert actions and all(d.parsed_by == "json" for d in actions)


def test_setup_rankings_parse_over_http(llama_server, tmp_path):
    out = tmp_path / "run"
    code = run_cli(HIRING, "--model", f"openai/{llama_server.alias}", "--api-base",
                   llama_server.base_url, "--rounds", "1", "--no-variants", "--out", out)
    assert code == 0
    points = [d for d in RunStore.open(out).iter_events({"decision"}) if d.point]
    assert points and all(d.value is not None for d in points)


def test_one_persona_on_a_server_parses_like_the_others(llama_server, tmp_path):
    """The Emily case: one persona on a server, the rest in-process, same parse rate for all."""
    out = tmp_path / "run"
    server_model = f"openai/{llama_server.alias}"
    code = run_cli(OFFICE, "--role", f"emily={server_model}", "--api-base",
                   f"{server_model}={llama_server.base_url}", "--rounds", "1", "--out", out)
    assert code == 0
    by_agent = json.loads((out / "results.json").read_text())["parsing"]["by_agent"]
    assert len(by_agent) == 4 and "emily" in by_agent
    assert {row["unparsed"] for row in by_agent.values()} == {0}
    assert all(row["constrained_calls"] == row["calls"] for row in by_agent.values())
    endpoints = {c.agent: c.endpoint for c in calls_of(out)}
    assert endpoints.pop("emily") == llama_server.base_url
    assert set(endpoints.values()) == {"in-process"}


def test_router_spreads_calls_over_two_servers(llama_server_pair, tmp_path):
    first, second = llama_server_pair
    config = tmp_path / "router.yaml"
    config.write_text(
        "model_list:\n"
        + "".join(f"  - model_name: pool\n    litellm_params:\n      model: openai/{s.alias}\n"
                  f"      api_base: {s.base_url}\n"
                  for s in (first, second)))
    out = tmp_path / "run"
    code = run_cli(OFFICE, "--model", "pool", "--router-config", config, "--setting",
                   "no-interaction", "--replicates", "8", "--concurrency", "4", "--out", out)
    assert code == 0
    assert manifest(out)["endpoints"]["pool"]["structured"] == "json_object"
    used = [c.endpoint for c in calls_of(out)]
    assert set(used) == {first.base_url, second.base_url}, used


def test_a_server_killed_mid_run_and_restarted_does_not_fail_the_run(tmp_path):
    from support.llama_server import LlamaServer

    out = tmp_path / "run"
    events = out / "events.jsonl"
    outage: dict = {}

    def kill_and_restart(server: LlamaServer) -> None:
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:  # wait for the run's second model call
                if events.exists() and events.read_text().count('"model_call"') >= 2:
                    break
                time.sleep(0.2)
            server.kill()
            outage["down"] = time.monotonic()
            time.sleep(4)
            server.start()
            outage["up"] = time.monotonic()
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            outage["error"] = repr(error)

    # A server of its own: the session's server stays up for the other tests.
    with LlamaServer(alias="smollm2-restart") as server:
        killer = threading.Thread(target=kill_and_restart, args=(server,))
        killer.start()
        try:
            code = run_cli(OFFICE, "--model", f"openai/{server.alias}", "--api-base",
                           server.base_url, "--rounds", "1", "--retries", "12", "--out", out)
        finally:
            killer.join()
        assert outage.get("up"), f"the server was not killed and restarted: {outage}"
    assert code == 0
    calls = calls_of(out, ("decision", "discussion"))
    assert len(calls) == 12 and all(c.error is None for c in calls)
    assert any(c.attempts > 1 for c in calls)  # some call rode out the outage


def test_the_server_is_deterministic_for_a_seed(llama_server, tmp_path):
    """Same seed, same answers, also with conversations in flight together."""
    texts = []
    for name in ("a", "b"):
        out = tmp_path / name
        code = run_cli(OFFICE, "--model", f"openai/{llama_server.alias}", "--api-base",
                       llama_server.base_url, "--setting", "no-interaction", "--replicates", "3",
                       "--concurrency", "3", "--out", out)
        assert code == 0
        texts.append(sorted((c.conversation_id, c.response) for c in calls_of(out)))
    assert texts[0] == texts[1]


def test_a_dead_server_is_refused_before_anything_is_written(tmp_path, capsys):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "run"
    started = time.monotonic()
    code = run_cli(OFFICE, "--model", "openai/smollm2", "--api-base",
                   f"http://127.0.0.1:{port}/v1", "--out", out)
    assert code == 2
    assert "cannot connect" in capsys.readouterr().err
    assert not out.exists()
    assert time.monotonic() - started < 60
