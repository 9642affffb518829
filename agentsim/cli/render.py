"""Render a stored run's conversations for the terminal (``agentsim replay``), from the log only.

Model text is escaped before it reaches rich, so brackets in a message are never read as markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsim.errors import InputError
from agentsim.core.store import RunStore

EVENT_TYPES = {"conversation_started", "message", "decision", "conversation_finished", "error"}


@dataclass
class ConversationLog:
    """One conversation as the log holds it: its start, messages, decisions and end."""

    conversation_id: str
    started: Any = None
    items: list[Any] = field(default_factory=list)  # messages and decisions, in log order
    finished: Any = None
    errors: list[Any] = field(default_factory=list)


def load_conversations(run_dir: str | Path,
                       skip_bad_lines: bool = False) -> dict[str, ConversationLog]:
    """conversation id → its log, in the order the conversations started (a damaged log line
    is an error naming it, unless ``skip_bad_lines``)."""
    store = RunStore.open(run_dir, skip_bad_lines=skip_bad_lines)
    logs: dict[str, ConversationLog] = {}
    for event in store.iter_events(EVENT_TYPES):
        cid = event.conversation_id
        if cid is None:
            continue
        log = logs.setdefault(cid, ConversationLog(cid))
        if event.type == "conversation_started":
            log.started = event
        elif event.type == "conversation_finished":
            log.finished = event
        elif event.type == "error":
            log.errors.append(event)
        else:
            log.items.append(event)
    return logs


def select_conversations(logs: dict[str, ConversationLog],
                         conversation: str | None) -> list[ConversationLog]:
    """All logs, or the one asked for; an unknown id names a few known ones."""
    if conversation is None:
        return list(logs.values())
    if conversation not in logs:
        known = list(logs)
        shown = ", ".join(known[:5]) + (f", ... ({len(known)} in all)" if len(known) > 5 else "")
        raise InputError(f"no conversation {conversation!r} in this run (known: "
                         f"{shown or 'none'})", source="--conversation")
    return [logs[conversation]]


def _header(log: ConversationLog) -> str:
    from rich.markup import escape

    start = log.started
    if start is None:
        return "[dim](no conversation_started event)[/]"
    parts = [f"scenario {start.scenario_id}", f"variant {start.variant}", f"arm {start.arm}",
             f"replicate {start.replicate}", f"seed {start.seed}"]
    return f"[dim]{escape(' · '.join(parts))}[/]"


def _where(phase: str, round_: int | None) -> str:
    return phase if round_ is None else f"{phase}, {round_}"


def conversation_panel(log: ConversationLog) -> Any:
    """A rich Panel of one conversation."""
    from rich.markup import escape
    from rich.panel import Panel

    # persona id → display name, from every message first (a decision may name a later speaker)
    names = {item.agent: item.speaker for item in log.items
             if item.type == "message" and item.agent}
    lines: list[str] = [_header(log)]
    for item in log.items:
        if item.type == "message":
            lines.append(f"[bold]{escape(item.speaker)}[/] "
                         f"[dim]({escape(_where(item.phase, item.round))})[/]: "
                         f"{escape(item.content)}")
        else:
            who = names.get(item.agent or "", item.agent or "?")
            if item.value is None:
                text = f"unparsed ({item.parse_error or 'no value'})"
            else:
                text = ", ".join(f"{task}→{names.get(pid, pid)}" for task, pid in
                                 item.value.items())
            lines.append(f"  [cyan]decision[/] [dim]{escape(_where(item.phase, item.round))}[/] "
                         f"{escape(who)}: {escape(text)}")
    for error in log.errors:
        lines.append(f"[red]error[/] {escape(error.error_type)}: {escape(error.message)}")
    if log.finished is None:
        footer = "[yellow]not finished[/]"
    else:
        footer = "ok" if log.finished.ok else "[red]failed[/]"
    if len(lines) == 1:
        lines.append("[dim](no messages)[/]")
    return Panel("\n".join(lines), title=f"[bold]{escape(log.conversation_id)}[/]",
                 title_align="left", subtitle=footer, subtitle_align="right")


def render_run(console: Any, run_dir: str | Path, conversation: str | None = None,
               skip_bad_lines: bool = False) -> int:
    """Print one panel per conversation (or the one asked for); returns how many."""
    chosen = select_conversations(load_conversations(run_dir, skip_bad_lines), conversation)
    for log in chosen:
        console.print(conversation_panel(log))
    return len(chosen)
