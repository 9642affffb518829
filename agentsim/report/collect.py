"""What a report shows, read from a run folder: the manifest, the results, the comparison and
every conversation, in two streaming passes over the log.

* **Verdicts first.** Judge verdicts are logged after the conversations they score (after a
  ``run_finished``), so a first pass reads only ``judge_result`` lines (the others are skipped
  on their ``"type"`` alone, :func:`agentsim.core.log_stream.events_of`) and keeps those of the
  last judging, as every reader of the run does.
* **Conversations second**, through :func:`agentsim.core.log_stream.conversations` (the judges'
  one-pass reader, failed conversations included): each becomes one row of the index (its
  factors, its outcomes) and one compact detail record (turns, decisions, mitigations,
  verdicts) handed to ``sink`` at once, so memory holds the index, not the transcripts.
  Model calls are read unresolved (prompts are never shown): their tokens are summed per model.

Factors (scenario, variant, arm, bias, model, setting, replicate) are read from each
conversation's own job, so a run whose conversations differ by any of them — arms, models,
settings — is grouped the same way without knowing how it was planned.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsim.analysis.compare import COMPARISON_FILE
from agentsim.core.event_views import CallFacts
from agentsim.core.log_stream import conversations, events_of
from agentsim.core.reader import RunView
from agentsim.core.store import RESULTS, RunStore
from agentsim.report.outcomes import conversation_outcomes

FACTORS = ("scenario", "variant", "arm", "bias", "model", "setting", "replicate")
CONVERSATION_TYPES = ("message", "decision", "mitigation_applied", "error", "model_call")
VERDICT_TYPES = {"judge_result", "run_finished"}
MAX_DETAIL_CHARS = 2000  # a verdict's text beyond this is cut (rationales stay readable)
MAX_DETAIL_ITEMS = 60  # and its lists beyond this many items


@dataclass
class RunData:
    """Everything a report is made from, except the conversation details (streamed)."""

    run_dir: Path
    manifest: dict[str, Any]
    results: dict[str, Any] | None
    comparison: dict[str, Any] | None
    # one row per conversation: id, factors, seed, protocol, status, outcomes, summary, turns
    index: list[dict[str, Any]] = field(default_factory=list)
    # "scenario|variant" → the personas as that variant ran them
    personas: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # model → calls, prompt and completion tokens, cached and failed calls
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    # kind of the error that ended a failed conversation → how many
    failures: Counter = field(default_factory=Counter)
    # conversation id → the trajectory judge's per-agent scores by round (for the plots)
    trajectories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    view: RunView | None = None

    def levels(self, factor: str) -> list[str]:
        """The values ``factor`` takes over the run's conversations, in first-seen order."""
        return list(dict.fromkeys(str(row[factor]) for row in self.index))

    def varying(self, factors: tuple[str, ...] = ("arm", "model", "setting")) -> list[str]:
        """The ``factors`` that take more than one value in the run."""
        return [f for f in factors if len(self.levels(f)) > 1]


def model_label(models: dict[str, str]) -> str:
    """A job's models in one string: the default, then any role or persona that differs."""
    default = models.get("default", "")
    others = [f"{role}={model}" for role, model in models.items()
              if role != "default" and model != default]
    return "; ".join([default, *others]) if others else default


