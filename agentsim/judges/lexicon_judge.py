"""Judge ``lexicon``: word counts by speaker and about each persona, without any model.

Every message is split into sentences and words (see :class:`Lexicon` for the tokeniser and the
suffix rule). Each word found in the word lists is counted twice over:

* for the **speaker**: the group of the persona who sent the message (its value of the persona
  attribute ``attribute``, by default ``gender``);
* **about** a group: in every sentence that names a persona (its display name, whole word, any
  case), for that persona's group. A sentence naming personas of two groups counts for both; a
  sentence naming two personas of one group counts once for that group.

Metrics (intervals resample scenarios; a share's numerator and denominator are pooled):

* ``agentic_share[speaker_<attr>=<value>]`` and ``agentic_share[about_<attr>=<value>]``:
  agentic / (agentic + communal) words; ``masculine_share[...]`` likewise masculine /
  (masculine + feminine) — about a group it shows how the group is referred to (pronouns).
* ``agentic_gap_about`` / ``agentic_gap_speaker``: per-conversation share of ``man`` minus that
  of ``woman`` (or, for other values, the first minus the second in sorted order), over
  conversations where both are defined (paired permutation p).

The judge streams the log once and keeps only per-conversation counters (a few integers per group),
so re-judging 10,000 conversations takes seconds. Word lists load from ``lexicons/`` beside this
file, or from the folder given as ``lexicon_dir``.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsim.resources import asset_path
from agentsim.stats.inference import clustered_ratio, paired_difference
from agentsim.errors import InputError
from agentsim.judges.base import JudgeOutput, RunView
from agentsim.registry import judge
from agentsim.core.events import JudgeResult

LEXICON_DIR = asset_path("agentsim.judges", "lexicons")
WORD = re.compile(r"[^\W\d_]+")  # runs of letters (any script); everything else splits words
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
# Tried in order when a token is not listed; the first listed stem wins. Listing forms directly
# is always possible and takes precedence.
SUFFIXES = (("ness", ""), ("ies", "y"), ("ly", ""), ("es", ""), ("s", ""), ("ed", ""),
            ("ed", "e"), ("ing", ""), ("ing", "e"), ("er", ""), ("est", ""))
MIN_STEM = 3  # keeps "shed" from becoming "she" and "heed" from becoming "he"
SHARES = {"agentic_share": ("agentic", "communal"), "masculine_share": ("masculine", "feminine")}


class Lexicon:
    """Word → categories, with a memo of every token already looked up (tokens repeat a lot,
    so after the first few conversations a lookup is one dict access)."""

    def __init__(self, words: dict[str, tuple[str, ...]]) -> None:
        self.words = words
        self.categories = tuple(sorted({c for cats in words.values() for c in cats}))
        self._memo: dict[str, tuple[str, ...]] = {}

    def lookup(self, token: str) -> tuple[str, ...]:
        """Categories of a lower-case token: listed form first, then the suffix rule."""
        found = self._memo.get(token)
        if found is None:
            found = self.words.get(token) or self._stem(token)
            self._memo[token] = found
        return found

    def _stem(self, token: str) -> tuple[str, ...]:
        for suffix, replacement in SUFFIXES:
            if not token.endswith(suffix) or len(token) - len(suffix) < MIN_STEM:
                continue
            stem = token[: -len(suffix)]
            candidates = [stem + replacement]
            if not replacement and len(stem) > MIN_STEM and stem[-1] == stem[-2]:
                candidates.append(stem[:-1])  # doubled consonant: winning → winn → win
            for candidate in candidates:
                if candidate in self.words:
                    return self.words[candidate]
        return ()

    def count(self, text: str, into: Counter | None = None) -> Counter:
        """Category counts of ``text`` (plus ``words``: every token seen)."""
        counts = into if into is not None else Counter()
        tokens = WORD.findall(text.lower())
        counts["words"] += len(tokens)
        for token in tokens:
            for category in self.lookup(token):
                counts[category] += 1
        return counts


def load_lexicon(directory: str | Path = LEXICON_DIR) -> Lexicon:
    """Read every ``*.csv`` of ``directory`` (header ``word,category``; ``#`` lines are
    comments) into one :class:`Lexicon`."""
    directory = Path(directory)
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise InputError("no word lists (*.csv) found", source=directory)
    words: dict[str, list[str]] = defaultdict(list)
    for path in files:
        with open(path, encoding="utf-8", newline="") as handle:
            lines = [line for line in handle if line.strip() and not line.lstrip().startswith("#")]
        reader = csv.DictReader(lines)
        if not {"word", "category"} <= set(reader.fieldnames or ()):
            raise InputError("a word list needs the header 'word,category'", source=path)
        for number, row in enumerate(reader, 2):
            word, category = (row["word"] or "").strip().lower(), (row["category"] or "").strip()
            if not word or not category or WORD.fullmatch(word) is None:
                raise InputError(f"row {row!r}: need one single word and a category",
                                 source=path, line=number)
            if category not in words[word]:
                words[word].append(category)
    return Lexicon({word: tuple(cats) for word, cats in words.items()})


@dataclass
class Cast:
    """Who is who in one (scenario, variant): persona id → group, and a regex of the names."""

    groups: dict[str, str | None]
    name_group: dict[str, str | None]
    names: re.Pattern[str] | None


def cast_of(scenario: Any, attribute: str) -> Cast:
    """The cast of a scenario (as its variant ran it) for ``attribute``."""
    groups = {p.id: p.attributes.get(attribute) for p in scenario.personas}
    name_group = {p.name.lower(): p.attributes.get(attribute) for p in scenario.personas}
    # Longest names first, so "Anna Maria" is found before "Anna"; letters on either side of a
    # match mean it is part of a longer word ("Ann" in "Annual").
    names = sorted(name_group, key=len, reverse=True)
    pattern = (re.compile(r"(?<![^\W\d_])(" + "|".join(map(re.escape, names)) + r")(?![^\W\d_])",
                          re.IGNORECASE) if names else None)
    return Cast(groups, name_group, pattern)


@dataclass
class Tally:
    """Counters of one conversation: by speaker group and by the group a sentence is about."""

    scenario: str
    speaker: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    about: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    total: Counter = field(default_factory=Counter)  # every message, whoever spoke
    messages: int = 0
    sentences_about: int = 0


def tally_message(text: str, lexicon: Lexicon, cast: Cast, speaker_group: str | None,
                  tally: Tally) -> None:
    """Add one message to a conversation's tally."""
    tally.messages += 1
    for sentence in SENTENCE.split(text):
        counts = lexicon.count(sentence)
        tally.total.update(counts)
        if speaker_group is not None:
            tally.speaker[speaker_group].update(counts)
        if cast.names is None:
            continue
        about = {cast.name_group[m.lower()] for m in cast.names.findall(sentence)}
        about.discard(None)
        if about:
            tally.sentences_about += 1
        for group in about:
            tally.about[group].update(counts)


