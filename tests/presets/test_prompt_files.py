"""Prompt files: a copied and edited prompt file changes what agents read, its hash is recorded,
and a bad file, preset or prompt is refused before anything is written (exit 2, the file and
field named)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.core.store import RunStore
from agentsim.resources import asset_path
from agentsim.scenario.discussion_settings import DiscussionProtocol

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "workplace" / \
    "office-product-launch.yaml"
SHIPPED = asset_path("agentsim.scenario", "prompts", "discussion.yaml")


def run(tmp_path: Path, name: str, *extra: str) -> tuple[int, Path]:
    out = tmp_path / name
    status = main(["run", str(SCENARIO), "--model", "scripted/stereotyped", "--out", str(out),
                   "--no-cache", "--rounds", "1", *extra])
    return status, out


def discussion_prompts(out: Path) -> list[str]:
    return [e.messages[-1]["content"] for e in RunStore.open(out).iter_events({"model_call"})
            if e.purpose == "discussion"]


def test_an_edited_copy_of_the_shipped_file_changes_the_prompts_and_the_hash(tmp_path):
    edited = tmp_path / "mine.yaml"
    text = SHIPPED.read_text()
    assert "Discussion round {round} of {rounds}" in text
    edited.write_text(text.replace("Discussion round {round}", "Debate round {round}"))
    assert run(tmp_path, "default")[0] == 0
    status, out = run(tmp_path, "edited", "--prompts", str(edited))
    assert status == 0
    assert discussion_prompts(out) and all("Debate round 1 of 1" in p
                                           for p in discussion_prompts(out))
    assert not any("Debate" in p for p in discussion_prompts(tmp_path / "default"))
    hashes = [json.loads((tmp_path / name / "manifest.json").read_text())["scenarios"]
              ["office-product-launch"]["prompts_sha256"] for name in ("default", "edited")]
    assert hashes[0] == DiscussionProtocol().prompt_set().sha256 != hashes[1]


@pytest.mark.parametrize(("content", "message"), [
    ("protocol: discussion\nprompts:\n  closing: 'Bye'\n", "prompts.closing: no such prompt"),
    ("protocol: discussion\nprompts:\n  discussion_turn: 'Say {something}'\n",
     "unknown placeholder {something}"),
    ("protocol: discussion\nprompts:\n  discussion_turn: 'Say {name!r}'\n", "a conversion"),
    ("protocol: clinical\nprompts:\n  x: 'y'\n", "these are prompts of protocol 'clinical'"),
    ("protocol: discussion\nprompts: {}\n", "'prompts' must map prompt names to texts"),
    ("protocol: discussion\nwording: {}\nprompts:\n  probe: 'x'\n", "unknown key"),
])
def test_a_bad_prompt_file_is_refused_naming_file_and_field(tmp_path, capsys, content,
                                                            message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    status, out = run(tmp_path, "run", "--prompts", str(bad))
    err = capsys.readouterr().err
    assert status == 2 and message in err and str(bad) in err and "Traceback" not in err
    assert not out.exists()  # refused before the run folder was made


def test_an_unknown_preset_is_refused_with_the_known_ones(tmp_path, capsys):
    status, out = run(tmp_path, "run", "--preset", "borah2025")
    err = capsys.readouterr().err
    assert status == 2 and "unknown preset 'borah2025'" in err and "borah2024" in err
    assert not out.exists()


def test_a_scenario_file_names_its_preset_and_its_own_settings_win(tmp_path, capsys):
    text = SCENARIO.read_text().replace("protocol:\n", "protocol:\n  preset: borah2024\n")
    text = text.replace("speaking_order: shuffled", "speaking_order: shuffled-each-round")
    mine = tmp_path / "mine.yaml"
    mine.write_text(text)
    assert main(["validate", str(mine)]) == 0
    from agentsim.scenario import load_scenario

    settings = load_scenario(mine).protocol
    assert settings.preset == "borah2024" and settings.transcript == "list"  # the preset's
    assert settings.speaking_order == "shuffled-each-round"  # the file's own, over the preset
    assert settings.prompt_set().texts["system"].startswith("Assume you are {label}.")
    mine.write_text(SCENARIO.read_text().replace("protocol:\n", "protocol:\n  preset: nope\n"))
    capsys.readouterr()
    assert main(["validate", str(mine)]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
