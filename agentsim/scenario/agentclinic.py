"""Import the published AgentClinic cases (Schmidgall et al. 2024) as clinical scenarios.

A case file is JSON Lines: one case per non-blank line. Two layouts exist and are detected line by
line, so a file may mix them:

* ``osce`` (AgentClinic-MedQA, -MIMIC-IV): ``{"OSCE_Examination": {"Objective_for_Doctor",
  "Patient_Actor", "Physical_Examination_Findings", "Test_Results", "Correct_Diagnosis", ...}}``.
  The nested keys differ from case to case (``Current_Medications`` in some, ``Drug_History`` in
  another, test panels named freely), so nested values are kept verbatim and every other key goes
  to ``case.extra``.
* ``image-challenge`` (AgentClinic-NEJM): ``{"question", "answers": [{"text", "correct"}, ...],
  "patient_info", "physical_exams", "image_url"}``. The image is not fetched: the question, patient
  text and findings are enough to run a text-only consultation; its URL is kept in ``extra``.

Cases are numbered from 0 over non-blank lines (the numbering of ``--cases``). Every line is
validated, selected or not, before anything runs or is written: a line that cannot be converted
is an :class:`~agentsim.errors.InputError` naming the file, its 1-based physical line number (as
an editor counts) and the field, so a damaged file is never run on silently reduced data. The
file is read within the bounds of :mod:`agentsim.scenario.safe_input` (size
``AGENTSIM_MAX_CASE_FILE_BYTES``, ``AGENTSIM_MAX_CASES`` lines, and per line the depth, value
count and string length limits; duplicate keys and NaN/Infinity are errors).
The patient persona gets only the attributes its demographics text states (age in years, months,
weeks or days, or "newborn"; gender; race): anything guessed would become part of what a bias
measurement measures.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentsim.errors import InputError
from agentsim.scenario.import_report import ImportReport
from agentsim.scenario.loader import dump_scenario, load_scenario, problems_from
from agentsim.scenario.safe_input import (
    BadLine,
    LimitExceeded,
    Limits,
    bad_line_error,
    parse_json_line,
    read_text,
)
from agentsim.scenario.schema import Scenario

OSCE_KEYS = {
    "objective": "Objective_for_Doctor",
    "patient": "Patient_Actor",
    "exam": "Physical_Examination_Findings",
    "tests": "Test_Results",
    "diagnosis": "Correct_Diagnosis",
}
# image_url is not required: the consultation runs on text, and the URL is only kept in extra.
IMAGE_KEYS = ("question", "answers", "patient_info", "physical_exams")
IMAGE_OBJECTIVE = "What is the most likely diagnosis?"
MAX_SELECTION = 100_000  # a typo such as "0-99999999" must not build a huge list
SLUG_LENGTH = 60  # of the file stem in scenario ids, which must stay short (file names)

_AGE = re.compile(r"\b(\d{1,3})[\s-]*(year|month|week|day)s?[\s-]*old\b|\baged\s+(\d{1,3})\b",
                  re.I)
_NEWBORN = re.compile(r"\b(?:newborn|neonate)\b", re.I)
_GENDER = re.compile(r"\b(male|man|boy|female|woman|girl)\b", re.I)
_GENDER_LABELS = {"male": "man", "man": "man", "boy": "man",
                  "female": "woman", "woman": "woman", "girl": "woman"}
# A race word is taken only right before the person it describes ("a 42-year-old Caucasian
# male"), never from "a black, scab-like sore" or "a white pupil".
_RACE = re.compile(r"\b(white|black|caucasian|african[ -]american|asian|hispanic|latino|latina)"
                   r"\s+(?:male|man|boy|female|woman|girl|patient|person|child|infant)\b", re.I)
# End of the first sentence of patient_info: '.', '!' or '?' before whitespace or the end.
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


class _Skip(BadLine):
    """A line that cannot be converted; the message is the reported reason, ``field`` the path
    of the offending value inside the line when there is one."""


def parse_case_selection(text: str) -> list[int]:
    """Parse a case selection such as ``"0-9"``, ``"3"`` or ``"0-2,5,7-8"``.

    Returns the sorted, de-duplicated 0-based case indexes. Ranges include both ends. Raises
    :class:`InputError` (source ``--cases``) for anything else: empty parts, negative numbers,
    reversed ranges, words.
    """
    chosen: set[int] = set()
    parts = text.split(",")
    for part in parts:
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if match is None:
            raise InputError(
                f"bad case selection {text!r}: {part.strip()!r} is not a number or a range "
                "such as '3' or '0-9' (0-based, comma-separated)", source="--cases"
            )
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise InputError(f"bad case selection {text!r}: range {part.strip()!r} runs "
                             "backwards", source="--cases")
        if last - first + 1 + len(chosen) > MAX_SELECTION:
            raise InputError(f"case selection {text!r} selects more than {MAX_SELECTION} cases",
                             source="--cases")
        chosen.update(range(first, last + 1))
    return sorted(chosen)


def parse_demographics(text: str) -> dict[str, str]:
    """Age, gender and race stated in a demographics phrase, e.g. ``{"age": "34", "gender":
    "woman"}``.

    Only what the text says. The age: in years as a number ("45-year-old", "45 year old",
    "aged 45" → "45"), younger ones with their unit ("8-month-old" → "8 months", "2-day-old"
    → "2 days", "2-week-old" → "2 weeks"), or "newborn" for a newborn or neonate of no stated
    age ("31 weeks' gestation" is not an age). The gender is the group (male/man/boy → man,
    female/woman/girl → woman), so that variants and bias texts read one attribute; who is a
    boy, a girl or an infant is said from the age when the person is described
    (agentsim.agents.clinical_prompts.describe_person). A race word right before the person
    ("Caucasian male" → "Caucasian") as written. The first match of each counts, as the phrase starts with the patient.
    """
    attributes: dict[str, str] = {}
    age = _AGE.search(text)
    if age is not None:
        number, unit = age.group(1) or age.group(3), (age.group(2) or "year").lower()
        attributes["age"] = number if unit == "year" else \
            f"{number} {unit}{'' if number == '1' else 's'}"
    elif _NEWBORN.search(text):
        attributes["age"] = "newborn"
    gender = _GENDER.search(text)
    if gender is not None:
        attributes["gender"] = _GENDER_LABELS[gender.group(1).lower()]
    race = _RACE.search(text)
    if race is not None:
        attributes["race"] = race.group(1)
    return attributes


def load_agentclinic(
    path: Path, select: Sequence[int] | None = None, limit: int | None = None, *,
    limits: Limits | None = None, skip_bad: bool = False,
) -> tuple[list[Scenario], list[tuple[int, str]]]:
    """Convert the cases of an AgentClinic JSONL file into clinical scenarios.

    Every non-blank line is converted (validated), selected or not. ``select`` picks 0-based
    case indexes (counted over non-blank lines; an index beyond the file is an
    :class:`InputError`); ``limit`` then keeps the first N selected cases. Returns the scenarios
    and ``(1-based line number, reason)`` of the lines not converted, which is empty: a bad line
    raises an InputError naming the file, line and field (and how many other lines are bad),
    unless ``skip_bad`` is true, when bad lines are returned instead and only a file of which no
    selected case converts is an error. Also raises for an unreadable file, a file over the
    limits (see agentsim.scenario.safe_input), or a file without cases.
    """
    path = Path(path)
    limits = limits or Limits.from_env()
    text = read_text(path, limits.case_file_bytes, "case_file_bytes")
    # Split on '\n' only: str.splitlines would also split at U+2028 and similar characters, which
    # JSON allows inside strings, and the line numbers would no longer match an editor's.
    lines = [(number, line) for number, line in enumerate(text.split("\n"), start=1)
             if line.strip()]
    del text
    if not lines:
        raise InputError("no cases: the file has no non-blank lines", source=path)
    if len(lines) > limits.cases:
        raise LimitExceeded(f"{len(lines):,} cases, the limit is {limits.cases:,}",
                            limit="cases", source=path)
    if select is not None:
        missing = sorted({index for index in select if not 0 <= index < len(lines)})
        if missing:
            shown = ", ".join(map(str, missing[:10]))
            raise InputError(f"case index(es) {shown} not in the file (it has {len(lines)} "
                             f"cases, 0-{len(lines) - 1})", source="--cases")
        chosen = sorted(set(select))
    else:
        chosen = list(range(len(lines)))
    if limit is not None:
        if limit < 1:
            raise InputError(f"limit must be at least 1 (found {limit})", source="--limit")
        chosen = chosen[:limit]
    wanted = set(chosen)
    slug = re.sub(r"[^a-z0-9]+", "-", path.stem.lower())[:SLUG_LENGTH].strip("-") or "cases"
    converted: dict[int, Scenario] = {}
    bad: list[tuple[int, BadLine]] = []
    for index, (number, line) in enumerate(lines):
        try:
            scenario = _convert(line, index, number, slug, path.name, limits)
        except BadLine as problem:
            bad.append((number, problem))
            continue
        if index in wanted:
            converted[index] = scenario
    if bad and not skip_bad:
        number, problem = bad[0]
        error = bad_line_error(problem, path, number)
        if len(bad) > 1:
            others = ", ".join(str(n) for n, _ in bad[1:6]) + (", ..." if len(bad) > 6 else "")
            error.message += f" (and {len(bad) - 1} more bad lines: {others})"
        raise error
    scenarios = [converted[index] for index in chosen if index in converted]
    line_of = {index: number for index, (number, _) in enumerate(lines)}
    chosen_lines = {line_of[index] for index in chosen}
    skipped = [(number, f"line {number}: " + (f"{problem.field}: " if problem.field else "")
                + problem.message) for number, problem in bad if number in chosen_lines]
    if not scenarios:
        reasons = "; ".join(reason for _, reason in skipped[:3])
        raise InputError(f"no case converted ({len(skipped)} lines skipped): {reasons}",
                         source=path)
    return scenarios, skipped


def import_agentclinic(path: Path, out_dir: Path, select: Sequence[int] | None = None,
                       limit: int | None = None) -> ImportReport:
    """Write one scenario file per converted case into ``out_dir`` (see :func:`load_agentclinic`).

    Each file is named after its scenario id and loaded back to check it holds what was meant.
    The report's layout is ``osce``, ``image-challenge`` or ``mixed``.
    """
    limits = Limits.from_env()
    scenarios, skipped = load_agentclinic(path, select, limit, limits=limits)
    # A case may be larger than a hand-written scenario file is allowed to be.
    readback = dataclasses.replace(limits, file_bytes=max(limits.file_bytes,
                                                          limits.case_file_bytes))
    written = []
    for scenario in scenarios:
        target = dump_scenario(scenario, Path(out_dir) / f"{scenario.id}.yaml")
        # A file that loads differently from what we meant is an importer bug, not a bad line.
        if load_scenario(target, limits=readback) != scenario:
            raise RuntimeError(f"{target}: scenario changed when loaded back")
        written.append(target)
    layouts = {scenario.tags[1] for scenario in scenarios}
    layout = layouts.pop() if len(layouts) == 1 else "mixed"
    return ImportReport(str(path), layout, written, skipped)


def _convert(line: str, index: int, number: int, slug: str, file_name: str,
             limits: Limits) -> Scenario:
    # NaN/Infinity are refused (they are not JSON and would not survive the YAML round trip,
    # NaN != NaN), as are duplicate keys and values over the limits.
    record = parse_json_line(line, limits)
    if not isinstance(record, dict):
        raise _Skip(f"expected a JSON object, found {_kind(record)}")
    if "OSCE_Examination" in record:
        layout, case, demographics = "osce", *_osce(record)
    elif "question" in record or "answers" in record:
        layout, case, demographics = "image-challenge", *_image_challenge(record)
    else:
        keys = ", ".join(repr(_shown(key)) for key in sorted(record)[:8]) or "none"
        raise _Skip(f"unknown layout: keys ({keys}) have neither 'OSCE_Examination' nor "
                    "'question'/'answers'")
    patient = {"id": "patient", "name": "Patient"}
    attributes = parse_demographics(demographics) if demographics else {}
    if attributes:
        patient["attributes"] = attributes
    description = " ".join(case["objective"].split())[:120].rstrip()
    try:
        return Scenario.model_validate({
            "id": f"agentclinic-{slug}-{index:03d}",
            "domain": "clinical",
            "description": description,
            "personas": [{"id": "doctor", "name": "Doctor"}, patient],
            "protocol": {"name": "clinical"},
            "case": case,
            "source": f"AgentClinic (Schmidgall et al. 2024), {file_name} line {number}",
            "tags": ["agentclinic", layout],
        })
    except ValidationError as error:
        field, message = problems_from(error)[0]
        raise _Skip(f"invalid case: {message}", field=_case_field(field, layout)) from None


def _case_field(field: str, layout: str) -> str | None:
    """The field of the line behind a field of the converted scenario, where there is one."""
    if layout == "osce":
        for ours, theirs in OSCE_KEYS.items():
            if field == f"case.{ours}" or field.startswith(f"case.{ours}."):
                return "OSCE_Examination." + theirs + field[len(f"case.{ours}"):]
    return field or None


def _osce(record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    osce = record["OSCE_Examination"]
    if not isinstance(osce, dict):
        raise _Skip(f"must be an object, found {_kind(osce)}", field="OSCE_Examination")
    missing = [key for key in OSCE_KEYS.values() if key not in osce]
    if missing:
        raise _Skip(f"OSCE_Examination lacks {', '.join(missing)}",
                    field=f"OSCE_Examination.{missing[0]}")
    case: dict[str, Any] = {
        "objective": _text(osce, OSCE_KEYS["objective"], "OSCE_Examination."),
        "diagnosis": _text(osce, OSCE_KEYS["diagnosis"], "OSCE_Examination."),
    }
    for field in ("patient", "exam", "tests"):
        case[field] = _mapping(osce[OSCE_KEYS[field]])
    extra = {key: value for key, value in osce.items() if key not in OSCE_KEYS.values()}
    # Keys beside OSCE_Examination are kept too; a clash with a nested key must not overwrite it.
    for key, value in record.items():
        if key != "OSCE_Examination":
            extra[key if key not in extra else f"top_level.{key}"] = value
    case["extra"] = extra
    demographics = case["patient"].get("Demographics")
    return case, demographics if isinstance(demographics, str) else ""


def _image_challenge(record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    missing = [key for key in IMAGE_KEYS if key not in record]
    if missing:
        raise _Skip(f"image-challenge case lacks {', '.join(missing)}", field=missing[0])
    answers = record["answers"]
    if not isinstance(answers, list):
        raise _Skip(f"must be a list of objects with a 'text' string, found {_kind(answers)}",
                    field="answers")
    for position, answer in enumerate(answers):
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            raise _Skip("'answers' must be a list of objects with a 'text' string",
                        field=f"answers[{position}]")
    # Only a literal true counts: a string "false" is truthy and would make a wrong answer correct.
    correct = [answer["text"] for answer in answers if answer.get("correct") is True]
    if len(correct) != 1:
        shown = f": {correct}" if correct else ""
        raise _Skip(f"expected exactly one correct answer, found {len(correct)}{shown}",
                    field="answers")
    patient_info = _text(record, "patient_info")
    extra = {key: value for key, value in record.items() if key not in IMAGE_KEYS}
    extra["answers"] = [answer["text"] for answer in answers]
    # The 'question' field tells the whole case (findings, biopsy results); as the doctor's
    # objective it would hand over the answer, so the doctor is told only what the published
    # tool tells it, and the question is kept for reference.
    extra["question"] = _text(record, "question")
    case = {
        "objective": IMAGE_OBJECTIVE,
        "patient": {"information": patient_info},
        "exam": {"physical_examination": record["physical_exams"]},
        "tests": {},
        "diagnosis": correct[0].strip(),
        "extra": extra,
    }
    if not case["diagnosis"]:
        raise _Skip("the correct answer's text is empty", field="answers")
    end = _SENTENCE_END.search(patient_info)
    return case, patient_info[: end.start()] if end else patient_info


def _text(record: dict[str, Any], key: str, prefix: str = "") -> str:
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise _Skip(f"{key} must be non-empty text, found {_shown(value)}",
                    field=f"{prefix}{key}")
    return value.strip()


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false",
            type(None): "null"}.get(type(value), "a number")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _mapping(value: Any) -> dict[str, Any]:
    # A case whose findings are one sentence instead of an object is still usable as text; null
    # means "no findings" rather than a finding whose text is null.
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"text": value}
