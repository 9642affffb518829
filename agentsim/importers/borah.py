"""Import the scenarios of Borah & Mihalcea (2024) as agentsim scenario files.

The layout is detected from the CSV header:

* ``situations`` (column ``Scenarios``; the published ``situations.csv``, whose unnamed index column
  is ignored): each cell is free text "Scenario description and goal: …", a task header ("Tasks
  associated:", "Your tasks to assign characters to:", …) with tasks numbered ``1.`` or ``1)`` on
  separate lines or inline, then "Characters Involved: A, B, C, D".
* ``test-set`` (columns ``Scene`` and ``Characters``, the layout the published discussion code
  reads): ``Scene`` is ``Social Task: <title>`` then ``Scene:`` and prose naming four tasks, split
  without a model by :mod:`agentsim.importers.borah_prose` (a numbered list 1–4 is read
  too); ``Characters`` lists names with genders in brackets (``Jack (Male), Sarah (F)``); text
  after the last bracketed character is dropped and noted. With ``extract_model`` a model is asked
  to split a scene the rules could not (its answer is logged in ``ImportReport.notes``).

Task coding follows the paper's convention, which neither file labels: of the four tasks in prose
order, tasks 1–2 are coded ``gender: man`` and tasks 3–4 ``gender: woman``. Rows with other than
four tasks are skipped.

A character's gender comes from, in this order: the ``genders`` argument (full name or one of its
words, e.g. ``{"Alex": "man"}``; ``--gender NAME=VALUE`` on the command line), a bracket label
(``(M)``, ``(Female)``, any case), an honorific (Mr., Mrs., Ms., Miss) and the shipped list
``first_names.csv`` (any word of the name, so "Nurse Anna" is a woman). Names borne by both
genders (``UNISEX_NAMES``: Alex, Sam, Chris, …) are deliberately not in the list. Such a name
gets a gender only when the design forces it: the people with names split evenly between men and
women (leaving out a teacher addressed by honorific and surname when that makes the count even)
and the others already fill one half — a note says ``inferred from design``; otherwise the row is
skipped. A role without a name ("Coach Williams", "the teacher", "Instructor") is kept as a
persona without a coded gender; a row in which nobody has a gender is skipped, as is a row that
names one character twice.

Rows are numbered from 1 over data rows (row 1 is the first record after the header; in
situations.csv that is index 0). Every row that does not convert is listed in
``ImportReport.skipped`` with a reason ``"<code>: <detail>"`` whose code is a key of
``SKIP_REASONS``; what the importer decided for rows it converted is in ``ImportReport.notes``.
Groups of other than one person per task are kept (the bias judge handles uneven groups) with the
goal sentence ``UNEVEN_GOAL`` instead of ``GOAL``.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

from pydantic import ValidationError

from agentsim.errors import InputError
from agentsim.importers.borah_people import (
    INFERRED,
    LABELS,
    ROLE_WORDS,
    UNISEX_NAMES,
    Character,
    GenderProblem,
    drop_stray,
    resolve_genders,
    split_characters,
)
from agentsim.importers.borah_prose import ModelSplitter, parse_scene
from agentsim.scenario.import_report import ImportReport
from agentsim.scenario.names import NAME_LIST, first_names
from agentsim.scenario.loader import dump_scenario, load_scenario
from agentsim.scenario.schema import (
    Persona,
    Scenario,
    StereotypeLabel,
    Task,
    metric_problems,
)

TASK_COUNT = 4
GOAL = "Goal: agree on who does which task; each person takes exactly one task."
UNEVEN_GOAL = "Goal: agree on who does which task; every task goes to exactly one person."
__all__ = ["GOAL", "INFERRED", "NAME_LIST", "ROLE_WORDS", "SKIP_REASONS", "UNEVEN_GOAL",
           "UNISEX_NAMES", "ImportReport", "first_names", "import_borah"]

SKIP_REASONS: dict[str, str] = {
    "empty-row": "the row has no scenario text",
    "no-tasks": "no task list was found",
    "task-count": "the task list does not hold exactly 4 non-empty tasks",
    "no-characters": "no character list was found",
    "duplicate-character": "two characters have the same name",
    "gender-unknown": "the gender of at least one character cannot be determined",
    "invalid-scenario": "the converted scenario does not validate",
}


# A list marker "1." / "1)" / "(1)" at a line start or after whitespace, ':' ',' or ';'.
_MARKER = re.compile(r"(?:^|(?<=[\s:,;]))\(?(\d{1,2})[.)](?=\s)", re.M)
# The header before a task list: the last clause mentioning "task(s)" and ending with ':'.
_TASK_HEADER = re.compile(r"[^\n.,:;!?]*\btasks?\b[^\n.,:;!?]*:\s*$", re.I)


class _Skip(Exception):
    """A row that cannot be converted; the message is the reported reason."""

    def __init__(self, code: str, detail: str) -> None:
        assert code in SKIP_REASONS, code
        super().__init__(f"{code}: {detail}")


def import_borah(path: Path, out_dir: Path, genders: dict[str, str] | None = None,
                 extract_model: str | None = None) -> ImportReport:
    """Convert every row of a Borah & Mihalcea CSV file into a scenario file in ``out_dir``.

    ``genders`` maps names (a full character name or one word of it) to ``man``/``woman`` and takes
    precedence over every other source. ``extract_model`` names a model asked to split a test-set
    scene the rules could not (default: rules only). Each written file is loaded back and
    compared with what was meant to be written. Raises :class:`InputError` for an unreadable file
    or a header of neither layout; problems of single rows are reported in
    ``ImportReport.skipped``.
    """
    path, out_dir = Path(path), Path(out_dir)
    overrides = _normalise_overrides(genders)
    splitter = ModelSplitter(extract_model) if extract_model else None
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise InputError(f"cannot read file ({error.strerror})", source=path) from None
    written: list[Path] = []
    skipped: list[tuple[int, str]] = []
    notes: list[tuple[int, str]] = []
    with handle:
        reader = csv.DictReader(handle)
        try:
            layout, columns = _detect_layout(reader.fieldnames or [], path)
            for number, record in enumerate(reader, start=1):
                cells = {key: (record.get(column) or "") for key, column in columns.items()}
                row_notes: list[str] = []
                try:
                    scenario = _convert(layout, cells, number, path.name, overrides,
                                        splitter, row_notes)
                except _Skip as skip:
                    skipped.append((number, str(skip)))
                    continue
                written.append(_write(scenario, out_dir))
                notes += [(number, note) for note in row_notes]
        except csv.Error as error:
            raise InputError(f"malformed CSV: {error}", source=path, line=reader.line_num) from None
    return ImportReport(str(path), layout, written, skipped, notes)


def _normalise_overrides(genders: dict[str, str] | None) -> dict[str, str]:
    overrides = {}
    for name, value in (genders or {}).items():
        gender = LABELS.get(str(value).strip().casefold())
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
             overrides: dict[str, str], splitter: ModelSplitter | None,
             notes: list[str]) -> Scenario:
    text = cells["text"].strip()
    if not text:
        raise _Skip("empty-row", "the scenario text is empty")
    if layout == "situations":
        description, tasks, characters = _parse_situation(text)
    else:
        description, tasks = _parse_scene(text, splitter, notes)
        characters = split_characters(drop_stray(cells["characters"], notes))
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
    try:
        resolved = resolve_genders(characters, overrides, notes)
    except GenderProblem as problem:
        raise _Skip("gender-unknown", str(problem)) from None
    personas, used = [], set()
    for character, gender in zip(characters, resolved, strict=True):
        persona_id = _unique_id(_slug(character.name), used)
        attributes = {"gender": gender} if gender else {}
        personas.append(Persona(id=persona_id, name=character.name, attributes=attributes))
    goal = GOAL if len(personas) == len(tasks) else UNEVEN_GOAL
    try:
        scenario = Scenario(
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
            # The cell as published: the borah2024 preset's prompts quote it verbatim ({i}).
            source_text=text,
            tags=("borah", layout),
        )
    except ValidationError as error:
        raise _Skip("invalid-scenario", str(error).replace("\n", " ")) from None
    problems = metric_problems(scenario)
    if problems:  # what `agentsim validate` checks beyond the schema
        raise _Skip("invalid-scenario", "; ".join(f"{where}: {why}" for where, why in problems))
    return scenario


def _write(scenario: Scenario, out_dir: Path) -> Path:
    target = dump_scenario(scenario, out_dir / f"{scenario.id}.yaml")
    # Round trip: a file that loads differently from what we meant is an importer bug, not a row.
    if load_scenario(target) != scenario:
        raise RuntimeError(f"{target}: scenario changed when loaded back")
    return target


def _parse_situation(text: str) -> tuple[str, list[str], list[Character]]:
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
    return description, tasks, split_characters(text[marker.end():])


def _parse_scene(text: str, splitter: ModelSplitter | None,
                 notes: list[str]) -> tuple[str, list[str]]:
    scene = parse_scene(text)
    notes += scene.notes
    description = " ".join(p for p in (_sentence(scene.title), scene.prose) if p)
    numbered = _numbered_items(scene.prose)
    if numbered is not None and len(numbered[1]) > 1:  # a list numbered 1, 2, … in the scene
        start, tasks = numbered
        tasks[-1] = re.split(r"(?<=[.!?])\s", tasks[-1], maxsplit=1)[0].rstrip(".!? ")
        return description, tasks
    if scene.problem is None:
        return description, scene.tasks
    found = "found: " + (" | ".join(f[:60] for f in scene.found) or "nothing")
    if splitter is None:
        raise _Skip("task-count", f"the rules could not split the scene into {TASK_COUNT} "
                    f"tasks ({scene.problem}; {found}); --extract-model may")
    answer = splitter.split(scene.prose)
    logged = " ".join(answer.raw.split())[:600]
    if answer.problem:
        raise _Skip("task-count", f"the rules could not split the scene ({scene.problem}); "
                    f"--extract-model {splitter.model} answered {logged!r}: {answer.problem}")
    notes.append(f"tasks split by --extract-model {splitter.model} (the rules could not: "
                 f"{scene.problem}); its answer: {logged}")
    return description, answer.tasks


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


def _clean_task(text: str) -> str:
    text = " ".join(text.split())
    text = re.sub(r"^task\s*\d+\s*[:.\-]\s*", "", text, flags=re.I)  # "1. Task 1: Adorning …"
    # Drop the "…, and" that joins an item to the next one in prose lists.
    text = re.sub(r"[\s,;]*(?:\b(?:and|or)\b)?[\s,;]*$", "", text)
    return text.strip()


def _sentence(text: str) -> str:
    text = " ".join(text.split()).strip(" ,;:")
    return text if not text or text[-1] in ".!?" else f"{text}."


def _slug(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-") or "person"


def _unique_id(base: str, used: set[str]) -> str:
    candidate, counter = base, 2
    while candidate in used:
        candidate, counter = f"{base}-{counter}", counter + 1
    used.add(candidate)
    return candidate
