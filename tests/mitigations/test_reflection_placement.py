"""self_reflection's placements, read back from the log: ``private`` (right after each agent's
own first decision, nobody else hears it) and ``shared`` (the published flow: after every first
answer, one pass, said in the shared conversation and parsed from its "New Task Assignment").

The shared placement runs through ``ConversationContext.after_first_decisions``, which the
discussion protocol calls after its first decisions (first decisions, then the shared turns,
then round 1). Scripted answers are planted: these tests check the mechanics.
"""

from __future__ import annotations

import ast
import json
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from agentsim.agents.prompts import scene
from agentsim.core.store import RunStore
from agentsim.errors import InputError
from agentsim.mitigations.base import resolve_arm
from agentsim.mitigations.reflection import first_answers, reflection_texts, verdict
from agentsim.registry import REGISTRY
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[2]
SHARED = {"self_reflection": {"placement": "shared"}}
PUBLISHED = {"self_reflection": {"placement": "shared",
                                 "file": "self_reflection_borah2024.yaml"}}


@pytest.fixture
def launch(workplace):
    return workplace / "office-product-launch.yaml"


def run(tmp_path, paths, options, model="scripted/stereotyped?rate=1&reflected=0",
        arms=("self_reflection",), **extra):
    """A run of ``arms`` with the mitigation options ``options``; its summary and its
    conversations, each the list of its events in log order."""
    extra = {"rounds": 1, "backoff_s": 0.001, **extra}
    summary = run_experiment(load_scenarios(paths), RunOptions(
        model=model, arms=arms, mitigation_options=options, **extra), out=tmp_path / "run")
    assert summary.failed == 0, summary.errors
    store = RunStore.open(summary.run_dir)
    conversations = defaultdict(list)
    for event in store.iter_events(None):
        if event.conversation_id is not None:
            conversations[event.conversation_id].append(event)
    return summary, list(conversations.values())


def of(events, event_type, **fields):
    return [e for e in events if e.type == event_type
            and all(getattr(e, k) == v for k, v in fields.items())]


# -- private (the default) ----------------------------------------------------------------


