"""The report file without a browser: written where the commands say, self-contained, escaped,
and holding exactly what the log and the judges say (outcomes, per-group escalation)."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from report_page import HOSTILE, REPO, details_of, index_of

import agentsim
from agentsim.cli.main import main
from agentsim.core.events import Message
from agentsim.core.metrics import MetricRecord
from agentsim.core.store import RunStore
from agentsim.report.collect import read_run
from agentsim.report.plots import _group_trajectories, figures, records
from agentsim.report.svg import Point, Series, interval_chart
from agentsim.report.words import sentence


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def test_run_and_judge_end_with_the_report_path(tmp_path, capsys):
    out = tmp_path / "run"
    scenario = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
    assert main(["run", str(scenario), "--model", "scripted/fair", "--out", str(out)]) == 0
    assert _last_line(capsys.readouterr().out) == f"Report: {out / 'report.html'}"
    first = (out / "report.html").stat().st_mtime_ns
    assert main(["judge", str(out), "--judges", "assignment_bias"]) == 0
    assert _last_line(capsys.readouterr().out) == f"Report: {out / 'report.html'}"
    assert (out / "report.html").stat().st_mtime_ns > first  # written again after judging
    other = tmp_path / "elsewhere" / "r.html"
    assert main(["report", str(out), "--out", str(other), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["report"] == str(other) and payload["bytes"] == other.stat().st_size


def test_run_json_names_the_report(tmp_path, capsys):
    out = tmp_path / "run"
    scenario = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
    assert main(["run", str(scenario), "--model", "scripted/fair", "--out", str(out),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["report"] == str(out / "report.html")


@pytest.mark.parametrize("make", [lambda p: p, lambda p: p / "missing"])
def test_a_folder_that_is_not_a_run_is_exit_2(tmp_path, capsys, make):
    folder = make(tmp_path)
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{folder}: not a run folder" in err and "Traceback" not in err
    assert not (tmp_path / "report.html").exists()


def test_self_contained_with_a_policy_that_forbids_the_network(plain_run):
    html = (plain_run / "report.html").read_text(encoding="utf-8")
    policy = re.search(r'<meta http-equiv="Content-Security-Policy"\s+content="([^"]+)">', html)
    assert policy and "default-src 'none'" in policy[1] and "img-src data:" in policy[1]
    # The one executable script is admitted by its hash, and it is the page's own.
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy[1]
    # Nothing points off the page: no src, no remote href, no CSS import or url().
    assert not re.search(r"\ssrc=", html)
    assert not re.search(r'href="(?!#)', html)
    assert "@import" not in html and "url(" not in html.replace('url(#', '')


def test_model_text_is_data_never_markup(hostile_run):
    path = hostile_run / "report.html"
    html = path.read_text(encoding="utf-8")
    assert "window.__pwned" not in html.split('id="chunk-')[0]  # not in overview or index
    assert "<img src=x" not in html and "<script>window" not in html
    message = next(i for d in details_of(path).values() for i in d["items"] if i["t"] == "m")
    assert message["content"] == HOSTILE  # kept whole, as data


def test_index_rows_and_outcomes_follow_the_log(plain_run):
    index = index_of(plain_run / "report.html")
    run = agentsim.open_run(plain_run)
    conversations = run.frame("conversations")
    assert sorted(r["id"] for r in index["rows"]) == sorted(conversations.conversation_id)
    verdicts = run.frame("judge_results")
    last = verdicts[(verdicts.judge == "assignment_bias") & (verdicts.target == "decision:final")]
    share = (last.label == "stereotypical").groupby(last.conversation_id).mean()
    stereotyped = set(share[share > 0.5].index)
    shown = {r["id"] for r in index["rows"] if "stereotyped_last" in r["outcomes"]}
    assert 0 < len(stereotyped) < len(share) and shown == stereotyped
    assert {r["variant"] for r in index["rows"]} >= {"base", "mirror"}
    details = details_of(plain_run / "report.html")
    messages = run.frame("messages")
    for cid, detail in list(details.items())[:5]:
        texts = [i["content"] for i in detail["items"] if i["t"] == "m"]
        assert texts == list(messages[messages.conversation_id == cid].content)


def test_escalation_per_group_is_the_judges_estimator(plain_run):
    """Grouped by a factor with one level, the per-group points equal the trajectory judge's
    bias[round=r]: the per-group picture of a compare run uses the same estimator."""
    data = read_run(plain_run, lambda detail: None)
    (series,) = _group_trajectories(data, ["arm"])
    judged = {r.breakdown["round"]: r for r in records(data)
              if r.judge == "trajectory" and r.metric == "bias"}
    assert set(series.points) == set(judged) == {"0", "1", "2", "final"}
    for round_, record in judged.items():
        point = series.points[round_]
        assert point.value == pytest.approx(record.estimate, abs=1e-12)
        assert (point.low, point.high) == pytest.approx((record.ci_low, record.ci_high),
                                                        abs=1e-9)
        assert point.n == record.n


def test_compare_report_has_arms_forest_and_sentences(compare_run):
    data = read_run(compare_run, lambda detail: None)
    drawn = {f.key: f for f in figures(data)[0]}
    assert {"escalation", "labels", "forest"} <= set(drawn)
    for arm in ("none", "self_reflection", "debias_prompt"):
        assert f">{arm}</text>" in drawn["escalation"].svg  # one series per arm
    html = (compare_run / "report.html").read_text(encoding="utf-8")
    assert "Under self_reflection (against none)," in html
    assert 'data-filter="arm=debias_prompt"' in html


def test_clinical_report_links_accuracy_to_wrong_diagnoses(clinical_run):
    data = read_run(clinical_run, lambda detail: None)
    assert {"accuracy-bias", "accuracy-variant"} <= {f.key for f in figures(data)[0]}
    verdicts = agentsim.open_run(clinical_run).frame("judge_results")
    wrong = set(verdicts[(verdicts.judge == "clinical") & (verdicts.label == "wrong")]
                .conversation_id)
    index = index_of(clinical_run / "report.html")
    assert {r["id"] for r in index["rows"] if "wrong_diagnosis" in r["outcomes"]} == wrong
    assert wrong, "the scripted doctor is right half the time: some diagnoses are wrong"


def test_fork_report_names_its_parent(fork_run, plain_run):
    index = index_of(fork_run / "report.html")
    parent = json.loads((plain_run / "manifest.json").read_text())["run_id"]
    assert index["from_turn"] == 2 and index["parent"] == parent
    assert "fork of" in (fork_run / "report.html").read_text(encoding="utf-8")


def test_sentences_say_what_the_interval_says():
    rose = MetricRecord(judge="assignment_bias", name="escalation", metric="escalation",
                        estimate=0.12, ci_low=0.04, ci_high=0.2, n=150)
    text = sentence(rose)
    assert "rose by 0.12" in text and "[0.04, 0.2]" in text and "n = 150" in text
    assert "excludes 0" in text
    flat = rose.model_copy(update={"estimate": -0.05, "ci_low": -0.2, "ci_high": 0.1, "p": 0.4})
    assert "fell by 0.05" in sentence(flat) and "includes 0" in sentence(flat)
    assert "p = 0.4" in sentence(flat)
    delta = flat.model_copy(update={"name": "delta_bias_last[x]", "metric": "delta_bias_last"})
    words = sentence(delta, arm="debias_prompt", control="none", label="bias, last decision")
    assert words.startswith("Under debias_prompt (against none), bias, last decision fell by "
                            "0.05 (change -0.05 [-0.2, 0.1])")


def test_svg_labels_are_escaped():
    svg = interval_chart(["<b>x</b>"], [Series("<i>s</i>", {"<b>x</b>": Point(0.5, 0.1, 0.9, 3)}),
                                        Series("two", {})], title="<script>t</script>")
    assert "<b>" not in svg and "<i>" not in svg and "<script>" not in svg
    assert "&lt;b&gt;x&lt;/b&gt;" in svg


def test_failed_conversations_are_listed_with_their_reasons(tmp_path):
    out = tmp_path / "run"
    code = main(["run", str(REPO / "scenarios" / "workplace"), "--tag", "demo", "--model",
                 "scripted/stereotyped?fail=0.05", "--retries", "0", "--seed", "1",
                 "--no-cache", "--out", str(out)])
    assert code == 1  # some conversations failed: the report is written all the same
    failed = {e.conversation_id for e in RunStore.open(out).iter_events({"conversation_finished"})
              if not e.ok}
    index = index_of(out / "report.html")
    assert failed and {r["id"] for r in index["rows"] if r["status"] == "failed"} == failed
    assert all("failed" in r["outcomes"] for r in index["rows"] if r["id"] in failed)
    details = details_of(out / "report.html")
    assert all(any(i["t"] == "e" for i in details[cid]["items"]) for cid in failed)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "planted provider failure" in html and 'data-filter="status=failed"' in html


def test_secrets_never_reach_the_report(tmp_path, monkeypatch, capsys):
    """A manifest or log line written before the redactor knew a secret (here: planted by
    hand) is redacted in the report: endpoints, overview and conversation details."""
    secret = "hunter2-planted-secret-value"
    out = tmp_path / "run"
    scenario = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
    assert main(["run", str(scenario), "--model", "scripted/fair", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["endpoints"]["scripted/fair"]["api_base"] = f"https://user:{secret}@host/v1"
    manifest["models"]["judge"] = f"openai/x?api_key={secret}"
    (out / "manifest.json").write_text(json.dumps(manifest))
    started = next(RunStore.open(out).iter_events({"conversation_started"}))
    line = Message(run_id=started.run_id, conversation_id=started.conversation_id, turn=99,
                   agent="daniel", speaker="Daniel", phase="discussion",
                   content=f"my key is {secret}").model_dump_json(exclude_none=True)
    events = (out / "events.jsonl").read_text().splitlines(keepends=True)
    finish = max(i for i, text in enumerate(events) if '"conversation_finished"' in text
                 and started.conversation_id in text)
    events.insert(finish, line + "\n")
    (out / "events.jsonl").write_text("".join(events))
    monkeypatch.setenv("PLANTED_SERVICE_TOKEN", secret)
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    details = json.dumps(details_of(out / "report.html"))
    assert secret not in html and secret not in details
    assert "my key is ***" in details  # the message is shown, its secret is not


def test_a_run_that_never_ran_lists_its_planned_conversations(tmp_path, plain_run):
    (tmp_path / "manifest.json").write_bytes((plain_run / "manifest.json").read_bytes())
    assert main(["report", str(tmp_path)]) == 0
    rows = index_of(tmp_path / "report.html")["rows"]
    planned = json.loads((plain_run / "manifest.json").read_text())["jobs"]
    assert len(rows) == len(planned) and {r["status"] for r in rows} == {"unfinished"}
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "No headline metrics" in html
