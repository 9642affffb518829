"""One streaming pass over a run's log, conversation by conversation.

:func:`conversations` reads ``events.jsonl`` once and yields each conversation that finished
successfully as a :class:`ConversationLog`: its start, the events of the types asked for (in log
order) and its finish. It is what every judge of a judging pass reads, so the log is read once
per pass however many judges there are, and memory holds only the conversations still open at
that point of the log (about the run's concurrency), not the run.

* **Lines of other types are not parsed.** The writer (:meth:`RunStore.append`) writes every
  event as ``{"run_id":…`` followed by the scalar fields every event shares, then ``"type"``: in
  such a line the first ``"type":"`` is the event's own (a quote inside a string is escaped, so
  the pattern never matches inside a value). A line of another type is skipped on that check
  alone; a line of an unfamiliar shape is parsed. Only parsed lines are validated: a damaged
  line of a type the pass does not read goes unnoticed here, while ``RunStore.check`` (and
  ``agentsim resume``, replay and export, which read every line) still find it.
* **Attempts are resolved in the same pass.** A conversation started again (resumed after a
  kill or a failure) drops what its earlier attempt logged; one whose last attempt failed or
  never finished is not yielded: a failed conversation's partial decisions never enter a metric.
  A conversation is yielded when its successful finish is read (a run resumes only the
  conversations without one, so a later attempt of a yielded conversation cannot follow);
  failed ones, when asked for, at the end, unless started again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agentsim.core.event_views import decode
from agentsim.core.events import EVENT_ADAPTER, ConversationFinished, ConversationStarted, \
    EventBase

__all__ = ["ConversationLog", "conversations", "events_of", "line_type"]

CANONICAL = b'{"run_id":"'
TYPE_KEY = b'"type":"'
BOUNDS = frozenset({"conversation_started", "conversation_finished"})


def line_type(line: bytes) -> str | None:
    """The event type of a line the writer wrote, read without parsing it; None when the line
    has another shape (it must then be parsed to be known)."""
    if not line.startswith(CANONICAL):
        return None
    start = line.find(TYPE_KEY)
    if start < 0:
        return None
    start += len(TYPE_KEY)
    end = line.find(b'"', start)
    return line[start:end].decode("ascii", "replace") if end > 0 else None


@dataclass
class ConversationLog:
    """One successfully finished conversation: ``started``, the ``events`` of the types the
    pass reads (log order, the start and finish excluded) and ``finished``."""

    started: ConversationStarted
    events: list[EventBase] = field(default_factory=list)
    finished: ConversationFinished | None = None
    # What one reader derived from it for the others of the same pass (labelled decisions).
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The conversation id."""
        return str(self.started.conversation_id)

    @property
    def scenario_id(self) -> str:
        """The scenario it ran."""
        return self.started.scenario_id

    @property
    def protocol(self) -> str:
        """Its protocol's name."""
        return self.started.protocol

    @property
    def cell(self) -> tuple[str, str, str]:
        """Its cell of the run's design: (model, setting, arm); see :func:`cell_of`."""
        return cell_of(self.started)

    def of(self, *types: str) -> Iterator[EventBase]:
        """Its events of ``types`` (all when none given), in log order."""
        wanted = set(types)
        return (e for e in self.events if not wanted or e.type in wanted)


FACTORS = ("model", "setting", "arm")  # what tells the cells of a design apart, in order


def cell_of(job: Mapping[str, Any] | ConversationStarted) -> tuple[str, str, str]:
    """The cell of a conversation: (model, setting, arm), the model being a study's label of
    its models ('default' outside a study); values of :data:`FACTORS`. From its job as the
    manifest records it, or from its start (whose own setting and arm win over its job's)."""
    if isinstance(job, ConversationStarted):
        job = {**(job.job or {}), "setting": job.setting, "arm": job.arm}
    return (str(job.get("model_label") or "default"), str(job.get("setting") or ""),
            str(job.get("arm") or "none"))


def conversations(store: object, types: Iterable[str] | None = None,
                  failed: bool = False, resolve: bool = True,
                  views: Mapping[str, type] | None = None,
                  ) -> Iterator[ConversationLog]:
    """Each conversation of ``store``'s log that finished successfully (with ``failed``, also
    each whose last attempt failed: ``finished.ok`` tells them apart), with its events of
    ``types`` (all when None), in the order their finishes are logged; one pass (see the
    module docstring). Bad lines raise or are skipped as ``store`` says. ``resolve=False``
    leaves long message texts as blob references (a pass whose readers read no prompt).
    ``views``: event type → the model its lines are read into instead of the event's own (a
    view of a canonical line; a line of another shape is read whole)."""
    wanted = None if types is None else frozenset(types) | BOUNDS
    views = views or {}
    open_logs: dict[str, ConversationLog] = {}
    # A failed attempt may be run again later in the log (a resume): failed conversations are
    # yielded at the end, those started again dropped (few, and only their events read).
    failures: dict[str, ConversationLog] = {}
    for number, line in store._lines():  # type: ignore[attr-defined]
        kind = line_type(line)
        if wanted is not None and kind is not None and kind not in wanted:
            continue
        event = _parse(store, number, line, views.get(kind))  # type: ignore[arg-type]
        if event is None or event.conversation_id is None:
            continue
        if resolve and kind in (None, "model_call") and kind not in views:
            event = store.resolved(event)  # type: ignore[attr-defined]
        cid = event.conversation_id
        if event.type == "conversation_started":
            open_logs[cid] = ConversationLog(event)  # a new attempt drops the earlier one
            failures.pop(cid, None)
        elif event.type == "conversation_finished":
            current = open_logs.pop(cid, None)
            if current is None:
                continue
            current.finished = event
            if event.ok:
                yield current
            elif failed:
                failures[cid] = current
        elif cid in open_logs and (wanted is None or event.type in wanted):
            open_logs[cid].events.append(event)
    yield from failures.values()


def events_of(store: object, types: Iterable[str]) -> Iterator[EventBase]:
    """Every event of ``types`` in log order, all attempts, other lines skipped unparsed (as
    :func:`conversations` skips them); bad lines raise or are skipped as ``store`` says. For
    readers of events that belong to no conversation's attempt, such as a judging pass's
    verdicts and the ``run_finished`` before them."""
    wanted = frozenset(types)
    for number, line in store._lines():  # type: ignore[attr-defined]
        kind = line_type(line)
        if kind is not None and kind not in wanted:
            continue
        event = _parse(store, number, line)
        if event is not None and event.type in wanted:
            yield event


def _parse(store: object, number: int, line: bytes, view: type | None = None) -> Any:
    """The typed event of a line (or its ``view``); a bad line raises LogLineError or is
    counted and skipped."""
    if view is not None and (facts := decode(view, line)) is not None:
        return facts
    try:
        return EVENT_ADAPTER.validate_json(line)
    except ValidationError as error:
        return store._bad_line(number, line, error)  # type: ignore[attr-defined]
