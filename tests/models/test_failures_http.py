"""Honest failures against the stub of tests/support: permanent errors are reported once and
clearly, transient ones are ridden out, nothing is written or cached when a run cannot start,
and a run stopped by --max-failures resumes to completion.

Runs go through the CLI in-process (``agentsim.cli.main``). No traffic leaves 127.0.0.1 (a
guard below fails any test that tries).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from agentsim.models.preflight import PROBE_VALUE

REPO = Path(__file__).resolve().parents[2]
FLAT = REPO / "scenarios" / "workplace" / "family-shared-flat-move.yaml"
from support.network import only_loopback  # noqa: E402,F401 - autouse fixture


@pytest.fixture
def quick_backoff(monkeypatch):
    """Retries after 0.1 s instead of 1, 2, 4 ... s (the outcome is the same, only sooner)."""
    from agentsim.models import client

    monkeypatch.setattr(client, "BACKOFF_CAP_S", 0.1)


def run_cli(tmp_path: Path, capsys, *args: object, name: str = "run") -> tuple:
    """(exit status, run folder, stderr, stdout) of `agentsim run` on the two-person
    scenario."""
    from agentsim.cli.main import main

    out = tmp_path / name
    capsys.readouterr()
    code = main(["run", str(FLAT), "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                 "--json", *map(str, args)])
    captured = capsys.readouterr()
    return code, out, " ".join(captured.err.split()), captured.out


def on_stub(stub, *args: object) -> list:
    return ["--model", "openai/served", "--api-base", stub.base_url, *args]


def cached_files(tmp_path: Path) -> list[str]:
    """The keys of the answers in the cache (one SQLite file: calls.sqlite3)."""
    import sqlite3
    from contextlib import closing

    from agentsim.models.cache import DB_NAME, DiskCache

    folder = tmp_path / "cache"
    DiskCache(folder).flush()
    if not (folder / DB_NAME).exists():
        return []
    with closing(sqlite3.connect(folder / DB_NAME)) as db:
        return [key for (key,) in db.execute("SELECT key FROM calls")]


def run_events(run: Path, kind: str) -> list[dict]:
    lines = (run / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == kind]


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def chats(stub) -> list:
    """Chat requests that were not the preflight's probes."""
    return [r for r in stub.requests_to("/v1/chat/completions")
            if PROBE_VALUE not in json.dumps(r.body)]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- the run cannot start: exit 2, nothing written, nothing cached -----------------------------

def test_a_refused_key_is_a_preflight_error_naming_the_key(stub_server, tmp_path, capsys,
                                                           monkeypatch):
    stub_server.require_key = "the-right-key-123"
    monkeypatch.setenv("STUB_KEY", "a-wrong-key-456")
    config = tmp_path / "models.yaml"
    config.write_text(f"models:\n  served:\n    model: openai/served\n"
                      f"    api_base: {stub_server.base_url}\n    api_key_env: STUB_KEY\n")
    code, run, err, _ = run_cli(tmp_path, capsys, "--models-config", config, "--model", "served")
    assert code == 2
    assert "refused the key" in err and "served" in err
    assert "a-wrong-key-456" not in err
    assert stub_server.count("/v1/chat/completions") == 1  # one probe, refused, not retried
    assert not run.exists() and cached_files(tmp_path) == []


def test_a_dead_port_is_exit_2_cannot_connect(tmp_path, capsys, monkeypatch):
    from agentsim.models import preflight

    monkeypatch.setattr(preflight, "REACH_PAUSE_S", 0.1)  # it still tries three times
    base = f"http://127.0.0.1:{closed_port()}/v1"
    started = time.monotonic()
    code, run, err, _ = run_cli(tmp_path, capsys, "--model", "openai/served", "--api-base", base)
    assert code == 2
    assert "cannot connect" in err and base in err
    assert not run.exists() and cached_files(tmp_path) == []
    assert time.monotonic() - started < 30


def test_a_missing_key_is_exit_2_before_any_network(tmp_path, capsys, monkeypatch,
                                                    only_loopback):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, run, err, _ = run_cli(tmp_path, capsys, "--model", "openai/gpt-4o-mini")
    assert code == 2
    assert "OPENAI_API_KEY" in err
    assert only_loopback == []  # not even a look-up
    assert not run.exists() and cached_files(tmp_path) == []


def test_a_mistyped_provider_is_exit_2_with_a_suggestion(tmp_path, capsys, only_loopback):
    code, run, err, _ = run_cli(tmp_path, capsys, "--model", "opanai/gpt-4o-mini")
    assert code == 2
    assert "unknown provider 'opanai'" in err and "did you mean 'openai'" in err
    assert only_loopback == [] and not run.exists()