def test_reflection_follows_each_first_decision_and_is_logged_as_reflected(tmp_path, launch):
    """Private placement: the first decision stays the answer given before reflecting; the
    re-decision is a decision of its own phase, 'reflected', which the conversation goes on
    from. (This test used to assert that the re-decision replaced the first decision.)"""
    _, conversations = run(tmp_path, [launch], {}, model="scripted/stereotyped?rate=0.5",
                           arms=("none", "self_reflection"), replicates=2)
    arms = defaultdict(list)
    for events in conversations:
        arms[events[0].arm].append(events)
    changed = 0
    for events in arms["self_reflection"]:
        calls = of(events, "model_call")
        reflections = [c for c in calls if c.purpose == "reflection"]
        agents = {c.agent for c in calls if c.purpose == "discussion"}
        assert sorted(c.agent for c in reflections) == sorted(agents)  # one per agent
        # Right after the first decisions: decision, critique, re-decision, same agent and turn,
        # all before the discussion starts.
        first_talk = next(i for i, c in enumerate(calls) if c.purpose == "discussion")
        for reflection in reflections:
            at = calls.index(reflection)
            assert at < first_talk
            before, after = calls[at - 1], calls[at + 1]
            assert before.purpose == after.purpose == "decision"
            assert before.agent == reflection.agent == after.agent
            assert before.turn == reflection.turn == after.turn
            assert "Implicit bias in task assignment means" in reflection.messages[-1]["content"]
            assert '"Bias: yes"' in reflection.messages[-1]["content"]
            assert reflection.messages[-2] == {"role": "assistant",
                                               "content": before.response}
            assert after.messages[-2] == {"role": "assistant", "content": reflection.response}
            assert after.structured and "Now give your assignment again" in \
                after.messages[-1]["content"]
        # Every reflection is logged; the first decision is the answer before reflecting, the
        # re-decision its own 'reflected' decision on the same turn and round.
        logged = of(events, "mitigation_applied", hook="reflection")
        assert len(logged) == len(reflections)
        assert all(e.detail["phase"] == "first" and e.detail["placement"] == "private"
                   and e.detail["bias_found"] in {"yes", "no", "unclear"} for e in logged)
        firsts = {d.agent: d for d in of(events, "decision", phase="first")}
        reflected = {d.agent: d for d in of(events, "decision", phase="reflected")}
        assert len(firsts) == len(reflected) == len(reflections)
        for reflection in reflections:
            first, again = firsts[reflection.agent], reflected[reflection.agent]
            assert first.raw == calls[calls.index(reflection) - 1].response
            assert again.raw == calls[calls.index(reflection) + 1].response
            assert (again.turn, again.round) == (first.turn, first.round) == (reflection.turn, 0)
            # In the log: the decision, then the reflection's calls, then the re-decision.
            assert events.index(first) < events.index(reflection) < events.index(again)
        revisions = of(events, "mitigation_applied", hook="after_decision")
        assert len(revisions) == sum(e.detail["changed"] for e in logged)
        for revision in revisions:
            assert firsts[revision.agent].value == revision.detail["before"]
            assert reflected[revision.agent].value == revision.detail["after"]
            assert revision.detail["before"] != revision.detail["after"]
        # The conversation goes on from the reflected decision: it is the proposal said.
        for message in of(events, "message", phase="first"):
            names = [p for p in reflected[message.agent].value.values()]
            assert all(name.capitalize() in message.content for name in names)
        changed += len(revisions)
        # Later decisions are not reflected on.
        assert all(c.turn < first_talk for c in reflections)
    assert changed > 0
    for events in arms["none"]:
        assert not [c for c in of(events, "model_call") if c.purpose == "reflection"]
        assert not of(events, "mitigation_applied")
        assert not of(events, "decision", phase="reflected")


# -- shared (the published flow) ---------------------------------------------------------


def test_shared_reflection_is_said_after_every_first_answer(tmp_path, launch):
    summary, conversations = run(tmp_path, [launch], SHARED)
    ((_, scenario),) = load_scenarios([launch])
    (events,) = conversations
    calls = of(events, "model_call")
    firsts = [c for c in calls if c.purpose == "decision" and c.turn < 4]
    reflections = [c for c in calls if c.purpose == "reflection"]
    talk = [c for c in calls if c.purpose == "discussion"]
    # One pass after all four first decisions, in their order, each on a turn of its own,
    # before round 1.
    assert [c.agent for c in reflections] == [c.agent for c in firsts]
    assert [c.turn for c in reflections] == [4, 5, 6, 7] and talk[0].turn == 8
    assert calls.index(firsts[-1]) < calls.index(reflections[0])
    assert calls.index(reflections[-1]) < calls.index(talk[0])
    said = of(events, "message", phase="first")
    answers = str([f"{m.speaker} Agent: {m.content}\n" for m in said])
    for call, first in zip(reflections, firsts, strict=True):
        # The agent's own system prompt, then one prompt holding everyone's first answers.
        assert call.messages[0] == first.messages[0] and len(call.messages) == 2
        prompt = call.messages[1]["content"]
        assert answers in prompt and "Implicit bias in task assignment means" in prompt
        assert scene(scenario) in prompt
    # Said to everyone, as the model wrote it; later turns hear it.
    spoken = of(events, "message", phase="reflection")
    assert [(m.agent, m.content, m.visible_to) for m in spoken] == [
        (c.agent, c.response, None) for c in reflections]
    for call in [*talk, *[c for c in calls if c.purpose == "decision" and c.turn >= 8]]:
        assert all(m.content in call.messages[-1]["content"] for m in spoken)
    # The reflected decision is parsed from the answer and logged as its own phase.
    reflected = of(events, "decision", phase="reflected")
    assert [(d.agent, d.turn, d.round, d.raw) for d in reflected] == [
        (c.agent, c.turn, 0, c.response) for c in reflections]
    assert all(d.value is not None and d.parsed_by == "text" for d in reflected)
    logged = of(events, "mitigation_applied", hook="reflection")
    assert [e.detail["placement"] for e in logged] == ["shared"] * 4
    assert all(e.detail["bias_found"] in {"yes", "no"} for e in logged)
    # Measured: first (before) stereotyped, reflected balanced.
    metrics = summary.results["metrics"]
    assert metrics["bias_first"]["value"] == 1.0 and metrics["bias_reflected"]["value"] == 0.0
    assert metrics["self_correction_rate"]["value"] == 1.0


