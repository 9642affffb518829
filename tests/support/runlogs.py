"""A builder of run logs for judge tests: a manifest and chosen events written into a RunStore.

Judges read a stored run only (``manifest.json`` and ``events.jsonl``), so a judge test can plant
exactly the decisions, messages or verdicts it needs and know every number by hand::

    log = RunLog(tmp_path / "run", scenarios=[(RESTAURANT, scenario)])
    talk = log.conversation("restaurant-reopening", variant="mirror", replicate=3)
    talk.decision("yusuf", "first", {"t1": "yusuf", "t2": "hiroshi", ...}, round=0)
    talk.message("yusuf", "Chiara is warm.", turn=4, round=1)
    view = log.view()  # every conversation finished, the run closed, reopened as a RunView

What it writes, so that a hand-built run reads like a real one:

* the manifest of :func:`agentsim.runs.runner.new_manifest` (scenarios with their data and hash,
  their variants — declared ones unless ``variants`` is given — and models), no planned jobs;
* for each conversation a ``conversation_started`` whose ``job`` is a full
  :class:`~agentsim.core.jobs.ConversationJob` and whose ids (conversation id, variant, arm,
  replicate, seed) every later event of the conversation carries;
* on :meth:`RunLog.close` a ``conversation_finished`` (ok) for every conversation not finished
  by hand — judges read only conversations that finished successfully — then ``run_finished``.

The ``runlog`` fixture below gives a test a factory of builders in its own temporary folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentsim.core.events import (
    ConversationFinished,
    ConversationStarted,
    Decision,
    EventBase,
    Message,
    RunFinished,
)
from agentsim.core.jobs import ConversationJob
from agentsim.core.reader import RunView
from agentsim.core.store import RunStore
from agentsim.runs.runner import RunOptions, new_manifest
from agentsim.scenario.schema import Scenario
from agentsim.scenario.variants import Variant

ScenarioSpec = Scenario | tuple[str | Path, Scenario]


class Conversation:
    """One conversation of a :class:`RunLog`: appends events carrying its identifiers."""

    def __init__(self, log: RunLog, ids: dict[str, Any]) -> None:
        self.log = log
        self.ids = ids
        self.finished = False
        self.ok = False

    @property
    def conversation_id(self) -> str:
        """The conversation's id."""
        return self.ids["conversation_id"]

    def event(self, event_type: type[EventBase], /, **fields: Any) -> EventBase:
        """Append an event of class ``event_type`` with this conversation's ids; returns it."""
        event = event_type(**self.ids, **fields)
        self.log.append(event)
        return event

    def decision(self, agent: str, phase: str, value: dict[str, str] | None, *,
                 raw: str | None = None, **fields: Any) -> EventBase:
        """A ``decision`` of ``agent`` (``round``, ``kind``, ``point``, ``turn`` ... as
        keywords); ``raw`` defaults to the value as JSON."""
        return self.event(Decision, agent=agent, phase=phase, value=value,
                          raw=json.dumps(value) if raw is None else raw, **fields)

    def message(self, agent: str, content: str, *, speaker: str | None = None,
                phase: str = "discussion", **fields: Any) -> EventBase:
        """A ``message`` said by ``agent`` (``turn``, ``round``, ``visible_to`` as keywords);
        the speaker's name defaults to the persona's name in the run's scenario."""
        return self.event(Message, agent=agent, content=content, phase=phase,
                          speaker=speaker if speaker is not None else self.log.name_of(agent),
                          **fields)

    def finish(self, ok: bool = True, turns: int = 0) -> None:
        """Append ``conversation_finished`` now (a failed conversation: ``ok=False``)."""
        self.event(ConversationFinished, ok=ok, turns=turns)
        self.finished, self.ok = True, ok


