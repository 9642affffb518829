"""The built-in mitigations self_reflection (+ice), fair_moderator and anonymise, read back from
the log: what each adds to the prompts and turns, and when.

The scripted model's answers are planted, so these tests check the mechanics (which calls are
made, in what order, what they contain, what is logged and used), never whether a mitigation
reduces bias.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from types import SimpleNamespace

import pytest
import yaml

from agentsim.errors import InputError
from agentsim.mitigations.anonymise import Anonymise
from agentsim.mitigations.base import resolve_arm
from agentsim.mitigations.moderator import parse_check
from agentsim.mitigations.reflection import verdict
from agentsim.models.base import ModelReply
from agentsim.models.client import ModelClient
from agentsim.orchestrator.discussion import run_discussion
from agentsim.core.jobs import ConversationJob
from agentsim.orchestrator.runtime import ConversationContext
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios

STEREOTYPED = "scripted/stereotyped?rate=0.5"
DEFINITION = "Implicit bias in task assignment means"
DEBIAS = "Treat everyone in this group as an individual."
NSTEMI = "clinical-nstemi-atypical"


# --- helpers --------------------------------------------------------------------------------------


def run(tmp_path, paths, arms, model=STEREOTYPED, **options):
    options.setdefault("backoff_s", 0.001)
    summary = run_experiment(load_scenarios(paths), RunOptions(model=model, arms=arms, **options),
                             out=tmp_path / "run")
    return summary, by_arm(RunStore.open(summary.run_dir))


def by_arm(store) -> dict[str, list[list]]:
    """arm → its conversations, each the list of its events in log order."""
    conversations: dict[str, list] = defaultdict(list)
    for event in store.iter_events(None):
        if event.conversation_id is not None:
            conversations[event.conversation_id].append(event)
    arms: dict[str, list] = defaultdict(list)
    for events in conversations.values():
        arms[events[0].arm].append(events)
    return arms


def of(events, event_type, **fields):
    return [e for e in events if e.type == event_type
            and all(getattr(e, k) == v for k, v in fields.items())]


def system(call) -> str:
    return call.messages[0]["content"]


def everything(call) -> str:
    return "\n".join(m["content"] for m in call.messages)


@pytest.fixture
def launch(workplace):
    return workplace / "office-product-launch.yaml"


@pytest.fixture
def nstemi(repo):
    return repo / "scenarios" / "clinical" / f"{NSTEMI}.yaml"


# --- self_reflection ----------------------------------------------------------------------------
# The discussion's reflection (private and shared placements, the first and reflected decisions)
# is tested in test_reflection_placement.py.


def test_no_interaction_reflects_before_the_single_answer(tmp_path, launch):
    summary, arms = run(tmp_path, [launch], ("self_reflection",), setting="no-interaction")
    (events,) = arms["self_reflection"]
    (call,) = of(events, "model_call")  # no extra calls: the reflection is in the prompt
    assert call.agent == "single" and "Before you give your answer" in system(call)
    assert DEFINITION in system(call)
    assert [e.hook for e in of(events, "mitigation_applied")] == ["system_prompt"]
    assert len(of(events, "decision", phase="single")) == 1


def test_ice_puts_the_examples_in_the_reflection_prompt(tmp_path, launch):
    summary, arms = run(tmp_path, [launch], ("self_reflection", "self_reflection+ice"), rounds=1)
    example = "Tom fixes the projector in the main hall"
    for arm, expected in (("self_reflection", False), ("self_reflection+ice", True)):
        (events,) = arms[arm]
        reflections = [c for c in of(events, "model_call") if c.purpose == "reflection"]
        assert reflections
        for call in reflections:
            prompt = call.messages[-1]["content"]
            assert (example in prompt) is expected
            assert ("Example 1." in prompt and "Bias: no." in prompt) is expected
    # In the no-interaction setting the examples go into the lone assigner's prompt.
    _, arms = run(tmp_path / "single", [launch], ("self_reflection+ice",),
                  setting="no-interaction")
    assert example in system(of(arms["self_reflection+ice"][0], "model_call")[0])


def test_ice_alone_fails_loudly_when_the_run_is_planned(tmp_path, launch):
    """An arm ice cannot serve in is refused before anything runs or is written."""
    with pytest.raises(InputError, match=r"self_reflection\+ice"):
        run(tmp_path, [launch], ("ice",), rounds=1)
    assert not any(tmp_path.rglob("events.jsonl"))


def test_shipped_examples_and_bad_example_files(tmp_path, repo):
    data = yaml.safe_load((repo / "mitigations" / "ice" / "examples.yaml").read_text())
    verdicts = [str(e["bias"]).lower() in ("true", "yes") for e in data["examples"]]
    assert sum(verdicts) >= 3 and len(verdicts) - sum(verdicts) >= 3
    one_sided = tmp_path / "one_sided.yaml"
    one_sided.write_text(yaml.safe_dump({"examples": [
        {"situation": "s", "assignment": "a", "bias": "yes", "reason": "r"}]}))
    with pytest.raises(InputError, match="bias: no"):
        resolve_arm("self_reflection+ice", {"ice": {"file": str(one_sided)}})
    missing = tmp_path / "reflection.yaml"
    missing.write_text("definition: only this\n")
    with pytest.raises(InputError, match="missing key"):
        resolve_arm("self_reflection", {"self_reflection": {"file": str(missing)}})


def test_verdict_reading():
    assert verdict("Bias: yes. I gave t1 to Daniel because...") == "yes"
    assert verdict("**Bias: No** — the split follows stated skills.") == "no"
    assert verdict("I think Daniel should do t1.") == "unclear"


def test_debias_prompt_and_self_reflection_both_apply(tmp_path, launch):
    summary, arms = run(tmp_path, [launch], ("debias_prompt+self_reflection",), rounds=1)
    (events,) = arms["debias_prompt+self_reflection"]
    calls = of(events, "model_call")
    assert all(DEBIAS in system(c) for c in calls)
    reflections = [c for c in calls if c.purpose == "reflection"]
    assert len(reflections) == 4
    assert {e.mitigation for e in of(events, "mitigation_applied")} == {
        "debias_prompt", "self_reflection"}


def test_doctor_reflects_before_its_diagnosis_is_checked(tmp_path, nstemi):
    summary, arms = run(tmp_path, [nstemi], ("none", "self_reflection"),
                        model="scripted/clinical?correct=0.5", max_turns=6, replicates=3)
    assert summary.failed == 0
    changed = 0
    for events in arms["self_reflection"]:
        calls = of(events, "model_call")
        (reflection,) = [c for c in calls if c.purpose == "reflection"]
        at = calls.index(reflection)
        diagnosing, revised, moderator = calls[at - 1], calls[at + 1], calls[at + 2]
        assert diagnosing.purpose == revised.purpose == "doctor" == reflection.agent
        assert '"diagnose"' in diagnosing.response and moderator.purpose == "moderator"
        assert diagnosing.turn == reflection.turn == revised.turn
        assert reflection.messages[-2]["content"] == diagnosing.response
        assert "Implicit bias in diagnosis" in reflection.messages[-1]["content"]
        # The diagnosis recorded, spoken and checked is the revised one.
        final = json.loads(revised.response)["text"]
        (action,) = [d for d in of(events, "decision", kind="doctor_action")
                     if d.value["action"] == "diagnose"]
        (check,) = of(events, "decision", kind="diagnosis_check")
        assert action.value["text"] == check.value["diagnosis"] == final
        assert f"Doctor's diagnosis: {final}" in everything(moderator)
        for revision in of(events, "mitigation_applied", hook="after_decision"):
            assert revision.detail == {"phase": "diagnosis", "after": final,
                                       "before": json.loads(diagnosing.response)["text"]}
            changed += 1
        (logged,) = of(events, "mitigation_applied", hook="reflection")
        assert logged.agent == "doctor" and logged.detail["phase"] == "diagnosis"
    assert changed > 0
    # The reflection costs no turn of the doctor's budget.
    turns = {arm: [len(of(e, "decision", kind="doctor_action")) for e in arms[arm]]
             for arm in arms}
    assert turns["none"] == turns["self_reflection"]
    assert not [c for e in arms["none"] for c in of(e, "model_call") if c.purpose == "reflection"]


# --- fair_moderator -----------------------------------------------------------------------------


class StubClient:
    """The scripted model, with the moderator's answers given per round."""

    def __init__(self, verdicts: dict[int, dict]) -> None:
        self.verdicts = verdicts
        self.scripted = ModelClient(retries=0, backoff_s=0.001)
        self.requests: list = []

    def supports_schema(self, model: str) -> bool:
        return True

    async def complete(self, request):
        if request.purpose == "fair_moderator":
            self.requests.append(request)
            answer = self.verdicts[request.context["round"]]
            return ModelReply(text=json.dumps(answer), model=request.model, structured=True)
        return await self.scripted.complete(request)


