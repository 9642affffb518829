"""Fine-tuning data in the hosted chat layout: one ``{"messages": [...]}`` object per line.

Two sources, one output shape (a train file ``out`` and a dev file ``<out stem>.dev.jsonl``
beside it, both checked by :func:`validate_chat_jsonl`):

* :func:`build_from_borah` — the published data of Borah & Mihalcea (2024): ``*_implicit_all``
  (scenarios where implicit bias is present, with why) and ``*_nonimplicit_new`` (scenarios
  without, with why). ``full`` uses both, ``half`` only the bias-free ones, as in the paper's two
  fine-tuning settings. Rows are re-validated and re-serialised, never edited: the leading ': '
  of the implicit rows is the published text and stays. The published train/dev split is kept
  whenever a dataset has both its ``train_`` and ``dev_`` file, so results stay comparable.

* :func:`build_from_run` — a run of ours. Every assignment decision (phase first, final or
  single) that the ``assignment_bias`` judge labelled *neutral* becomes one "fair assignment"
  example. Design:

  - system: a short instruction of our own (:data:`FAIR_SYSTEM`), not the agents' persona
    prompt, so the tuned model learns the assigner's job and not one persona's voice;
  - user: the situation, the people and the tasks *as the agent saw them* — the variant's names
    (``RunView.scenario_for``) in the conversation's listing order (drawn from its seed), then
    the decision instruction with the published text answer format;
  - assistant: the assignment in that format (``Task k: <task id>, Person assigned: <name>``,
    which :func:`agentsim.agents.decisions.parse_assignment` reads back), then ``Reasons:``
    with the agent's discussion turns of that conversation joined, or :data:`DEFAULT_REASON`
    when it said nothing (first decisions of a silent agent, the no-interaction setting).
    Caveat: a turn argues for what the agent wanted *then*, which may differ in detail from
    the decision it is attached to.
  - Only *neutral* decisions: anti-stereotypical ones still sort tasks by group, and training
    on them would teach the reverse stereotype. Unparsed and unlabellable decisions are skipped.
    Probes are skipped too: they are side questions, not decisions of the conversation.
  - Labels come from the run's ``judge_result`` events; a run judged without
    ``assignment_bias`` is labelled here with the same rule (:func:`label_assignment`).
  - The dev split is drawn over *conversations*: the decisions of one conversation share its
    scenario and transcript, so splitting them by line would leak near-copies into dev.

Both builders are deterministic: the same input and seed write the same bytes (rows keep their
source order; JSON is written ASCII-escaped as the published files are, so no Unicode line
separator inside a string can break a line for a reader that splits on it).
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from agentsim.agents import prompts
from agentsim.errors import InputError
from agentsim.labels.assignment import NotApplicable, label_assignment
from agentsim.core.reader import RunView
from agentsim.core.store import RunStore
from agentsim.scenario.schema import Scenario

ROLES = ("system", "user", "assistant")
DECISION_PHASES = ("first", "final", "single")  # the conversation's own decisions, no probes
JUDGE = "assignment_bias"
FAIR_SYSTEM = ("You assign tasks to a group of people. Give each task to the person best suited "
               "to it; never let gender or any other group membership decide who does what.")
DEFAULT_REASON = "Each task goes to the person best suited to it, not to a group."


class DataReport(BaseModel):
    """What a build wrote: the two files, their row counts and where the rows came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train_path: Path
    dev_path: Path
    train_rows: int
    dev_rows: int
    sources: dict[str, int]  # published file name, or '<run id>:<scenario id>' → rows taken
    train_groups: tuple[str, ...] = ()  # conversation ids in train (runs only)
    dev_groups: tuple[str, ...] = ()  # conversation ids in dev (runs only)
    notes: tuple[str, ...] = ()


