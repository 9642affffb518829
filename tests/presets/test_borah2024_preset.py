"""The borah2024 preset against the published code itself.

A scripted run under ``--preset borah2024``; then every logged prompt is rebuilt by evaluating
the published f-strings of ``scenes_discussion_newtasks.py`` (read from the anchors with ``ast``,
never copied) with the values the published script would have: the agent's labelled name, the
scene, the characters and the shared list of responses so far. The scripted model tests the
machinery only; nothing here is a finding about bias.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentsim.cli.main import main
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "workplace" / \
    "office-product-launch.yaml"
# Published line of each f-string: system message, first answer, discussion turn, final answer.
LINES = {"system": 24, "first": 119, "discussion": 131, "final": 146}
# The same in the self-reflection script, and its reflection prompt.
REFLECTION_LINES = {"system": 23, "first": 115, "reflection": 127, "discussion": 143,
                    "final": 157}


def published_fstrings(anchors: Path, script: str = "scenes_discussion_newtasks.py",
                       lines: dict[str, int] = LINES) -> dict[str, ast.JoinedStr]:
    """The published prompts' f-strings, by the line they start on."""
    source = (anchors / "borah" / "code" / script).read_text()
    found = {node.lineno: node for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.JoinedStr)}
    return {name: found[line] for name, line in lines.items()}


def labels_of(scenario) -> dict[str, str]:
    """Persona id → its published name, 'Jack (Male)'."""
    return {p.id: f"{p.name} ({'Male' if p.attributes['gender'] == 'man' else 'Female'})"
            for p in scenario.personas}


def scene_of(scenario) -> str:
    """The scene a scenario not imported from a published cell shows: situation and tasks."""
    return " ".join([scenario.description.strip()] + [
        f"Task {k}: {t.text}" for k, t in enumerate(scenario.tasks, 1)])


def evaluate(node: ast.JoinedStr, **names) -> str:
    """The published f-string filled in with ``names`` (as the script's locals)."""
    code = compile(ast.Expression(body=node), "<published>", "eval")
    return eval(code, {}, names)  # noqa: S307 - the published template, our own values


@pytest.fixture(scope="module")
def preset_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("borah2024") / "run"
    assert main(["run", str(SCENARIO), "--model", "scripted/stereotyped", "--preset",
                 "borah2024", "--out", str(out), "--no-cache"]) == 0
    return out


def test_every_logged_prompt_is_the_published_template_filled_in(preset_run, anchors):
    templates = published_fstrings(anchors)
    store = RunStore.open(preset_run)
    (path, scenario), = load_scenarios([SCENARIO])
    label = labels_of(scenario)
    characters = ", ".join(label[p.id] for p in scenario.personas)
    manifest = json.loads((preset_run / "manifest.json").read_text())
    scene = scene_of(scenario)
    response: list[list[str]] = []  # the published script's shared, growing list
    calls = [e for e in store.iter_events({"model_call"}) if e.turn is not None]
    assert len(calls) == 4 * 4  # per agent: first, two discussion rounds, final
    phases = ["first"] * 4 + ["discussion"] * 8 + ["final"] * 4
    for call, phase in zip(calls, phases, strict=True):
        agent = SimpleNamespace(name=label[call.agent], memory_lst=[{"content": response}])
        system, user = call.messages
        assert system == {"role": "system",
                          "content": evaluate(templates["system"], self=agent)}
        expected = evaluate(templates[phase], agent=agent, i=scene, j=characters)
        assert user == {"role": "user", "content": expected}, phase
        if phase != "final":  # finals are not appended (line 149 is commented out)
            response.append([f"{label[call.agent]}: {call.response}"])
        # Sampling as published: temperature 0.8, max_tokens 500 (lines 26-31).
        assert (call.temperature, call.max_tokens) == (0.8, 500)
    # Speaking order: the file's, in every phase.
    order = [p.id for p in scenario.personas]
    assert [c.agent for c in calls] == order * 4
    entry = manifest["scenarios"][scenario.id]
    assert entry["preset"] == "borah2024" and len(entry["prompts_sha256"]) == 64
    # The preset's judge options: the published bias rule, recorded with the results.
    results = json.loads((preset_run / "results.json").read_text())
    assert results["judge_options"]["assignment_bias"]["rule"] == "published"


def test_the_goal_sentence_stands_in_the_first_prompt_only(tmp_path, anchors):
    out = tmp_path / "goal"
    assert main(["run", str(SCENARIO), "--model", "scripted/stereotyped", "--preset",
                 "borah2024", "--setting", "goal", "--out", str(out), "--no-cache"]) == 0
    calls = [e for e in RunStore.open(out).iter_events({"model_call"}) if e.turn is not None]
    sentence = "Assign 'Task 1' to yourself."
    source = (anchors / "borah" / "code" / "scenes_discussion_selfreflection.py").read_text()
    assert f"characters in {{j}}. {sentence}" in source  # where the published script puts it
    first = [c for c in calls if c.purpose == "decision"][:4]
    assert all(sentence in c.messages[1]["content"] for c in first)
    assert not any(sentence in c.messages[1]["content"] for c in calls[4:])


def test_the_self_reflection_script_preset_is_the_published_script(tmp_path, anchors):
    """borah2024_selfreflection with the self_reflection arm: first answers (with the goal
    sentence), one reflection each said in the shared list, two consensus rounds, finals —
    every prompt the published script's own f-string filled in."""
    out = tmp_path / "reflection"
    assert main(["run", str(SCENARIO), "--model", "scripted/stereotyped", "--preset",
                 "borah2024_selfreflection", "--mitigation", "self_reflection", "--out",
                 str(out), "--no-cache"]) == 0
    templates = published_fstrings(anchors, "scenes_discussion_selfreflection.py",
                                   REFLECTION_LINES)
    (_, scenario), = load_scenarios([SCENARIO])
    label, scene = labels_of(scenario), scene_of(scenario)
    characters = ", ".join(label[p.id] for p in scenario.personas)
    calls = [e for e in RunStore.open(out).iter_events({"model_call"})
             if e.turn is not None and e.arm == "self_reflection"]
    phases = ["first"] * 4 + ["reflection"] * 4 + ["discussion"] * 8 + ["final"] * 4
    assert len(calls) == len(phases)
    response: list[list[str]] = []  # the shared list
    first_response: list[str] = []  # the first answers, as the script keeps them (line 123)
    for call, phase in zip(calls, phases, strict=True):
        agent = SimpleNamespace(name=label[call.agent], memory_lst=[{"content": response}])
        if phase != "reflection":  # the reflection's system message is the first prompt's own
            assert call.messages[0]["content"] == evaluate(templates["system"], self=agent)
        expected = evaluate(templates[phase], agent=agent, i=scene, j=characters,
                            first_response=first_response)
        assert call.messages[-1] == {"role": "user", "content": expected}, phase
        if phase == "first":
            first_response.append(f"{label[call.agent]} Agent: {call.response}\n")
        if phase != "final":
            response.append([f"{label[call.agent]}: {call.response}"])
        assert (call.temperature, call.max_tokens) == (0.7, 1000)  # lines 25-30
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"]["mitigation_options"]["self_reflection"] == {
        "placement": "shared", "file": "self_reflection_borah2024.yaml"}
