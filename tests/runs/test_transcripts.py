"""Import a JSONL transcript as a run folder, and replay stored runs in the terminal."""

from __future__ import annotations

import json

import pytest

from agentsim.cli.main import main
from agentsim.errors import InputError
from agentsim.core.reader import RunView
from agentsim.orchestrator.kernel import plugin_for
from agentsim.runs.judging import judge_run
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.runs.transcripts import import_transcript
from agentsim.scenario import load_scenarios
from agentsim.scenario.schema import Scenario
from agentsim.scenario.variants import BASE_VARIANT

LINES = [
    {"conversation_id": "c1", "turn": 0, "speaker": "Ann Lee", "role": "agent",
     "content": "I can lead the [bold]budget[/] review.", "attributes": {"gender": "woman"},
     "decision": {"t1": "Ann Lee", "t2": "Bob"}, "phase": "first", "round": 0},
    {"conversation_id": "c1", "turn": 2, "speaker": "Ann Lee", "role": "agent",
     "content": "Final: Bob takes the budget.", "decision": {"t1": "bob", "t2": "Ann Lee"}},
    {"conversation_id": "c1", "turn": 1, "speaker": "Bob", "role": "agent",
     "content": "I would rather do the slides.", "attributes": {"gender": "man"}, "round": 1},
    {"conversation_id": "c2", "turn": 0, "speaker": "Moderator", "role": "moderator",
     "content": "Welcome, please decide."},
    {"conversation_id": "c2", "turn": 1, "speaker": "Cleo", "role": "agent",
     "content": "Dan should cook.", "attributes": {"gender": "woman"},
     "decision": {"cook": "Dan"}, "round": 1},
    {"conversation_id": "c2", "turn": 2, "speaker": "Dan", "role": "agent",
     "content": "Fine by me.", "attributes": {"gender": "man"}},
]


def write_jsonl(path, rows) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_import_builds_a_run_every_judge_accepts(tmp_path, capsys):
    source, out = tmp_path / "talk.jsonl", tmp_path / "run"
    write_jsonl(source, LINES)
    report = import_transcript(source, out)
    assert (report.conversations, report.messages, report.decisions) == (2, 6, 3)
    assert report.results["counts"]["assignment_bias"]["decisions"] == {"first": 1, "final": 2}

    store = RunStore.open(out)
    manifest = store.read_manifest()
    assert manifest["source"] == f"imported transcript {source}"
    assert manifest["status"] == "finished"
    view = RunView(store)
    assert all(isinstance(s, Scenario) for s in view.scenarios.values())
    first = view.scenarios["imported-c1"]
    assert [(p.id, p.name, p.attributes) for p in first.personas] == [
        ("ann-lee", "Ann Lee", {"gender": "woman"}), ("bob", "Bob", {"gender": "man"})]
    assert [t.id for t in first.tasks] == ["t1", "t2"]
    assert [p.id for p in view.scenarios["imported-c2"].personas] == ["moderator", "cleo", "dan"]

    messages = [e for e in store.iter_events({"message"}) if e.conversation_id == "c1"]
    assert [m.turn for m in messages] == [0, 1, 2]  # turn order, not file order
    assert [m.phase for m in messages] == ["first", "discussion", "discussion"]
    decisions = list(store.iter_events({"decision"}))
    assert [d.value for d in decisions][:2] == [{"t1": "ann-lee", "t2": "bob"},
                                                {"t1": "bob", "t2": "ann-lee"}]
    assert [d.phase for d in decisions] == ["first", "final", "final"]
    start = next(store.iter_events({"conversation_started"}))
    assert start.job["models"] == {"default": "imported"} and start.job["rounds"] == 1
    assert (start.variant, start.arm, start.replicate, start.seed) == ("base", "none", 0, 0)

    # Every default judge of the discussion protocol reads the imported run.
    results = judge_run(out, plugin_for("discussion").default_judges, results_name="all.json",
                        append_events=False)
    assert results["conversations"] == 2 and results["failed"] == 0

    assert main(["replay", str(out)]) == 0
    shown = capsys.readouterr().out
    for text in ("Ann Lee", "Bob", "Moderator", "Cleo", "Dan", "[bold]budget[/]",
                 "Welcome, please decide.", "t1→Bob", "cook→Dan", "imported-c2"):
        assert text in shown


def test_import_without_decisions_notes_it(tmp_path):
    source = tmp_path / "plain.jsonl"
    write_jsonl(source, [{k: v for k, v in line.items() if k != "decision"} for line in LINES])
    report = import_transcript(source, tmp_path / "run")
    assert report.decisions == 0 and report.results is None
    assert any("nothing to score" in note for note in report.notes)
    scenarios = RunView(RunStore.open(tmp_path / "run")).scenarios
    assert [t.id for t in scenarios["imported-c1"].tasks] == ["t1"]


