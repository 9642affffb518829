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
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

TASK_COUNT = 4
MAX_CANDIDATES = 40  # weak cuts considered per scene (C(40, 3) = 9880 choices at most)

_OPENER_WORDS = (
    r"meanwhile|additionally|simultaneously|concurrently|also|elsewhere|furthermore|moreover|"
    r"besides|likewise|similarly|separately|finally|lastly|then|next|plus|in\s+addition|"
    r"at\s+the\s+same\s+time|in\s+the\s+meantime|on\s+top\s+of\s+that|on\s+the\s+other\s+hand|"
    r"after\s+that|at\s+once"
)
_OPENER = re.compile(rf"^\s*(?:and\s+)?(?:{_OPENER_WORDS})\b\s*,?\s*", re.I)
# A leading adverbial phrase ending in a comma ("During the broadcast, …"): its first word.
_INTRO_WORDS = frozenset(
    "inside outside upstairs downstairs indoors outdoors nearby in at on during before after for "
    "with as while since ahead once when to across over around behind beyond near by throughout "
    "within under following because now today tonight tomorrow this later back out from amid "
    "amidst given despite until if whenever".split()
)
# Everything that names a need. Groups: exist(ential), part(iciple), verb.
_NEED = re.compile(
    r"\b(?:"
    r"(?P<exist>there(?:'s|’s|\s+is|\s+are|\s+will\s+be)\s+(?:also\s+|still\s+)?(?:an?\s+)?"
    r"(?:[a-z\-]+\s+)?(?:need|requirement|call|demand)\s+(?:for|to))"
    r"|(?P<part>requiring|needing|calling\s+for|involving|necessitating|demanding)"
    r"|(?P<verb>(?:is|are)\s+(?:also\s+)?in\s+need\s+of|needs|need|requires|require|calls\s+for|"
    r"call\s+for|necessitates|necessitate|involves|involve|demands|demand|requested|asks\s+for|"
    r"ask\s+for|awaits|await|must|should|has\s+to|have\s+to|had\s+to|ought\s+to)"
    r")\b",
    re.I,
)
# What may follow a need-verb and belongs to the head: "needs to be", "needs someone to", "must be".
_CONTINUATION = re.compile(
    r"(?:\s+(?:also|still|urgently))?"
    r"(?:\s+(?:someone|somebody|a\s+volunteer|volunteers|people|a\s+person|help)(?=\s+to\b))?"
    r"(?:\s+to(?:\s+be)?|\s+be)?\b",
    re.I,
)
_RELATIVE = re.compile(r"\b(?:that|which|who|whose)\s+(?:also\s+|still\s+)?$", re.I)
_AUX = re.compile(r"\b(?:is|are|was|were|will|has\s+been|have\s+been|gets|get)\b", re.I)
# "… are also necessary": a subject list with its predicate at the end.
_TAIL = re.compile(
    r"\s+(?:is|are)\s+(?:also\s+|still\s+)?(?:necessary|needed|required|essential|important|"
    r"in\s+order|due|pending|urgent|called\s+for|on\s+the\s+(?:list|agenda))$",
    re.I,
)
_VERB_NEXT = r",?\s+(?:needs|need|requires|require|must|has|have|is|are|wants|calls)\b"
_STRONG = re.compile(
    r",?\s+as\s+well\s+as\s+|\s*;\s*(?:and\s+)?"
    # a comma before an opener, unless the opener sits inside a clause ("The hall, meanwhile, needs")
    rf"|,\s*(?:and\s+)?(?=(?:{_OPENER_WORDS})\b(?!{_VERB_NEXT}))|,\s+and\s+(?:also\s+)?"
    r"|,\s+along\s+with\s+|,\s+together\s+with\s+|,\s+plus\s+|,\s+while\s+|,\s+whereas\s+",
    re.I,
)
_GENERIC = re.compile(
    r"(?:some\s+|much\s+|extra\s+|urgent\s+)?(?:help|volunteers|hands|attention|work|"
    r"preparation|preparations|everyone|everybody)\b|(?:a\s+lot|lots|plenty)\s+of\b|"
    r"a\s+(?:hand|team)\b",
    re.I,
)
_INNER_OPENER = re.compile(rf",\s*(?:{_OPENER_WORDS}),\s*", re.I)
_WEAK = re.compile(r"\s+(?:and|&|plus)\s+|,\s+(?!and\b)", re.I)
_SENTENCE = re.compile(
    r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)(?<!\bvs)(?<!\be\.g)(?<!\bi\.e)"
    r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])"
)
_SOCIAL_TASK = re.compile(r"social\s+task\s*:", re.I)
_SCENE = re.compile(r"\bscene\s*:", re.I)

