"""Choosing where a scene's clauses are cut and building the four task texts from the pieces
(rules 5 and 6 of :mod:`agentsim.importers.borah_prose`): the weak cuts ("and", list commas)
that split the sentences evenly and join parallel phrases win, then each piece without a verb
of its own gets the head, a gerund or the auxiliary carried over.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from agentsim.importers.borah_prose_words import (
    AUX,
    DETERMINERS,
    FIXED_PAIRS,
    ING_NOUNS,
    IRREGULAR,
    MAX_CANDIDATES,
    NEED,
    NOT_PARTICIPLES,
    PARTICLES,
    PREPOSITIONS,
    PRONOUNS,
    RELATIVE,
    TASK_COUNT,
    clean,
)

__all__ = ["Clause", "build_tasks", "choose_cuts", "unused_list_items"]


@dataclass
class Clause:
    """One clause of a scene, with the weak cuts it may be split at."""

    sentence: int
    text: str
    start: int  # offset where weak cuts may begin (the end of the clause's own head, or 0)
    end: int  # offset where the tasks end (before a tail predicate)
    head: str | None  # carried to pieces without a verb of their own
    carry_first: bool  # the first piece too (the head came from an earlier clause)
    cands: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, kind)


# -- choosing the cuts -----------------------------------------------------------------------

def choose_cuts(clauses: list[Clause],
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


def _score(clauses: list[Clause], choice: tuple[tuple[int, tuple[int, int, str]], ...]) -> float:
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


def _pieces(clause: Clause, cuts: list[tuple[int, int, str]]) -> list[str]:
    """The texts between cuts, the first one without the clause's own head."""
    bounds = [clause.start, *[x for a, b, _ in cuts for x in (a, b)], clause.end]
    return [clause.text[bounds[i]: bounds[i + 1]].strip(" ,;")
            for i in range(0, len(bounds), 2)]


def _kind(text: str) -> str:
    words = text.split()
    first = words[0].casefold().strip("\"'(") if words else ""
    if first in DETERMINERS or first.endswith(("'s", "’s")):
        return "det"
    if first == "to":
        return "to"
    if first in PRONOUNS:
        return "pron"
    if first == "there":
        return "there"
    if first.endswith("ing") and len(first) > 4:
        second = words[1].casefold() if len(words) > 1 else ""
        if first not in ING_NOUNS or second in DETERMINERS or second in PARTICLES:
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
    if left_words and right_words and f"{left_words[-1]}-{right_words[0]}" in FIXED_PAIRS:
        score -= 4
    if kind == "and" and re.search(r"\b(?:between|both)\b(?:\s+\S+){0,5}$", left, re.I):
        score -= 5
    verb = NEED.match(right)
    if verb is not None and verb.group("verb"):
        score -= 3  # "… is outdated and needs a new design": one subject, one task
    return score


def unused_list_items(clauses: list[Clause],
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
    match = NEED.search(text)
    if match and not match.group("part") and not RELATIVE.search(text[: match.start()]):
        return True
    aux = AUX.search(text)
    return bool(aux and not RELATIVE.search(text[: aux.start()]))


def build_tasks(clauses: list[Clause], cuts: dict[int, list[tuple[int, int, str]]]) -> list[str]:
    """The task texts of the clauses cut at ``cuts``, in prose order."""
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
                tasks.append(clean(text))
                continue
            if not _own_verb(piece):
                if clause.head and len(first_body.split()) == 1 and _kind(first_body) == "ger":
                    # "The roof needs fixing and the gutters clearing"
                    tasks.append(clean(_gap(clause.head, piece, gerund=True)))
                    continue
                if _kind(first_body) == "ger" and _kind(piece) in {"det", "bare"}:
                    piece = f"{_gerund_prefix(first_body)} {piece}"
                if clause.head:
                    piece = _carry(clause.head, piece)
            tasks.append(clean(piece))
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
    need = NEED.search(head)
    if not spots or need is None:
        return _carry(head, piece) if gerund else piece
    at = spots[-1]
    aux = head[need.start():].split()
    subject = words[:at]
    before_prep = next((i for i, w in enumerate(subject) if w.casefold() in PREPOSITIONS),
                       len(subject))
    noun = subject[before_prep - 1].casefold() if before_prep else ""
    plural = noun.endswith("s") and not noun.endswith(("ss", "us", "is"))
    forms = {"needs": "need", "has": "have", "is": "are"} if plural else \
        {"need": "needs", "have": "has", "are": "is"}
    aux[0] = forms.get(aux[0].casefold(), aux[0])
    return " ".join([*subject, *aux, *words[at:]])


def _participle(word: str) -> bool:
    word = word.casefold().strip(",.;")
    if word in NOT_PARTICIPLES:
        return False
    return word in IRREGULAR or (word.endswith("ed") and len(word) > 4)


def _gerund_prefix(text: str) -> str:
    words = text.split()
    prefix = words[:1]
    if len(words) > 2 and words[1].casefold() in PARTICLES:
        prefix.append(words[1])
    return " ".join(prefix)
