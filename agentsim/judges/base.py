"""The Judge protocol: judges read a stored run (events and manifest), never live objects.

A judge returns verdict events (``judge_result``) and metrics; the runner appends the events to
the log and writes the metrics to ``results.json``. Because judges only read the log, re-judging a
stored run is the same code path as judging a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agentsim.core.events import JudgeResult
from agentsim.core.metrics import MetricRecord, records_of
from agentsim.core.reader import RunView
from agentsim.stats.inference import Estimate

__all__ = ["Judge", "JudgeOutput", "RunView"]


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

    def judge(self, run: RunView) -> JudgeOutput:
        """Score a stored run."""
        ...