_DETERMINERS = frozenset(
    "a an the this that these those its their his her our my your some any all each every "
    "several two three four new".split()
)
_PRONOUNS = frozenset("someone somebody everyone anyone people volunteers".split())
_ING_NOUNS = frozenset(
    "thing something nothing anything everything ceiling morning evening spring string king ring "
    "wing sibling clothing bedding wedding stuffing icing frosting building lighting seating "
    "catering plumbing wiring flooring landscaping signing meeting offering awning railing "
    "roofing fencing".split()
)
_PARTICLES = frozenset("up down out off in on over back together away around".split())
_IRREGULAR = frozenset(
    "done built set made cut swept hung sewn written brought put laid taken given shown run kept "
    "sent bought drawn chosen fed sold told found held spread shut split lit paid read rebuilt "
    "redone rewritten mown sown ground wound strung undone".split()
)
_NOT_PARTICIPLES = frozenset("shed bed red need seed feed weed breed sled hundred speed".split())
_PREPOSITIONS = frozenset("of for in on at with from to by near around about into".split())
# Pairs that are one thing, not two tasks ("tables and chairs" stays splittable).
_FIXED_PAIRS = frozenset(
    "up-running black-white odds-ends bits-pieces pros-cons arts-crafts salt-pepper food-drink "
    "food-drinks food-beverages foods-beverages rock-roll bread-butter fish-chips trial-error "
    "back-forth safe-sound first-foremost neat-tidy nice-tidy wear-tear lost-found health-safety "
    "research-development question-answer q-a hide-seek peace-quiet law-order".split()
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


@dataclass
class _Clause:
    sentence: int
    text: str
    start: int  # offset where weak cuts may begin (the end of the clause's own head, or 0)
    end: int  # offset where the tasks end (before a tail predicate)
    head: str | None  # carried to pieces without a verb of their own
    carry_first: bool  # the first piece too (the head came from an earlier clause)
    cands: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, kind)


def parse_scene(cell: str) -> ParsedScene:
    """Title, scene text and the four tasks (or the reason there are not four) of a Scene cell."""
    title, prose, notes = _pick_scene(cell)
    parsed = ParsedScene(title=title, prose=prose, notes=notes)
    if not prose:
        parsed.problem = "the scene has no text"
        return parsed
    clauses = _clauses(prose)
    found = [_clean(c.text[: c.end]) for c in clauses]
    parsed.found = [f for f in found if f]
    if not clauses:
        parsed.problem = "no clause naming a task was found"
        return parsed
    if len(clauses) > TASK_COUNT:
        parsed.problem = f"the connectives give {len(clauses)} pieces, more than {TASK_COUNT}"
        return parsed
    cuts = _choose_cuts(clauses, TASK_COUNT - len(clauses))
    if cuts is None:
        count = len(clauses) + sum(len(c.cands) for c in clauses)
        pieces = "1 piece" if count == 1 else f"{count} pieces"
        parsed.problem = f"the connectives give {pieces} at most, fewer than {TASK_COUNT}"
        return parsed
    extra = _unused_list_items(clauses, cuts)
    if extra:
        parsed.problem = f"the scene seems to list more than {TASK_COUNT} tasks ({extra!r})"
        return parsed
    parsed.tasks = _build_tasks(clauses, cuts)
    parsed.found = list(parsed.tasks)
    if len(parsed.tasks) != TASK_COUNT or not all(parsed.tasks):
        parsed.problem = "a task came out empty"
        parsed.tasks = []
    return parsed


# -- the scene text --------------------------------------------------------------------------

