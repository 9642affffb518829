"""The Python API: the numbers of the command line, runs as pandas frames, options checked as
the command line checks them, every judging pass kept. The scripted model tests the machinery;
nothing here is a finding about bias."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import agentsim
from agentsim.api import FRAMES
from agentsim.cli.main import main
from agentsim.core.events import JudgeResult
from agentsim.core.store import RunStore
from agentsim.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
MODEL = "scripted/stereotyped?rate=0.5"


@pytest.fixture(scope="module")
def scripted(tmp_path_factory) -> agentsim.Run:
    """A run with every kind of event: discussion rounds with probes, variants, a mitigation.
    No cache: a module's fixture runs outside the per-test cache folder."""
    out = tmp_path_factory.mktemp("api") / "run"
    return agentsim.run(SCENARIO, model=MODEL, rounds=1, probes=True, replicates=2,
                        mitigation=["debias_prompt"], no_cache=True, out=out)


def test_the_api_and_the_command_line_give_the_same_numbers(tmp_path, capsys):
    options = ["--model", MODEL, "--replicates", "2", "--rounds", "1", "--seed", "5",
               "--role", "emily=scripted/stereotyped?rate=0.9"]
    assert main(["run", str(SCENARIO), *options, "--out", str(tmp_path / "cli"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    made = agentsim.run([str(SCENARIO)], model=MODEL, replicates=2, rounds=1, seed=5,
                        roles={"emily": "scripted/stereotyped?rate=0.9"}, out=tmp_path / "api")
    cli = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert made.exit_status == 0 and made.summary.conversations == cli["conversations"]
    assert made.results["metrics"] == cli["metrics"]  # exactly, intervals included
    assert made.results["records"] == cli["records"] == printed["records"]
    assert printed["metrics"] == cli["metrics"] and len(cli["metrics"]) > 10
    options_of = [json.loads((tmp_path / d / "manifest.json").read_text())["options"]
                  for d in ("cli", "api")]
    assert options_of[0] == options_of[1]  # the same run, option for option


def test_metrics_frame_has_the_columns_and_the_breakdowns(scripted):
    frame = scripted.metrics()
    assert list(frame.columns[:2]) == ["judge", "metric"]
    assert {"value", "ci_low", "ci_high", "n", "p", "round"} <= set(frame.columns)
    per_round = frame[frame.metric == "bias"]
    assert set(per_round.judge) == {"trajectory"}
    assert set(per_round["round"]) >= {"0", "1", "final"}
    first = frame[frame.name == "bias_first"].iloc[0]
    assert first.judge == "assignment_bias" and pd.isna(first["round"])
    assert first.value == scripted.results["metrics"]["bias_first"]["value"]
    assert len(frame) == len(scripted.results["metrics"])


EXPECTED = {
    "messages": {"speaker", "phase", "round", "content"},
    "decisions": {"phase", "round", "value", "parsed_by", "raw"},
    "model_calls": {"model", "role", "purpose", "latency_s", "structured"},
    "conversations": {"scenario_id", "protocol", "bias", "ok", "turns", "started", "finished"},
    "judge_results": {"judge", "target", "label", "score", "details"},
    "mitigations": {"mitigation", "hook", "detail"},
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_frame_of_each_kind(scripted, kind):
    frame = scripted.frame(kind)
    assert len(frame) > 0
    assert {"run_id", "conversation_id", "variant", "arm"} | EXPECTED[kind] <= set(frame.columns)
    assert "type" not in frame.columns
    assert set(frame.run_id) == {scripted.manifest["run_id"]}
    assert set(frame.arm) == {"debias_prompt"}


def test_frames_are_what_judges_see(tmp_path):
    made = agentsim.run(SCENARIO, model="scripted/stereotyped?fail=0.02", retries=0,
                        replicates=4, no_variants=True, out=tmp_path / "run")
    assert made.exit_status == 1 and made.summary.failed >= 1
    everything = made.frame("conversations", complete_only=False)
    finished = made.frame("conversations")
    assert len(everything) == 4 and set(finished.ok) == {True}
    assert len(finished) == 4 - made.summary.failed
    failed = set(everything[~everything.ok.astype(bool)].conversation_id)
    assert failed and not failed & set(made.frame("decisions").conversation_id)
    assert failed <= set(made.frame("decisions", complete_only=False).conversation_id)


def test_a_run_started_inside_a_running_event_loop(tmp_path):
    """A notebook runs an event loop in the calling thread: the runner's preflight and its
    execution then run on a loop of their own (agentsim._aio.run_sync), and the run completes."""
    import asyncio

    async def in_a_notebook() -> agentsim.Run:
        asyncio.get_running_loop()  # the loop a notebook's cell runs in
        return agentsim.run(SCENARIO, model="scripted/fair", rounds=0, no_variants=True,
                            out=tmp_path / "run")

    made = asyncio.run(in_a_notebook())
    assert made.exit_status == 0 and made.summary.conversations == 1
    assert made.manifest["status"] == "finished" and len(made.frame("decisions")) > 0


def test_an_unknown_frame_kind_lists_the_kinds(scripted):
    with pytest.raises(InputError) as error:
        scripted.frame("votes")
    assert "'votes'" in str(error.value)
    assert all(kind in str(error.value) for kind in FRAMES)


BAD = [
    ({"rounds": 21}, "--rounds"), ({"rounds": True}, "--rounds"),
    ({"replicates": 0}, "--replicates"), ({"replicates": 1.5}, "--replicates"),
    ({"seed": -1}, "--seed"), ({"temperature": float("nan")}, "--temperature"),
    ({"max_tokens": 0}, "--max-tokens"), ({"concurrency": 5000}, "--concurrency"),
    ({"setting": "chaos"}, "--setting"), ({"structured": "jsonschema"}, "--structured"),
    ({"rpm": 0}, "--rpm"), ({"timeout": {"scripted/fair": 0}}, "--timeout"),
    ({"retries": 101}, "--retries"), ({"roles": {"emily": ""}}, "--role"),
    ({"roles": {"nobody": "scripted/fair"}}, "--role"), ({"out": ""}, "--out"),
    ({"cache_dir": " "}, "--cache-dir"), ({"bias": ["doctor:race"]}, "--bias"),
    ({"max_turns": 10}, "--max-turns"), ({"limit": 3}, "--limit"), ({"cases": "0-3"}, "--cases"),
    ({"tag": ["no-such-tag"]}, "--tag"), ({"tag": [3]}, "--tag"),
    ({"mitigation_arg": ["debias_prompt:file=x.txt"]}, "--mitigation-arg"),
    ({"mitigation_arg": ["nonsense"]}, "--mitigation-arg"),
    ({"vary": ["emily.gender=man,woman"], "no_variants": True}, "--no-variants"),
    ({"vary": ["nonsense"]}, "--vary"), ({"max_failures": "lots"}, "--max-failures"),
    ({"api_base": "http://127.0.0.1:9/v1?api_key=abcdef0123456789"}, "--api-base"),
    ({"colour": "red"}, "--colour"),
]


@pytest.mark.parametrize("options, option", BAD, ids=[o for _, o in BAD])
def test_a_bad_option_is_an_input_error_naming_it(options, option, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError) as error:
        agentsim.run(SCENARIO, **{"model": "scripted/fair", "out": out, **options})
    assert error.value.source == option, str(error.value)
    assert "abcdef0123456789" not in str(error.value)  # a key is named, never shown
    assert not out.exists()  # refused before anything was written


def test_compare_resume_and_fork(tmp_path):
    compared = agentsim.compare(SCENARIO, arms="none,debias_prompt", model=MODEL,
                                no_variants=True, out=tmp_path / "compare")
    assert compared.comparison["control"] == "none" and len(compared.plots) == 2
    levels = agentsim.open_run(compared.path).metrics(comparison=True)
    assert {"arm"} <= set(levels.columns) and set(levels.judge) == {"compare"}
    assert set(levels.dropna(subset=["arm"]).arm) == {"none", "debias_prompt"}
    with pytest.raises(InputError, match="--control"):
        agentsim.compare(SCENARIO, arms=["a", "b"], model=MODEL, out=tmp_path / "x")
    resumed = agentsim.resume(compared.path)  # finished: nothing to do, same results
    assert resumed.exit_status == 0 and resumed.results == compared.results
    cid = compared.frame("conversations").conversation_id.iloc[0]
    forked = agentsim.fork(compared.path, cid, 4, model="scripted/fair", replicates=2,
                           out=tmp_path / "fork")
    assert forked.manifest["parent"]["from_turn"] == 4 and forked.summary.conversations == 2
    with pytest.raises(InputError, match="--from-turn"):
        agentsim.fork(compared.path, cid, -1)


def test_rejudging_keeps_every_pass_and_frames_the_current_one(tmp_path):
    made = agentsim.run(SCENARIO, model=MODEL, rounds=1, out=tmp_path / "run")
    first = made.frame("judge_results")
    first_pass = made.results["judging_pass"]
    again = agentsim.judge(made.path, judges="assignment_bias")
    assert again.previous_results is not None and again.previous_results.exists()
    current = again.frame("judge_results")
    assert set(current.judge) == {"assignment_bias"}
    assert len(current) == (first.judge == "assignment_bias").sum() > 0
    assert again.results["judging_pass"]["id"] != first_pass["id"]
    log = (made.path / "events.jsonl").read_text()
    assert log.count('"type":"judge_result"') == len(first) + len(current)  # both passes kept
    # Readers of the log (export, fine-tuning data) see the latest pass too.
    assert len(list(RunStore.open(made.path).iter_events({"judge_result"}))) == len(current)
    # A judging killed before it replaced results.json leaves verdicts that are not counted.
    store = RunStore.open(made.path)
    store.append(JudgeResult(run_id=store.run_id, judge="assignment_bias", target="x"))
    store.close()
    assert agentsim.open_run(made.path).frame("judge_results").equals(current)


def test_results_written_before_records_still_give_metrics(tmp_path):
    made = agentsim.run(SCENARIO, model=MODEL, no_variants=True, out=tmp_path / "run")
    path = made.path / "results.json"
    old = {k: v for k, v in json.loads(path.read_text()).items()
           if k not in ("records", "judging_pass")}
    path.write_text(json.dumps(old))
    frame = agentsim.open_run(made.path).metrics()
    assert len(frame) == len(old["metrics"]) and set(frame.judge.dropna()) == set()
    assert frame.set_index("name").value.to_dict() == {k: v["value"]
                                                       for k, v in old["metrics"].items()}


def test_the_public_names_import_and_import_agentsim_stays_light():
    assert {"load_scenarios", "run", "compare", "judge", "resume", "fork", "open_run",
            "Mitigation", "mitigation", "Judge", "JudgeOutput", "register_judge", "protocol",
            "__version__"} <= set(agentsim.__all__)
    for name in agentsim.__all__:
        assert getattr(agentsim, name) is not None, name
    from agentsim import _version, api, registry

    assert agentsim.__version__ == _version.__version__
    assert agentsim.run is api.run and agentsim.register_judge is registry.judge
    with pytest.raises(AttributeError):
        agentsim.no_such_name  # noqa: B018
    code = ("import sys, agentsim; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pandas', 'scipy', 'numpy', 'pydantic', 'litellm', 'langgraph', 'rich') or "
            "m.startswith('agentsim.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "['agentsim._version']"


def test_load_scenarios_selects_by_tag(workplace):
    every = agentsim.load_scenarios(workplace)
    tag = sorted({t for _, s in every for t in s.tags})[0]
    tagged = agentsim.load_scenarios([workplace], tag=tag)
    assert 0 < len(tagged) <= len(every) and all(tag in s.tags for _, s in tagged)
