"""What a run's log says about its conversations as a whole: how many finished, how many failed
and why. Computed in the judging pass's one read of the log (:class:`OutcomeTally`), or alone
(:func:`conversation_outcomes`, :func:`failure_reasons`)."""

from __future__ import annotations

from typing import Any

from agentsim.core.log_stream import ConversationLog, conversations
from agentsim.core.store import RunStore

__all__ = ["OutcomeTally", "conversation_outcomes", "failure_reasons"]

EXAMPLES = 20  # conversations listed per failure kind


class OutcomeTally:
    """Finished and failed conversations and the fatal errors of each failure kind, fed every
    conversation of a pass (failed ones included)."""

    reads = frozenset({"error"})

    def __init__(self) -> None:
        self.finished = self.failed = 0
        self.errors: dict[str, int] = {}
        self.reasons: dict[str, dict[str, Any]] = {}
        self.ids: dict[str, dict[str, Any]] = {}  # conversation → the ids its events carry
        self.cells: dict[tuple[str, ...], list[int]] = {}  # cell → [conversations, failed]

    def add(self, conversation: ConversationLog) -> None:
        """Count one conversation and its fatal errors."""
        started = conversation.started
        self.ids[conversation.id] = {"variant": started.variant, "arm": started.arm,
                                     "replicate": started.replicate, "seed": started.seed}
        failed = conversation.finished is not None and not conversation.finished.ok
        self.finished += 1
        self.failed += failed
        counts = self.cells.setdefault(conversation.cell, [0, 0])
        counts[0] += 1
        counts[1] += failed
        for event in conversation.of("error"):
            if not event.fatal:
                continue
            kind = event.kind or event.error_type
            self.errors[kind] = self.errors.get(kind, 0) + 1
            row = self.reasons.setdefault(kind, {"count": 0, "example": event.message,
                                                 "conversations": []})
            row["count"] += 1
            if len(row["conversations"]) < EXAMPLES:
                row["conversations"].append(event.conversation_id)

    def by_cell(self) -> dict[tuple[str, ...], tuple[int, int]]:
        """(conversations, failed) of each cell of the design (model, setting, arm)."""
        return {cell: (done, failed) for cell, (done, failed) in self.cells.items()}

    def outcomes(self) -> tuple[int, int, dict[str, int]]:
        """(finished conversations, failed ones, failures by kind)."""
        return self.finished, self.failed, dict(self.errors)


def _tally(store: RunStore) -> OutcomeTally:
    tally = OutcomeTally()
    for conversation in conversations(store, tally.reads, failed=True):
        tally.add(conversation)
    return tally


def conversation_outcomes(store: RunStore) -> tuple[int, int, dict[str, int]]:
    """(finished conversations, failed ones, failures by kind) from the log.

    The kind is the model error's kind (rate_limit, connection, auth, ...) where there is one,
    else the exception's type.
    """
    return _tally(store).outcomes()


def failure_reasons(store: RunStore) -> dict[str, dict[str, Any]]:
    """Failures by kind, each with its count, one example message and the conversations."""
    return _tally(store).reasons