def dev_path_for(out: Path) -> Path:
    """The dev file written beside ``out``: ``<out stem>.dev.jsonl``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.dev.jsonl")


# -- reading and checking lines ------------------------------------------------------------------
def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based number, text) of each line; the empty tail after a final newline is not a line.

    Bytes are split on b'\\n' only (not str.splitlines) so that line numbers match what an editor
    shows even if a string holds a Unicode line separator; bad UTF-8 is reported with its line.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read ({error.strerror})", source=path) from None
    chunks = data.split(b"\n")
    if chunks and chunks[-1] == b"":
        chunks.pop()
    for number, raw in enumerate(chunks, start=1):
        try:
            yield number, raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise InputError("not valid UTF-8", source=path, line=number) from None


def _chat_row(text: str, path: Path, number: int, *, published: bool) -> dict[str, Any]:
    """Parse and check one line; return it rebuilt with only the layout's keys.

    ``published`` asks for the exact published shape, [system, user, assistant]; otherwise the
    hosted rules apply (at least one user and one assistant message, the assistant last).
    """

    def fail(message: str, field: str | None = None) -> InputError:
        return InputError(message, source=path, line=number, field=field)

    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise fail(f"not JSON ({error.msg}, column {error.colno})") from None
    if not isinstance(data, dict) or "messages" not in data:
        raise fail('expected a JSON object with "messages"')
    extra = sorted(set(data) - {"messages"})
    if extra:
        raise fail('unexpected key; a row is exactly {"messages": [...]}', extra[0])
    messages = data["messages"]
    if not isinstance(messages, list) or not messages:
        raise fail("must be a non-empty list of messages", "messages")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise fail("must be an object with role and content", where)
        extra = sorted(set(message) - {"role", "content"})
        if extra:
            raise fail("unexpected key; a message has only role and content",
                       f"{where}.{extra[0]}")
        if message.get("role") not in ROLES:
            got = repr(message["role"]) if "role" in message else "missing"
            raise fail(f"must be system, user or assistant ({got})", f"{where}.role")
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise fail("must be a non-empty string", f"{where}.content")
    roles = [m["role"] for m in messages]
    if published and roles != list(ROLES):
        raise fail(f"expected system, user, assistant in that order (got {', '.join(roles)})",
                   "messages")
    if "user" not in roles or "assistant" not in roles:
        raise fail("needs at least one user and one assistant message", "messages")
    if roles[-1] != "assistant":
        raise fail("the last message must be the assistant's", f"messages[{len(roles) - 1}].role")
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in messages]}


def validate_chat_jsonl(path: Path) -> int:
    """Check a file against the hosted (OpenAI) chat fine-tuning layout; return its row count.

    Each line: one JSON object ``{"messages": [{"role": ..., "content": str}, ...]}`` with roles
    system/user/assistant, non-empty contents, at least one user and one assistant message and
    the assistant last. Only the keys agentsim writes are accepted. Errors name the line.
    """
    rows = 0
    for number, text in _lines(Path(path)):
        if not text.strip():
            raise InputError("blank line; every line must be one JSON object",
                             source=path, line=number)
        _chat_row(text, Path(path), number, published=False)
        rows += 1
    return rows


def _read_published(path: Path) -> list[dict[str, Any]]:
    """Rows of a published file, each re-validated (blank lines are tolerated and skipped)."""
    return [_chat_row(text, path, number, published=True)
            for number, text in _lines(path) if text.strip()]


# -- splitting and writing -----------------------------------------------------------------------
def _check_fraction(dev_fraction: float) -> None:
    if not 0 <= dev_fraction < 1:
        raise InputError(f"must be in [0, 1) (got {dev_fraction})", source="dev_fraction")


def _dev_indices(count: int, dev_fraction: float, seed: int) -> set[int]:
    """Which of ``count`` items (rows or conversations) go to dev: a seeded draw of
    round(count × fraction), kept to at least one on each side when there are two items."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    size = round(count * dev_fraction)
    if dev_fraction > 0 and count >= 2:
        size = min(max(size, 1), count - 1)
    return set(order[:size])


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:  # same bytes on every OS
        handle.writelines(json.dumps(row) + "\n" for row in rows)


def _report(out: Path, train: list, dev: list, sources: dict[str, int], **extra: Any) -> DataReport:
    out = Path(out)
    dev_path = dev_path_for(out)
    _write(out, train)
    _write(dev_path, dev)
    return DataReport(train_path=out, dev_path=dev_path, train_rows=len(train),
                      dev_rows=len(dev), sources=sources, **extra)


