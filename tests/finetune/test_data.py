"""Fine-tuning data builder: the published Borah & Mihalcea data and the fair decisions of a run.

The published files are read where they are (``../shared/anchors/borah``, skipped when absent)
and never copied into the repository; tests that damage them work on copies in ``tmp_path``.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from agentsim.agents.decisions import parse_assignment
from agentsim.errors import InputError
from agentsim.finetune import (
    DataReport,
    build_from_borah,
    build_from_run,
    dev_path_for,
    validate_chat_jsonl,
)
from agentsim.finetune.data import DEFAULT_REASON, fair_examples
from agentsim.labels.assignment import label_assignment
from agentsim.core.reader import RunView
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import EVENTS, RunStore
from agentsim.scenario import load_scenarios

PHASES = {"first", "final", "single"}


@pytest.fixture
def borah(anchors: Path) -> Path:
    folder = anchors / "borah"
    if not list(folder.glob("*implicit*.jsonl")):
        pytest.skip(f"no Borah fine-tuning files in {folder}")
    return folder


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def assert_hosted_layout(path: Path) -> int:
    """The file passes the validator and holds exactly the hosted keys, nothing of ours."""
    count = validate_chat_jsonl(path)
    rows = rows_of(path)
    assert len(rows) == count
    for row in rows:
        assert set(row) == {"messages"}
        assert [set(m) for m in row["messages"]] == [{"role", "content"}] * len(row["messages"])
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert all(isinstance(m["content"], str) and m["content"] for m in row["messages"])
    return count


# -- the published data --------------------------------------------------------------------------
def test_half_keeps_the_published_split(borah, tmp_path):
    report = build_from_borah(borah, "half", tmp_path / "half.jsonl")
    assert isinstance(report, DataReport)
    assert (report.train_rows, report.dev_rows) == (88, 23)
    assert report.dev_path == tmp_path / "half.dev.jsonl" == dev_path_for(report.train_path)
    assert report.sources == {"train_nonimplicit_new.jsonl": 88, "dev_nonimplicit_new.jsonl": 23}
    assert assert_hosted_layout(report.train_path) == 88
    assert assert_hosted_layout(report.dev_path) == 23
    # Kept as published: same rows, same order, nothing edited.
    assert rows_of(report.train_path) == rows_of(borah / "train_nonimplicit_new.jsonl")
    assert rows_of(report.dev_path) == rows_of(borah / "dev_nonimplicit_new.jsonl")


def test_full_has_both_datasets_with_their_published_splits(borah, tmp_path):
    report = build_from_borah(borah, "full", tmp_path / "full.jsonl")
    assert (report.train_rows, report.dev_rows) == (252 + 88, 86 + 23)
    assert report.sources == {"train_implicit_all.jsonl": 252, "dev_implicit_all.jsonl": 86,
                              "train_nonimplicit_new.jsonl": 88, "dev_nonimplicit_new.jsonl": 23}
    assert assert_hosted_layout(report.train_path) == 340
    assert assert_hosted_layout(report.dev_path) == 109
    assert rows_of(report.train_path) == (rows_of(borah / "train_implicit_all.jsonl")
                                          + rows_of(borah / "train_nonimplicit_new.jsonl"))
    assert rows_of(report.dev_path) == (rows_of(borah / "dev_implicit_all.jsonl")
                                        + rows_of(borah / "dev_nonimplicit_new.jsonl"))


@pytest.mark.parametrize("setting", ["full", "half"])
def test_a_second_build_writes_identical_bytes(borah, tmp_path, setting):
    one = build_from_borah(borah, setting, tmp_path / "a" / "data.jsonl", seed=7)
    two = build_from_borah(borah, setting, tmp_path / "b" / "data.jsonl", seed=7)
    assert one.train_path.read_bytes() == two.train_path.read_bytes()
    assert one.dev_path.read_bytes() == two.dev_path.read_bytes()


def test_without_a_published_dev_file_the_split_is_seeded(borah, tmp_path):
    folder = tmp_path / "only-train"
    folder.mkdir()
    shutil.copy(borah / "train_nonimplicit_new.jsonl", folder)
    one, again, other = (build_from_borah(folder, "half", tmp_path / name, seed=seed)
                         for name, seed in [("a.jsonl", 3), ("b.jsonl", 3), ("c.jsonl", 4)])
    assert (one.train_rows, one.dev_rows) == (70, 18)  # round(88 × 0.2) = 18
    assert one.train_path.read_bytes() == again.train_path.read_bytes()
    assert one.dev_path.read_bytes() == again.dev_path.read_bytes()
    assert one.dev_path.read_bytes() != other.dev_path.read_bytes()
    written = rows_of(one.train_path) + rows_of(one.dev_path)
    published = rows_of(folder / "train_nonimplicit_new.jsonl")
    assert sorted(map(json.dumps, written)) == sorted(map(json.dumps, published))
    assert "split here" in one.notes[0]


def test_output_in_the_input_folder_is_not_read_back(borah, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(borah, folder)
    out = folder / "mine_nonimplicit.jsonl"  # matches the 'half' pattern
    first = build_from_borah(folder, "half", out)
    second = build_from_borah(folder, "half", out)
    assert (second.train_rows, second.dev_rows) == (first.train_rows, first.dev_rows) == (88, 23)


GOOD = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                     {"role": "assistant", "content": "a"}]}


@pytest.mark.parametrize(("line", "field"), [
    ("{not json", None),
    ('["messages"]', None),
    (json.dumps({**GOOD, "id": 3}), "id"),
    (json.dumps({"messages": []}), "messages"),
    (json.dumps({"messages": [GOOD["messages"][0], {"role": "bot", "content": "u"},
                              GOOD["messages"][2]]}), "messages[1].role"),
    (json.dumps({"messages": [GOOD["messages"][0], {"content": "u"}, GOOD["messages"][2]]}),
     "messages[1].role"),
    (json.dumps({"messages": [*GOOD["messages"][:2], {"role": "assistant", "content": " "}]}),
     "messages[2].content"),
    (json.dumps({"messages": [*GOOD["messages"][:2], {"role": "assistant", "content": 4}]}),
     "messages[2].content"),
    (json.dumps({"messages": [*GOOD["messages"][:2],
                              {"role": "assistant", "content": "a", "weight": 1}]}),
     "messages[2].weight"),
    (json.dumps({"messages": GOOD["messages"][1:]}), "messages"),  # no system message
])
def test_a_malformed_published_line_names_file_line_and_field(borah, tmp_path, line, field):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("train_nonimplicit_new.jsonl", "dev_nonimplicit_new.jsonl"):
        shutil.copy(borah / name, folder)
    target = folder / "dev_nonimplicit_new.jsonl"
    lines = target.read_text("utf-8").splitlines()
    lines[4] = line
    target.write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(InputError) as caught:
        build_from_borah(folder, "half", tmp_path / "out.jsonl")
    assert caught.value.line == 5
    assert caught.value.source == str(target)
    assert caught.value.field == field
    assert "dev_nonimplicit_new.jsonl:5" in str(caught.value)


def test_bad_utf8_names_its_line(borah, tmp_path):
    target = tmp_path / "train_nonimplicit_new.jsonl"
    target.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"messages": "\xff"}\n')
    with pytest.raises(InputError) as caught:
        build_from_borah(tmp_path, "half", tmp_path / "out" / "x.jsonl")
    assert caught.value.line == 2


def test_bad_arguments_are_input_errors(borah, tmp_path):
    with pytest.raises(InputError, match="full"):
        build_from_borah(borah, "quarter", tmp_path / "x.jsonl")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="dev_fraction"):
        build_from_borah(borah, "half", tmp_path / "x.jsonl", dev_fraction=1.0)
    with pytest.raises(InputError, match="no"):
        build_from_borah(tmp_path, "half", tmp_path / "x.jsonl")


# -- the layout check ----------------------------------------------------------------------------
def test_validate_counts_rows_and_accepts_multi_turn(tmp_path):
    path = tmp_path / "ok.jsonl"
    multi = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                          {"role": "user", "content": "q2"}, {"role": "assistant", "content": "b"}]}
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(multi) + "\n", "utf-8")
    assert validate_chat_jsonl(path) == 2


@pytest.mark.parametrize(("second", "field"), [
    ("", None),  # a blank line
    (json.dumps({"messages": [*GOOD["messages"], {"role": "user", "content": "u"}]}),
     "messages[3].role"),  # the user has the last word
    (json.dumps({"messages": [GOOD["messages"][0], GOOD["messages"][2]]}), "messages"),  # no user
    (json.dumps({"messages": [GOOD["messages"][1]]}), "messages"),  # no assistant
    (json.dumps({"prompt": "p", "completion": "c"}), None),  # the legacy layout
])
def test_validate_names_the_bad_line(tmp_path, second, field):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([json.dumps(GOOD), second, json.dumps(GOOD)]) + "\n", "utf-8")
    with pytest.raises(InputError) as caught:
        validate_chat_jsonl(path)
    assert caught.value.line == 2
    assert caught.value.field == field
    assert "bad.jsonl:2" in str(caught.value)


# -- a run of ours -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    repo = Path(__file__).resolve().parents[2]
    scenarios = load_scenarios([repo / "scenarios" / "workplace"])
    out = tmp_path_factory.mktemp("finetune") / "run"
    summary = run_experiment(scenarios, RunOptions(model="scripted/stereotyped?rate=0.5",
                                                   replicates=2), out=out)
    assert summary.failed == 0
    return out


def labels_in_log(run_dir: Path) -> dict[tuple, str]:
    """(conversation, agent, turn, phase) → label of every judged conversation decision."""
    return {(e.conversation_id, e.agent, e.turn, e.target.partition(":")[2]): e.label
            for e in RunStore.open(run_dir).iter_events({"judge_result"})
            if e.judge == "assignment_bias" and e.target.partition(":")[2] in PHASES}


def test_run_examples_are_exactly_the_neutral_decisions(run_dir, tmp_path):
    labels = labels_in_log(run_dir)
    neutral = {key for key, label in labels.items() if label == "neutral"}
    stereotyped = {key for key, label in labels.items() if label == "stereotypical"}
    assert neutral and stereotyped  # rate 0.5 plants both kinds
    report = build_from_run(run_dir, tmp_path / "fair.jsonl")
    assert report.train_rows + report.dev_rows == len(neutral)
    assert report.train_rows > 0 and report.dev_rows > 0
    assert sum(report.sources.values()) == len(neutral)
    examples, _ = fair_examples(run_dir)
    keys = {(x.conversation_id, x.agent, x.turn, x.phase) for x in examples}
    assert keys == neutral and not keys & stereotyped
    # Read back from the text: each assistant answer parses to its decision, labelled neutral.
    view = RunView(RunStore.open(run_dir))
    started = {e.conversation_id: e for e in view.events("conversation_started")}
    for example in examples:
        scenario = view.scenario_for(example.scenario_id, started[example.conversation_id].variant)
        answer = example.row["messages"][2]["content"]
        decision, how = parse_assignment(answer, scenario)
        assert (decision, how) == (example.decision, "text")
        assert label_assignment(scenario, decision).label == "neutral"


def test_run_split_is_by_conversation(run_dir, tmp_path):
    report = build_from_run(run_dir, tmp_path / "fair.jsonl", dev_fraction=0.25, seed=5)
    assert not set(report.train_groups) & set(report.dev_groups)
    examples, _ = fair_examples(run_dir)
    per_conversation = Counter(x.conversation_id for x in examples)
    assert set(per_conversation) == set(report.train_groups) | set(report.dev_groups)
    assert report.train_rows == sum(per_conversation[c] for c in report.train_groups)
    assert report.dev_rows == sum(per_conversation[c] for c in report.dev_groups)
    assert len(report.dev_groups) == round(len(per_conversation) * 0.25)
    # The files hold exactly the rows of their conversations, in order.
    assert rows_of(report.train_path) == [x.row for x in examples
                                          if x.conversation_id in report.train_groups]
    assert rows_of(report.dev_path) == [x.row for x in examples
                                        if x.conversation_id in report.dev_groups]
    assert assert_hosted_layout(report.train_path) == report.train_rows
    assert assert_hosted_layout(report.dev_path) == report.dev_rows


def test_run_build_is_byte_identical_with_a_fixed_seed(run_dir, tmp_path):
    one = build_from_run(run_dir, tmp_path / "a.jsonl", seed=11)
    two = build_from_run(run_dir, tmp_path / "b.jsonl", seed=11)
    assert one.train_path.read_bytes() == two.train_path.read_bytes()
    assert one.dev_path.read_bytes() == two.dev_path.read_bytes()
    assert one.dev_groups == two.dev_groups


def test_run_rows_show_what_the_agent_saw_and_said(run_dir):
    examples, _ = fair_examples(run_dir)
    store = RunStore.open(run_dir)
    prompts_seen: dict[tuple, str] = {}
    said: dict[tuple, list[str]] = {}
    for event in store.iter_events({"model_call", "message"}):
        key = (event.conversation_id, event.agent)
        if event.type == "model_call" and event.purpose == "decision":
            prompts_seen[key] = event.messages[0]["content"]
        elif event.type == "message" and event.phase == "discussion":
            said.setdefault(key, []).append(event.content)
    for example in examples:
        user = example.row["messages"][1]["content"]
        answer = example.row["messages"][2]["content"]
        people = user.split("\n\n")[1]
        assert people.startswith("People:\n")
        # Names (of the variant) in the order the agent's own prompt listed them.
        assert people in prompts_seen[(example.conversation_id, example.agent)]
        spoken = said.get((example.conversation_id, example.agent))
        reasons = answer.split("\n\nReasons: ", 1)[1]
        assert reasons == (" ".join(spoken) if spoken else DEFAULT_REASON)


def test_labels_are_computed_when_the_run_was_not_judged(run_dir, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(run_dir, bare)
    events = (bare / EVENTS).read_text("utf-8").splitlines(keepends=True)
    (bare / EVENTS).write_text("".join(e for e in events if '"judge_result"' not in e), "utf-8")
    judged, _ = fair_examples(run_dir)
    computed, notes = fair_examples(bare)
    assert [x.row for x in computed] == [x.row for x in judged]
    assert "computed" in notes[0]


def test_no_interaction_decisions_get_the_default_reason(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    scenarios = load_scenarios([repo / "scenarios" / "workplace"])
    run_experiment(scenarios, RunOptions(model="scripted/stereotyped?rate=0.5",
                                         setting="no-interaction"), out=tmp_path / "run")
    neutral = [key for key, label in labels_in_log(tmp_path / "run").items()
               if label == "neutral"]
    report = build_from_run(tmp_path / "run", tmp_path / "fair.jsonl")
    assert report.train_rows + report.dev_rows == len(neutral) > 0
    examples, _ = fair_examples(tmp_path / "run")
    assert {x.phase for x in examples} == {"single"}
    assert all(x.row["messages"][2]["content"].endswith(f"Reasons: {DEFAULT_REASON}")
               for x in examples)
