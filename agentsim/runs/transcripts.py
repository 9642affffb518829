"""Import a transcript (JSONL, one message per line) as a run folder every judge can read.

Each line holds ``conversation_id``, ``turn``, ``speaker``, ``role`` and ``content``, and
optionally ``attributes`` (the speaker's persona attributes), ``decision`` (task id → speaker
name or persona id), ``phase`` and ``round``. Every line is validated before anything is written:
a bad line is an :class:`~agentsim.errors.InputError` naming its line number and field.

Without ``--scenario`` each conversation gets a minimal scenario of its own: the speakers as
personas and one placeholder task per task id its decisions name. With a scenario, that scenario
serves every conversation and the speakers must be its personas (by name or id).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from agentsim.errors import InputError
from agentsim.core.jobs import ConversationJob
from agentsim.core.manifest import Manifest, scenario_entry
from agentsim.core.decisions import AssignmentDecision, decision_event
from agentsim.core.events import (
    ConversationFinished,
    ConversationStarted,
    Message,
    RunFinished,
    RunStarted,
)
from agentsim.core.store import RunStore, check_run_dir, new_run_id
from agentsim.scenario.loader import field_path, load_scenario
from agentsim.scenario.safe_input import BadLine, Limits, bad_line_error, parse_json_line, read_text
from agentsim.scenario.schema import DiscussionProtocol, Persona, Scenario, Task
from agentsim.scenario.schema_base import MAX_ID_LENGTH, check_id
from agentsim.scenario.variants import BASE_VARIANT

IMPORTED_MODEL = "imported"
NO_DECISIONS_NOTE = ("the transcript holds no decisions: a placeholder task 't1' stands in, and "
                     "decision judges will have nothing to score")


class TranscriptLine(BaseModel):
    """One message of an imported transcript."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: str = Field(min_length=1, description="Conversation the message belongs to.")
    turn: StrictInt = Field(ge=0, description="Turn index; messages are ordered by it.")
    speaker: str = Field(min_length=1, description="Display name of the speaker.")
    role: str = Field(min_length=1, description="'agent', 'moderator', 'doctor', 'patient', ...")
    content: str = Field(description="The message text.")
    attributes: dict[str, str] = Field(default_factory=dict,
                                       description="Persona attributes of the speaker.")
    decision: dict[str, str] | None = Field(
        default=None, description="Task id → speaker name or persona id.")
    phase: str | None = Field(default=None, description="Message phase (default 'discussion').")
    round: StrictInt | None = Field(default=None, ge=0, description="Discussion round.")


@dataclass
class TranscriptReport:
    """What an import wrote."""

    run_dir: Path
    conversations: int
    messages: int
    decisions: int
    notes: list[str] = field(default_factory=list)
    results: dict[str, Any] | None = None


