"""Endpoints (agentsim.models.endpoints): the models config and its errors, which setting wins,
keys that are named and never written, the router config and the Router spreading calls over two
servers, and the cache keyed by the server as well as the request.

Runs go through the CLI in-process against the stub of tests/support. No traffic leaves
127.0.0.1 (a guard below fails any test that tries).
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from pathlib import Path

import pytest
import yaml

from agentsim.errors import InputError
from agentsim.models.endpoints import (
    EndpointOverrides,
    EndpointResolver,
    ModelEntry,
    ModelsConfig,
    load_models_config,
    load_router_config,
    safe_url,
)
from support.network import LOOPBACK, only_loopback  # noqa: F401 - autouse fixture

REPO = Path(__file__).resolve().parents[2]
FLAT = REPO / "scenarios" / "workplace" / "family-shared-flat-move.yaml"




def run_cli(tmp_path: Path, capsys, *args: object, name: str = "run",
            cache: str = "cache") -> tuple[int, Path, str]:
    """(exit status, run folder, stderr) of `agentsim run` on the two-person scenario."""
    from agentsim.cli.main import main

    out = tmp_path / name
    capsys.readouterr()
    code = main(["run", str(FLAT), "--cache-dir", str(tmp_path / cache), "--out", str(out),
                 "--json", "--setting", "no-interaction", *map(str, args)])
    return code, out, " ".join(capsys.readouterr().err.split())


def run_events(run: Path, kind: str) -> list[dict]:
    lines = (run / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == kind]


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


# ---- the models config: errors name the file and the field -------------------------------------

BAD_CONFIGS = [
    ({"models": {"m": {"model": "openai/x", "rpmm": 5}}}, "models.m.rpmm", "unknown field"),
    ({"models": {"m": {"model": "openai/x", "rpm": -1}}}, "models.m.rpm", "greater than 0"),
    ({"models": {"m": {"structured": "jsonschema"}}}, "models.m.structured", "json_schema"),
    ({"models": {"m": {"api_key_env": "sk-live-0123456789"}}}, "models.m.api_key_env",
     "names an environment variable"),
    ({"models": {"m": {"params": {"api_key": "x"}}}}, "models.m.params", "api_key_env"),
    ({"models": {"m": {"api_base": "http://me:hunter2@127.0.0.1:1/v1"}}}, "models.m.api_base",
     "credentials"),
    ({"models": {"m": {"api_base": "http://127.0.0.1:1/v1?api_key=abc"}}}, "models.m.api_base",
     "query string"),
    ({"defaults": {"timeout": 0}}, "defaults.timeout", "greater than 0"),
    ({"defaults": {"api_base": "http://127.0.0.1:1"}}, "defaults.api_base", "unknown field"),
    ({"model": {"m": {}}}, "model", "unknown field"),
    ("models: [unclosed", None, "not valid YAML"),
]


@pytest.mark.parametrize("data, field, message", BAD_CONFIGS,
                         ids=[c[1] or "yaml" for c in BAD_CONFIGS])
def test_models_config_errors_name_the_file_and_the_field(tmp_path, capsys, data, field,
                                                          message):
    config = write_yaml(tmp_path / "models.yaml", data)
    with pytest.raises(InputError) as caught:
        load_models_config(config)
    assert caught.value.source == str(config) and caught.value.field == field
    assert message in str(caught.value)
    code, run, err = run_cli(tmp_path, capsys, "--models-config", config, "--model", "m")
    assert code == 2 and str(config) in err and message in err
    assert field is None or field in err
    assert not run.exists()


def test_a_missing_models_config_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read the models config"):
        load_models_config(tmp_path / "nowhere.yaml")


@pytest.mark.parametrize("value", ["MY_KEY", "_k2", "OPENAI_API_KEY"])
def test_api_key_env_takes_variable_names(value):
    assert ModelEntry(api_key_env=value).api_key_env == value


@pytest.mark.parametrize("value", ["sk-abc123", "my key", "1ABC", "$MY_KEY", "os.environ/K"])
def test_api_key_env_refuses_anything_else(value):
    with pytest.raises(ValueError, match="names an environment variable"):
        ModelEntry(api_key_env=value)


# ---- which setting wins ------------------------------------------------------------------------

def test_precedence_defaults_then_entry_then_cli_every_model_then_cli_this_model():
    config = ModelsConfig.model_validate({
        "defaults": {"timeout": 10, "rpm": 60, "tpm": 1000, "retries": 1,
                     "structured": "json_object"},
        "models": {
            "m": {"model": "openai/x", "api_base": "http://127.0.0.1:1/v1", "timeout": 20,
                  "rpm": 120, "retries": 3, "structured": "json_schema", "max_in_flight": 2},
            "n": {"model": "openai/y", "api_base": "http://127.0.0.1:2/v1"}}})
    overrides = EndpointOverrides({"*": {"rpm": 240, "retries": 4},
                                   "m": {"retries": 5, "api_base": "http://127.0.0.1:3/v1/"}})
    resolver = EndpointResolver(config, overrides=overrides)
    m, n = resolver.resolve("m"), resolver.resolve("n")
    assert m.tpm == 1000  # defaults
    assert m.timeout == 20 and m.max_in_flight == 2  # the entry over the defaults
    assert m.rpm == 240  # the command line for every model over the entry
    assert m.retries == 5  # the command line for this model over every model
    assert m.api_base == "http://127.0.0.1:3/v1"  # the command line's, trailing / cut
    assert (m.structured, m.mode_source) == ("json_schema", "config")
    assert (n.timeout, n.rpm, n.retries) == (10.0, 240, 4)
    assert (n.structured, n.mode_source) == ("json_object", "config")
    assert n.api_base == "http://127.0.0.1:2/v1"
    cli = EndpointResolver(config, overrides=EndpointOverrides(
        {"*": {"structured": "text"}, "n": {"structured": "vllm"}}))
    assert (cli.resolve("m").structured, cli.resolve("m").mode_source) == ("text", "option")
    assert cli.resolve("n").structured == "vllm"


def test_unconfigured_names_get_the_built_in_defaults_and_in_process_stays_native():
    resolver = EndpointResolver(overrides=EndpointOverrides({"*": {"api_base":
                                                                   "http://127.0.0.1:1/v1"}}))
    hosted = resolver.resolve("openai/gpt-4o-mini")
    assert (hosted.timeout, hosted.retries, hosted.structured) == (120.0, 8, "auto")
    assert hosted.api_base == "http://127.0.0.1:1/v1"
    scripted = resolver.resolve("scripted/fair")
    assert scripted.in_process and scripted.structured == "native"


def test_a_cli_api_base_with_credentials_is_refused():
    resolver = EndpointResolver(overrides=EndpointOverrides(
        {"*": {"api_base": "http://user:pw@127.0.0.1:1/v1"}}))
    with pytest.raises(InputError, match="credentials"):
        resolver.resolve("openai/x")


def test_the_manifest_form_of_an_endpoint_holds_no_secret(monkeypatch):
    monkeypatch.setenv("STUB_KEY", "sk-should-never-appear-1234")
    entry = {"model": "openai/x", "api_base": "http://127.0.0.1:1/v1", "api_key_env": "STUB_KEY",
             "params": {"top_p": 0.9}}
    endpoint = EndpointResolver(ModelsConfig.model_validate({"models": {"m": entry}})).resolve("m")
    public = endpoint.public()
    assert public["api_key_env"] == "STUB_KEY" and public["params"] == ["top_p"]
    assert "sk-should-never-appear" not in json.dumps(public)
    assert safe_url("https://u:p@h.example:8443/v1?key=abc#x") == "https://h.example:8443/v1"


def test_identity_changes_with_what_decides_who_answers():
    def identity(**entry) -> str:
        config = ModelsConfig.model_validate({"models": {"m": {"model": "openai/x", **entry}}})
        return EndpointResolver(config).resolve("m").identity()

    base = identity(api_base="http://127.0.0.1:1/v1")
    assert base == identity(api_base="http://127.0.0.1:1/v1", rpm=10, timeout=5)  # not limits
    assert base != identity(api_base="http://127.0.0.1:2/v1")
    assert base != identity(api_base="http://127.0.0.1:1/v1", structured="json_object")
    assert base != identity(api_base="http://127.0.0.1:1/v1", params={"top_p": 0.5})

    def router_identity(*bases: str) -> str:
        items = [{"model_name": "pool", "litellm_params": {"model": "openai/x", "api_base": b}}
                 for b in bases]
        return EndpointResolver(router_list=items).resolve("pool").identity()

    assert router_identity("http://127.0.0.1:1/v1") != router_identity("http://127.0.0.1:2/v1")
    assert router_identity("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1") == \
        router_identity("http://127.0.0.1:2/v1", "http://127.0.0.1:1/v1")


# ---- keys are named, never written -------------------------------------------------------------

def test_keys_never_reach_a_file_agentsim_writes(stub_server, tmp_path, capsys, monkeypatch):
    key = f"planted-{secrets.token_hex(16)}"
    # A variable whose name does not look secret: only the endpoint says it holds a key.
    monkeypatch.setenv("STUB_SERVER_AUTH", key)
    stub_server.require_key = key
    stub_server.fail_next(1, 500, after=1)  # an error on the way, logged and retried
    config = write_yaml(tmp_path / "models.yaml", {"models": {"served": {
        "model": "openai/served", "api_base": stub_server.base_url,
        "api_key_env": "STUB_SERVER_AUTH", "retries": 1}}})
    code, run, err = run_cli(tmp_path, capsys, "--models-config", config, "--model", "served",
                             "--replicates", 2, "--rpm", "6000", "--retries", "served=3")
    assert code == 0
    heard = [r.header("authorization") for r in stub_server.requests_to("/v1/chat/completions")]
    assert heard and set(heard) == {f"Bearer {key}"}  # the key was used ...
    files = [p for folder in (run, tmp_path / "cache") for p in folder.rglob("*") if p.is_file()]
    assert len(files) >= 5  # manifest, events, results, drawings, cached calls
    leaked = [str(p) for p in files if key.encode() in p.read_bytes()]
    assert leaked == []  # ... and written nowhere
    assert key not in err
    endpoint = json.loads((run / "manifest.json").read_text())["endpoints"]["served"]
    assert endpoint["api_key_env"] == "STUB_SERVER_AUTH"
    assert (endpoint["rpm"], endpoint["retries"]) == (6000, 3)  # CLI over the entry


ROUTER_SECRETS = [
    ({"api_key": "sk-literal-0123456789"}, "api_key"),
    ({"aws_secret_access_key": "AKIAxxxxxxxx"}, "aws_secret_access_key"),
    ({"vertex_credentials": {"private_key": "x"}}, "vertex_credentials"),
    ({"azure_ad_token": "eyJ0eXAi"}, "azure_ad_token"),
    ({"api_base": "http://me:pw@127.0.0.1:1/v1"}, "api_base"),
]


@pytest.mark.parametrize("params, field", ROUTER_SECRETS, ids=[f for _, f in ROUTER_SECRETS])
def test_the_router_config_refuses_literal_keys(tmp_path, capsys, params, field):
    config = write_yaml(tmp_path / "router.yaml", {"model_list": [
        {"model_name": "pool", "litellm_params": {"model": "openai/x", **params}}]})
    with pytest.raises(InputError) as caught:
        load_router_config(config)
    assert caught.value.field == f"model_list[0].litellm_params.{field}"
    code, run, err = run_cli(tmp_path, capsys, "--router-config", config, "--model", "pool")
    assert code == 2 and str(config) in err and field in err and not run.exists()


def test_the_router_config_takes_environment_references(tmp_path):
    config = write_yaml(tmp_path / "router.yaml", {"model_list": [
        {"model_name": "pool", "litellm_params": {"model": "openai/x", "api_key":
                                                  "os.environ/POOL_KEY"}}]})
    assert load_router_config(config)[0]["litellm_params"]["api_key"] == "os.environ/POOL_KEY"
    for bad, field in (({"model_list": []}, "model_list"),
                       ({"model_list": [{"model_name": "p"}]}, "model_list[0].litellm_params")):
        with pytest.raises(InputError) as caught:
            load_router_config(write_yaml(tmp_path / "bad.yaml", bad))
        assert caught.value.field == field


# ---- the Router over two servers ---------------------------------------------------------------

def test_the_router_spreads_calls_over_both_servers(stub_server, tmp_path, capsys):
    from support.stub_server import StubServer

    with StubServer(model="stub-b") as second:
        bases = [stub_server.base_url, second.base_url]
        config = write_yaml(tmp_path / "router.yaml", {"model_list": [
            {"model_name": "pool", "litellm_params": {"model": "openai/served", "api_base": b}}
            for b in bases]})
        code, run, _ = run_cli(tmp_path, capsys, "--router-config", config, "--model", "pool",
                               "--replicates", 16)
        assert code == 0
        calls = run_events(run, "model_call")
        spread = Counter(c.get("endpoint") for c in calls)
        assert set(spread) == set(bases), spread  # both servers answered
        assert sum(spread.values()) == 16
        assert stub_server.count("/v1/chat/completions") >= 1
        assert second.count("/v1/chat/completions") >= 1
        endpoint = json.loads((run / "manifest.json").read_text())["endpoints"]["pool"]
        assert endpoint["router"] is True
        assert endpoint["deployments"] == sorted(f"openai/served@{b}" for b in bases)
        assert {c.get("structured_mode") for c in calls} == {"json_schema"}


# ---- the cache knows which server answered -----------------------------------------------------

def test_the_cache_key_changes_with_the_api_base(stub_server, tmp_path, capsys):
    from support.stub_server import StubServer

    def run_on(stub, name: str) -> list[dict]:
        code, run, _ = run_cli(tmp_path, capsys, "--model", "openai/served", "--api-base",
                               stub.base_url, "--replicates", 2, name=name)
        assert code == 0
        return run_events(run, "model_call")

    first = run_on(stub_server, "first")
    assert [c.get("cached", False) for c in first] == [False, False]
    again = run_on(stub_server, "again")
    assert [c.get("cached") for c in again] == [True, True]  # the same server: from the cache
    with StubServer() as other:
        elsewhere = run_on(other, "elsewhere")
        assert [c.get("cached", False) for c in elsewhere] == [False, False]
        assert {c.get("endpoint") for c in elsewhere} == {other.base_url}
        assert len([r for r in other.requests_to("/v1/chat/completions")
                    if "agentsim-probe" not in json.dumps(r.body)]) == 2