# ---- failures during the run -------------------------------------------------------------------

def test_a_404_after_the_probe_fails_fast_and_is_reported_once(stub_server, tmp_path, capsys):
    stub_server.fail_next(100, 404, after=1)  # the probe passes, then the model is gone
    code, run, _, out = run_cli(tmp_path, capsys, *on_stub(stub_server, "--setting", "no-interaction",
                                                      "--replicates", 6, "--concurrency", 2))
    assert code == 1
    assert len(chats(stub_server)) <= 2  # at most one per conversation in flight, no retries
    failures = results(run)["failures"]
    assert set(failures) == {"not_found"}
    assert failures["not_found"]["count"] == 6
    assert "404" in failures["not_found"]["example"] or "not found" in \
        failures["not_found"]["example"].lower()
    assert len(failures["not_found"]["conversations"]) == 6
    calls = run_events(run, "model_call")
    assert {c.get("error_kind") for c in calls} == {"not_found"}
    assert all(c.get("attempts", 1) == 1 for c in calls)
    assert json.loads((run / "manifest.json").read_text())["status"] == "incomplete"


def test_a_stalled_endpoint_fails_in_seconds(stub_server, tmp_path, capsys):
    stub_server.stall_s = 30
    started = time.monotonic()
    code, run, _, out = run_cli(tmp_path, capsys, *on_stub(stub_server, "--setting", "no-interaction",
                                                      "--timeout", 1, "--retries", 0,
                                                      "--no-probe"))
    elapsed = time.monotonic() - started
    assert code == 1
    assert elapsed < 20, f"{elapsed:.1f} s"
    assert set(results(run)["failures"]) == {"timeout"}
    (call,) = run_events(run, "model_call")
    assert call["error_kind"] == "timeout" and call.get("attempts", 1) == 1
    assert call["latency_s"] < 8


def test_500s_for_a_while_are_retried_and_the_run_succeeds(stub_server, tmp_path, capsys,
                                                           quick_backoff):
    stub_server.fail_next(3, 500, after=1)
    code, run, _, out = run_cli(tmp_path, capsys, *on_stub(stub_server, "--setting", "no-interaction"))
    assert code == 0
    assert [r.status for r in chats(stub_server)] == [500, 500, 500, 200]
    (call,) = run_events(run, "model_call")
    assert call["attempts"] == 4 and call.get("error") is None
    assert results(run)["failed"] == 0 and len(cached_files(tmp_path)) == 1


def test_an_empty_reply_is_retried_then_a_failed_call(stub_server, tmp_path, capsys,
                                                      quick_backoff):
    stub_server.schema_support = "none"
    stub_server.text = ""
    code, run, _, out = run_cli(tmp_path, capsys, *on_stub(stub_server, "--setting", "no-interaction",
                                                      "--retries", 2))
    assert code == 1
    sent = chats(stub_server)
    assert len(sent) == 3  # 1 + 2 retries
    assert len({r.body["seed"] for r in sent}) == 3  # each retry with another seed
    (call,) = run_events(run, "model_call")
    assert call["error_kind"] == "empty_reply" and call["attempts"] == 3
    assert set(results(run)["failures"]) == {"empty_reply"}
    assert cached_files(tmp_path) == []  # failed calls are never cached


def test_max_failures_0_stops_the_run_and_resume_completes_it(stub_server, tmp_path, capsys):
    from agentsim.cli.main import main

    stub_server.fail_next(1, 404, after=1)
    code, run, _, out = run_cli(tmp_path, capsys, *on_stub(stub_server, "--setting", "no-interaction",
                                                      "--replicates", 3, "--concurrency", 1,
                                                      "--max-failures", 0))
    assert code == 3
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "stopped"
    planned = {(j["scenario_id"], j["replicate"], j["variant"]) for j in manifest["jobs"]}
    assert len(planned) == 3
    assert [e["ok"] for e in run_events(run, "conversation_finished")] == [False]
    payload = json.loads(out)
    assert payload["stopped"] is True and payload["not_run"] == 2

    assert main(["resume", str(run), "--json"]) == 0  # the stub is healthy again
    finished = run_events(run, "conversation_finished")
    ok = [e for e in finished if e["ok"]]
    ids = [e["conversation_id"] for e in ok]
    assert len(ids) == 3 == len(set(ids))  # every planned conversation once
    started = {e["conversation_id"]: (e["scenario_id"], e["job"]["replicate"], e["job"]["variant"])
               for e in run_events(run, "conversation_started")}
    assert {started[i] for i in ids} == planned
    assert json.loads((run / "manifest.json").read_text())["status"] == "finished"
    assert results(run)["failed"] == 0