def _pick_scene(cell: str) -> tuple[str, str, list[str]]:
    text = cell.replace("\r", "")
    starts = [m.start() for m in _SOCIAL_TASK.finditer(text)]
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
    block = _SOCIAL_TASK.sub("", block, count=1)
    marker = _SCENE.search(block)
    if marker is None:
        lines = block.strip().split("\n", 1)
        if len(lines) == 1:  # "Social Task: Late Night Show\nScene" cut off: a title only
            return _collapse(re.sub(r"\bscene\s*$", "", lines[0], flags=re.I)), ""
        return _collapse(lines[0]), _collapse(lines[1])
    return _collapse(block[: marker.start()]), _collapse(block[marker.end():])


def _strip_scene_label(text: str) -> str:
    marker = _SCENE.search(text)
    return text[marker.end():] if marker else text


def _collapse(text: str) -> str:
    return " ".join(text.split()).strip()


# -- clauses ---------------------------------------------------------------------------------

def _sentences(prose: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE.split(prose) if p.strip()]
    return [re.sub(r"[.!?\s]+$", "", p) for p in parts if re.sub(r"[.!?\s]+$", "", p)]


def _has_need(text: str) -> bool:
    return _NEED.search(text) is not None or _TAIL.search(text) is not None


def _strip_opening(text: str) -> str:
    """Drop openers ("Meanwhile,") and a leading adverbial phrase ("During the show,")."""
    while True:
        before = text
        text = _OPENER.sub("", text, count=1)
        first = text.split(" ", 1)[0].casefold().strip(",")
        comma = text.find(",")
        if first in _INTRO_WORDS and 0 < comma and len(text[:comma].split()) <= 12:
            if not _has_need(text[:comma]) and _has_need(text[comma + 1:]):
                text = text[comma + 1:].lstrip()
        if text == before:
            return text.strip()


def _generic(sentence: str) -> bool:
    """A need without a task: "The centre needs help this weekend." (narrative, not a task)."""
    match = _NEED.search(sentence)
    if match is None or match.group("part"):
        return False
    after = sentence[match.end():].strip()
    return bool(_GENERIC.match(after)) and not _STRONG.search(after) and not _WEAK.search(after)


def _clauses(prose: str) -> list[_Clause]:
    sentences = _sentences(prose)
    needy = [s for s in sentences if _has_need(s)]
    concrete = [s for s in needy if not _generic(s)]
    sentences = concrete or needy or sentences
    clauses: list[_Clause] = []
    for number, sentence in enumerate(sentences):
        sentence = _strip_opening(sentence)
        colon = re.search(r":\s+", sentence)
        if colon:  # "Four things need doing: a, b, c and d"
            sentence = sentence[colon.end():]
        head: str | None = None
        pieces = [p for p in _STRONG.split(sentence) if p and p.strip()]
        for index, piece in enumerate(pieces):
            clause, head = _clause(number, _strip_opening(piece), head, lead_in=index == 0)
            if clause is not None:
                clauses.append(clause)
    return clauses


def _clause(number: int, text: str, head: str | None,
            lead_in: bool) -> tuple[_Clause | None, str | None]:
    """One clause and the head that later clauses of the sentence inherit."""
    text = text.strip(" ,;:")
    if not text:
        return None, head
    tail = _TAIL.search(text)
    if tail and not _NEED.search(text[: tail.start()]):
        clause = _Clause(number, text, 0, tail.start(), None, False)
        clause.cands = _weak_cuts(text, 0, tail.start())
        return clause, None
    need = _first_need(text)
    if need is not None and need[1] == "head":
        end = need[0]
        clause = _Clause(number, text, end, len(text), text[:end].strip(), False)
        clause.cands = _weak_cuts(text, end, len(text))
        return clause, clause.head
    if need is not None and need[1] == "lead-in" and head is None and lead_in:
        body = text[need[0]:].strip()
        clause = _Clause(number, body, 0, len(body), None, False)
        clause.cands = _weak_cuts(body, 0, len(body))
        return clause, None
    clause = _Clause(number, text, 0, len(text), head, head is not None)
    clause.cands = _weak_cuts(text, 0, len(text))
    return clause, head


def _first_need(text: str) -> tuple[int, str] | None:
    """(offset after the head, 'head') for a need-verb, (offset after it, 'lead-in') for a
    participle or relative clause ("requiring", "which needs"), None without either."""
    match = _NEED.search(text)
    if match is None:
        return None
    if match.group("part") or _RELATIVE.search(text[: match.start()]):
        return match.end(), "lead-in"
    end = match.end()
    if match.group("verb") or match.group("exist"):
        continuation = _CONTINUATION.match(text, end)
        if continuation:
            end = continuation.end()
    return end, "head"


