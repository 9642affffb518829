"""Mitigations in custom setups act through the typed hook context: they speak on the setup's
own turns and call the decider's model role (regressions: both used the discussion's rules and
the 'agent' role), and ``--role <model_role>=MODEL`` names a setup's model role."""

from __future__ import annotations

from pathlib import Path

import yaml

from agentsim.cli import main
from agentsim.core.store import RunStore

SETUP = Path(__file__).resolve().parents[2] / "scenarios" / "setups" / "manager-one-to-ones.yaml"


def _setup(tmp_path: Path, rounds: int = 1) -> Path:
    """The shipped one-to-ones setup, the manager's calls under the model role 'lead', with an
    unannounced first decision and one after each round (each takes a turn of the setup)."""
    data = yaml.safe_load(SETUP.read_text())
    data["protocol"]["roles"]["manager"]["model_role"] = "lead"
    data["protocol"]["termination"] = {"rounds": rounds}
    data["protocol"]["decisions"][0]["when"] = [0, *range(1, rounds + 1), "final"]
    path = tmp_path / "setup.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run(tmp_path: Path, *args: str) -> RunStore:
    out = tmp_path / "run"
    code = main(["run", str(_setup(tmp_path, 2)), "--model", "scripted/fair", "--role",
                 "lead=scripted/stereotyped", "--out", str(out), "--no-cache", *args])
    assert code == 0
    return RunStore(out)


def test_role_names_a_setups_model_role(tmp_path):
    store = _run(tmp_path)
    calls = [c for c in store.iter_events({"model_call"}) if c.agent == "manager"]
    assert calls and {(c.role, c.model) for c in calls} == {("lead", "scripted/stereotyped")}


def test_self_reflection_uses_the_deciders_role_and_turn(tmp_path):
    store = _run(tmp_path, "--mitigation", "self_reflection")
    first = [d for d in store.iter_events({"decision"}) if d.phase == "first"]
    assert [d.agent for d in first] == ["manager"]
    reflections = [c for c in store.iter_events({"model_call"}) if c.purpose == "reflection"]
    assert len(reflections) == 1
    (call,) = reflections
    assert (call.role, call.model) == ("lead", "scripted/stereotyped")
    assert call.turn == first[0].turn  # on the decision's own turn


def test_fair_moderator_checks_on_the_setups_round_end_turn(tmp_path):
    store = _run(tmp_path, "--mitigation", "fair_moderator", "--role",
                 "moderator=scripted/stereotyped")
    events = list(store.iter_events({"message", "decision", "mitigation_applied"}))
    checks = [e for e in events if e.type == "mitigation_applied"
              and e.hook == "moderator_check"]
    assert [c.detail["round"] for c in checks] == [1, 2]
    for check in checks:
        spoken = [e.turn for e in events if e.type in ("message", "decision")
                  and e.round == check.detail["round"] and e.phase not in ("mitigation", "final")]
        # After the round's turns and its decision (which took a turn of its own, unannounced):
        # counting transcript entries, as the discussion does, would say one turn less.
        assert check.turn == max(spoken) + 1