def slug(text: str) -> str:
    """A valid persona or scenario id made from free text ('Dr. Ann Lee' → 'dr-ann-lee')."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-_")


def read_transcript(path: Path) -> list[tuple[int, TranscriptLine]]:
    """Every line of the file, validated; the first bad line raises (line and field named).

    Read within the bounds of agentsim.scenario.safe_input (size AGENTSIM_MAX_CASE_FILE_BYTES,
    UTF-8, and per line depth, values, string length, no duplicate keys or NaN)."""
    limits = Limits.from_env()
    text = read_text(path, limits.case_file_bytes, "case_file_bytes")
    lines: list[tuple[int, TranscriptLine]] = []
    # Split on '\n' only: JSON strings may hold U+2028 and the like, where splitlines splits.
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            data = parse_json_line(raw, limits)
        except BadLine as bad:
            raise bad_line_error(bad, path, number) from None
        if not isinstance(data, dict):
            raise InputError("expected a JSON object", source=path, line=number)
        try:
            lines.append((number, TranscriptLine.model_validate(data)))
        except ValidationError as error:
            item = error.errors()[0]
            message = "required field is missing" if item["type"] == "missing" else item["msg"]
            raise InputError(message, source=path, line=number,
                             field=field_path(item["loc"]) or None) from None
    if not lines:
        raise InputError("no messages in the transcript", source=path)
    return lines


@dataclass
class _Conversation:
    cid: str
    lines: list[tuple[int, TranscriptLine]] = field(default_factory=list)
    personas: dict[str, Persona] = field(default_factory=dict)  # persona id → persona
    speaker_ids: dict[str, str] = field(default_factory=dict)  # speaker name → persona id
    scenario_id: str = ""


def _group(lines: list[tuple[int, TranscriptLine]]) -> dict[str, _Conversation]:
    conversations: dict[str, _Conversation] = {}
    for number, line in lines:
        conversation = conversations.setdefault(line.conversation_id,
                                                _Conversation(line.conversation_id))
        conversation.lines.append((number, line))
    for conversation in conversations.values():
        conversation.lines.sort(key=lambda item: item[1].turn)
    return conversations


def _speaker_personas(conversation: _Conversation, source: Path) -> None:
    """Personas from the speakers: id = slug of the name, attributes merged over the lines."""
    attributes: dict[str, dict[str, str]] = {}
    seen_turns: set[int] = set()
    for number, line in conversation.lines:
        if line.turn in seen_turns:
            raise InputError(f"turn {line.turn} appears twice in conversation "
                             f"{conversation.cid!r}", source=source, line=number, field="turn")
        seen_turns.add(line.turn)
        pid = slug(line.speaker)
        if not pid:
            raise InputError(f"no persona id can be made from the speaker {line.speaker!r}",
                             source=source, line=number, field="speaker")
        if len(pid) > MAX_ID_LENGTH:
            raise InputError(f"the speaker's name makes a persona id of {len(pid)} characters; "
                             f"ids are at most {MAX_ID_LENGTH}", source=source, line=number,
                             field="speaker")
        owner = conversation.speaker_ids.setdefault(line.speaker, pid)
        clash = [name for name, other in conversation.speaker_ids.items()
                 if other == pid and name != line.speaker]
        if clash:
            raise InputError(f"speakers {clash[0]!r} and {line.speaker!r} make the same persona "
                             f"id {pid!r}", source=source, line=number, field="speaker")
        merged = attributes.setdefault(owner, {})
        for key, value in line.attributes.items():
            if merged.get(key, value) != value:
                raise InputError(f"{line.speaker!r} has {key}={merged[key]!r} on an earlier line",
                                 source=source, line=number, field=f"attributes.{key}")
            merged[key] = value
    for name, pid in conversation.speaker_ids.items():
        conversation.personas[pid] = Persona(id=pid, name=name, attributes=attributes[pid])


def _check_against(conversation: _Conversation, scenario: Scenario, source: Path) -> None:
    """With --scenario: every speaker must be one of its personas (by name or id)."""
    by_key = {p.name: p.id for p in scenario.personas} | {p.id: p.id for p in scenario.personas}
    for number, line in conversation.lines:
        pid = by_key.get(line.speaker) or by_key.get(slug(line.speaker))
        if pid is None:
            names = ", ".join(p.name for p in scenario.personas)
            raise InputError(f"speaker {line.speaker!r} is not a persona of scenario "
                             f"{scenario.id!r} ({names})", source=source, line=number,
                             field="speaker")
        conversation.speaker_ids[line.speaker] = pid
    conversation.personas = {p.id: p for p in scenario.personas}


def _resolve_decision(conversation: _Conversation, number: int, decision: dict[str, str],
                      task_ids: set[str] | None, source: Path) -> dict[str, str]:
    """Task id → persona id; the value may name a speaker or a persona id."""
    by_key = {name: pid for name, pid in conversation.speaker_ids.items()}
    by_key |= {p.name: p.id for p in conversation.personas.values()}
    by_key |= {pid: pid for pid in conversation.personas}
    value: dict[str, str] = {}
    for task, who in decision.items():
        if task_ids is not None and task not in task_ids:
            raise InputError(f"unknown task id {task!r} (tasks: {', '.join(sorted(task_ids))})",
                             source=source, line=number, field=f"decision.{task}")
        if task_ids is None:
            try:
                check_id(task, "task id")
            except ValueError as error:
                raise InputError(str(error), source=source, line=number,
                                 field=f"decision.{task}") from None
        pid = by_key.get(who) or by_key.get(slug(who))
        if pid is None:
            raise InputError(f"{who!r} is not a speaker of conversation {conversation.cid!r}",
                             source=source, line=number, field=f"decision.{task}")
        value[task] = pid
    return value


def _minimal_scenario(conversation: _Conversation, task_ids: list[str], rounds: int,
                      source: Path) -> Scenario:
    tasks = [Task(id=tid, text=f"Task {tid} (imported transcript; text unknown)")
             for tid in task_ids or ["t1"]]
    return Scenario(
        id=conversation.scenario_id, domain="imported",
        description=f"Imported conversation {conversation.cid} from {source.name}.",
        personas=tuple(conversation.personas.values()), tasks=tuple(tasks),
        protocol=DiscussionProtocol(rounds=min(rounds, 20), speaking_order="fixed"),
        source=f"imported transcript {source}", tags=("imported",))


def import_transcript(path: str | Path, out: str | Path,
                      scenario_path: str | Path | None = None,
                      judge: bool = True) -> TranscriptReport:
    """Validate a transcript, write it as a run folder at ``out`` and judge its decisions."""
    path, out = Path(path), Path(out)
    check_run_dir(out)
    shared = load_scenario(scenario_path) if scenario_path is not None else None
    conversations = _group(read_transcript(path))

    # Everything is checked and built in memory before the folder is made.
    decisions: dict[str, list[tuple[int, dict[str, str]]]] = {}
    scenarios: dict[str, Scenario] = {}
    notes: list[str] = []
    used_ids: set[str] = set()
    for conversation in conversations.values():
        if shared is not None:
            _check_against(conversation, shared, path)
            conversation.scenario_id = shared.id
        else:
            _speaker_personas(conversation, path)
            # Scenario ids must stay short (they become file names): long conversation ids are cut.
            base = slug(conversation.cid)[:MAX_ID_LENGTH - 20].strip("-_") or "conversation"
            sid, counter = f"imported-{base}", 1
            while sid in used_ids:
                counter += 1
                sid = f"imported-{base}-{counter}"
            used_ids.add(sid)
            conversation.scenario_id = sid
        task_ids = {t.id for t in shared.tasks} if shared is not None else None
        decisions[conversation.cid] = [
            (number, _resolve_decision(conversation, number, line.decision, task_ids, path))
            for number, line in conversation.lines if line.decision]
        seen = ([t.id for t in shared.tasks] if shared is not None else
                list(dict.fromkeys(t for _, value in decisions[conversation.cid] for t in value)))
        for number, value in decisions[conversation.cid]:
            # Judges expect complete decisions, as the runner's parser only makes those.
            missing = [t for t in seen if t not in value]
            if missing:
                raise InputError(f"a decision must assign every task of the conversation "
                                 f"(missing {', '.join(missing)})", source=path, line=number,
                                 field="decision")
        if shared is None:
            rounds = max((line.round or 0 for _, line in conversation.lines), default=0)
            scenarios[conversation.scenario_id] = _minimal_scenario(conversation, seen, rounds,
                                                                    path)
    if shared is not None:
        scenarios[shared.id] = shared
    total_decisions = sum(len(items) for items in decisions.values())
    if shared is None and not total_decisions:
        notes.append(NO_DECISIONS_NOTE)

    run_id = new_run_id()
    jobs = {cid: _job(c) for cid, c in conversations.items()}
    manifest = _manifest(run_id, path, scenarios, scenario_path, list(jobs.values()),
                         judged=bool(total_decisions and judge))
    store = RunStore.create(out, manifest, lock="agentsim import transcript")
    try:
        store.append(RunStarted(run_id=run_id, planned=len(conversations)))
        messages = 0
        for cid, conversation in conversations.items():
            job = jobs[cid]
            ids = {"run_id": run_id, "conversation_id": cid, "variant": job.variant,
                   "arm": job.arm, "replicate": job.replicate, "seed": job.seed}
            order = list(dict.fromkeys(conversation.speaker_ids[line.speaker]
                                       for _, line in conversation.lines))
            store.append(ConversationStarted(**ids, scenario_id=conversation.scenario_id,
                                             protocol=job.protocol, setting=job.setting,
                                             job=job.model_dump(), order=order))
            resolved = dict(decisions[cid])
            for number, line in conversation.lines:
                agent = conversation.speaker_ids[line.speaker]
                store.append(Message(**ids, turn=line.turn, agent=agent, speaker=line.speaker,
                                     phase=line.phase or "discussion", round=line.round,
                                     content=line.content))
                messages += 1
                if number in resolved:
                    rounds = line.round if line.round is not None else job.rounds
                    store.append(decision_event(
                        AssignmentDecision(assignments=resolved[number]), **ids,
                        turn=line.turn, agent=agent, phase=line.phase or "final",
                        round=rounds, parsed_by="json", raw=json.dumps(line.decision)))
            store.append(ConversationFinished(**ids, ok=True, turns=len(conversation.lines)))
        store.append(RunFinished(run_id=run_id, conversations=len(conversations), failed=0))
        store.close()
        results = None
        if total_decisions and judge:
            from agentsim.runs.judging import judge_run

            results = judge_run(out, ("assignment_bias",), store=store)
            notes += results["notes"]
        store.update_manifest(status="finished",
                              finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return TranscriptReport(out, len(conversations), messages, total_decisions, notes, results)
    finally:
        store.release()


def _job(conversation: _Conversation) -> ConversationJob:
    rounds = max((line.round or 0 for _, line in conversation.lines), default=0)
    return ConversationJob(scenario_id=conversation.scenario_id, protocol="discussion",
                           setting="interaction", rounds=rounds, speaking_order="fixed",
                           replicate=0, seed=0, variant=BASE_VARIANT.id, arm="none",
                           models={"default": IMPORTED_MODEL})


def _manifest(run_id: str, path: Path, scenarios: dict[str, Scenario],
              scenario_path: str | Path | None, jobs: list[ConversationJob],
              judged: bool) -> dict[str, Any]:
    where = str(scenario_path) if scenario_path is not None else f"{path} (generated)"
    return Manifest.new(
        run_id, source=f"imported transcript {path}",
        options={"model": IMPORTED_MODEL, "seed": 0}, models={"default": IMPORTED_MODEL},
        arms=["none"], seed=0,
        scenarios={sid: scenario_entry(where, s) for sid, s in scenarios.items()},
        variants={sid: [BASE_VARIANT.model_dump()] for sid in scenarios},
        jobs=jobs, judges=["assignment_bias"] if judged else []).to_json()