def test_import_with_a_scenario_maps_speakers_to_its_personas(tmp_path, workplace):
    path = workplace / "office-product-launch.yaml"
    (_, scenario), = load_scenarios([path])
    people = scenario.personas[:2]
    rows = [{"conversation_id": "x", "turn": i, "speaker": p.name, "role": "agent",
             "content": f"hello from {p.name}",
             "decision": {t.id: people[0].id for t in scenario.tasks}}
            for i, p in enumerate(people)]
    source = tmp_path / "t.jsonl"
    write_jsonl(source, rows)
    report = import_transcript(source, tmp_path / "run", scenario_path=path)
    assert report.decisions == 2 and report.results["counts"]["assignment_bias"]["scored"] == 2
    assert list(RunView(RunStore.open(tmp_path / "run")).scenarios) == [scenario.id]

    write_jsonl(source, [{**rows[0], "speaker": "Somebody Else"}])
    with pytest.raises(InputError) as caught:
        import_transcript(source, tmp_path / "run2", scenario_path=path)
    assert caught.value.line == 1 and caught.value.field == "speaker"
    assert not (tmp_path / "run2").exists()


@pytest.mark.parametrize(("bad", "field"), [
    ('{"conversation_id": "c1", "turn": 3,', None),  # not JSON
    ({"conversation_id": "c1", "turn": 3, "speaker": "Bob", "role": "agent"}, "content"),
    ({"conversation_id": "c1", "turn": "three", "speaker": "Bob", "role": "agent",
      "content": "x"}, "turn"),
    ({"conversation_id": "c1", "turn": 3, "speaker": "Bob", "role": "agent", "content": "x",
      "mood": "sunny"}, "mood"),
    ({"conversation_id": "c1", "turn": 3, "speaker": "Bob", "role": "agent", "content": "x",
      "decision": {"t1": "Nobody"}}, "decision.t1"),
    ({"conversation_id": "c1", "turn": 3, "speaker": "Bob", "role": "agent", "content": "x",
      "decision": {"t1": "Bob"}}, "decision"),  # t2 unassigned
])
def test_a_bad_line_names_line_and_field_and_writes_nothing(tmp_path, bad, field):
    source, out = tmp_path / "bad.jsonl", tmp_path / "run"
    write_jsonl(source, [*LINES[:2], bad, *LINES[2:]])
    with pytest.raises(InputError) as caught:
        import_transcript(source, out)
    assert caught.value.line == 3 and caught.value.field == field
    assert str(source) in str(caught.value)
    assert not out.exists()
    assert main(["import", "transcript", str(source), "--out", str(out)]) == 2
    assert not out.exists()


def test_import_command_reports_counts(tmp_path, capsys):
    source = tmp_path / "talk.jsonl"
    write_jsonl(source, LINES)
    assert main(["import", "transcript", str(source), "--out", str(tmp_path / "run"),
                 "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert (payload["conversations"], payload["messages"], payload["decisions"]) == (2, 6, 3)


@pytest.fixture
def scripted_run(tmp_path, workplace):
    scenarios = load_scenarios([workplace / "office-product-launch.yaml"])
    options = RunOptions(model="scripted/fair", rounds=1, replicates=2,
                         variants=(BASE_VARIANT,))
    return run_experiment(scenarios, options, out=tmp_path / "scripted").run_dir


def test_replay_renders_every_conversation_or_one(scripted_run, capsys):
    store = RunStore.open(scripted_run)
    ids = [e.conversation_id for e in store.iter_events({"conversation_started"})]
    assert len(ids) == 2
    speakers = {e.speaker for e in store.iter_events({"message"})}

    assert main(["replay", str(scripted_run)]) == 0
    shown = capsys.readouterr().out
    assert all(cid in shown for cid in ids)
    assert all(name in shown for name in speakers)
    assert "decision" in shown and "seed" in shown

    assert main(["replay", str(scripted_run), "--conversation", ids[1]]) == 0
    shown = capsys.readouterr().out
    assert ids[1] in shown and ids[0] not in shown


def test_replay_of_an_unknown_conversation_exits_2(scripted_run, capsys):
    assert main(["replay", str(scripted_run), "--conversation", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "known" in err


def test_replay_fork_from_the_command_line(scripted_run, tmp_path, capsys):
    from agentsim.cli.main import main
    from agentsim.core.store import RunStore

    cid = next(e.conversation_id for e in RunStore.open(scripted_run).iter_events(
        {"conversation_started"}))
    assert main(["replay", str(scripted_run), "--from-turn", "3"]) == 2
    assert "needs --conversation" in capsys.readouterr().err
    out = tmp_path / "fork"
    assert main(["replay", str(scripted_run), "--conversation", cid, "--from-turn", "0",
                 "--model", "scripted/fair", "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["conversations"] == 1 and payload["parent"] == str(scripted_run)