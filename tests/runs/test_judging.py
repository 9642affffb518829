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
    assert "does not take these options" in capsys.readouterr().err
    assert main(["judge", str(out), "--judges", "lexicon", "--judge-arg", "rubric:unit=x"]) == 2
    assert "do not run" in capsys.readouterr().err
