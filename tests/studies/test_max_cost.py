"""``--max-cost``: a run stops cleanly once the spend its log records reaches the limit (status
stopped, exit 3), a resume counts what was spent and stops again, and a resume with a higher
limit finishes every planned conversation exactly once. The scripted model is priced by a
models config (scripted models are otherwise free); no network, no cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
PROMPT, COMPLETION = 0.001, 0.002  # US dollars per token of scripted/fair, in the config


def events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in
            (run_dir / "events.jsonl").read_text("utf-8").splitlines()]


def spent(calls: list[dict]) -> float:
    """What the calls cost at the configured price, counted independently of agentsim."""
    return sum(0 if c.get("cached") else
               c.get("prompt_tokens", 0) * PROMPT + c.get("completion_tokens", 0) * COMPLETION
               for c in calls)


def read(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name).read_text("utf-8"))


@pytest.fixture
def priced_study(tmp_path: Path) -> Path:
    (tmp_path / "models.yaml").write_text(f"""
models:
  scripted/fair:
    input_cost_per_token: {PROMPT}
    output_cost_per_token: {COMPLETION}
""", encoding="utf-8")
    study = tmp_path / "priced.yaml"
    study.write_text(f"""
id: priced
scenarios: [{SCENARIO}]
models:
  fair: scripted/fair
models_config: models.yaml
settings: [interaction]
variants: none
replicates: 6
rounds: 1
seed: 11
""", encoding="utf-8")
    return study


def test_max_cost_stops_the_run_and_a_resume_with_a_higher_limit_finishes_it(
        priced_study, tmp_path, capsys):
    out = tmp_path / "run"
    limit = 5.0
    # One conversation at a time, so exactly the conversations before the limit start.
    code = main(["study", "run", str(priced_study), "--out", str(out), "--no-cache",
                 "--concurrency", "1", "--max-cost", str(limit), "--json"])
    assert code == 3
    payload = json.loads(capsys.readouterr().out)
    assert payload["stopped"] and payload["exit_status"] == 3
    manifest = read(out, "manifest.json")
    assert manifest["status"] == "stopped" and manifest["stop_reason"] == "max_cost"
    log = events(out)
    finished = [e["conversation_id"] for e in log if e["type"] == "conversation_finished"]
    planned = [job for job in manifest["jobs"]]
    assert 0 < len(finished) < len(planned) == 6
    calls = [e for e in log if e["type"] == "model_call"]
    total = spent(calls)
    assert total >= limit  # it stopped because the limit was reached ...
    last = finished[-1]
    before_last = spent([c for c in calls if c["conversation_id"] != last])
    assert before_last < limit  # ... and not later: the last conversation started under it
    # The usage of results.json and the manifest: the same calls, tokens and cost.
    usage = read(out, "results.json")["usage"]
    row = usage["models"]["scripted/fair"]
    assert row["calls"] == len(calls)
    assert row["prompt_tokens"] == sum(c["prompt_tokens"] for c in calls)
    assert row["cost"] == pytest.approx(total, abs=1e-6)
    assert usage["total"]["cost"] == pytest.approx(total, abs=1e-6)
    assert manifest["usage"] == usage

    # A resume counts the spend already logged: still over the limit, nothing new starts.
    assert main(["resume", str(out)]) == 3
    assert read(out, "manifest.json")["status"] == "stopped"
    again = [e for e in events(out) if e["type"] == "conversation_started"]
    assert len(again) == len(finished)

    # A higher limit lets it finish: every planned conversation exactly once.
    assert main(["resume", str(out), "--max-cost", "1000"]) == 0
    manifest = read(out, "manifest.json")
    assert manifest["status"] == "finished" and manifest.get("stop_reason") is None
    assert manifest["options"]["max_cost"] == 1000.0
    log = events(out)
    started = [e["conversation_id"] for e in log if e["type"] == "conversation_started"]
    ok = [e["conversation_id"] for e in log if e["type"] == "conversation_finished" and e["ok"]]
    ids = {f"{job['scenario_id']}.base.none.fair.interaction.r{job['replicate']}"
           for job in manifest["jobs"]}
    assert sorted(started) == sorted(ok) == sorted(ids) and len(ids) == 6
    usage = read(out, "results.json")["usage"]
    calls = [e for e in log if e["type"] == "model_call"]
    assert usage["total"]["calls"] == len(calls)
    assert usage["total"]["cost"] == pytest.approx(spent(calls), abs=1e-6)


def test_agentsim_run_takes_max_cost_too(tmp_path, capsys):
    config = tmp_path / "models.yaml"
    config.write_text(f"models:\n  scripted/fair:\n    input_cost_per_token: {PROMPT}\n",
                      encoding="utf-8")
    out = tmp_path / "run"
    code = main(["run", str(SCENARIO), "--model", "scripted/fair", "--models-config",
                 str(config), "--replicates", "4", "--rounds", "1", "--concurrency", "1",
                 "--max-cost", "0.01", "--no-cache", "--out", str(out)])
    assert code == 3
    text = capsys.readouterr().out
    assert "Stopped by --max-cost" in text
    # One line per model in the summary: calls, tokens and cost.
    assert "scripted/fair:" in text and "prompt +" in text and "$" in text
    finished = [e for e in events(out) if e["type"] == "conversation_finished"]
    assert len(finished) == 1  # the first call already cost more than a cent


def test_a_run_under_its_limit_finishes_and_a_free_model_never_stops(tmp_path):
    out = tmp_path / "run"
    code = main(["run", str(SCENARIO), "--model", "scripted/fair", "--replicates", "2",
                 "--rounds", "1", "--max-cost", "0.0001", "--no-cache", "--out", str(out),
                 "--json"])
    assert code == 0  # scripted models cost nothing without a configured price
    manifest = read(out, "manifest.json")
    assert manifest["status"] == "finished"
    assert manifest["usage"]["total"]["cost"] == 0.0
    assert manifest["usage"]["total"]["calls"] == sum(
        1 for e in events(out) if e["type"] == "model_call")


def test_a_limit_on_a_model_without_a_price_is_refused_before_anything_is_written(
        tmp_path, capsys):
    out = tmp_path / "run"
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  remote:\n    model: openai/smollm2\n"
                      "    api_base: https://llm.example.org/v1\n", encoding="utf-8")
    code = main(["run", str(SCENARIO), "--model", "remote", "--models-config", str(config),
                 "--max-cost", "5", "--no-cache", "--no-probe", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--max-cost" in err and "no price is known for remote" in err
    assert not out.exists()
