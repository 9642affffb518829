"""The Judge protocol: judges read a stored run (events and manifest), never live objects.

A judge returns verdict events (``judge_result``) and metrics; the runner appends the events to
the log and writes the metrics to ``results.json``. Because judges only read the log, re-judging a
stored run is the same code path as judging a fresh one.

``judge`` is a coroutine: an LLM judge asks all its model calls at once and the client the
driver hands it (``run.client_for``) decides how many are in flight, so a judge never sizes its
own pool. :func:`score` runs one judge from synchronous code (a notebook, a test).

**One pass for every judge.** A judge that subclasses :class:`StreamingJudge` declares the event
types it ``reads`` and makes a :class:`Tally`: a running summary that is handed each successfully
finished conversation once (:class:`~agentsim.core.log_stream.ConversationLog`) and then asked
for its output. The judging driver reads the log once for all such judges of a pass and feeds
every tally the conversations of its protocols; a tally keeps per-cluster totals, not the
decisions, so memory does not grow with the run. ``judge(run)`` of a streaming judge is that
same pass for the judge alone.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import orjson

from agentsim._aio import run_sync
from agentsim.core.events import JudgeResult
from agentsim.core.metrics import MetricRecord, records_of
from agentsim.core.log_stream import ConversationLog
from agentsim.core.reader import RunView
from agentsim.stats.inference import Estimate

__all__ = ["ConversationLog", "Judge", "JudgeOutput", "RunView", "StreamingJudge", "Tally",
           "score"]


SPILL = 2000  # verdicts kept in memory before a judge's verdicts go to a temporary file


IDENTIFIERS = ("variant", "arm", "replicate", "seed")  # what a conversation's events carry


VERDICT_FIELDS = tuple(JudgeResult.model_fields)  # in the order the log writes them
VERDICT_NAMES = frozenset(VERDICT_FIELDS)


class Verdicts:
    """A judge's verdicts: in memory up to ``SPILL``, then as serialised lines in a temporary
    file, so a judge of a large run holds its totals, not its verdicts. A list to its users
    (append, extend, len, iteration in order, indexing); :meth:`lines` gives them as the log's
    lines without parsing them back. :meth:`record` takes a verdict's fields and serialises
    them straight away, without building the model (a judge of a large run makes one verdict
    per decision: building and dumping a pydantic model costs ten times more)."""

    def __init__(self, items: Iterable[JudgeResult] = ()) -> None:
        self._kept: list[JudgeResult | str] = []  # a model, or a recorded verdict's line
        self._file: Any = None
        self._count = 0
        # True while every verdict about a conversation names its variant, arm, replicate and
        # seed itself (the built-in judges' do): then its lines can be logged as they are.
        self.identified = True
        self.extend(items)

    def append(self, result: JudgeResult) -> None:
        """Add one verdict."""
        if self.identified and result.conversation_id is not None:
            self.identified = all(getattr(result, key) is not None for key in IDENTIFIERS)
        self._add(result)

    def record(self, **fields: Any) -> None:
        """Add one verdict given as :class:`JudgeResult`'s fields: the line the model would
        dump (fields in order, None left out, ``score`` a float, ``ts`` now), read back into
        the model (and so validated) when the verdicts are iterated. Unknown fields raise."""
        if not VERDICT_NAMES.issuperset(fields):
            raise TypeError(f"not fields of a verdict: {sorted(set(fields) - VERDICT_NAMES)}")
        fields["type"] = "judge_result"
        if "ts" not in fields:
            fields["ts"] = time.time()
        if "details" not in fields:
            fields["details"] = {}
        score = fields.get("score")
        if score is not None:
            fields["score"] = float(score)
        if self.identified and fields.get("conversation_id") is not None:
            self.identified = all(fields.get(key) is not None for key in IDENTIFIERS)
        ordered = {}
        for name in VERDICT_FIELDS:
            value = fields.get(name)
            if value is not None:
                ordered[name] = value
        self._add(orjson.dumps(ordered).decode())  # a key that is not a string raises, as the
        # model refuses it

    def _add(self, item: JudgeResult | str) -> None:
        if self._file is None and len(self._kept) < SPILL:
            self._kept.append(item)
        else:
            if self._file is None:
                self._file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
            self._file.write(_line(item) + "\n")
        self._count += 1

    def extend(self, results: Iterable[JudgeResult]) -> None:
        """Add verdicts."""
        for result in results:
            self.append(result)

    def __len__(self) -> int:
        return self._count

    def _spooled(self) -> Iterator[str]:
        if self._file is not None:
            self._file.flush()
            self._file.seek(0)
            for line in self._file:
                yield line.rstrip("\n")
            self._file.seek(0, 2)

    def __iter__(self) -> Iterator[JudgeResult]:
        for item in itertools.chain(self._kept, self._spooled()):
            yield JudgeResult.model_validate_json(item) if isinstance(item, str) else item

    def lines(self) -> Iterator[str]:
        """Each verdict as the line the log stores (JSON, None fields left out, no newline)."""
        for item in self._kept:
            yield _line(item)
        yield from self._spooled()

    def __getitem__(self, index: int) -> JudgeResult:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Verdicts, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  (mutable, like a list)


def _line(item: JudgeResult | str) -> str:
    return item if isinstance(item, str) else item.model_dump_json(exclude_none=True)


@dataclass
class JudgeOutput:
    """What one judge produced: per-item verdicts, metrics with intervals, and notes.

    ``metrics`` are named with their breakdown in brackets (``bias[round=3]``,
    ``score[point=p][group=g]``); :meth:`records` turns them into typed rows.
    """

    results: Verdicts = field(default_factory=Verdicts)
    metrics: dict[str, Estimate] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "results" and not isinstance(value, Verdicts):  # given as a list
            value = Verdicts(value)
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        # Short on purpose: asyncio formats a finished task's result when the loop closes
        # (signal handling in asyncio.run), and a full repr of every verdict of a large run
        # costs seconds.
        return (f"JudgeOutput({len(self.results)} results, {len(self.metrics)} metrics, "
                f"{len(self.notes)} notes)")

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


class Tally(Protocol):
    """A judge's running summary of one pass: ``add`` each conversation, then ``result``."""

    def add(self, conversation: ConversationLog) -> None:
        """Take one successfully finished conversation into the summary."""
        ...

    async def result(self) -> JudgeOutput:
        """The judge's output over every conversation added."""
        ...