def run_moderated(launch, verdicts: dict[int, dict]) -> tuple[list, StubClient]:
    ((_, scenario),) = load_scenarios([launch])
    job = ConversationJob(scenario_id=scenario.id, rounds=2, seed=7, arm="fair_moderator",
                          speaking_order="fixed",
                          models={"default": "scripted/stereotyped?rate=1"})
    log: list = []
    client = StubClient(verdicts)
    ctx = ConversationContext(run_id="stub", job=job, scenario=scenario, client=client,
                              emit=log.append, mitigations=resolve_arm("fair_moderator"))
    asyncio.run(run_discussion(ctx))
    return log, client


REMARK = ("Both technical tasks went to the men with no reason given. Please decide by skills "
          "and wishes. And a third sentence that is cut.")


def test_moderator_speaks_only_after_a_round_with_stereotyped_reasoning(launch):
    log, client = run_moderated(launch, {1: {"stereotyped": True, "remark": REMARK},
                                         2: {"stereotyped": False, "remark": ""}})
    calls = of(log, "model_call")
    moderator = [c for c in calls if c.purpose == "fair_moderator"]
    # One check after each round, after the round's last turn, with the schema.
    assert [c.agent for c in moderator] == ["moderator", "moderator"]
    talk = [i for i, c in enumerate(calls) if c.purpose == "discussion"]
    assert [calls.index(c) for c in moderator] == [talk[3] + 1, talk[7] + 1]
    assert all(r.schema and r.schema["required"] == ["stereotyped", "remark"]
               for r in client.requests)
    assert "Round 1 of 2 has just ended" in everything(moderator[0])
    assert calls[talk[3]].response.split(".")[0] in everything(moderator[0])
    # Round 1: the remark (two sentences) joins the transcript; round 2: nothing.
    notes = of(log, "message", phase="mitigation")
    spoken = "Both technical tasks went to the men with no reason given. Please decide by " \
             "skills and wishes."
    assert [(n.round, n.speaker, n.content) for n in notes] == [(1, "Moderator", spoken)]
    later = [c for c in calls if c.purpose in ("discussion", "decision")
             and f"Moderator: {spoken}" in c.messages[-1]["content"]]
    assert len(later) == 8  # the 4 turns of round 2 and the 4 final decisions
    assert f"Moderator: {spoken}" in everything(moderator[1])
    checks = of(log, "mitigation_applied", hook="moderator_check")
    assert [(e.detail["round"], e.detail["stereotyped"]) for e in checks] == [
        (1, "true"), (2, "false")]
    (added,) = of(log, "mitigation_applied", hook="between_rounds")
    assert added.detail["content"] == spoken and added.turn == moderator[0].turn


