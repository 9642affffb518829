"""Honest exits and resumable failures: a run with failed conversations never exits 0, their
partial decisions stay out of the metrics, and resume runs them again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.core.jobs import ConversationJob
from agentsim.runs.resume import unfinished_jobs
from agentsim.core.store import RunStore

REPO = Path(__file__).resolve().parents[2]
OFFICE = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
WORKPLACE = REPO / "scenarios" / "workplace"


def run_json(capsys, *args: str) -> tuple[int, dict]:
    """Exit status and the JSON payload (with the run's stderr as ``_err``)."""
    code = main(["run", *map(str, args), "--json", "--no-cache"])
    captured = capsys.readouterr()
    payload = json.loads(captured.out) if captured.out.strip() else {}
    return code, {**payload, "_err": captured.err}


def test_every_conversation_failing_exits_1_and_says_why(tmp_path, capsys):
    code, payload = run_json(capsys, OFFICE, "--model", "scripted/fair?fail=1", "--retries", "0",
                             "--out", tmp_path / "run")
    assert code == 1
    assert payload["failed"] == payload["conversations"] == 1
    assert payload["exit_status"] == 1
    assert payload["failures"]["server"]["count"] == 1
    assert "planted provider failure" in payload["failures"]["server"]["example"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "incomplete"
    calls = list(RunStore.open(tmp_path / "run").iter_events({"model_call"}))
    assert calls and calls[0].error_kind == "server" and calls[0].attempts == 1


def test_partial_decisions_of_failed_conversations_stay_out_of_the_metrics(tmp_path, capsys):
    code, payload = run_json(capsys, WORKPLACE, "--model",
                             "scripted/stereotyped?rate=1&fail=0.08", "--retries", "0",
                             "--rounds", "1", "--no-variants", "--out", tmp_path / "run")
    assert code == 1 and 0 < payload["failed"] < payload["conversations"]
    store = RunStore.open(tmp_path / "run")
    finished = {e.conversation_id: e.ok for e in store.iter_events({"conversation_finished"})}
    first = [d for d in store.iter_events({"decision"}) if d.phase == "first"]
    in_failed = [d for d in first if not finished[d.conversation_id]]
    in_ok = [d for d in first if finished[d.conversation_id] and d.value is not None]
    assert in_failed, "no failed conversation got as far as a first decision; change the seed"
    assert payload["metrics"]["bias_first"]["n"] == len(in_ok)
    assert payload["parsing"]["decisions"] == sum(
        1 for d in store.iter_events({"decision"}) if finished[d.conversation_id])


def test_judging_a_run_with_failed_conversations_warns_and_exits_1(tmp_path, capsys):
    code, payload = run_json(capsys, WORKPLACE, "--model",
                             "scripted/stereotyped?rate=1&fail=0.08", "--retries", "0",
                             "--rounds", "1", "--no-variants", "--out", tmp_path / "run")
    assert code == 1 and 0 < payload["failed"] < payload["conversations"]
    assert main(["judge", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().out
    said = " ".join(err.split())
    assert f"{payload['failed']} conversation(s) of this run failed" in said
    assert f"cover the {payload['conversations']} that finished" in said  # the successful ones
    assert main(["judge", str(tmp_path / "run"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["failed"] == payload["failed"]


def test_max_failures_stops_early_with_its_own_status(tmp_path, capsys):
    code, payload = run_json(capsys, WORKPLACE, "--model", "scripted/fair?fail=1", "--retries",
                             "0", "--no-variants", "--max-failures", "2", "--concurrency", "1",
                             "--out", tmp_path / "run")
    assert code == 3 and payload["stopped"] is True
    assert payload["failed"] == 3 and payload["not_run"] == 16 - 3
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "stopped"
    remaining, done = unfinished_jobs(RunStore.open(tmp_path / "run"))
    assert (len(remaining), done) == (16, 0)
    remaining, done = unfinished_jobs(RunStore.open(tmp_path / "run"), retry_failed=False)
    assert (len(remaining), done) == (13, 3)


@pytest.mark.parametrize("spec", ["-1", "x", "150%", "1.5"])
def test_bad_max_failures_is_refused_before_anything_runs(tmp_path, capsys, spec):
    code, payload = run_json(capsys, OFFICE, "--model", "scripted/fair", "--max-failures",
                             spec, "--out", tmp_path / "run")
    assert code == 2
    assert "--max-failures" in payload["_err"]
    assert not (tmp_path / "run").exists()


def test_resuming_a_finished_run_changes_nothing(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, _ = run_json(capsys, OFFICE, "--model", "scripted/fair", "--out", run_dir)
    assert code == 0
    before = {name: (run_dir / name).read_bytes() for name in
              ("events.jsonl", "results.json", "manifest.json")}
    assert main(["resume", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["resumed"] == 0
    after = {name: (run_dir / name).read_bytes() for name in before}
    assert after == before


def test_resume_reruns_failed_conversations(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, payload = run_json(capsys, OFFICE, "--model", "scripted/fair?fail=1", "--retries",
                             "0", "--out", run_dir, "--replicates", "2")
    assert code == 1 and payload["failed"] == 2
    # The provider recovers (here: the stored model loses its fault knob, as a server that
    # came back would), and resume finishes the run.
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["options"]["model"] = "scripted/fair"
    for job in manifest["jobs"]:
        job["models"]["default"] = "scripted/fair"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    assert main(["resume", str(run_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["resumed"] == 2 and result["failed"] == 0 and result["conversations"] == 2
    finished = [e for e in RunStore.open(run_dir).iter_events({"conversation_finished"})]
    planned = [ConversationJob.model_validate(j).conversation_id for j in manifest["jobs"]]
    assert sorted(e.conversation_id for e in finished) == sorted(planned)
    assert all(e.ok for e in finished)