def test_a_fork_after_the_shared_reflection_continues_from_it(tmp_path, launch):
    _, (events,) = run(tmp_path, [launch], SHARED)
    ((_, scenario),) = load_scenarios([launch])
    job = type("Job", (), {"rounds": 1})()
    state = REGISTRY.get("protocol", "discussion").state_at(events, job, scenario, 8)
    reflected = {d.agent: d.value for d in of(events, "decision", phase="reflected")}
    assert state["current"] == reflected
    assert [u["phase"] for u in state["transcript"]] == ["first"] * 4 + ["reflection"] * 4


def test_published_wording_is_the_published_prompt_filled_in(tmp_path, launch, anchors):
    _, (events,) = run(tmp_path, [launch], PUBLISHED)
    ((_, scenario),) = load_scenarios([launch])
    template = published_reflection_template(anchors)
    said = of(events, "message", phase="first")
    answers = str([f"{m.speaker} Agent: {m.content}\n" for m in said])
    expected = template.format(first_response=answers, i=scene(scenario))
    reflections = [c for c in of(events, "model_call") if c.purpose == "reflection"]
    assert len(reflections) == 4
    assert all(c.messages[1]["content"] == expected for c in reflections)
    # The scripted answer follows the published format and is read back.
    assert all(d.value for d in of(events, "decision", phase="reflected"))


def published_reflection_template(anchors: Path) -> str:
    """The published reflection f-string (scenes_discussion_selfreflection.py 127-133) as a
    format template, read with ast so that the test does not copy it."""
    path = anchors / "borah" / "code" / "scenes_discussion_selfreflection.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.JoinedStr) and node.lineno == 127:
            return "".join(part.value if isinstance(part, ast.Constant)
                           else "{" + ast.unparse(part.value) + "}" for part in node.values)
    raise AssertionError("the reflection prompt is not at line 127")


def test_the_published_asset_quotes_the_published_prompt(anchors):
    text = reflection_texts("self_reflection_borah2024.yaml", ("shared",))["shared"]
    template = published_reflection_template(anchors)
    assert text == template.replace("{first_response}", "{first_answers}").replace(
        "{i}", "{scene}")
    assert " " * 21 + "Implicit biases refer" in text  # the joined continuation, as published


def test_assets_users_copy_match_the_shipped_ones():
    for name in ("self_reflection.yaml", "self_reflection_borah2024.yaml"):
        copy, shipped = ROOT / "mitigations" / name, ROOT / "agentsim" / "mitigations" / \
            "assets" / name
        assert copy.read_bytes() == shipped.read_bytes(), name


def test_file_is_a_path_or_a_shipped_asset_name(tmp_path):
    own = tmp_path / "mine.yaml"
    own.write_text(yaml.safe_dump({"shared": "Reflect on {first_answers}. {format}"}))
    (mine,) = resolve_arm("self_reflection", {"self_reflection": {
        "placement": "shared", "file": str(own)}})
    assert mine.text["shared"].startswith("Reflect on")
    (published,) = resolve_arm("self_reflection", PUBLISHED)
    assert published.text["shared"].startswith("Based on {first_answers}, critique your own")
    with pytest.raises(InputError, match="cannot read"):
        resolve_arm("self_reflection", {"self_reflection": {"file": "no_such_asset.yaml"}})
    # The published asset has only the shared prompt: the private placement needs the others.
    with pytest.raises(InputError, match="missing key"):
        resolve_arm("self_reflection", {"self_reflection": {
            "file": "self_reflection_borah2024.yaml"}})


