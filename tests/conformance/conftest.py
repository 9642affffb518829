"""Session fixtures of the conformance suite: run folders built once per session (on first use)
and shared by every contract, the judges' outputs on them, and the shared run-log builder.

Runs are made by the runner in-process (``run_experiment``, ``fork_run``) on scripted models,
without the model cache (a second run of an arm must really run again to show it is
reproducible), in a session-wide agentsim home and cache folder of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentsim.core.reader import RunView
from agentsim.core.store import RunStore
from agentsim.runs.fork import fork_run
from agentsim.runs.judging import make_judge
from agentsim.runs.runner import RunSummary, run_experiment
from agentsim.scenario.variants import BASE_VARIANT
from agentsim.judges.base import score
from conformance.cases import (
    DEFAULT_SCRIPTED,
    JUDGE_MODEL,
    Kind,
    basic_kind,
    kinds,
    options,
    scripted_model,
    shipped_of,
)
from support.runlogs import RunLog, runlog  # noqa: F401  (the shared builder's fixture)

# Every conversation of the 'failed' run fails at its first model call (no retries).
FAILING = f"{DEFAULT_SCRIPTED}?fail=1"


@dataclasses.dataclass
class Built:
    """A run folder and what making it returned."""

    run_dir: Path
    summary: RunSummary | None  # None: written by hand

    def view(self, roles: dict[str, str] | None = None) -> RunView:
        """The run as a judge reads it."""
        return RunView(RunStore.open(self.run_dir), roles)


class Runs:
    """Run folders made on first use, kept for the whole session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: dict[str, Built] = {}

    def get(self, key: str, make: Callable[[Path], RunSummary | None]) -> Built:
        """The run ``key``, made by ``make(out)`` the first time it is asked for."""
        if key not in self.built:
            out = self.root / key.replace("/", "_").replace("+", "_")
            self.built[key] = Built(out, make(out))
        return self.built[key]

    def protocol_run(self, kind: Kind, scenarios: int = 2, replicates: int = 2,
                     **given: Any) -> Callable[[Path], RunSummary]:
        """A maker of a run of ``kind`` on its first shipped scenarios (two, so that
        intervals resample more than one cluster), declared variants, probes on."""
        chosen = shipped_of(kind.protocol, scenarios)
        given = {"model": scripted_model(kind.protocol), "setting": kind.setting,
                 "replicates": replicates, "probes": True, **given}
        return lambda out: run_experiment(chosen, options(**given), out=out)

    def judge_run(self, name: str) -> Built:
        """A run a judge is checked on (ids: :func:`conformance.cases.judge_runs`)."""
        by_id = {kind.id: kind for kind in kinds()}
        if name in by_id:
            return self.get(name, self.protocol_run(by_id[name]))
        first = basic_kind()
        if name == "failed":  # every conversation fails: nothing finished to judge
            make = self.protocol_run(first, scenarios=1, model=FAILING, retries=0)
        elif name == "zero":  # nothing planned: no variant to run
            make = self.protocol_run(first, scenarios=1, variants=())
        elif name == "one":
            make = self.protocol_run(first, scenarios=1, replicates=1, variants=(BASE_VARIANT,))
        elif name == "unparsed":
            make = unparsed_run
        elif name == "fork":  # the one conversation, continued from its start on another model
            parent = self.judge_run("one")
            conversation = next(iter(parent.view().store.iter_events({"conversation_started"})))

            def make(out: Path) -> RunSummary:
                return fork_run(parent.run_dir, conversation.conversation_id, 0,
                                model=f"{DEFAULT_SCRIPTED}?rate=1", replicates=2, out=out)
        else:
            raise KeyError(f"no judge run {name!r}")
        return self.get(name, make)


def unparsed_run(out: Path) -> None:
    """A hand-written run (the shared builder) of a discussion and a setup conversation whose
    every decision failed to parse, beside a failed conversation: all a judge gets is
    unreadable answers."""
    chosen = [shipped_of("discussion")[0], shipped_of("setup")[0]]
    (_, discussion), (_, setup) = chosen
    log = RunLog(out, chosen)
    unreadable = {"raw": "I would rather not say.", "parse_error": "no assignment found"}
    talk = log.conversation(discussion.id, rounds=1)
    agents = len(discussion.personas)
    for turn, persona in enumerate(discussion.personas):
        talk.decision(persona.id, "first", None, round=0, turn=turn, **unreadable)
        talk.message(persona.id, unreadable["raw"], turn=agents + turn, round=1)
        talk.decision(persona.id, "final", None, round=1, **unreadable)
    talk = log.conversation(setup.id, setting="setup")
    for point in setup.protocol.decisions:
        talk.decision(setup.personas[0].id, "final", None, kind=point.type, point=point.id,
                      round=setup.protocol.rounds, **unreadable)
    log.conversation(discussion.id, replicate=1).finish(ok=False)
    log.close()


@pytest.fixture(scope="session")
def session_home(tmp_path_factory):
    """An agentsim home and model cache folder of the session's own, for the session runs
    (made before the per-test isolation of tests/conftest.py applies)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGENTSIM_CACHE_DIR", str(tmp_path_factory.mktemp("session-cache")))
        patch.setenv("AGENTSIM_HOME", str(tmp_path_factory.mktemp("session-home")))
        yield


@pytest.fixture(scope="session")
def runs(tmp_path_factory, session_home) -> Runs:
    """The session's run folders, made on first use."""
    return Runs(tmp_path_factory.mktemp("conformance-runs"))


@pytest.fixture(scope="session")
def judged(runs) -> Callable[[str, str], Any]:
    """``judged(judge, run)``: the judge's output on the judge run, or the exception it
    raised; computed once per session (judging only reads the run folder)."""
    outputs: dict[tuple[str, str], Any] = {}

    def get(judge: str, run: str) -> Any:
        if (judge, run) not in outputs:
            view = runs.judge_run(run).view(roles={"judge": JUDGE_MODEL})
            try:
                outputs[judge, run] = score(make_judge(judge), view)
            except Exception as error:  # noqa: BLE001 - the contract test reports it
                outputs[judge, run] = error
        return outputs[judge, run]

    return get
