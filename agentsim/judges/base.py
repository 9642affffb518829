"""The Judge protocol: judges read a stored run (events and manifest), never live objects.

A judge returns verdict events (``judge_result``) and metrics; the runner appends the events to
the log and writes the metrics to ``results.json``. Because judges only read the log, re-judging a
stored run is the same code path as judging a fresh one.

``judge`` is a coroutine: an LLM judge asks all its model calls at once and the client the
driver hands it (``run.client_for``) decides how many are in flight, so a judge never sizes its
own pool. :func:`score` runs one judge from synchronous code (a notebook, a test).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agentsim._aio import run_sync
from agentsim.core.events import JudgeResult
from agentsim.core.metrics import MetricRecord, records_of
from agentsim.core.reader import RunView
from agentsim.stats.inference import Estimate

__all__ = ["Judge", "JudgeOutput", "RunView", "score"]


@dataclass
class JudgeOutput:
    """What one judge produced: per-item verdicts, metrics with intervals, and notes.

    ``metrics`` are named with their breakdown in brackets (``bias[round=3]``,
    ``score[point=p][group=g]``); :meth:`records` turns them into typed rows.
    """

    results: list[JudgeResult] = field(default_factory=list)
    metrics: dict[str, Estimate] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def records(self, judge: str) -> list[MetricRecord]:
        """The metrics as records of ``judge`` (its registered name), breakdowns parsed."""
        return records_of(judge, self.metrics)


class Judge(Protocol):
    """A registered judge: ``name``, a one-line ``description`` and ``judge(run)``.

    A judge that scores conversations of some protocols only declares them as a class
    attribute ``protocols`` (a frozenset of names); the driver then hands it a view of those
    conversations alone (:meth:`RunView.for_protocols`), so it never branches on a protocol.
    """

    name: str
    description: str

    async def judge(self, run: RunView) -> JudgeOutput:
        """Score a stored run."""
        ...


def score(judge: Judge, run: RunView) -> JudgeOutput:
    """``judge`` run on ``run`` from synchronous code (in a worker thread when a loop runs);
    the view it gets is narrowed to the protocols the judge declares, as the driver does."""
    return run_sync(judge.judge(run.for_protocols(getattr(judge, "protocols", None))))
