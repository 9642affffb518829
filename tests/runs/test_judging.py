"""Re-judging a stored run: same numbers, old results kept, the log only appended to."""

from __future__ import annotations

import json

from agentsim.cli.main import main
from agentsim.runs.judging import rejudge
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import load_scenarios


def test_rejudge_reproduces_the_numbers_and_keeps_the_old_file(tmp_path, workplace):
    scenarios = load_scenarios([workplace])
    summary = run_experiment(scenarios, RunOptions(model="scripted/stereotyped?rate=0.4",
                                                   replicates=2, rounds=1), out=tmp_path / "run")
    run_dir = summary.run_dir
    log_before = (run_dir / "events.jsonl").read_bytes()
    original = json.loads((run_dir / "results.json").read_text())
    results, archived = rejudge(run_dir)
    assert results["metrics"] == original["metrics"]  # exactly, intervals included
    assert json.loads(archived.read_text()) == original
    log_after = (run_dir / "events.jsonl").read_bytes()
    assert log_after.startswith(log_before) and len(log_after) > len(log_before)
    appended = [json.loads(line) for line in log_after[len(log_before):].splitlines()]
    # The new pass's verdicts follow a fresh run_finished (so readers take the latest pass),
    # and the old pass's verdicts stay where they were.
    assert appended[0]["type"] == "run_finished"
    assert {e["type"] for e in appended[1:]} == {"judge_result"}
    assert sum(1 for line in log_before.splitlines()
               if json.loads(line)["type"] == "judge_result") == len(appended) - 1
    # A second re-judge keeps both earlier files.
    _, archived_again = rejudge(run_dir)
    assert archived_again != archived and archived.exists() and archived_again.exists()


def test_judge_command_selects_judges_and_prints_json(tmp_path, workplace, capsys):
    out = tmp_path / "run"
    assert main(["run", str(workplace / "office-product-launch.yaml"), "--model",
                 "scripted/fair", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    assert main(["judge", str(out), "--judges", "assignment_bias", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["judges"] == ["assignment_bias"] and "bias_first" in payload["metrics"]
    before = sorted(p.name for p in out.iterdir())
    assert main(["judge", str(out), "--judges", "nonsense"]) == 2
    assert "unknown judge 'nonsense'" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before  # nothing moved or lost
    assert main(["judge", str(tmp_path / "missing")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_judge_options_reach_the_judge(tmp_path, workplace, capsys):
    from agentsim.runs.judging import parse_judge_args

    assert parse_judge_args(["rubric:panel=a/x,b/y", "rubric:both_orders=true",
                             "trajectory:threshold=0.3", "rubric:unit=message"]) == {
        "rubric": {"panel": ["a/x", "b/y"], "both_orders": True, "unit": "message"},
        "trajectory": {"threshold": 0.3}}
    out = tmp_path / "run"
    assert main(["run", str(workplace / "office-product-launch.yaml"), "--model",
                 "scripted/stereotyped?rate=0.5", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    assert main(["judge", str(out), "--judges", "rubric", "--judge-arg",
                 "rubric:panel=scripted/judge?score=3,scripted/judge?score=1", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics["rubric_score"]["value"] == 2.0  # the panel's mean of 3 and 1
    assert main(["judge", str(out), "--judges", "rubric", "--judge-arg", "rubric:colour=red"]) == 2
    assert "judge 'rubric' has no option(s) ['colour']" in capsys.readouterr().err
    assert main(["judge", str(out), "--judges", "lexicon", "--judge-arg", "rubric:unit=x"]) == 2
    assert "do not run" in capsys.readouterr().err


def test_the_driver_bounds_judge_calls_and_records_options(tmp_path, workplace, monkeypatch):
    """Judges ask all their calls at once; the driver's client keeps at most ``concurrency`` in
    flight across judges (two LLM judges here, run concurrently); every judge's options are
    recorded, defaults included, in results.json and the run's manifest."""
    import asyncio

    from agentsim.runs import judging

    summary = run_experiment(load_scenarios([workplace / "office-product-launch.yaml"]),
                             RunOptions(model="scripted/fair", replicates=3, rounds=1),
                             out=tmp_path / "run")
    manifest = json.loads((summary.run_dir / "manifest.json").read_text())
    assert manifest["plugins"]["executor"] == {"local": {"concurrency": 8}}  # scripted: 8
    assert set(manifest["plugins"]["judge"]) == set(manifest["judges"])
    assert manifest["plugins"]["judge"]["assignment_bias"] == {"rule": "counts"}  # defaults

    in_flight, peak = 0, 0

    class Counting:
        """The wrapped client, counting calls in flight (each waits a moment)."""

        def __init__(self, client):
            self.client = client

        def supports_schema(self, model):
            return self.client.supports_schema(model)

        async def complete(self, request):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.002)
            try:
                return await self.client.complete(request)
            finally:
                in_flight -= 1

    made = judging.judging_client
    monkeypatch.setattr(judging, "judging_client", lambda *a, **k: Counting(made(*a, **k)))
    results = judging.judge_run(summary.run_dir, ("rubric", "iat"), roles={
        "judge": "scripted/judge?score=2"}, options={"rubric": {"unit": "message"}},
        concurrency=3, write=False)
    assert results["judging_pass"]["model_calls"] > 3 and peak == 3
    assert results["judge_options"]["rubric"]["unit"] == "message"
    assert results["judge_options"]["rubric"]["temperature"] == 0.0
    assert set(results["judge_options"]) == {"rubric", "iat"}