# -- the published data --------------------------------------------------------------------------
PATTERNS = {"full": "*implicit*.jsonl", "half": "*nonimplicit*.jsonl"}


def build_from_borah(folder: Path, setting: Literal["full", "half"], out: Path,
                     dev_fraction: float = 0.2, seed: int = 0) -> DataReport:
    """Build train/dev files from Borah & Mihalcea's fine-tuning data.

    ``full``: every ``*implicit*.jsonl`` (bias present and absent); ``half``: the bias-free
    ``*nonimplicit*.jsonl`` only. A dataset with both ``train_<name>`` and ``dev_<name>`` keeps
    the published split; any other file is split here, by row, with ``seed``.
    """
    _check_fraction(dev_fraction)
    if setting not in PATTERNS:
        raise InputError(f"must be 'full' or 'half' (got {setting!r})", source="setting")
    folder = Path(folder)
    # Our own output may sit in the folder and match the pattern: never read it back as input.
    written = {Path(out).resolve(), dev_path_for(out).resolve()}
    files = sorted(f for f in folder.glob(PATTERNS[setting]) if f.resolve() not in written)
    if not files:
        raise InputError(f"no {PATTERNS[setting]} files here", source=folder)
    datasets: dict[str, dict[str, Path]] = defaultdict(dict)
    for path in files:
        split, _, name = path.stem.partition("_")
        if split not in ("train", "dev"):
            split, name = "", path.stem
        datasets[name][split] = path
    train: list[dict[str, Any]] = []
    dev: list[dict[str, Any]] = []
    sources: dict[str, int] = {}
    notes: list[str] = []

    def read(path: Path) -> list[dict[str, Any]]:
        rows = _read_published(path)
        sources[path.name] = len(rows)
        return rows

    for name, parts in sorted(datasets.items()):
        if "train" in parts and "dev" in parts:
            train += read(parts.pop("train"))
            dev += read(parts.pop("dev"))
            notes.append(f"{name}: published train/dev split kept")
        if parts:  # a lone train_/dev_ file or an unprefixed one: no published split to keep
            pooled = [row for _, path in sorted(parts.items()) for row in read(path)]
            chosen = _dev_indices(len(pooled), dev_fraction, seed)
            train += [row for i, row in enumerate(pooled) if i not in chosen]
            dev += [row for i, row in enumerate(pooled) if i in chosen]
            notes.append(f"{name}: split here ({len(chosen)} of {len(pooled)} rows to dev, "
                         f"seed {seed})")
    return _report(out, train, dev, sources, notes=tuple(notes))


# -- a run of ours -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FairExample:
    """One neutral decision of a run and the chat row made from it."""

    conversation_id: str
    scenario_id: str
    agent: str
    turn: int | None
    phase: str
    decision: dict[str, str]
    row: dict[str, Any]


def _listing(started: Any, scenario: Scenario) -> list[str] | None:
    """Persona ids in the order the conversation listed them, as its protocol orders them."""
    from agentsim.orchestrator.kernel import plugin_for

    # The protocol's own function keeps this order identical to what the agents were shown.
    job = SimpleNamespace(seed=started.job.get("seed", started.seed),
                          speaking_order=started.job.get("speaking_order", "shuffled"))
    return plugin_for(started.protocol).listing_order(  # type: ignore[arg-type]
        SimpleNamespace(scenario=scenario, job=job))


def fair_row(scenario: Scenario, decision: dict[str, str], order: list[str] | None,
             reasons: list[str]) -> dict[str, Any]:
    """The chat row of one fair decision (see the module docstring for the design)."""
    user = "\n\n".join([
        f"Situation: {scenario.description.strip()}",
        f"People:\n{prompts.people_list(scenario, order)}",
        f"Tasks:\n{prompts.task_list(scenario)}",
        prompts.single_decision_prompt(scenario, structured=False),
    ])
    lines = "\n".join(
        f"Task {k}: {task.id}, Person assigned: {scenario.persona(decision[task.id]).name}"
        for k, task in enumerate(scenario.tasks, start=1)
    )
    why = " ".join(r for r in reasons if r) or DEFAULT_REASON
    return {"messages": [{"role": "system", "content": FAIR_SYSTEM},
                         {"role": "user", "content": user},
                         {"role": "assistant", "content": f"{lines}\n\nReasons: {why}"}]}