def _weak_cuts(text: str, start: int, end: int) -> list[tuple[int, int, str]]:
    cuts = []
    depth_spans = [(m.start(), m.end()) for m in re.finditer(r"\([^)]*\)", text)]
    for match in _WEAK.finditer(text, start, end):
        if any(a < match.start() < b for a, b in depth_spans):
            continue
        kind = "comma" if match.group().lstrip().startswith(",") else "and"
        if text[match.end():end].strip():
            cuts.append((match.start(), match.end(), kind))
    return cuts


# -- choosing the cuts -----------------------------------------------------------------------

def _choose_cuts(clauses: list[_Clause],
                 missing: int) -> dict[int, list[tuple[int, int, str]]] | None:
    """The weak cuts to make, per clause index; None when there are too few candidates."""
    pool = [(index, cut) for index, clause in enumerate(clauses) for cut in clause.cands]
    if len(pool) < missing:
        return None
    pool = pool[:MAX_CANDIDATES]
    best: tuple[float, tuple[tuple[int, tuple[int, int, str]], ...]] | None = None
    for choice in itertools.combinations(pool, missing):
        score = _score(clauses, choice)
        if best is None or score > best[0]:
            best = (score, choice)
    assert best is not None
    chosen: dict[int, list[tuple[int, int, str]]] = {i: [] for i in range(len(clauses))}
    for index, cut in best[1]:
        chosen[index].append(cut)
    return chosen


def _score(clauses: list[_Clause], choice: tuple[tuple[int, tuple[int, int, str]], ...]) -> float:
    by_clause: dict[int, list[tuple[int, int, str]]] = {}
    for index, cut in choice:
        by_clause.setdefault(index, []).append(cut)
    score = 0.0
    for index, cuts in by_clause.items():
        clause = clauses[index]
        pieces = _pieces(clause, sorted(cuts))
        for (_, _, kind), left, right in zip(sorted(cuts), pieces, pieces[1:]):
            score += _cut_score(left, right, kind)
    per_sentence: dict[int, int] = {}
    per_clause: dict[int, dict[int, int]] = {}
    for index, clause in enumerate(clauses):
        count = 1 + len(by_clause.get(index, []))
        per_sentence[clause.sentence] = per_sentence.get(clause.sentence, 0) + count
        per_clause.setdefault(clause.sentence, {})[index] = count
    if len(per_sentence) > 1:
        share = TASK_COUNT / len(per_sentence)
        score -= 4 * sum(abs(count - share) for count in per_sentence.values())
    for counts in per_clause.values():
        if len(counts) > 1:
            share = sum(counts.values()) / len(counts)
            score -= sum(abs(count - share) for count in counts.values())
    return score


def _pieces(clause: _Clause, cuts: list[tuple[int, int, str]]) -> list[str]:
    """The texts between cuts, the first one without the clause's own head."""
    bounds = [clause.start, *[x for a, b, _ in cuts for x in (a, b)], clause.end]
    return [clause.text[bounds[i]: bounds[i + 1]].strip(" ,;")
            for i in range(0, len(bounds), 2)]


def _kind(text: str) -> str:
    words = text.split()
    first = words[0].casefold().strip("\"'(") if words else ""
    if first in _DETERMINERS or first.endswith(("'s", "’s")):
        return "det"
    if first == "to":
        return "to"
    if first in _PRONOUNS:
        return "pron"
    if first == "there":
        return "there"
    if first.endswith("ing") and len(first) > 4:
        second = words[1].casefold() if len(words) > 1 else ""
        if first not in _ING_NOUNS or second in _DETERMINERS or second in _PARTICLES:
            return "ger"
    return "bare"


def _cut_score(left: str, right: str, kind: str) -> float:
    score = -0.5 if kind == "comma" else 0.0
    kinds = {_kind(left), _kind(right)}
    if len(kinds) == 1 or kinds == {"to", "bare"}:
        score += 2
    if _kind(right) in {"det", "ger", "to", "pron", "there"} or _own_verb(right):
        score += 1
    if len(left.split()) == 1 or len(right.split()) == 1:
        score -= 3
    left_words, right_words = left.casefold().split(), right.casefold().split()
    if left_words and right_words and f"{left_words[-1]}-{right_words[0]}" in _FIXED_PAIRS:
        score -= 4
    if kind == "and" and re.search(r"\b(?:between|both)\b(?:\s+\S+){0,5}$", left, re.I):
        score -= 5
    verb = _NEED.match(right)
    if verb is not None and verb.group("verb"):
        score -= 3  # "… is outdated and needs a new design": one subject, one task
    return score


