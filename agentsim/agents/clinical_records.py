"""The records clerk: what a doctor's test request asks for in a case's findings, and nothing
the case does not hold.

A case holds its physical examination findings and its test results as nested mappings whose
keys differ from case to case ('Complete_Blood_Count', 'CBC_with_Differentiation',
'Blood_Work', a 'Findings' leaf under 'MRI_Brain'); doctors name them their own way ('CBC',
'LFTs', 'chest x-ray', 'physical exam', 'vitals'). Both are read to the same words
(:mod:`agentsim.agents.clinical_words`), and every record at every depth — the two sections
themselves included — is a candidate. The first rule that finds something answers:

1. **a group**: 'physical exam' / 'examination' → all examination findings; 'tests' / 'test
   results' → all test results; 'labs' → the laboratory panels; 'blood tests' / 'blood work'
   → the laboratory panels of blood (never the blood pressure); 'imaging' → every imaging
   study; 'vitals' → the vital signs. A group that finds nothing answers nothing: a request
   for blood tests never falls through to 'Blood_Pressure'. A record named exactly like the
   request is added ('Blood' under 'Urinalysis' for "blood").
2. **the same name**: the same words, or the same words apart from generic ones ('troponin
   level' = 'Troponin'), or those of the record and its parents ('urinalysis blood' =
   'Urinalysis / Blood', 'MRI brain findings' = 'MRI_Brain / Findings');
3. **a partial name**: every word of the request is in a record's name ('troponin' →
   'Troponin_I', 'x-ray' → every x-ray);
4. **names inside the request**: a record's whole name is in the request ('CBC and
   electrolytes' → both), the most specific ones (not 'Blood' beside 'Blood_Cultures'); an
   examination is not the answer to a request for an imaging study or a procedure
   ('abdominal ultrasound' is not the abdominal examination);
5. **close names**: at least two words shared and at least half of all (Jaccard ≥ 0.5);
6. **the findings' text**: the sentences of a finding's text that hold every word of the
   request (the NEJM cases hold their findings as prose).

A record nested inside another one returned is left out (the parent shows it). Nothing found
is ``[]``: the measurement agent then answers "not available in this case", never "normal".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from agentsim.agents.clinical_prompts import render_notes
from agentsim.agents.clinical_words import GENERIC, core, plain_words, words

EXAM_SECTION = "Physical_Examination_Findings"
TESTS_SECTION = "Test_Results"
IMAGING = frozenset({
    "imaging", "xray", "ct", "mri", "ultrasound", "echocardiogram", "doppler", "mammography",
    "mammogram", "angiography", "angiogram", "pyelogram", "barium", "fluoroscopy", "pet",
    "scintigraphy", "radiology", "radiological", "dexa", "venogram", "venography",
    "cholangiography", "myelogram", "arthrogram", "tomography",
})
PROCEDURES = frozenset({
    "electrocardiogram", "electroencephalogram", "electromyography", "conduction", "biopsy",
    "endoscopy", "colonoscopy", "cystoscopy", "anoscopy", "bronchoscopy", "laryngoscopy",
    "spirometry", "polysomnography", "audiometry", "audiology", "hearing", "consult",
    "videonystagmography", "vestibular", "diary", "checklist", "psychological",
    "psychiatric", "slit", "fundoscopy", "ophthalmoscopy", "monitoring", "histopathology",
    "mental",
})
NOT_BLOOD = frozenset({
    "urine", "urinalysis", "stool", "csf", "lumbar", "sputum", "synovial", "throat", "wound",
    "swab", "joint", "aspiration", "aspirate", "arthrocentesis", "tuberculin", "skin", "nasal",
    "vaginal", "cervical", "gram", "cytospin", "urethral", "pleural", "peritoneal",
    "ascitic", "semen", "breath", "marrow",
})
VITAL_SIGNS = (frozenset({"temperature"}), frozenset({"blood", "pressure"}),
               frozenset({"cardiac", "rate"}), frozenset({"respiratory", "rate"}),
               frozenset({"pulse"}), frozenset({"oxygen", "saturation"}))
# Words that do not change which group is asked for ('all labs', 'routine blood work').
GROUP_FILLER = frozenset({"all", "routine", "basic", "standard", "initial", "full", "complete",
                          "relevant", "available", "usual", "entire", "whole"})
# What a group is in free text (the NEJM cases hold their findings as prose).
LAB_WORDS = frozenset({"laboratory", "blood", "serum", "plasma", "urine", "urinalysis", "csf",
                       "culture", "count", "stain", "antibody", "serology", "hemoglobin",
                       "platelet", "smear", "level"})
GROUP_TEXT = {
    "labs": LAB_WORDS, "blood": LAB_WORDS - {"urine", "urinalysis", "csf", "stain"},
    "imaging": IMAGING, "tests": LAB_WORDS | IMAGING | PROCEDURES | {"test", "result"},
    "vitals": frozenset({"vital", "temperature", "pressure", "pulse", "saturation", "bpm"}),
}
_SEGMENT = re.compile(r"\n+|(?<=[.;])\s+|\s+(?=\d{1,2}\.\s)")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}\.)\s+")
_BLOOD_PRESSURE = re.compile(r"blood[\s_-]*pressure", re.I)


@dataclass(frozen=True)
class Record:
    """One finding or group of findings: its section, its keys from the section and value."""

    section: str
    path: tuple[str, ...]
    value: Any
    tokens: frozenset[str]
    path_core: frozenset[str] = frozenset()  # the words of its own and its parents' names

    @property
    def name(self) -> str:
        """'Vital_Signs / Blood_Pressure'; a section is named by itself."""
        return " / ".join(self.path) if self.path else self.section

    @property
    def core(self) -> frozenset[str]:
        """The words of its name that say which record it is."""
        return core(self.tokens)

    def within(self, other: Record) -> bool:
        """True when this record is nested inside ``other``."""
        return (self.section == other.section and len(self.path) > len(other.path)
                and self.path[:len(other.path)] == other.path)


def case_records(exam: Mapping[str, Any], tests: Mapping[str, Any]) -> list[Record]:
    """Every record of a case, sections first, in the order of the case."""
    table: list[Record] = []
    for section, data in ((EXAM_SECTION, exam), (TESTS_SECTION, tests)):
        if data:
            table.append(Record(section, (), data, frozenset(words(section))))
            table += _walk(section, data, ())
    return table


def _walk(section: str, data: Mapping[str, Any], path: tuple[str, ...],
          above: frozenset[str] = frozenset()) -> Iterator[Record]:
    for key, value in data.items():
        here, tokens = (*path, str(key)), frozenset(words(str(key)))
        record = Record(section, here, value, tokens, above | core(tokens))
        yield record
        if isinstance(value, Mapping):
            yield from _walk(section, value, here, record.path_core)


def find_records(request: str, exam: Mapping[str, Any],
                 tests: Mapping[str, Any] | None = None) -> list[tuple[str, Any]]:
    """The case's records a test request asks for, as (name, value), in the order of the case
    (see the module docstring); [] when the case holds nothing that matches."""
    tokens = frozenset(words(request))
    if not tokens:
        return []
    table = case_records(exam, tests or {})
    groups = requested_groups(tokens)
    if groups:
        chosen = [r for group in sorted(groups) for r in GROUPS[group](table)]
        chosen += [r for r in table if r.tokens == tokens]
        return _answer(table, chosen) if chosen else _group_excerpts(table, groups)
    wanted = core(tokens)
    for rule in (_same, _partial, _inside, _close):
        chosen = rule(table, tokens, wanted)
        if chosen:
            return _answer(table, chosen)
    return _excerpts(table, request, wanted)


def requested_groups(tokens: frozenset[str]) -> set[str]:
    """The groups of records a request names ('physical exam', 'labs', ...), if any."""
    plain = tokens - GROUP_FILLER
    named = plain - GENERIC
    groups = set()
    if named <= {"physical"} and plain & {"physical", "examination"}:
        groups.add("exam")
    if not named and plain & {"test", "investigation"}:
        groups.add("tests")
    if named in ({"laboratory"}, {"laboratory", "work"}):
        groups.add("labs")
    if "blood" in named and named <= {"blood", "work"}:
        groups.add("blood")
    if (named and named <= {"imaging", "radiology", "radiological"}) or plain == {"scan"}:
        groups.add("imaging")
    if named == {"vital", "sign"}:
        groups.add("vitals")
    return groups


def _sections(table: list[Record], section: str) -> list[Record]:
    return [r for r in table if r.section == section and not r.path]


def _imaging(table: list[Record]) -> list[Record]:
    return [r for r in table if r.path and r.tokens & IMAGING]


def _labs(table: list[Record]) -> list[Record]:
    return [r for r in table if r.section == TESTS_SECTION and len(r.path) == 1
            and not r.tokens & (IMAGING | PROCEDURES | {"vital"})
            and not {"blood", "pressure"} <= r.tokens and r.core not in VITAL_SIGNS]


def _blood(table: list[Record]) -> list[Record]:
    return [r for r in _labs(table) if "blood" in r.tokens or not r.tokens & NOT_BLOOD]


def _vitals(table: list[Record]) -> list[Record]:
    named = [r for r in table if r.path and "vital" in r.tokens]
    return named or [r for r in table if r.path and r.section == EXAM_SECTION
                     and r.core in VITAL_SIGNS]


GROUPS: dict[str, Callable[[list[Record]], list[Record]]] = {
    "exam": lambda table: _sections(table, EXAM_SECTION),
    "tests": lambda table: _sections(table, TESTS_SECTION),
    "labs": _labs, "blood": _blood, "imaging": _imaging, "vitals": _vitals,
}


def _same(table: list[Record], tokens: frozenset[str], wanted: frozenset[str]) -> list[Record]:
    if not wanted:  # only generic words: a record named by generic words the request has
        return [r for r in table if r.tokens == tokens
                or (r.path and not r.core and r.tokens and r.tokens <= tokens)]
    return [r for r in table if r.tokens == tokens
            or (r.path and wanted in (r.core, r.path_core))]


def _partial(table: list[Record], tokens: frozenset[str],
             wanted: frozenset[str]) -> list[Record]:
    return [r for r in table if wanted and r.path and wanted <= r.core]


def _inside(table: list[Record], tokens: frozenset[str],
            wanted: frozenset[str]) -> list[Record]:
    modality = wanted & (IMAGING | PROCEDURES)
    chosen = [r for r in table if r.path and r.core and r.core <= wanted
              and not (modality and r.section == EXAM_SECTION
                       and not r.core & (IMAGING | PROCEDURES))]
    return [r for r in chosen if not any(r.core < other.core for other in chosen)]


def _close(table: list[Record], tokens: frozenset[str],
           wanted: frozenset[str]) -> list[Record]:
    scored = []
    for record in table:
        shared = len(wanted & record.core)
        if record.path and shared >= 2:
            score = shared / len(wanted | record.core)
            if score >= 0.5:
                scored.append((score, record))
    best = max((score for score, _ in scored), default=None)
    return [record for score, record in scored if score == best]


def _answer(table: list[Record], chosen: list[Record]) -> list[tuple[str, Any]]:
    unique = [r for r in table if r in chosen]
    return [(r.name, r.value) for r in unique if not any(r.within(o) for o in unique)]


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        parts = (_BULLET.sub("", part).strip() for part in _SEGMENT.split(value))
        return [part for part in parts if part]
    if isinstance(value, list):
        return [str(item) for item in value if isinstance(item, str | int | float)]
    return []


def _excerpts(table: list[Record], request: str,
              wanted: frozenset[str]) -> list[tuple[str, Any]]:
    """Sentences of the findings' text that hold every word of the request, as written or
    with its abbreviations spelt out."""
    forms = [form for form in (core(plain_words(request)), wanted) if form]
    if not forms:
        return []
    return _search(table, lambda part: any(form <= plain_words(part) for form in forms))


def _group_excerpts(table: list[Record], groups: set[str]) -> list[tuple[str, Any]]:
    """Sentences of the findings' text about a group ('labs', 'imaging', ...) that no record
    is named for; the blood pressure is no blood test."""
    def about(part: str) -> bool:
        for group in groups:
            text = _BLOOD_PRESSURE.sub(" ", part) if group in ("blood", "labs") else part
            if plain_words(text) & GROUP_TEXT.get(group, frozenset()):
                return True
        return False

    return _search(table, about)


def _search(table: list[Record], wanted: Callable[[str], bool]) -> list[tuple[str, Any]]:
    found = []
    for record in table:
        if record.path:
            parts = [part for part in _texts(record.value) if wanted(part)]
            if parts:
                found.append((f"{record.name} (excerpt)", " ".join(parts)))
    return found


def describe_records(found: list[tuple[str, Any]]) -> str:
    """Test results as the doctor reads them: 'RESULTS: name: value', nested values indented."""
    parts = []
    for name, value in found:
        if isinstance(value, dict | list):
            parts.append(f"{name}:\n{render_notes(value, 1)}")
        else:
            parts.append(f"{name}: {value}")
    return "RESULTS: " + "\n".join(parts)