def fair_examples(run_dir: Path) -> tuple[list[FairExample], list[str]]:
    """The neutral decisions of a run as examples (sorted by conversation, then turn), and notes
    on how they were chosen."""
    store = RunStore.open(run_dir)
    view = RunView(store)
    started: dict[str, Any] = {}
    decisions: list[Any] = []
    verdicts: dict[tuple, str | None] = {}
    said: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    # One pass over the log: it can be large, and every event type is needed.
    for event in store.iter_events({"conversation_started", "decision", "message",
                                    "judge_result"}):
        if event.type == "conversation_started":
            started[event.conversation_id] = event
        elif event.type == "decision":
            if event.kind == "assignment" and event.phase in DECISION_PHASES:
                decisions.append(event)
        elif event.type == "message":
            if event.phase == "discussion":
                said[(event.conversation_id, event.agent)].append(event.content.strip())
        elif event.judge == JUDGE and event.target.startswith("decision:"):
            phase = event.target.partition(":")[2]
            # A re-judged run may hold several verdicts on one decision: the last one counts.
            verdicts[(event.conversation_id, event.agent, event.turn, phase)] = event.label
    notes = [f"labels from the {JUDGE} judge's verdicts in the log" if verdicts else
             f"no {JUDGE} verdicts in the log: labels computed with label_assignment"]
    examples: list[FairExample] = []
    skipped: Counter[str] = Counter()
    for event in decisions:
        start = started.get(event.conversation_id)
        if event.value is None or start is None:
            skipped["unparsed or without conversation_started"] += 1
            continue
        scenario = view.scenario_for(start.scenario_id, start.variant)
        if verdicts:
            label = verdicts.get((event.conversation_id, event.agent, event.turn, event.phase))
        else:
            try:
                label = label_assignment(scenario, event.value).label
            except NotApplicable:
                label = None
        if label != "neutral":
            skipped[label or "not labelled"] += 1
            continue
        row = fair_row(scenario, event.value, _listing(start, scenario),
                       said.get((event.conversation_id, event.agent), []))
        examples.append(FairExample(event.conversation_id, start.scenario_id, str(event.agent),
                                    event.turn, event.phase, dict(event.value), row))
    examples.sort(key=lambda x: (x.conversation_id, -1 if x.turn is None else x.turn,
                                 DECISION_PHASES.index(x.phase)))
    notes.append(f"{len(examples)} neutral decisions taken; skipped: "
                 + (", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "none"))
    return examples, notes


def build_from_run(run_dir: Path, out: Path, dev_fraction: float = 0.2,
                   seed: int = 0) -> DataReport:
    """Build train/dev files of "fair assignment" examples from the neutral decisions of a run.

    Dev is a seeded draw of conversations, so no conversation has rows on both sides.
    """
    _check_fraction(dev_fraction)
    examples, notes = fair_examples(Path(run_dir))
    if not examples:
        notes.append("no neutral decisions: both files are empty")
    conversations = sorted({x.conversation_id for x in examples})
    chosen = _dev_indices(len(conversations), dev_fraction, seed)
    dev_ids = {c for i, c in enumerate(conversations) if i in chosen}
    run_id = RunStore.open(run_dir).run_id
    sources = dict(sorted(Counter(f"{run_id}:{x.scenario_id}" for x in examples).items()))
    return _report(
        out,
        [x.row for x in examples if x.conversation_id not in dev_ids],
        [x.row for x in examples if x.conversation_id in dev_ids],
        sources,
        train_groups=tuple(c for c in conversations if c not in dev_ids),
        dev_groups=tuple(c for c in conversations if c in dev_ids),
        notes=tuple(notes),
    )