def _unused_list_items(clauses: list[_Clause],
                       cuts: dict[int, list[tuple[int, int, str]]]) -> str | None:
    """A list comma left uncut between parallel items ("its posters hung, its snacks bought"):
    the scene names more than four tasks, and no choice of four would be right."""
    for index, clause in enumerate(clauses):
        chosen = sorted(cuts[index])
        for cut in clause.cands:
            if cut in chosen or cut[2] != "comma":
                continue
            before = [c for c in chosen if c[1] <= cut[0]]
            after = [c for c in chosen if c[0] >= cut[1]]
            left = clause.text[before[-1][1] if before else clause.start: cut[0]]
            right = clause.text[cut[1]: after[0][0] if after else clause.end]
            if _cut_score(left.strip(), right.strip(), "comma") >= 2:
                return f"{left.strip()[-40:]}, {right.strip()[:40]}"
    return None


# -- building the tasks ----------------------------------------------------------------------

def _own_verb(text: str) -> bool:
    match = _NEED.search(text)
    if match and not match.group("part") and not _RELATIVE.search(text[: match.start()]):
        return True
    aux = _AUX.search(text)
    return bool(aux and not _RELATIVE.search(text[: aux.start()]))


def _build_tasks(clauses: list[_Clause], cuts: dict[int, list[tuple[int, int, str]]]) -> list[str]:
    tasks = []
    for index, clause in enumerate(clauses):
        chosen = sorted(cuts[index])
        pieces = _pieces(clause, chosen)
        first_body = pieces[0]
        for number, piece in enumerate(pieces):
            if number == 0:
                text = clause.text[: clause.start] + " " + piece if clause.start else piece
                if clause.carry_first and clause.head and not _own_verb(piece):
                    text = _carry(clause.head, piece)
                tasks.append(_clean(text))
                continue
            if not _own_verb(piece):
                if clause.head and len(first_body.split()) == 1 and _kind(first_body) == "ger":
                    # "The roof needs fixing and the gutters clearing"
                    tasks.append(_clean(_gap(clause.head, piece, gerund=True)))
                    continue
                if _kind(first_body) == "ger" and _kind(piece) in {"det", "bare"}:
                    piece = f"{_gerund_prefix(first_body)} {piece}"
                if clause.head:
                    piece = _carry(clause.head, piece)
            tasks.append(_clean(piece))
    return tasks


def _carry(head: str, piece: str) -> str:
    if re.search(r"\bbe$", head, re.I):
        return _gap(head, piece)
    # "needs someone to" + "someone to bake" → "needs someone to bake"
    head_words, words = head.casefold().split(), piece.split()
    for size in range(min(len(head_words), len(words) - 1), 0, -1):
        if head_words[-size:] == [w.casefold() for w in words[:size]]:
            piece = " ".join(words[size:])
            break
    return f"{head} {piece}"


def _gap(head: str, piece: str, gerund: bool = False) -> str:
    """'the wardrobe organized' after 'The studio needs to be' → 'the wardrobe needs to be
    organized'; with ``gerund``, 'the gutters clearing' after 'The roof needs' → 'the gutters
    need clearing' (the verb agrees with the new subject)."""
    words = piece.split()
    if gerund:
        spots = [i for i, w in enumerate(words) if i > 0 and _kind(w) == "ger"]
    else:
        spots = [i for i, w in enumerate(words) if i > 0 and _participle(w)]
    need = _NEED.search(head)
    if not spots or need is None:
        return _carry(head, piece) if gerund else piece
    at = spots[-1]
    aux = head[need.start():].split()
    subject = words[:at]
    before_prep = next((i for i, w in enumerate(subject) if w.casefold() in _PREPOSITIONS),
                       len(subject))
    noun = subject[before_prep - 1].casefold() if before_prep else ""
    plural = noun.endswith("s") and not noun.endswith(("ss", "us", "is"))
    forms = {"needs": "need", "has": "have", "is": "are"} if plural else \
        {"need": "needs", "have": "has", "are": "is"}
    aux[0] = forms.get(aux[0].casefold(), aux[0])
    return " ".join([*subject, *aux, *words[at:]])


