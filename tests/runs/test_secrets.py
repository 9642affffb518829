"""Secrets are never written: fake keys planted in every place a user could put one — the
environment (OPENAI_API_KEY, ANTHROPIC_API_KEY, a variable a models config names), a model name,
a URL's query string and user info, a models config file, and a server that echoes its request
(headers included) into its answers — and then every byte of the run folder, the cache, an
export, a fork, a re-judge and the terminal output is searched for them.

A planted key either makes the command refuse (exit 2, before anything is written) or is used
and redacted. The echo proves the test can fail: the keys do reach the answers (the stub heard
them and the log holds redaction marks where the echo was).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from agentsim.cli.main import main
from support.network import LOOPBACK, only_loopback  # noqa: F401 - autouse fixture

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "workplace" / "family-shared-flat-move.yaml"

KEYS = {
    "openai_env": "sk-plantedOPENAI0123456789abcdefXYZ",
    "anthropic_env": "sk-ant-plantedANTHROPIC0123456789",
    # A variable whose name does not look secret, holding a key with no familiar shape: only
    # the models config says it is a key.
    "named_env": "quokka-7Hq2-Zr9w-planted-Lm4x",
    "model_name": "sk-plantedMODELNAME0123456789ab",
    "query": "plantedQUERY0123456789abcd",
    "userinfo": "plantedPASSWORD0123456789",
    "token": "Zq7Xk2PmW9vLr4Tn8Bs3Yd6Hf1Jc5Ga0",
    "config_literal": "sk-plantedCONFIG0123456789abcdef",
}




def leaks(paths: list[Path], texts: list[str]) -> list[str]:
    """Every (place, key) where a planted key (or its JSON-escaped form) appears."""
    found = []
    forms = {name: {key.encode(), json.dumps(key).encode()[1:-1]} for name, key in KEYS.items()}
    for path in paths:
        for file in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
            data = file.read_bytes()
            found += [f"{file}: {name}" for name, items in forms.items()
                      if any(item in data for item in items)]
    for index, text in enumerate(texts):
        found += [f"terminal output {index}: {name}" for name, key in KEYS.items() if key in text]
    return found


def test_planted_keys_are_refused_or_redacted_everywhere(stub_server, tmp_path, capsys,
                                                        monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEYS["openai_env"])
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEYS["anthropic_env"])
    monkeypatch.setenv("STUB_AUTH", KEYS["named_env"])
    stub_server.echo = True  # every free-text answer repeats the request, headers included
    cache, terminal = tmp_path / "cache", []
    config = tmp_path / "models.yaml"
    config.write_text(yaml.safe_dump({"models": {
        "named": {"model": "openai/named", "api_base": stub_server.base_url,
                  "api_key_env": "STUB_AUTH"},
        "gpt": {"model": "openai/gpt-4o-mini", "api_base": stub_server.base_url,
                "api_key_env": "OPENAI_API_KEY"},
        "claude": {"model": "anthropic/claude-3-5-haiku-20241022", "api_base": stub_server.url,
                   "api_key_env": "STUB_AUTH"}}}))  # sent as x-api-key: no "Bearer" to spot

    def cli(*argv: object) -> int:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        terminal.append(captured.out + captured.err)
        return code

    base = ["run", SCENARIO, "--cache-dir", cache, "--rounds", "1"]
    # 1. Keys where keys do not belong: refused before anything is written, never echoed.
    refused = tmp_path / "refused"
    bad_configs = {
        "literal": {"models": {"m": {"model": "openai/x", "api_key": KEYS["config_literal"]}}},
        "params": {"models": {"m": {"model": "openai/x",
                                    "params": {"api_key": KEYS["config_literal"]}}}},
        "query": {"models": {"m": {"model": "openai/x", "api_base":
                                   f"{stub_server.base_url}?api_key={KEYS['config_literal']}"}}},
    }
    for name, data in bad_configs.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    attempts = [
        ["--model", f"openai/{KEYS['model_name']}"],
        ["--model", "named", "--role", f"aisha=openai/{KEYS['token']}"],
        ["--model", "openai/m", "--api-base", f"{stub_server.base_url}?key={KEYS['query']}"],
        ["--model", "openai/m", f"--api-base=http://me:{KEYS['userinfo']}@127.0.0.1:1/v1"],
        ["--model", "scripted/fair", "--tag", KEYS["openai_env"]],  # an env key pasted
        *[["--models-config", tmp_path / f"{n}.yaml", "--model", "m"] for n in bad_configs],
    ]
    for extra in attempts:
        own = [] if "--models-config" in extra else ["--models-config", config]
        assert cli(*base, *own, "--out", refused, *extra) == 2, terminal[-1]
        assert "Traceback" not in terminal[-1] and "error:" in terminal[-1], terminal[-1]
    assert not refused.exists() and not cache.exists()

    # 2. Keys where they belong (environment, a variable the config names), used and echoed.
    run = tmp_path / "run"
    assert cli(*base, "--models-config", config, "--model", "scripted/fair",
               "--role", "aisha=claude", "--role", "thomas=named", "--out", run,
               "--json") == 0, terminal[-1]
    log = (run / "events.jsonl").read_text()
    assert "headers:" in log and "***" in log  # ... echoed back, and redacted

    # 3. Everything downstream of the run: export, replay, a fork, a re-judge, browsing.
    cid = json.loads((run / "manifest.json").read_text())["jobs"][0]
    cid = f"{cid['scenario_id']}.{cid['variant']}.{cid['arm']}.r{cid['replicate']}"
    assert cli("export", run, "--out", tmp_path / "export") == 0
    assert cli("replay", run) == 0
    assert cli("replay", run, "--conversation", cid, "--from-turn", "2",
               "--role", "thomas=gpt", "--out", tmp_path / "fork") == 0, \
        terminal[-1]
    heard = {r.header("authorization") or r.header("x-api-key") for r in stub_server.requests}
    assert f"Bearer {KEYS['named_env']}" in heard  # sent ...
    assert f"Bearer {KEYS['openai_env']}" in heard and KEYS["named_env"] in heard
    fork_log = (tmp_path / "fork" / "events.jsonl").read_text()
    assert "headers:" in fork_log and "Bearer ***" in fork_log  # ... echoed, and redacted
    assert cli("judge", run) == 0
    assert cli("runs", "show", run) == 0 and cli("runs", "list", "--root", tmp_path) == 0
    assert cli("resume", tmp_path / "fork", "--json") == 0

    written = [run, cache, tmp_path / "export", tmp_path / "fork"]
    assert sum(1 for folder in written for p in folder.rglob("*") if p.is_file()) >= 15  # cache: 1
    assert leaks(written, terminal) == []


def test_a_folder_named_like_a_key_prefix_is_not_refused():
    # Words joined by hyphens after sk- are a name (a run folder), not a key; random tails are.
    from agentsim.cli.checks import refuse_secrets
    from agentsim.models.client import key_problem

    for name in ("/tmp/sk-clin-agentclinic2024", "runs/sk-test-folder-name", "pk-mitigations"):
        assert key_problem(name) is None, name
        refuse_secrets(["run", "scenarios", "--out", name])
    for key in ("sk-proj-AbC123xyz0000000", "sk-0123456789abcdef0123456789abcdef",
                "sk-ant-api03-Abcdefghijklmnop"):
        assert key_problem(key) is not None, key