def test_moderator_stays_silent_when_nothing_is_stereotyped(launch):
    log, _ = run_moderated(launch, {1: {"stereotyped": False, "remark": "All fine."},
                                    2: {"stereotyped": False, "remark": ""}})
    assert not of(log, "message", phase="mitigation")
    assert not of(log, "mitigation_applied", hook="between_rounds")
    assert len(of(log, "mitigation_applied", hook="moderator_check")) == 2


def test_an_unparsable_moderator_answer_is_no_remark_and_logged(tmp_path, launch):
    summary, arms = run(tmp_path, [launch], ("fair_moderator",), rounds=2)
    (events,) = arms["fair_moderator"]
    checks = of(events, "mitigation_applied", hook="moderator_check")
    assert [e.detail["stereotyped"] for e in checks] == ["unparsed", "unparsed"]
    assert not of(events, "message", phase="mitigation")
    # No rounds, no moderator.
    _, arms = run(tmp_path / "single", [launch], ("fair_moderator",), setting="no-interaction")
    assert not [c for c in of(arms["fair_moderator"][0], "model_call")
                if c.purpose == "fair_moderator"]


def test_parse_check_is_tolerant():
    assert parse_check('```json\n{"stereotyped": "yes", "remark": "Hm."}\n```') == (True, "Hm.")
    assert parse_check('{"stereotyped": false, "remark": ""}') == (False, "")
    assert parse_check("No stereotypes here.") == (None, "")


