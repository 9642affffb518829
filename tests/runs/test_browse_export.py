"""Browsing and exporting run folders: `agentsim runs list|show` and `agentsim export`."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.errors import PluginError
from agentsim.runs.export import TABLES, export_run

WORKPLACE = Path(__file__).resolve().parents[2] / "scenarios" / "workplace"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A root with a run, a nested example run (runs/examples/*) and a broken folder."""
    base = tmp_path_factory.mktemp("runs")
    scenario = str(WORKPLACE / "office-product-launch.yaml")
    for out, model, replicates in ((base / "first", "scripted/fair", "2"),
                                   (base / "examples" / "second", "scripted/stereotyped", "1")):
        code = main(["run", scenario, "--model", model, "--replicates", replicates,
                     "--out", str(out), "--json"])
        assert code == 0
    (base / "broken").mkdir()
    (base / "broken" / "manifest.json").write_text("{not json", "utf-8")
    (base / "not-a-run").mkdir()
    return base


def _type_counts(run_dir: Path) -> Counter:
    lines = (run_dir / "events.jsonl").read_text("utf-8").splitlines()
    return Counter(json.loads(line)["type"] for line in lines)


def test_list_json_has_every_run_and_the_broken_one(root, capsys):
    capsys.readouterr()
    assert main(["runs", "list", "--root", str(root), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    rows = {Path(r["path"]).name: r for r in payload["runs"]}
    assert set(rows) == {"first", "second", "broken"}
    assert rows["broken"]["status"] == "damaged" and "error" in rows["broken"]
    assert payload["runs"][-1]["path"].endswith("broken")  # unreadable ones sort last
    first = rows["first"]
    assert first["status"] == "finished"
    assert first["scenarios"] == {"count": 1, "first": ["office-product-launch"]}
    assert first["models"]["default"] == "scripted/fair"
    assert first["arms"] == ["none"]
    assert first["counts"]["planned"] == 2 and first["counts"]["finished"] == 2
    assert first["counts"]["failed"] == 0
    assert rows["second"]["counts"]["planned"] == 1
    created = [r["created"] for r in payload["runs"] if r["created"]]
    assert created == sorted(created)


def test_list_renders_a_table_and_an_empty_root(root, tmp_path, capsys):
    capsys.readouterr()
    assert main(["runs", "list", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "damaged" in out and "finished" in out
    assert main(["runs", "list", "--root", str(tmp_path / "none")]) == 0
    assert "No runs" in capsys.readouterr().out


def test_show_json_shape(root, capsys):
    capsys.readouterr()
    assert main(["runs", "show", str(root / "first"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"run_id", "created", "status", "options", "models", "seed", "arms",
                         "scenarios", "variants", "counts", "results"}
    assert data["scenarios"]["office-product-launch"]["hash"]
    assert data["variants"]["office-product-launch"] == ["base"]
    assert data["counts"]["finished"] == 2
    assert "bias_first" in data["results"]["metrics"]


def test_show_renders_metrics(root, capsys):
    capsys.readouterr()
    assert main(["runs", "show", str(root / "first")]) == 0
    out = capsys.readouterr().out
    assert "office-product-launch" in out and "bias, first decision" in out


def test_export_csv_row_counts_match_the_log(root, tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    run_dir = root / "first"
    out = tmp_path / "export"
    capsys.readouterr()
    assert main(["export", str(run_dir), "--format", "csv", "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [t["table"] for t in payload["tables"]] == list(TABLES)
    counts = _type_counts(run_dir)
    frames = {name: pd.read_csv(out / f"{name}.csv") for name in TABLES}
    assert len(frames["messages"]) == counts["message"]
    assert len(frames["decisions"]) == counts["decision"]
    assert len(frames["judge_results"]) == counts["judge_result"]
    assert len(frames["model_calls"]) == counts["model_call"]
    assert len(frames["conversations"]) == counts["conversation_started"] == 2
    assert len(frames["probes"]) == 0  # no --probes: an empty table with its header
    assert "value_json" in frames["probes"].columns
    assert {t["table"]: t["rows"] for t in payload["tables"]}["messages"] == counts["message"]
    conv = frames["conversations"]
    assert conv["ok"].all() and set(conv["replicate"]) == {0, 1}
    decisions = frames["decisions"].dropna(subset=["value_json"])
    assert all(isinstance(json.loads(v), dict) for v in decisions["value_json"])
    assert {"model", "role", "purpose", "tokens", "latency_s", "attempts", "cached",
            "error"} <= set(frames["model_calls"].columns)


def _resumed_copy(run_dir: Path, out: Path) -> Path:
    """``run_dir`` as if it had been killed and resumed: before its log, an abandoned attempt of
    one conversation, a failed attempt of the other (run again on resume) and a judging that
    was interrupted; every line left behind is marked ABANDONED."""
    shutil.copytree(run_dir, out)
    lines = (out / "events.jsonl").read_text("utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    first, second = sorted({e["conversation_id"] for e in events if e.get("conversation_id")})

    def marked(event: dict) -> str:
        event = dict(event)
        for field in ("content", "raw", "response"):
            if field in event:
                event[field] = f"ABANDONED {event[field]}"
        if event["type"] == "judge_result":
            event["label"] = "ABANDONED"
        return json.dumps(event)

    of = {cid: [e for e in events if e.get("conversation_id") == cid
                and e["type"] != "judge_result"] for cid in (first, second)}
    abandoned = [marked(e) for e in of[first][:6]]  # killed mid-conversation
    failed = [marked(e) for e in of[second][:3]]
    failed.append(json.dumps({**of[second][-1], "ok": False}))  # finished, not successfully
    finished = next(line for line, e in zip(lines, events) if e["type"] == "run_finished")
    stale = [marked(e) for e in events if e["type"] == "judge_result"][:4]  # judging killed
    resumed = json.dumps({**events[0], "resumed": True})
    log = [lines[0], *abandoned, *failed, finished, *stale, resumed, *lines[1:]]
    (out / "events.jsonl").write_text("\n".join(log) + "\n", "utf-8")
    return out


def test_export_of_a_resumed_run_is_that_of_an_uninterrupted_one(root, tmp_path):
    # Every reader sees each conversation's last attempt and the last judging: export too.
    resumed = _resumed_copy(root / "first", tmp_path / "resumed")
    assert "ABANDONED" in (resumed / "events.jsonl").read_text("utf-8")
    clean = export_run(root / "first", "csv", tmp_path / "clean-export")
    again = export_run(resumed, "csv", tmp_path / "resumed-export")
    assert [(t["table"], t["rows"]) for t in again] == [(t["table"], t["rows"]) for t in clean]
    for ours, theirs in zip(again, clean, strict=True):
        text = Path(ours["path"]).read_text("utf-8")
        assert "ABANDONED" not in text, ours["table"]
        assert text == Path(theirs["path"]).read_text("utf-8"), ours["table"]


def test_export_default_folder_is_inside_the_run(root, capsys):
    written = export_run(root / "first", "csv")
    assert all(Path(w["path"]).parent == root / "first" / "export" for w in written)


def test_export_parquet_works_or_names_the_install(root, tmp_path):
    if importlib.util.find_spec("pyarrow") is None:
        with pytest.raises(PluginError, match="pip install pyarrow"):
            export_run(root / "first", "parquet", tmp_path / "pq")
        assert not (tmp_path / "pq").exists()
        return
    pd = pytest.importorskip("pandas")
    written = export_run(root / "first", "parquet", tmp_path / "pq")
    for item in written:
        assert len(pd.read_parquet(item["path"])) == item["rows"]


def test_bad_run_dir_exits_2(root, tmp_path, capsys):
    assert main(["runs", "show", str(tmp_path / "missing")]) == 2
    assert main(["export", str(tmp_path / "missing")]) == 2
    assert main(["runs", "show", str(root / "broken")]) == 2
    assert main(["export", str(root / "not-a-run"), "--format", "csv"]) == 2
    assert "not a run folder" in capsys.readouterr().err
