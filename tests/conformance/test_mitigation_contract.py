"""Every registered mitigation through the Mitigation contract (agentsim/mitigations/base.py), in
a conversation of every protocol and setting (the first shipped scenario of its kind, base
variant, one replicate, scripted models).

The contract: in a protocol it supports, a run of its arm finishes with exit status 0 and every
conversation ok; every ``mitigation_applied`` event names a hook of the Mitigation interface, a
member of the arm and the conversation's arm; the same seed gives the same decisions and the
same applications; somewhere it acts at all. A protocol it does not support (``protocols``) is
refused before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from agentsim.errors import InputError
from agentsim.mitigations.base import HOOKS
from agentsim.registry import REGISTRY
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario.variants import BASE_VARIANT
from conformance.cases import Kind, kinds, names, options, params, scripted_model, shipped_of


@dataclass(frozen=True)
class Needs:
    """What a mitigation needs beside itself to be run."""

    arm: str | None = None  # the arm it is used in (default: itself alone)
    roles: tuple[str, ...] = ()  # roles whose model (--role ROLE=MODEL) it reads


# Read from the mitigations themselves. ice only adds worked examples to self_reflection's
# prompts (InContextExamples.check_arm refuses an arm without self_reflection); finetuned swaps
# decision-makers to the model of the role 'finetuned' (Finetuned.model_for raises without one).
NEEDS = {"ice": Needs(arm="self_reflection+ice"), "finetuned": Needs(roles=("finetuned",))}

def arm_of(mitigation: str) -> str:
    """The arm a mitigation runs in."""
    return NEEDS.get(mitigation, Needs()).arm or mitigation


def supports(mitigation: str, kind: Kind) -> bool:
    """Whether the mitigation declares support for the kind's protocol (``protocols``)."""
    declared = getattr(REGISTRY.get("mitigation", mitigation), "protocols", None)
    return declared is None or kind.protocol in declared


def arm_options(mitigation: str, kind: Kind) -> RunOptions:
    """One conversation of ``kind`` under the mitigation's arm: base variant, one replicate.
    The roles it reads get the protocol's scripted model under another name (a no-op knob),
    so that a swap of models shows in the log."""
    model = scripted_model(kind.protocol)
    renamed = f"{model}{'&' if '?' in model else '?'}latency_ms=0"
    return options(model=model, setting=kind.setting, arms=(arm_of(mitigation),),
                   roles={role: renamed for role in NEEDS.get(mitigation, Needs()).roles},
                   variants=(BASE_VARIANT,), replicates=1)


def run_arm(runs, mitigation: str, kind: Kind, copy: int = 0):
    """The run of the mitigation's arm on the first shipped scenario of ``kind``, made once a
    session; ``copy`` 1 is a second, independent run with the same seed."""
    return runs.get(f"mitigation/{mitigation}/{kind.id}/{copy}", lambda out: run_experiment(
        shipped_of(kind.protocol), arm_options(mitigation, kind), out=out))


def events(built, *types: str) -> list:
    return list(built.view().store.iter_events(set(types)))


SUPPORTED = [(m, kind) for m in names("mitigation") for kind in kinds() if supports(m, kind)]
UNSUPPORTED = [(m, kind) for m in names("mitigation") for kind in kinds()
               if not supports(m, kind)]

@pytest.mark.parametrize(("mitigation", "kind"), params(SUPPORTED))
def test_run_of_the_arm_succeeds(runs, mitigation, kind):
    """The arm's run exits 0 and every planned conversation finished ok."""
    built = run_arm(runs, mitigation, kind)
    assert built.summary.exit_status == 0, built.summary.errors
    planned = built.view().manifest["jobs"]
    finished = events(built, "conversation_finished")
    assert len(finished) == len(planned) > 0
    assert all(event.ok for event in finished)


@pytest.mark.parametrize(("mitigation", "kind"), params(SUPPORTED))
def test_every_application_names_a_hook_and_a_member_of_the_arm(runs, mitigation, kind):
    """Each mitigation_applied event names a Mitigation hook or a step its mitigation declares
    (``steps``), a mitigation of the arm, and carries the conversation's arm."""
    arm = arm_of(mitigation)
    allowed = {name: HOOKS | REGISTRY.get("mitigation", name).steps for name in arm.split("+")}
    applied = events(run_arm(runs, mitigation, kind), "mitigation_applied")
    wrong = [(event.mitigation, event.hook, event.arm) for event in applied
             if event.hook not in allowed.get(event.mitigation, HOOKS)
             or event.mitigation not in arm.split("+")
             or event.arm != arm]
    assert wrong == []


def facts(built) -> tuple[list, list]:
    """What a run decided and what its mitigations did, without times."""
    decisions = [(e.conversation_id, e.turn, e.agent, e.phase, e.round, e.point, e.value)
                 for e in events(built, "decision")]
    applied = [(e.conversation_id, e.turn, e.agent, e.mitigation, e.hook, e.detail)
               for e in events(built, "mitigation_applied")]
    return decisions, applied


@pytest.mark.parametrize(("mitigation", "kind"), params(SUPPORTED))
def test_same_seed_same_decisions(runs, mitigation, kind):
    """Two runs of the arm with the same seed (no cache) decide and apply identically."""
    first, again = facts(run_arm(runs, mitigation, kind)), facts(run_arm(runs, mitigation, kind,
                                                                          copy=1))
    assert first[0]  # something was decided
    assert again == first


@pytest.mark.parametrize("mitigation", names("mitigation"))
def test_acts_in_some_protocol(runs, mitigation):
    """Across the protocols it supports, the arm's mitigations act at least once."""
    acted = {kind.id: len(events(run_arm(runs, m, kind), "mitigation_applied"))
             for m, kind in SUPPORTED if m == mitigation}
    assert acted and any(acted.values()), acted


@pytest.mark.parametrize(("mitigation", "kind"), params(UNSUPPORTED))
def test_unsupported_protocol_is_refused_before_anything_is_written(tmp_path, mitigation, kind):
    """A run of the arm on a protocol it does not support is bad input (exit status 2) and
    leaves no run folder."""
    out = tmp_path / "run"
    with pytest.raises(InputError) as refused:
        run_experiment(shipped_of(kind.protocol), arm_options(mitigation, kind), out=out)
    assert refused.value.exit_status == 2
    assert mitigation in str(refused.value)
    assert not out.exists()
