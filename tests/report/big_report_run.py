"""A large run made cheaply: a small real run of the scripted model, its conversations copied
as further replicates into a new run folder (new ids, same events), then judged for real.

Every event of the copy is the project's own typed event (``model_copy`` of the small run's,
with the new conversation id and replicate), written as the store writes it; the manifest plans
every copied job. Model calls are left out of the copy: they hold the prompts, which are most
of a log's bytes and nothing the report shows but tokens.
"""

from __future__ import annotations

from pathlib import Path

from agentsim.core.events import ConversationStarted
from agentsim.core.jobs import ConversationJob
from agentsim.core.store import EVENTS, RunStore


def _copied(event, replicate: int, ids: dict[str, str]):
    """``event`` as it would be in replicate ``replicate`` (its conversation renamed)."""
    update = {"conversation_id": ids[event.conversation_id], "replicate": replicate}
    if isinstance(event, ConversationStarted):
        update["job"] = {**event.job, "replicate": replicate}
    return event.model_copy(update=update)


def copy_as_replicates(small: Path, out: Path, replicates: int) -> int:
    """Write ``out``: the conversations of run ``small`` repeated as ``replicates``
    replicates (replicate r of conversation c gets c's events); returns the number of
    conversations. The copy is not judged (``agentsim judge`` it)."""
    source = RunStore.open(small)
    manifest = source.read_manifest()
    jobs = [ConversationJob.model_validate(job) for job in manifest["jobs"]]
    conversation_events = []
    run_events = []
    for event in source.iter_events():
        if event.type in ("model_call", "judge_result"):
            continue
        if event.conversation_id is None:
            run_events.append(event)
        else:
            conversation_events.append(event)
    out.mkdir(parents=True)
    store = RunStore(out)
    copies = [job.model_copy(update={"replicate": r}) for r in range(replicates) for job in jobs]
    manifest = {**manifest, "run_id": out.name, "jobs": [j.model_dump(mode="json")
                                                         for j in copies],
                "options": {**manifest["options"], "replicates": replicates}}
    store.write_manifest(manifest)
    start = next(e for e in run_events if e.type == "run_started")
    finish = next(e for e in run_events if e.type == "run_finished")
    with open(out / EVENTS, "w", encoding="utf-8") as handle:
        handle.write(start.model_copy(update={"run_id": out.name, "planned": len(copies)})
                     .model_dump_json(exclude_none=True) + "\n")
        for r in range(replicates):
            ids = {job.conversation_id: job.model_copy(update={"replicate": r}).conversation_id
                   for job in jobs}
            for event in conversation_events:
                copied = _copied(event, r, ids).model_copy(update={"run_id": out.name})
                handle.write(copied.model_dump_json(exclude_none=True) + "\n")
        handle.write(finish.model_copy(update={
            "run_id": out.name, "conversations": len(copies)}).model_dump_json(
                exclude_none=True) + "\n")
    return len(copies)