class StreamingJudge:
    """Base of judges read in the driver's one pass (see the module docstring): ``reads`` the
    event types besides each conversation's start and finish, ``tally(run)`` a fresh
    :class:`Tally`. ``views``: types read through a view of the fields the judge needs
    (:mod:`agentsim.core.event_views`); the pass uses a view when every reader of that type
    asks for the same one, else the whole event (which has every field a view has)."""

    name: ClassVar[str]
    description: ClassVar[str]
    reads: ClassVar[frozenset[str]] = frozenset()
    views: ClassVar[Mapping[str, type]] = {}

    def tally(self, run: RunView) -> Tally:
        """A fresh running summary for one pass over ``run``."""
        raise NotImplementedError

    async def judge(self, run: RunView) -> JudgeOutput:
        """Score a stored run: one pass over its conversations, for this judge alone."""
        tally = self.tally(run)
        for conversation in run.conversations(self.reads, self.views):
            tally.add(conversation)
        return await tally.result()


def score(judge: Judge, run: RunView) -> JudgeOutput:
    """``judge`` run on ``run`` from synchronous code (in a worker thread when a loop runs);
    the view it gets is narrowed to the protocols the judge declares, as the driver does."""
    return run_sync(judge.judge(run.for_protocols(getattr(judge, "protocols", None))))
