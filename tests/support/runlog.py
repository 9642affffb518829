"""Helpers for tests that write run logs by hand."""

from __future__ import annotations

from agentsim.core.events import ConversationFinished
from agentsim.core.store import RunStore


def finish_all(store: RunStore, ok: bool = True) -> None:
    """Close every conversation started in ``store`` with a ``conversation_finished`` event.

    Judges read only conversations that finished successfully (a failed one's partial
    decisions never enter a metric), so a hand-built log must finish its conversations.
    """
    store.close()
    seen: dict[str, dict] = {}
    for event in store.iter_events({"conversation_started"}):
        seen[event.conversation_id] = {k: getattr(event, k) for k in
                                       ("run_id", "conversation_id", "variant", "arm",
                                        "replicate", "seed")}
    for ids in seen.values():
        store.append(ConversationFinished(**ids, ok=ok))