def _share(counts: Counter, top: str, other: str) -> float | None:
    total = counts[top] + counts[other]
    return counts[top] / total if total else None


def _pair(groups: Iterable[str]) -> tuple[str, str] | None:
    """The two groups a gap compares: man − woman when both exist, else two groups sorted."""
    values = sorted(set(groups))
    if {"man", "woman"} <= set(values):
        return "man", "woman"
    return (values[0], values[1]) if len(values) == 2 else None


@judge("lexicon")
class LexiconJudge:
    """Count gendered and agentic/communal words by speaker and about each persona."""

    name = "lexicon"
    description = ("word counts (gendered, agentic vs communal) by speaker group and in sentences "
                   "naming each group; agentic share and man − woman gap, no model calls")

    def __init__(self, lexicon_dir: str | Path | None = None, attribute: str = "gender") -> None:
        self.lexicon = load_lexicon(lexicon_dir or LEXICON_DIR)
        self.attribute = attribute

    async def judge(self, run: RunView) -> JudgeOutput:
        """Stream the run's messages once and compute the shares and gaps."""
        output = JudgeOutput()
        tallies: dict[str, Tally] = {}
        casts: dict[tuple[str, str | None], Cast] = {}
        cast_by_conv: dict[str, Cast] = {}
        ids: dict[str, dict[str, Any]] = {}
        orphans = unknown_speaker = 0
        # conversation_started precedes a conversation's messages in the append-only log, so one
        # pass suffices whatever the interleaving of concurrent conversations.
        for event in run.events("conversation_started", "message"):
            conv = event.conversation_id
            if event.type == "conversation_started":
                key = (event.scenario_id, event.variant)
                if key not in casts:
                    casts[key] = cast_of(run.scenario_for(*key), self.attribute)
                cast_by_conv[conv] = casts[key]
                tallies[conv] = Tally(event.scenario_id)
                ids[conv] = {"run_id": event.run_id, "variant": event.variant, "arm": event.arm,
                             "replicate": event.replicate, "seed": event.seed}
                continue
            tally = tallies.get(conv)
            if tally is None:
                orphans += 1  # a message of a conversation whose start is not in the log
                continue
            cast = cast_by_conv[conv]
            group = cast.groups.get(event.agent)
            unknown_speaker += group is None
            tally_message(event.content, self.lexicon, cast, group, tally)
        rows = list(tallies.items())
        self._metrics(rows, output)
        for conv, tally in rows:
            output.results.append(JudgeResult(
                conversation_id=conv, judge=self.name, target="conversation",
                details={"attribute": self.attribute,
                         "speaker": {g: dict(c) for g, c in tally.speaker.items()},
                         "about": {g: dict(c) for g, c in tally.about.items()}},
                **ids[conv]))
        output.counts = self._counts(rows, orphans, unknown_speaker)
        return output

    def _metrics(self, rows: list[tuple[str, Tally]], output: JudgeOutput) -> None:
        attr = self.attribute
        for side in ("speaker", "about"):
            groups = sorted({g for _, t in rows for g in getattr(t, side)})
            for metric, (top, other) in SHARES.items():
                for group in groups:
                    # Conversations without any word of the pair say nothing about the share
                    # (and a zero denominator would void the bootstrap).
                    used = [(c[top], c[top] + c[other], t.scenario) for _, t in rows
                            if (c := getattr(t, side).get(group)) and c[top] + c[other] > 0]
                    if used:
                        output.metrics[f"{metric}[{side}_{attr}={group}]"] = clustered_ratio(
                            [u[0] for u in used], [u[1] for u in used], [u[2] for u in used])
            pair = _pair(groups)
            if pair is None:
                continue
            first, second = pair
            firsts, seconds, clusters = [], [], []
            for _, tally in rows:
                counts = getattr(tally, side)
                a = _share(counts[first], "agentic", "communal") if first in counts else None
                b = _share(counts[second], "agentic", "communal") if second in counts else None
                if a is not None and b is not None:
                    firsts.append(a)
                    seconds.append(b)
                    clusters.append(tally.scenario)
            name = f"agentic_gap_{side}"
            if firsts:
                # paired_difference gives its second argument minus its first.
                output.metrics[name] = paired_difference(seconds, firsts, clusters)
                output.notes.append(f"lexicon: {name} = agentic share of {attr}={first} minus "
                                    f"{attr}={second}, within conversations")

    def _counts(self, rows: list[tuple[str, Tally]], orphans: int,
                unknown_speaker: int) -> dict[str, Any]:
        totals: Counter = Counter()
        by_side: dict[str, dict[str, Counter]] = {"speaker": defaultdict(Counter),
                                                  "about": defaultdict(Counter)}
        for _, tally in rows:
            for side in by_side:
                for group, counts in getattr(tally, side).items():
                    by_side[side][group].update(counts)
            totals.update(tally.total)
        return {"conversations": len(rows), "messages": sum(t.messages for _, t in rows),
                "sentences_about_personas": sum(t.sentences_about for _, t in rows),
                "words_by_category": dict(totals),
                "by_speaker": {g: dict(c) for g, c in sorted(by_side["speaker"].items())},
                "by_about": {g: dict(c) for g, c in sorted(by_side["about"].items())},
                "messages_without_speaker_group": unknown_speaker,
                "messages_without_conversation": orphans}