def verdicts(store: RunStore) -> dict[str, list[dict[str, Any]]]:
    """Conversation id → its verdicts of the last judging (those after the last
    ``run_finished``), as compact records; other lines are not parsed."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events_of(store, VERDICT_TYPES):
        if event.type == "run_finished":
            found.clear()  # a later judging replaces the verdicts read so far
        elif event.conversation_id is not None:
            found[event.conversation_id].append(_verdict(event))
    return found


def _verdict(event: Any) -> dict[str, Any]:
    return {"t": "j", "judge": event.judge, "target": event.target, "label": event.label,
            "score": event.score, "turn": event.turn, "agent": event.agent,
            "details": _bounded(event.details or {})}


def _bounded(details: dict[str, Any]) -> dict[str, Any]:
    """A verdict's details with long texts and long lists cut (a rationale stays readable; an
    influence graph of a large group does not fill the page)."""
    if not any(isinstance(v, str | list) and len(v) > MAX_DETAIL_ITEMS for v in details.values()):
        return details
    return {k: (v[:MAX_DETAIL_CHARS] + "…" if isinstance(v, str) and len(v) > MAX_DETAIL_CHARS
                else [*v[:MAX_DETAIL_ITEMS], f"… {len(v) - MAX_DETAIL_ITEMS} more"]
                if isinstance(v, list) and len(v) > MAX_DETAIL_ITEMS else v)
            for k, v in details.items()}


def read_run(run_dir: str | Path, sink: Callable[[dict[str, Any]], None]) -> RunData:
    """Read a run folder for its report; each conversation's detail record goes to ``sink``
    in log order. A folder that is not a run raises :class:`~agentsim.errors.RunStoreError`
    (naming it), as does a damaged log line."""
    store = RunStore.open(run_dir)
    manifest = store.read_manifest()
    data = RunData(Path(run_dir), manifest, _json(store, RESULTS), _json(store, COMPARISON_FILE),
                   view=RunView(store))
    judged = verdicts(store)
    for log in conversations(store, CONVERSATION_TYPES, failed=True, resolve=False,
                             views={"model_call": CallFacts}):  # calls: their tokens alone
        found = judged.pop(log.id, [])
        row, detail = _conversation(data, log, found)
        data.index.append(row)
        sink(detail)
    seen = {row["id"] for row in data.index}
    for job in manifest.get("jobs") or []:  # planned but never finished (interrupted runs)
        row = _row(job, _job_id(job), "unfinished")
        if row["id"] not in seen:
            data.index.append(row | {"outcomes": ["unfinished"], "summary": "not finished"})
            sink({"id": row["id"], "items": [], "note": "this conversation never finished"})
    return data


def _json(store: RunStore, name: str) -> dict[str, Any] | None:
    return store.read_results(name) if (store.run_dir / name).is_file() else None


def _job_id(job: dict[str, Any]) -> str:
    from agentsim.core.jobs import ConversationJob

    return ConversationJob.model_validate(job).conversation_id


def _row(job: dict[str, Any], cid: str, status: str) -> dict[str, Any]:
    """The factors of one conversation (index row without outcomes)."""
    return {"id": cid, "scenario": job.get("scenario_id", ""),
            "variant": job.get("variant", "base"), "arm": job.get("arm", "none"),
            "bias": job.get("bias", "none"),
            # A study's short name of the cell's models, else the models themselves.
            "model": job.get("model_label") or model_label(job.get("models") or {}),
            "setting": job.get("setting", ""), "replicate": job.get("replicate", 0),
            "seed": job.get("seed"), "protocol": job.get("protocol", ""), "status": status}


def _conversation(data: RunData, log: Any, judged: list[dict[str, Any]]
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The index row and the detail record of one conversation."""
    started, finished = log.started, log.finished
    status = "ok" if finished is not None and finished.ok else "failed"
    row = _row(started.job, log.id, status)
    key = f"{row['scenario']}|{row['variant']}"
    if key not in data.personas:
        data.personas[key] = _personas(data.view, row["scenario"], row["variant"])
    items: list[dict[str, Any]] = []
    for event in log.events:
        if event.type == "model_call":
            _count_tokens(data.tokens, event)
        else:
            items.append(_item(event))
    if status == "failed":
        kinds = [e.kind or e.error_type for e in log.events if e.type == "error"]
        data.failures[kinds[-1] if kinds else "unknown"] += 1
    for verdict in judged:
        if verdict["judge"] == "trajectory" and isinstance(verdict["details"].get("scores"), dict):
            data.trajectories.setdefault(log.id, []).append(verdict["details"]["scores"])
    outcomes, summary = conversation_outcomes(status, items, judged)
    row.update(outcomes=outcomes, summary=summary, turns=finished.turns if finished else 0)
    detail = {"id": log.id, "order": list(started.order), "personas": key,
              "items": items + judged}
    return row, detail


def _personas(view: RunView | None, scenario: str, variant: str) -> list[dict[str, Any]]:
    """The personas of a scenario as a variant ran it (id, name, attributes, background)."""
    try:
        applied = view.scenario_for(scenario, variant)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - an imported or damaged scenario: show ids only
        return []
    return [{"id": p.id, "name": p.name, "attributes": dict(p.attributes),
             "background": p.background, "role": getattr(p, "role", None)}
            for p in applied.personas]


def _count_tokens(tokens: dict[str, dict[str, int]], call: Any) -> None:
    row = tokens.setdefault(call.model, Counter())
    row["calls"] += 1
    row["prompt_tokens"] += call.prompt_tokens or 0
    row["completion_tokens"] += call.completion_tokens or 0
    row["cached"] += int(call.cached)
    row["failed"] += int(call.error is not None)


def _item(event: Any) -> dict[str, Any]:
    """One event of a conversation as a compact record of the report's data."""
    base = {"turn": event.turn, "agent": event.agent}
    if event.type == "message":
        return {"t": "m", **base, "speaker": event.speaker, "phase": event.phase,
                "round": event.round, "content": event.content, "to": event.visible_to}
    if event.type == "decision":
        return {"t": "d", **base, "phase": event.phase, "round": event.round,
                "kind": event.kind, "point": event.point, "value": event.value,
                "raw": event.raw if event.value is None else None, "error": event.parse_error}
    if event.type == "mitigation_applied":
        return {"t": "x", **base, "mitigation": event.mitigation, "hook": event.hook,
                "detail": event.detail}
    return {"t": "e", **base, "error_type": event.error_type, "message": event.message,
            "kind": event.kind, "fatal": event.fatal}