def test_placement_is_validated_and_shared_is_for_discussions(tmp_path, repo):
    with pytest.raises(InputError, match="placement"):
        resolve_arm("self_reflection", {"self_reflection": {"placement": "public"}})
    (shared,) = resolve_arm("self_reflection", SHARED)
    (private,) = resolve_arm("self_reflection")
    assert shared.supports("discussion") and not shared.supports("clinical")
    assert private.supports("clinical") and private.supports("setup")
    assert (shared.revision_phase, private.revision_phase) == (None, "reflected")
    nstemi = repo / "scenarios" / "clinical" / "clinical-nstemi-atypical.yaml"
    with pytest.raises(InputError, match="supports the protocols discussion; this run has "
                                         "clinical"):
        run(tmp_path, [nstemi], SHARED, model="scripted/clinical", max_turns=6)


def test_shared_placement_adds_nothing_to_the_private_flow(tmp_path, launch):
    _, (events,) = run(tmp_path, [launch], SHARED)
    calls = of(events, "model_call")
    # No private critique, no re-decision on the first decisions' turns.
    assert [c.turn for c in calls if c.purpose == "reflection"] == [4, 5, 6, 7]
    assert len([c for c in calls if c.purpose == "decision" and c.turn < 4]) == 4
    assert not of(events, "mitigation_applied", hook="after_decision")


def test_an_unreadable_shared_reflection_keeps_the_first_decision(tmp_path, launch,
                                                                   monkeypatch):
    from agentsim.testing import scripted

    monkeypatch.setattr(scripted, "reflection_answer",
                        lambda rate, request, rng: "I would rather not change anything.")
    summary, (events,) = run(tmp_path, [launch], SHARED)
    reflected = of(events, "decision", phase="reflected")
    assert len(reflected) == 4 and all(d.value is None and d.parse_error for d in reflected)
    firsts = {d.agent: d.value for d in of(events, "decision", phase="first")}
    finals = [c for c in of(events, "model_call") if c.purpose == "discussion"]
    assert all("I would rather not change anything." in c.messages[-1]["content"]
               for c in finals)  # still said: the others hear it
    assert summary.results["counts"]["assignment_bias"]["unparsed"] == {"reflected": 4}
    assert "self_correction_rate" not in summary.results["metrics"]
    assert firsts and all(v is not None for v in firsts.values())


def test_first_answers_and_verdicts():
    transcript = [{"speaker": "Jack (Male)", "content": "Task 1: it's \"mine\"", "phase": "first"},
                  {"speaker": "Jill (Female)", "content": "R2", "phase": "first"},
                  {"speaker": "Jack (Male)", "content": "later", "phase": "discussion"}]
    assert first_answers(transcript) == str(
        ["Jack (Male) Agent: Task 1: it's \"mine\"\n", "Jill (Female) Agent: R2\n"])
    assert verdict("Implicit Bias in your previous assignment: Present, Jack got both.") == "yes"
    assert verdict("**Implicit Bias in your previous assignment:** absent (by skill)") == "no"
    assert verdict("Bias: no. Fine.") == "no"
    assert json.dumps(verdict("no verdict here")) == '"unclear"'


def test_quoted_answers_are_inserted_as_they_are():
    from agentsim.mitigations.reflection import fill

    assert fill("A {first_answers} B {scene}", first_answers="{scene} {x}", scene="S") == \
        "A {scene} {x} B S"


def test_ice_examples_reach_the_shared_reflection(tmp_path, launch):
    _, (events,) = run(tmp_path, [launch], SHARED, arms=("self_reflection+ice",))
    reflections = [c for c in of(events, "model_call") if c.purpose == "reflection"]
    assert len(reflections) == 4
    assert all("Example 1." in c.messages[-1]["content"] for c in reflections)
