"""Custom setups read every text from their prompt file: a copy of the shipped file with every
prompt marked changes every text the setups' agents, moderator and stop judge read, and a
setup scenario's own ``protocol.prompts`` does the same for one scenario."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from agentsim.cli.main import main
from agentsim.core.store import RunStore
from agentsim.resources import asset_path
from agentsim.scenario.setup_prompts import SETUP_PROMPTS

SETUPS = Path(__file__).resolve().parents[2] / "scenarios" / "setups"
SHIPPED = asset_path("agentsim.scenario", "prompts", "setup.yaml")
TEXT_FORMAT = {"answer_format_text", "answer_format_line"}


def without_questions(tmp_path: Path) -> Path:
    """The shipped setups with their decision points' own questions removed (so the prompt
    file's question of each type is asked) and every answer announced."""
    folder = tmp_path / "setups"
    folder.mkdir()
    for path in sorted(SETUPS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for point in data["protocol"]["decisions"]:
            point.pop("question", None)
            point["announce"] = True
        (folder / path.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def marked_file(tmp_path: Path) -> Path:
    """The shipped prompt file with ``[name]`` in front of every prompt."""
    data = yaml.safe_load(SHIPPED.read_text())
    data["prompts"] = {name: f"[{name}]{text}" for name, text in data["prompts"].items()}
    path = tmp_path / "marked.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def logged_texts(out: Path) -> str:
    """Every message of every model call and every message said, as one text."""
    store = RunStore.open(out)
    parts = [m["content"] for e in store.iter_events({"model_call"}) for m in e.messages]
    parts += [e.content for e in store.iter_events({"message"})]
    return "\n".join(parts)


def run(scenarios: Path, out: Path, *extra: str) -> int:
    return main(["run", str(scenarios), "--model", "scripted/stereotyped", "--out", str(out),
                 "--no-cache", "--rounds", "2", *extra])


def test_every_setup_prompt_comes_from_the_prompt_file(tmp_path):
    scenarios, prompts = without_questions(tmp_path), marked_file(tmp_path)
    assert set(yaml.safe_load(SHIPPED.read_text())["prompts"]) == set(SETUP_PROMPTS)
    texts = ""
    for mode, extra in (("json", ()), ("text", ("--structured", "text"))):
        assert run(scenarios, tmp_path / mode, "--prompts", str(prompts), *extra) == 0
        texts += logged_texts(tmp_path / mode)
    seen = set(re.findall(r"\[([a-z_]+)\]", texts))
    assert seen == set(SETUP_PROMPTS), sorted(set(SETUP_PROMPTS) - seen)

    assert run(scenarios, tmp_path / "shipped") == 0
    shipped = logged_texts(tmp_path / "shipped")
    assert not re.search(r"\[(%s)\]" % "|".join(SETUP_PROMPTS), shipped)
    # The shipped texts are what the marked run read, markers aside.
    assert "It is your turn to speak (round 1 of 2). Say one or two sentences." in shipped
    assert "[turn]It is your turn to speak (round 1 of 2). Say one or two sentences." in texts


def test_a_setup_scenario_may_carry_its_own_prompts(tmp_path):
    data = yaml.safe_load((SETUPS / "hiring-committee.yaml").read_text())
    data["protocol"]["prompts"] = {"turn": "Round {round}/{rounds}: speak, {name}."}
    path = tmp_path / "hiring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert run(path, tmp_path / "own") == 0
    turns = [e.messages[-1]["content"] for e in RunStore.open(tmp_path / "own")
             .iter_events({"model_call"}) if e.purpose == "setup_turn"]
    assert turns and all(re.search(r"Round [12]/2: speak, [A-Z][\w ]+\.$", t) for t in turns)


def test_a_setup_prompt_with_an_unknown_placeholder_is_refused(tmp_path, capsys):
    data = yaml.safe_load((SETUPS / "hiring-committee.yaml").read_text())
    data["protocol"]["prompts"] = {"turn": "Speak about {topic}."}
    path = tmp_path / "hiring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert run(path, tmp_path / "bad") == 2
    err = capsys.readouterr().err
    assert "hiring.yaml" in err and "prompts.turn" in err and "{topic}" in err
    assert not (tmp_path / "bad" / "events.jsonl").exists()
