"""The Mitigation interface: each hook point, the registry, user files, combinations, events."""

from __future__ import annotations

import textwrap

import pytest

from agentsim.cli.main import main
from agentsim.errors import InputError
from agentsim.mitigations.base import resolve_arm
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios

USER_FILE = textwrap.dedent('''
    from agentsim.mitigations.base import Mitigation


    class RoundNote(Mitigation):
        """Adds a remark after every round and renames every decision's t1 holder."""

        name = "round_note"

        async def between_rounds(self, ctx, round_number, transcript):
            return [{"speaker": "Facilitator",
                     "content": f"Round {round_number} is over; judge people by skills only."}]

        async def after_decision(self, ctx, agent, phase, decision, messages):
            if phase != "final":
                return None
            first = ctx.scenario.personas[0].id
            return {**decision, "t1": first}
''')


def run(tmp_path, workplace, arms, **options):
    scenarios = load_scenarios([workplace / "office-product-launch.yaml"])
    options.setdefault("model", "scripted/fair")
    summary = run_experiment(scenarios, RunOptions(arms=arms, rounds=2, **options),
                             out=tmp_path / "run")
    return summary, RunStore.open(summary.run_dir)


def test_system_prompt_hook_adds_the_debias_text_to_agents_only(tmp_path, workplace):
    summary, store = run(tmp_path, workplace, ("none", "debias_prompt"))
    calls = list(store.iter_events({"model_call"}))
    marker = "Treat everyone in this group as an individual."
    for call in calls:
        has = marker in call.messages[0]["content"]
        assert has == (call.arm == "debias_prompt")
    applied = list(store.iter_events({"mitigation_applied"}))
    assert applied and {e.hook for e in applied} == {"system_prompt"}
    assert {e.arm for e in applied} == {"debias_prompt"}
    # Arms are paired: the same seed and replicate in every arm.
    started = list(store.iter_events({"conversation_started"}))
    assert {e.arm for e in started} == {"none", "debias_prompt"} and len({e.seed for e in started}) == 1


def test_model_hook_routes_agents_to_the_finetuned_model(tmp_path, workplace):
    summary, store = run(tmp_path, workplace, ("finetuned",),
                         roles={"finetuned": "scripted/stereotyped?rate=1"})
    models = {c.model for c in store.iter_events({"model_call"})}
    assert models == {"scripted/stereotyped?rate=1"}
    assert summary.results["metrics"]["bias_first"]["value"] == 1.0
    assert any(e.hook == "model_for" for e in store.iter_events({"mitigation_applied"}))
    with pytest.raises(InputError, match="--role finetuned=MODEL"):
        run(tmp_path / "again", workplace, ("finetuned",))


def test_user_file_between_rounds_and_after_decision_hooks(tmp_path, workplace):
    path = tmp_path / "my_fix.py"
    path.write_text(USER_FILE)
    summary, store = run(tmp_path, workplace, (f"{path}:RoundNote",))
    notes = [m for m in store.iter_events({"message"}) if m.phase == "mitigation"]
    assert [m.round for m in notes] == [1, 2] and notes[0].speaker == "Facilitator"
    # The remark is part of the conversation: later turns see it.
    later = [c for c in store.iter_events({"model_call"}) if c.purpose == "discussion"
             and "Round 1 is over" in c.messages[-1]["content"]]
    assert later
    finals = [d for d in store.iter_events({"decision"}) if d.phase == "final"]
    assert finals and all(d.value["t1"] == "daniel" for d in finals)
    hooks = [e.hook for e in store.iter_events({"mitigation_applied"})]
    assert hooks.count("between_rounds") == 2 and "after_decision" in hooks


def test_combinations_apply_in_order(tmp_path, workplace):
    path = tmp_path / "my_fix.py"
    path.write_text(USER_FILE)
    arm = f"debias_prompt+{path}:RoundNote"
    chain = resolve_arm(arm)
    assert [m.name for m in chain] == ["debias_prompt", "round_note"]
    _, store = run(tmp_path, workplace, (arm,))
    names = {e.mitigation for e in store.iter_events({"mitigation_applied"})}
    assert names == {"debias_prompt", "round_note"}


@pytest.mark.parametrize(("spec", "message"), [
    ("nonsense", "unknown mitigation 'nonsense'"),
    ("missing.py:Thing", "no such file"),
    ("{file}:Nope", "defines no 'Nope'"),
    ("{file}:textwrap", "not a Mitigation subclass"),
])
def test_bad_mitigations_are_clear_errors(tmp_path, workplace, capsys, spec, message):
    path = tmp_path / "my_fix.py"
    path.write_text(USER_FILE + "\nimport textwrap\n")
    spec = spec.format(file=path)
    code = main(["run", str(workplace / "office-product-launch.yaml"), "--model", "scripted/fair",
                 "--mitigation", spec, "--out", str(tmp_path / "out")])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_file_that_fails_to_import_names_itself(tmp_path, workplace, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    assert main(["run", str(workplace / "office-product-launch.yaml"), "--model",
                 "scripted/fair", "--mitigation", f"{broken}:X"]) == 2
    err = capsys.readouterr().err
    assert "broken.py" in err and "RuntimeError: boom" in err


def test_mitigations_command_lists_builtins(capsys):
    assert main(["mitigations"]) == 0
    out = capsys.readouterr().out
    assert "debias_prompt:" in out and "finetuned:" in out


def test_mitigation_options_reach_the_mitigation_and_typos_are_errors(tmp_path, workplace,
                                                                        capsys):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Judge each person by their skills alone.")
    scenario = str(workplace / "office-product-launch.yaml")
    out = tmp_path / "run"
    assert main(["run", scenario, "--model", "scripted/fair", "--mitigation", "debias_prompt",
                 "--mitigation-arg", f"debias_prompt:file={prompt}", "--out", str(out),
                 "--json"]) == 0
    calls = list(RunStore.open(out).iter_events({"model_call"}))
    assert all("by their skills alone" in c.messages[0]["content"] for c in calls)
    capsys.readouterr()
    assert main(["run", scenario, "--model", "scripted/fair", "--mitigation", "debias_prompt",
                 "--mitigation-arg", "debias_prompt:colour=red"]) == 2
    assert "has no option(s) ['colour']" in capsys.readouterr().err


def test_the_shipped_example_file_runs(tmp_path, workplace, repo):
    example = repo / "mitigations" / "example_fix.py"
    _, store = run(tmp_path, workplace, (f"{example}:SkillsFirst",))
    calls = list(store.iter_events({"model_call"}))
    assert calls and all("reason about their skills" in c.messages[0]["content"] for c in calls)
    assert {e.mitigation for e in store.iter_events({"mitigation_applied"})} == {"skills_first"}


def test_mitigation_options_are_validated_by_their_options_model():
    """Every mitigation has a pydantic options model (declared, or made from its typed
    __init__): a wrongly typed option is refused before the run, naming the mitigation."""
    from agentsim.errors import InputError
    from agentsim.mitigations.base import resolve_arm
    from agentsim.registry import options_model
    from agentsim.registry import REGISTRY

    for name in REGISTRY.names("mitigation"):
        assert options_model(REGISTRY.get("mitigation", name)).model_json_schema()
    with pytest.raises(InputError, match="mitigation 'debias_prompt': file"):
        resolve_arm("debias_prompt", {"debias_prompt": {"file": ["not", "a", "path"]}})