class RunLog:
    """Writes a run folder by hand: a manifest, then conversations and their events.

    ``scenarios`` are Scenario objects or (path, Scenario) pairs; ``variants`` (default: each
    scenario's declared ones) go to the manifest, where judges find the variants a run ran;
    ``model`` is the run's default model (the models of judge roles fall back to it).
    """

    def __init__(self, run_dir: str | Path, scenarios: Iterable[ScenarioSpec] = (), *,
                 run_id: str = "hand", model: str = "scripted/fair",
                 variants: Iterable[Variant] | None = None) -> None:
        pairs = [item if isinstance(item, tuple) else (f"{item.id}.yaml", item)
                 for item in scenarios]
        self.scenarios = {scenario.id: scenario for _, scenario in pairs}
        self.names = {persona.id: persona.name for scenario in self.scenarios.values()
                      for persona in scenario.personas}
        self.run_id = run_id
        options = RunOptions(model=model,
                             variants=tuple(variants) if variants is not None else None)
        self.store = RunStore.create(run_dir, new_manifest(
            run_id, [(Path(path), scenario) for path, scenario in pairs], options, []))
        self.conversations: dict[str, Conversation] = {}
        self.closed = False

    @property
    def run_dir(self) -> Path:
        """The run folder."""
        return self.store.run_dir

    def append(self, event: EventBase) -> None:
        """Append any event as it is."""
        self.store.append(event)

    def name_of(self, agent: str) -> str:
        """The display name of persona ``agent`` in the run's scenarios (else the id)."""
        return self.names.get(agent, agent)

    def job(self, scenario_id: str, variant: str = "base", replicate: int = 0, *,
            seed: int | None = None, arm: str = "none", **fields: Any) -> ConversationJob:
        """The ConversationJob of a conversation: these fields (``protocol``, ``setting``,
        ``rounds``, ``probes``, ``bias`` ... as keywords; the protocol defaults to the
        scenario's), with ``seed`` defaulting to ``replicate``."""
        scenario = self.scenarios.get(scenario_id)
        if scenario is not None:
            fields.setdefault("protocol", scenario.protocol.name)
        return ConversationJob(scenario_id=scenario_id, variant=variant, replicate=replicate,
                               seed=replicate if seed is None else seed, arm=arm, **fields)

    def conversation(self, scenario_id: str, variant: str = "base", replicate: int = 0, *,
                     conversation_id: str | None = None, order: Iterable[str] = (),
                     **job: Any) -> Conversation:
        """Start a conversation and return it.

        Its job is :meth:`job` of the same arguments; the job's readable id is the conversation
        id unless ``conversation_id`` is given. ``order`` is the logged speaking order of
        round 1.
        """
        spec = self.job(scenario_id, variant, replicate, **job)
        ids = {"run_id": self.run_id, "conversation_id": conversation_id or spec.conversation_id,
               "variant": variant, "arm": spec.arm, "replicate": replicate, "seed": spec.seed}
        if ids["conversation_id"] in self.conversations:
            raise ValueError(f"conversation {ids['conversation_id']!r} is already started")
        talk = Conversation(self, ids)
        self.conversations[talk.conversation_id] = talk
        talk.event(ConversationStarted, scenario_id=scenario_id, protocol=spec.protocol,
                   setting=spec.setting, job=spec.model_dump(), order=list(order))
        return talk

    def get(self, scenario_id: str, variant: str = "base", replicate: int = 0, *,
            conversation_id: str | None = None, **job: Any) -> Conversation:
        """The conversation of these arguments, started on first use (for logs built from a
        flat list of decisions)."""
        key = conversation_id or self.job(scenario_id, variant, replicate, **job).conversation_id
        if key in self.conversations:
            return self.conversations[key]
        return self.conversation(scenario_id, variant, replicate, conversation_id=key, **job)

    def close(self) -> RunLog:
        """Finish every open conversation (ok) and the run; idempotent."""
        if not self.closed:
            for talk in self.conversations.values():
                if not talk.finished:
                    talk.finish()
            failed = sum(not talk.ok for talk in self.conversations.values())
            self.append(RunFinished(run_id=self.run_id, conversations=len(self.conversations),
                                    failed=failed))
            self.store.close()
            self.closed = True
        return self

    def view(self, roles: dict[str, str] | None = None) -> RunView:
        """Close the log and open the folder afresh, as a judge reads it (``roles``: models of
        judge roles, as ``--role`` gives them)."""
        self.close()
        return RunView(RunStore.open(self.run_dir), roles)


@pytest.fixture
def runlog(tmp_path: Path) -> Iterator[Callable[..., RunLog]]:
    """A factory of :class:`RunLog` builders, each in a new folder of the test's tmp_path:
    ``runlog(scenarios, variants=..., name="run")``."""
    made: list[RunLog] = []

    def make(scenarios: Iterable[ScenarioSpec] = (), *, name: str | None = None,
             **options: Any) -> RunLog:
        log = RunLog(tmp_path / (name or f"run{len(made)}"), scenarios, **options)
        made.append(log)
        return log

    yield make
    for log in made:
        log.store.close()