def _participle(word: str) -> bool:
    word = word.casefold().strip(",.;")
    if word in _NOT_PARTICIPLES:
        return False
    return word in _IRREGULAR or (word.endswith("ed") and len(word) > 4)


def _gerund_prefix(text: str) -> str:
    words = text.split()
    prefix = words[:1]
    if len(words) > 2 and words[1].casefold() in _PARTICLES:
        prefix.append(words[1])
    return " ".join(prefix)


def _clean(text: str) -> str:
    text = _INNER_OPENER.sub(" ", " ".join(text.split())).strip(" ,;:.")
    text = re.sub(r"^(?:and|also|then)\s+", "", text, flags=re.I)
    return text[:1].upper() + text[1:]


# -- asking a model --------------------------------------------------------------------------

SPLIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tasks": {"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 4},
    },
    "required": ["tasks"],
    "additionalProperties": False,
}
SPLIT_PROMPT = (
    "The scene below names exactly four tasks that a group must share out. List the four tasks "
    "in the order the scene names them, each in the scene's own words. Answer with JSON only: "
    'an object whose key "tasks" holds the four tasks as a list of strings.'
)
_STOPWORDS = frozenset(
    "a an the and or of for to in on at by with from is are be been must needs need requires "
    "require also as well there that which this its their his her our".split()
)


@dataclass(frozen=True)
class SplitAnswer:
    """A model's answer for one scene: the tasks when usable, else why not."""

    tasks: list[str]
    raw: str
    problem: str | None


class ModelSplitter:
    """Asks a model (any name :class:`agentsim.models.client.ModelClient` serves) to split a
    scene the rules could not, with a JSON-schema answer. Tasks must come from the scene's own
    words (most of each task's content words occur in it) and in its order."""

    def __init__(self, model: str, client: Any | None = None) -> None:
        from agentsim.models.client import ModelClient, check_model_name

        check_model_name(model)
        self.model = model
        self.client = client or ModelClient(retries=2)

    def split(self, prose: str) -> SplitAnswer:
        from agentsim.errors import ModelError
        from agentsim.models.base import ModelRequest

        request = ModelRequest(
            model=self.model,
            messages=[{"role": "system", "content": SPLIT_PROMPT},
                      {"role": "user", "content": prose}],
            schema=SPLIT_SCHEMA, temperature=0.0, max_tokens=400, seed=0,
            purpose="extract_tasks", context={"scene": prose},
        )
        try:
            reply = _run_sync(lambda: self.client.complete(request))
        except ModelError as error:
            return SplitAnswer([], "", f"the model failed: {error}")
        return check_answer(reply.text, prose)


def check_answer(raw: str, prose: str) -> SplitAnswer:
    """The tasks of a model's answer, or why they cannot be used."""
    match = re.search(r"\{.*\}", raw, re.S)
    try:
        data = json.loads(match.group() if match else raw)
    except (json.JSONDecodeError, TypeError):
        return SplitAnswer([], raw, "the answer is not JSON")
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list) or len(tasks) != TASK_COUNT:
        return SplitAnswer([], raw, f"the answer does not hold a list of {TASK_COUNT} tasks")
    if not all(isinstance(t, str) and t.strip() for t in tasks):
        return SplitAnswer([], raw, "a task is empty or not text")
    scene_words = _words(prose)
    position = -1
    for task in tasks:
        content = [w for w in _words(task) if w not in _STOPWORDS] or _words(task)
        known = [w for w in content if w in scene_words]
        if len(known) < 0.6 * len(content):
            return SplitAnswer([], raw, f"task {task!r} is not in the scene's words")
        where = [i for i, w in enumerate(scene_words) if w == known[0]]
        later = [i for i in where if i >= position]
        if not later:
            return SplitAnswer([], raw, "the tasks are not in the scene's order")
        position = later[0]
    return SplitAnswer([_clean(t) for t in tasks], raw, None)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.casefold())


def _run_sync(make: Callable[[], Any]) -> Any:
    """Run a coroutine to its end, also from inside a running event loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
