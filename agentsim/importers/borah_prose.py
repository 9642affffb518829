"""The four tasks of a prose scene of Borah & Mihalcea's test set, found by rules (no model).

A ``Scene`` cell reads ``Social Task: <title>`` then ``Scene:`` and one or two sentences that name
four tasks, e.g. "The warehouse needs its shelving bolted down and the forklift serviced.
Meanwhile, the break room needs new curtains, and the birthday list must be brought up to date."
The rules, in order:

1. A cell holding several ``Social Task:`` blocks (two scenes glued together) keeps the last
   complete one (its scene ends a sentence) and says so in a note.
2. The scene is cut into sentences; a sentence that names no need ("needs", "requires", "must",
   "there is a need for", "... are also necessary", …) is narrative when another one does.
3. An opener ("Meanwhile,", "Additionally,", "At the same time,", "Inside,", …) and a leading
   adverbial phrase ("During the broadcast,") are set aside; so is the narrative before a
   participle or relative clause that introduces the tasks ("…, requiring", "which requires") or a
   colon.
4. Strong connectives cut clauses: ';', ', and', 'as well as', ', along with', ', plus', ', while',
   a comma before an opener. Each clause's *head* is its text up to the need-verb ("The warehouse
   needs", "A camp needs to", "The studio needs to be").
5. If that gives fewer than four pieces, the missing cuts are chosen among ' and ' and list
   commas after the heads: the choice that splits the sentences evenly (two sentences: two tasks
   each), joins parallel phrases ("the X and the Y", "setting up … and arranging …") and leaves no
   one-word piece wins; ties go to the leftmost cut.
6. A piece without its own verb gets the head carried over ("the forklift serviced" → "The
   warehouse needs the forklift serviced"), a gerund carried from its neighbour ("setting up a
   stage and sound system" → "setting up sound system"), or, after a passive head, the auxiliary
   ("the studio needs to be cleaned and the wardrobe organized" → "The wardrobe needs to be
   organized").

Tasks are returned in prose order; the importer codes the first two as male-coded and the last two
as female-coded (the paper's convention). When the rules do not find exactly four tasks,
:func:`parse_scene` says why and the importer may ask a model (:class:`ModelSplitter`).

The scene text and its clauses (rules 1 to 4) are read here; the words and patterns are in
:mod:`agentsim.importers.borah_prose_words`, the cuts and the task texts (rules 5 and 6) in
:mod:`agentsim.importers.borah_prose_tasks`, the model's split in
:mod:`agentsim.importers.borah_prose_model` (re-exported here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agentsim.importers.borah_prose_model import (  # noqa: F401  (the model's split)
    SPLIT_PROMPT,
    SPLIT_SCHEMA,
    ModelSplitter,
    SplitAnswer,
    check_answer,
)
from agentsim.importers.borah_prose_tasks import (
    Clause,
    build_tasks,
    choose_cuts,
    unused_list_items,
)
from agentsim.importers.borah_prose_words import (  # noqa: F401  (MAX_CANDIDATES, for callers)
    CONTINUATION,
    GENERIC,
    INTRO_WORDS,
    MAX_CANDIDATES,
    NEED,
    OPENER,
    RELATIVE,
    SCENE,
    SENTENCE,
    SOCIAL_TASK,
    STRONG,
    TAIL,
    TASK_COUNT,
    WEAK,
    clean,
)


@dataclass
class ParsedScene:
    """What the rules made of one Scene cell."""

    title: str
    prose: str  # the scene kept, whitespace collapsed
    tasks: list[str] = field(default_factory=list)  # exactly four, or empty when ``problem``
    problem: str | None = None  # why the rules did not find four tasks
    notes: list[str] = field(default_factory=list)  # glued scenes and the like
    found: list[str] = field(default_factory=list)  # the pieces the rules did find


def parse_scene(cell: str) -> ParsedScene:
    """Title, scene text and the four tasks (or the reason there are not four) of a Scene cell."""
    title, prose, notes = _pick_scene(cell)
    parsed = ParsedScene(title=title, prose=prose, notes=notes)
    if not prose:
        parsed.problem = "the scene has no text"
        return parsed
    clauses = _clauses(prose)
    found = [clean(c.text[: c.end]) for c in clauses]
    parsed.found = [f for f in found if f]
    if not clauses:
        parsed.problem = "no clause naming a task was found"
        return parsed
    if len(clauses) > TASK_COUNT:
        parsed.problem = f"the connectives give {len(clauses)} pieces, more than {TASK_COUNT}"
        return parsed
    cuts = choose_cuts(clauses, TASK_COUNT - len(clauses))
    if cuts is None:
        count = len(clauses) + sum(len(c.cands) for c in clauses)
        pieces = "1 piece" if count == 1 else f"{count} pieces"
        parsed.problem = f"the connectives give {pieces} at most, fewer than {TASK_COUNT}"
        return parsed
    extra = unused_list_items(clauses, cuts)
    if extra:
        parsed.problem = f"the scene seems to list more than {TASK_COUNT} tasks ({extra!r})"
        return parsed
    parsed.tasks = build_tasks(clauses, cuts)
    parsed.found = list(parsed.tasks)
    if len(parsed.tasks) != TASK_COUNT or not all(parsed.tasks):
        parsed.problem = "a task came out empty"
        parsed.tasks = []
    return parsed


# -- the scene text --------------------------------------------------------------------------

def _pick_scene(cell: str) -> tuple[str, str, list[str]]:
    text = cell.replace("\r", "")
    starts = [m.start() for m in SOCIAL_TASK.finditer(text)]
    notes: list[str] = []
    if not starts:
        return "", _collapse(_strip_scene_label(text)), notes
    blocks = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)])]
    if starts[0] > 0 and text[: starts[0]].strip():
        blocks.insert(0, text[: starts[0]])
    parsed = [_title_and_scene(block) for block in blocks]
    if len(parsed) == 1:
        return parsed[0][0], parsed[0][1], notes
    complete = [i for i, (_, scene) in enumerate(parsed) if re.search(r"[.!?]['\"]?$", scene)]
    filled = [i for i, (_, scene) in enumerate(parsed) if scene]
    chosen = (complete or filled or [len(parsed) - 1])[-1]
    dropped = [_collapse(blocks[i]) for i in range(len(blocks)) if i != chosen]
    notes.append(
        f"{len(blocks)} scenes glued together in one cell; kept the complete one "
        f"({parsed[chosen][0]!r}), dropped " + ", ".join(repr(d[:80]) for d in dropped)
    )
    return parsed[chosen][0], parsed[chosen][1], notes


def _title_and_scene(block: str) -> tuple[str, str]:
    block = SOCIAL_TASK.sub("", block, count=1)
    marker = SCENE.search(block)
    if marker is None:
        lines = block.strip().split("\n", 1)
        if len(lines) == 1:  # "Social Task: Late Night Show\nScene" cut off: a title only
            return _collapse(re.sub(r"\bscene\s*$", "", lines[0], flags=re.I)), ""
        return _collapse(lines[0]), _collapse(lines[1])
    return _collapse(block[: marker.start()]), _collapse(block[marker.end():])


def _strip_scene_label(text: str) -> str:
    marker = SCENE.search(text)
    return text[marker.end():] if marker else text


def _collapse(text: str) -> str:
    return " ".join(text.split()).strip()


# -- clauses ---------------------------------------------------------------------------------

def _sentences(prose: str) -> list[str]:
    parts = [p.strip() for p in SENTENCE.split(prose) if p.strip()]
    return [re.sub(r"[.!?\s]+$", "", p) for p in parts if re.sub(r"[.!?\s]+$", "", p)]


def _has_need(text: str) -> bool:
    return NEED.search(text) is not None or TAIL.search(text) is not None


def _strip_opening(text: str) -> str:
    """Drop openers ("Meanwhile,") and a leading adverbial phrase ("During the show,")."""
    while True:
        before = text
        text = OPENER.sub("", text, count=1)
        first = text.split(" ", 1)[0].casefold().strip(",")
        comma = text.find(",")
        if first in INTRO_WORDS and 0 < comma and len(text[:comma].split()) <= 12:
            if not _has_need(text[:comma]) and _has_need(text[comma + 1:]):
                text = text[comma + 1:].lstrip()
        if text == before:
            return text.strip()


def _generic(sentence: str) -> bool:
    """A need without a task: "The centre needs help this weekend." (narrative, not a task)."""
    match = NEED.search(sentence)
    if match is None or match.group("part"):
        return False
    after = sentence[match.end():].strip()
    return bool(GENERIC.match(after)) and not STRONG.search(after) and not WEAK.search(after)


def _clauses(prose: str) -> list[Clause]:
    sentences = _sentences(prose)
    needy = [s for s in sentences if _has_need(s)]
    concrete = [s for s in needy if not _generic(s)]
    sentences = concrete or needy or sentences
    clauses: list[Clause] = []
    for number, sentence in enumerate(sentences):
        sentence = _strip_opening(sentence)
        colon = re.search(r":\s+", sentence)
        if colon:  # "Four things need doing: a, b, c and d"
            sentence = sentence[colon.end():]
        head: str | None = None
        pieces = [p for p in STRONG.split(sentence) if p and p.strip()]
        for index, piece in enumerate(pieces):
            clause, head = _clause(number, _strip_opening(piece), head, lead_in=index == 0)
            if clause is not None:
                clauses.append(clause)
    return clauses


def _clause(number: int, text: str, head: str | None,
            lead_in: bool) -> tuple[Clause | None, str | None]:
    """One clause and the head that later clauses of the sentence inherit."""
    text = text.strip(" ,;:")
    if not text:
        return None, head
    tail = TAIL.search(text)
    if tail and not NEED.search(text[: tail.start()]):
        clause = Clause(number, text, 0, tail.start(), None, False)
        clause.cands = _weak_cuts(text, 0, tail.start())
        return clause, None
    need = _first_need(text)
    if need is not None and need[1] == "head":
        end = need[0]
        clause = Clause(number, text, end, len(text), text[:end].strip(), False)
        clause.cands = _weak_cuts(text, end, len(text))
        return clause, clause.head
    if need is not None and need[1] == "lead-in" and head is None and lead_in:
        body = text[need[0]:].strip()
        clause = Clause(number, body, 0, len(body), None, False)
        clause.cands = _weak_cuts(body, 0, len(body))
        return clause, None
    clause = Clause(number, text, 0, len(text), head, head is not None)
    clause.cands = _weak_cuts(text, 0, len(text))
    return clause, head


def _first_need(text: str) -> tuple[int, str] | None:
    """(offset after the head, 'head') for a need-verb, (offset after it, 'lead-in') for a
    participle or relative clause ("requiring", "which needs"), None without either."""
    match = NEED.search(text)
    if match is None:
        return None
    if match.group("part") or RELATIVE.search(text[: match.start()]):
        return match.end(), "lead-in"
    end = match.end()
    if match.group("verb") or match.group("exist"):
        continuation = CONTINUATION.match(text, end)
        if continuation:
            end = continuation.end()
    return end, "head"


def _weak_cuts(text: str, start: int, end: int) -> list[tuple[int, int, str]]:
    cuts = []
    depth_spans = [(m.start(), m.end()) for m in re.finditer(r"\([^)]*\)", text)]
    for match in WEAK.finditer(text, start, end):
        if any(a < match.start() < b for a, b in depth_spans):
            continue
        kind = "comma" if match.group().lstrip().startswith(",") else "and"
        if text[match.end():end].strip():
            cuts.append((match.start(), match.end(), kind))
    return cuts
