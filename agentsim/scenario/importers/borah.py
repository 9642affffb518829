"""Import the scenarios of Borah & Mihalcea (2024) as agentsim scenario files.

The layout is detected from the CSV header:

* ``situations`` (column ``Scenarios``; the published ``situations.csv``, whose unnamed index column
  is ignored): each cell is free text "Scenario description and goal: …", a task header ("Tasks
  associated:", "Your tasks to assign characters to:", …) with tasks numbered ``1.`` or ``1)`` on
  separate lines or inline, then "Characters Involved: A, B, C, D".
* ``test-set`` (columns ``Scene`` and ``Characters``): ``Characters`` lists names with genders in
  brackets (``Jack (Male), Sarah (F)``); the four tasks are found in the prose of ``Scene``, either
  as a list numbered 1–4 or after a phrase such as "the tasks are:" as a list separated by commas
  or semicolons with a final "and".

Task coding follows the paper's convention, which neither file labels: of the four tasks in their
order, tasks 1–2 are coded ``gender: man`` and tasks 3–4 ``gender: woman``. Rows with other than
four tasks are skipped.

A character's gender comes from, in this order: the ``genders`` argument (full name or one of its
words, e.g. ``{"Alex": "man"}``), a bracket label (``(M)``, ``(Female)``), an honorific (Mr., Mrs.,
Ms., Miss) and the shipped list ``first_names.csv`` (any word of the name, so "Nurse Anna" is a
woman). Names borne by both genders (``UNISEX_NAMES``: Alex, Sam, Chris, …) are deliberately not
in the list: guessing them would inject the importer's own assumption into a bias measurement, so
such rows are skipped unless ``genders`` settles them. Role-only characters ("Surgeon") are skipped
too, as are rows that name one character twice.

Rows are numbered from 1 over data rows (row 1 is the first record after the header; in
situations.csv that is index 0). Every row that does not convert is listed in
``ImportReport.skipped`` with a reason ``"<code>: <detail>"`` whose code is a key of
``SKIP_REASONS``. Groups of other than one person per task are kept (the bias judge handles uneven
groups) with the goal sentence ``UNEVEN_GOAL`` instead of ``GOAL``.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from agentsim.errors import InputError
from agentsim.scenario.loader import dump_scenario, load_scenario
from agentsim.scenario.schema import Persona, Scenario, StereotypeLabel, Task

TASK_COUNT = 4
GOAL = "Goal: agree on who does which task; each person takes exactly one task."
UNEVEN_GOAL = "Goal: agree on who does which task; every task goes to exactly one person."
NAME_LIST = Path(__file__).with_name("first_names.csv")

SKIP_REASONS: dict[str, str] = {
    "empty-row": "the row has no scenario text",
    "no-tasks": "no task list was found",
    "task-count": "the task list does not hold exactly 4 non-empty tasks",
    "no-characters": "no character list was found",
    "duplicate-character": "two characters have the same name",
    "gender-unknown": "the gender of at least one character cannot be determined",
    "invalid-scenario": "the converted scenario does not validate",
}

# Names commonly borne by people of either gender; kept out of first_names.csv on purpose.
UNISEX_NAMES = frozenset(
    "alex ariel avery cameron casey charlie chris dana drew eden frankie jackie jamie jean jesse "
    "jordan jun kai kim lee leslie linh morgan noor pat peyton quinn reese riley robin rowan sage "
    "sam sasha shannon skyler taylor terry yuki".split()
)
_LABELS = {"m": "man", "male": "man", "man": "man", "boy": "man",
           "f": "woman", "female": "woman", "woman": "woman", "girl": "woman", "w": "woman"}
_HONORIFICS = {"mr": "man", "mister": "man", "mrs": "woman", "ms": "woman", "miss": "woman"}

# A list marker "1." / "1)" / "(1)" at a line start or after whitespace, ':' ',' or ';'.
_MARKER = re.compile(r"(?:^|(?<=[\s:,;]))\(?(\d{1,2})[.)](?=\s)", re.M)
# The header before a task list: the last clause mentioning "task(s)" and ending with ':'.
_TASK_HEADER = re.compile(r"[^\n.,:;!?]*\btasks?\b[^\n.,:;!?]*:\s*$", re.I)
# Prose introducing an unnumbered list: "the tasks are", "tasks include", "four tasks:".
_PROSE_LIST = re.compile(
    r"\btasks?\b[^.:;!?\n]{0,60}?(?::|\b(?:are|include|includes)\b:?)\s*", re.I
)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_CLAUSE_END = re.compile(r"[.!?;](?=\s|$)|\n")


@dataclass(frozen=True)
class ImportReport:
    """What one import did: files written and rows skipped as (1-based data row, reason)."""

    source: str
    layout: str
    written: list[Path]
    skipped: list[tuple[int, str]]

    @property
    def rows(self) -> int:
        """Number of data rows read."""
        return len(self.written) + len(self.skipped)

    def summary(self) -> str:
        """One line per outcome, e.g. for a command-line report."""
        converted = f"{len(self.written)} of {self.rows} rows converted"
        lines = [f"{self.source} ({self.layout}): {converted}"]
        lines += [f"  row {row}: {reason}" for row, reason in self.skipped]
        return "\n".join(lines)


class _Skip(Exception):
    """A row that cannot be converted; the message is the reported reason."""

    def __init__(self, code: str, detail: str) -> None:
        assert code in SKIP_REASONS, code
        super().__init__(f"{code}: {detail}")


@dataclass(frozen=True)
class _Character:
    name: str  # as the agents will read it, bracket label removed
    label: str | None  # the text in brackets, if any


@lru_cache(maxsize=1)
def first_names() -> dict[str, str]:
    """The shipped name list as {case-folded first name: 'man' | 'woman'}."""
    names: dict[str, str] = {}
    with NAME_LIST.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            name, gender = row["name"].strip().casefold(), row["gender"].strip()
            if gender not in {"man", "woman"} or names.get(name, gender) != gender:
                raise InputError(f"bad or conflicting entry {row}", source=NAME_LIST, line=line)
            names[name] = gender
    return names


def import_borah(path: Path, out_dir: Path, genders: dict[str, str] | None = None) -> ImportReport:
    """Convert every row of a Borah & Mihalcea CSV file into a scenario file in ``out_dir``.

    ``genders`` maps names (a full character name or one word of it) to ``man``/``woman`` and takes
    precedence over every other source. Each written file is loaded back and compared with what
    was meant to be written. Raises :class:`InputError` for an unreadable file or a header of
    neither layout; problems of single rows are reported in ``ImportReport.skipped``.
    """
    path, out_dir = Path(path), Path(out_dir)
    overrides = _normalise_overrides(genders)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise InputError(f"cannot read file ({error.strerror})", source=path) from None
    written: list[Path] = []
    skipped: list[tuple[int, str]] = []
    with handle:
        reader = csv.DictReader(handle)
        try:
            layout, columns = _detect_layout(reader.fieldnames or [], path)
            for number, record in enumerate(reader, start=1):
                cells = {key: (record.get(column) or "") for key, column in columns.items()}
                try:
                    scenario = _convert(layout, cells, number, path.name, overrides)
                except _Skip as skip:
                    skipped.append((number, str(skip)))
                    continue
                written.append(_write(scenario, out_dir))
        except csv.Error as error:
            raise InputError(f"malformed CSV: {error}", source=path, line=reader.line_num) from None
    return ImportReport(str(path), layout, written, skipped)


def _normalise_overrides(genders: dict[str, str] | None) -> dict[str, str]:
    overrides = {}
    for name, value in (genders or {}).items():
        gender = _LABELS.get(str(value).strip().casefold())
        if gender is None:
            raise InputError(
                f"gender {value!r} must be 'man' or 'woman'", source="genders", field=name
            )
        overrides[name.strip().casefold()] = gender
    return overrides


def _detect_layout(header: list[str], path: Path) -> tuple[str, dict[str, str]]:
    # Header names are matched loosely (case, surrounding spaces): spreadsheets vary in both.
    by_key = {name.strip().casefold(): name for name in header if name is not None}
    if "scenarios" in by_key:
        return "situations", {"text": by_key["scenarios"]}
    if "scene" in by_key and "characters" in by_key:
        return "test-set", {"text": by_key["scene"], "characters": by_key["characters"]}
    raise InputError(
        f"unrecognised header {header!r}: expected a 'Scenarios' column (situations layout) or "
        "'Scene' and 'Characters' columns (test-set layout)",
        source=path,
        line=1,
    )


def _convert(layout: str, cells: dict[str, str], number: int, file_name: str,
             overrides: dict[str, str]) -> Scenario:
    text = cells["text"].strip()
    if not text:
        raise _Skip("empty-row", "the scenario text is empty")
    if layout == "situations":
        description, tasks, characters = _parse_situation(text)
    else:
        description, tasks = _parse_scene(text)
        characters = _split_characters(cells["characters"])
    if len(tasks) != TASK_COUNT or not all(tasks):
        shown = " | ".join(task[:40] for task in tasks)
        raise _Skip("task-count", f"found {len(tasks)} tasks, expected {TASK_COUNT}: {shown}")
    if not characters:
        raise _Skip("no-characters", "the character list is empty")
    folded = [c.name.casefold() for c in characters]
    duplicates = sorted({c.name for c in characters if folded.count(c.name.casefold()) > 1})
    if duplicates:
        listed = ", ".join(map(repr, duplicates))
        raise _Skip("duplicate-character", f"{listed} listed more than once")
    resolved, problems = [], []
    for character in characters:
        gender, problem = _gender(character, overrides)
        resolved.append(gender)
        if problem:
            problems.append(problem)
    if problems:
        raise _Skip("gender-unknown", "; ".join(problems))
    personas, used = [], set()
    for character, gender in zip(characters, resolved, strict=True):
        persona_id = _unique_id(_slug(character.name), used)
        personas.append(Persona(id=persona_id, name=character.name, attributes={"gender": gender}))
    goal = GOAL if len(personas) == len(tasks) else UNEVEN_GOAL
    try:
        return Scenario(
            id=f"borah-{layout}-{number:03d}",
            domain=f"borah-{layout}",
            description=f"{description} {goal}".strip(),
            personas=tuple(personas),
            tasks=tuple(
                Task(id=f"t{index}", text=task, stereotype=StereotypeLabel(
                    attribute="gender", value="man" if index <= 2 else "woman"))
                for index, task in enumerate(tasks, start=1)
            ),
            source=f"Borah & Mihalcea 2024 ({file_name}, row {number})",
            tags=("borah", layout),
        )
    except ValidationError as error:
        raise _Skip("invalid-scenario", str(error).replace("\n", " ")) from None


def _write(scenario: Scenario, out_dir: Path) -> Path:
    target = dump_scenario(scenario, out_dir / f"{scenario.id}.yaml")
    # Round trip: a file that loads differently from what we meant is an importer bug, not a row.
    if load_scenario(target) != scenario:
        raise RuntimeError(f"{target}: scenario changed when loaded back")
    return target


def _parse_situation(text: str) -> tuple[str, list[str], list[_Character]]:
    marker = re.search(r"characters\s+involved\s*:", text, re.I)
    if marker is None:
        raise _Skip("no-characters", "no 'Characters Involved:' list")
    body = text[: marker.start()]
    body = re.sub(r"^\s*scenario description and goal\s*:\s*", "", body, flags=re.I)
    found = _numbered_items(body)
    if found is None:
        raise _Skip("no-tasks", "no tasks numbered 1., 2., … before 'Characters Involved:'")
    start, tasks = found
    description = _sentence(_TASK_HEADER.sub("", body[:start]))
    return description, tasks, _split_characters(text[marker.end():])


def _parse_scene(scene: str) -> tuple[str, list[str]]:
    found = _numbered_items(scene)
    if found is not None and len(found[1]) > 1:
        start, tasks = found
        # The last item runs to the end of the scene: keep its first sentence as the task and the
        # rest as narrative.
        last, _, after = _cut_sentence(tasks[-1])
        tasks[-1] = _clean_task(last)
        before = _TASK_HEADER.sub("", scene[:start])
        return _narrative(before, after, scene), tasks
    for match in _PROSE_LIST.finditer(scene):
        rest = scene[match.end():]
        listing, _, after = _cut_sentence(rest)
        items = _split_list(listing)
        if len(items) > 1:
            # Narrative = the sentences (or ';' clauses) around the one that holds the list.
            before = scene[: match.start()]
            cut = max((m.end() for m in _CLAUSE_END.finditer(before)), default=0)
            return _narrative(before[:cut], after, scene), items
    raise _Skip("no-tasks", "no numbered list and no 'tasks are/include/:' list in the scene")


def _numbered_items(text: str) -> tuple[int, list[str]] | None:
    """The first list numbered 1, 2, 3, … in ``text``: (offset of '1', cleaned items) or None."""
    chosen: list[re.Match[str]] = []
    for match in _MARKER.finditer(text):
        # Only the next number in sequence counts, so stray numbers in the prose are ignored.
        if int(match.group(1)) == len(chosen) + 1:
            chosen.append(match)
    if not chosen:
        return None
    ends = [m.start() for m in chosen[1:]] + [len(text)]
    return chosen[0].start(), [_clean_task(text[m.end(): end]) for m, end in zip(chosen, ends)]


def _split_list(text: str) -> list[str]:
    separator = ";" if ";" in text else ","
    parts = [part.strip() for part in text.split(separator) if part.strip()]
    if not parts:
        return []
    conjunction = re.match(r"(?:and|or)\s+(.*)$", parts[-1], re.I | re.S)
    if conjunction:  # "a, b, c, and d"
        parts[-1] = conjunction.group(1)
    else:  # "a, b, c and d": split the last item at its last conjunction
        pieces = re.split(r"\s+(?:and|&)\s+", parts[-1])
        if len(pieces) > 1:
            parts[-1:] = [" and ".join(pieces[:-1]), pieces[-1]]
    return [_clean_task(part) for part in parts]


def _clean_task(text: str) -> str:
    text = " ".join(text.split())
    text = re.sub(r"^task\s*\d+\s*[:.\-]\s*", "", text, flags=re.I)  # "1. Task 1: Adorning …"
    # Drop the "…, and" that joins an item to the next one in prose lists.
    text = re.sub(r"[\s,;]*(?:\b(?:and|or)\b)?[\s,;]*$", "", text)
    return text.strip()


def _cut_sentence(text: str) -> tuple[str, str, str]:
    end = _SENTENCE_END.search(text)
    if end is None:
        return text, "", ""
    return text[: end.start()], end.group(), text[end.end():]


def _sentence(text: str) -> str:
    text = " ".join(text.split()).strip(" ,;:")
    return text if not text or text[-1] in ".!?" else f"{text}."


def _narrative(before: str, after: str, scene: str) -> str:
    text = " ".join(part for part in (_sentence(before), _sentence(after)) if part)
    return text or _sentence(scene)


def _split_characters(text: str) -> list[_Character]:
    text = " ".join(text.split()).strip()
    if text.endswith(".") and not re.search(r"\b(?:mr|mrs|ms|dr)\.$", text, re.I):
        text = text[:-1]
    # Commas inside brackets ("(M, 45)") do not separate characters.
    parts = [p.strip() for p in re.split(r"[,;](?![^()\[\]]*[)\]])", text) if p.strip()]
    if parts:
        last = re.sub(r"^(?:and|&)\s+", "", parts[-1], flags=re.I)
        parts[-1:] = [p for p in re.split(r"\s+(?:and|&)\s+", last) if p]
    characters = []
    for part in parts:
        match = re.fullmatch(r"(.*?)\s*[(\[]([^)\]]*)[)\]]", part)
        name, label = (match.group(1), match.group(2)) if match else (part, None)
        if name.strip():
            characters.append(_Character(name.strip(), label))
    return characters


def _gender(character: _Character, overrides: dict[str, str]) -> tuple[str, str | None]:
    """(gender, None) or ("", why it cannot be determined)."""
    name = character.name
    words = re.findall(r"[^\W\d_][\w'\-]*", name)
    folded = [word.casefold() for word in words]
    for key in [name.casefold(), *reversed(folded)]:
        if key in overrides:
            return overrides[key], None
    if character.label is not None:
        gender = _LABELS.get(character.label.strip().rstrip(".").casefold())
        if gender is None:
            return "", f"{name!r}: unrecognised gender label {character.label!r}"
        return gender, None
    for word in folded:
        if word in _HONORIFICS:
            return _HONORIFICS[word], None
    names = first_names()
    found = {names[word] for word in folded if word in names}
    if len(found) == 1:
        return found.pop(), None
    if found:
        return "", f"{name!r}: its words are first names of both genders"
    unisex = [word for word, key in zip(words, folded) if key in UNISEX_NAMES]
    if unisex:
        return "", f"{name!r}: {unisex[0]!r} is a first name used for both genders"
    return "", f"{name!r}: no known first name, honorific or gender label"


def _slug(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-") or "person"


def _unique_id(base: str, used: set[str]) -> str:
    candidate, counter = base, 2
    while candidate in used:
        candidate, counter = f"{base}-{counter}", counter + 1
    used.add(candidate)
    return candidate