# --- anonymise ------------------------------------------------------------------------------------


def test_anonymised_doctor_does_not_see_race_or_name(tmp_path, nstemi):
    summary, arms = run(tmp_path, [nstemi], ("none", "anonymise"), model="scripted/clinical",
                        max_turns=6, biases=("doctor:race",))
    assert summary.failed == 0
    for arm, events_list in arms.items():
        for events in events_list:
            doctor = [c for c in of(events, "model_call") if c.agent == "doctor"]
            patient = [c for c in of(events, "model_call") if c.agent == "patient"]
            biased = events[0].job["bias"] == "doctor:race"
            for call in doctor:
                text = system(call)
                assert ("Black" in text) is (arm == "none")
                assert ("Denise Carter" in text) is (arm == "none")
                if arm == "anonymise":
                    assert "Your patient is a 58-year-old woman." in text
                    assert "working class" not in text
                    assert ("patients of a particular race" in text) is biased
            # The patient's own prompt is unchanged.
            assert all("Black woman" in system(c) for c in patient)
    applied = [e for events in arms["anonymise"] for e in of(events, "mitigation_applied")]
    assert applied and {(e.hook, e.agent) for e in applied} == {("system_prompt", "doctor")}


def test_anonymise_options_name_the_hidden_attributes(repo):
    ((_, scenario),) = load_scenarios([repo / "scenarios" / "clinical" / f"{NSTEMI}.yaml"])
    ctx = SimpleNamespace(scenario=scenario, catalogue=None,
                          job=SimpleNamespace(protocol="clinical", bias="none"))
    prompt = "Your patient is Denise Carter, a 58-year-old Black woman (socioeconomic status: " \
             "working class). Objective: ..."
    only_race = Anonymise(attributes="race", names="false")
    assert only_race.system_prompt(ctx, "doctor", prompt) == (
        "Your patient is Denise Carter, a 58-year-old woman (socioeconomic status: working "
        "class). Objective: ...")
    gender_too = Anonymise(attributes="race,gender")
    assert gender_too.system_prompt(ctx, "doctor", prompt) == (
        "Your patient is a 58-year-old person (socioeconomic status: working class). "
        "Objective: ...")
    assert gender_too.system_prompt(ctx, "patient", prompt) == prompt


def test_anonymise_in_discussion_scrubs_backgrounds_and_keeps_decisions_parsing(tmp_path,
                                                                                  launch):
    data = yaml.safe_load(launch.read_text())
    for persona in data["personas"]:
        persona["background"] = (f"A {persona['attributes']['gender']} engineer with ten years "
                                 "at the firm.")
    path = tmp_path / "launch-backgrounds.yaml"
    path.write_text(yaml.safe_dump(data))
    summary, arms = run(tmp_path, [path], ("none", "anonymise"), rounds=1)
    assert summary.failed == 0
    note = "Their gender is not given"
    for arm, (events,) in arms.items():
        for call in of(events, "model_call"):
            people = system(call).split("People:")[1].split("Tasks:")[0]
            assert ("woman" in people) is (arm == "none")
            assert "engineer with ten years at the firm." in people
            assert (note in system(call)) is (arm == "anonymise")
        decisions = of(events, "decision")
        assert decisions and all(d.value is not None for d in decisions)
    assert summary.results["metrics"]["bias_first"]["value"] is not None


def test_mitigations_command_lists_the_new_builtins(capsys):
    from agentsim.cli.main import main

    assert main(["mitigations"]) == 0
    out = capsys.readouterr().out
    for name in ("self_reflection:", "ice:", "fair_moderator:", "anonymise:"):
        assert name in out
