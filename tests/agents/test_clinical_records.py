"""The records clerk finds every finding of every published case, at any depth, under its own
name and under the names doctors use, and answers nothing — never "normal" — when the case
holds nothing that matches.

The published cases are read from the anchors (every ``agentclinic/*.jsonl`` there: the MedQA
file, and the NEJM and extended files when they are added), through agentsim's own reader.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from agentsim.agents.clinical_records import (
    EXAM_SECTION,
    TESTS_SECTION,
    Record,
    case_records,
    describe_records,
    find_records,
)
from agentsim.agents.clinical_words import ABBREVIATIONS, core, words
from agentsim.scenario.agentclinic import load_agentclinic

# Abbreviations doctors write for a test, spelt as they write them.
DOCTOR_ABBREVIATIONS = ("ecg", "cbc", "bmp", "cmp", "lft", "abg", "ua", "bp", "hr", "rr",
                        "spo2", "wbc", "rbc", "hb", "hct", "plt", "crp", "esr", "tsh", "ana",
                        "ldh", "alp", "ck", "bun", "pt", "ptt", "eeg", "emg", "cxr", "tft",
                        "pft", "lp")
ABBREVIATION_OF = {core(words(" ".join(ABBREVIATIONS[a]))): a.upper()
                   for a in DOCTOR_ABBREVIATIONS}


def published_cases(anchors: Path) -> list[tuple[str, object]]:
    files = sorted((anchors / "agentclinic").glob("*.jsonl"))
    assert files, "no AgentClinic case files in the anchors"
    cases = []
    for file in files:
        scenarios, _ = load_agentclinic(file)
        cases += [(f"{file.name}:{index}", s.case) for index, s in enumerate(scenarios)]
    return cases


def doctor_names(record: Record, parent: Record | None) -> list[str]:
    """How a doctor would ask for a record: its abbreviation, its name in lower case with
    'results', or, for a nested record, its parent's name and its own ('MRI brain findings',
    'urinalysis blood')."""
    spaced = record.path[-1].replace("_", " ").lower()
    names = [ABBREVIATION_OF[record.core]] if record.core in ABBREVIATION_OF else []
    if parent is None:
        names.append(f"{spaced} results")
    else:
        names.append(f"{parent.path[-1].replace('_', ' ')} {spaced}")
    return names


def returned(found: list[tuple[str, object]], record: Record) -> bool:
    """True when the answer holds the record's value: the record itself, or a record (or a
    whole section) it is nested in."""
    names = {name for name, _ in found}
    if record.section in names:
        return True
    path = list(record.path)
    return any(" / ".join(path[:depth]) in names for depth in range(1, len(path) + 1))


@pytest.fixture
def cases(anchors) -> list[tuple[str, object]]:
    return _cached_cases(anchors)


@lru_cache(maxsize=1)
def _cached_cases(anchors: Path) -> list[tuple[str, object]]:
    return published_cases(anchors)


# --- every finding of every published case ----------------------------------------------------


def test_every_finding_is_found_by_its_own_name_and_by_a_doctors_name(cases):
    requested = found = 0
    missed = []
    for where, case in cases:
        table = case_records(case.exam, case.tests)
        by_path = {(r.section, r.path): r for r in table}
        for record in table:
            if not record.path:
                continue
            parent = by_path.get((record.section, record.path[:-1])) if len(record.path) > 1 \
                else None
            for name in [record.path[-1], *doctor_names(record, parent)]:
                requested += 1
                answer = find_records(name, case.exam, case.tests)
                if returned(answer, record):
                    found += 1
                else:
                    missed.append((where, name, record.name, [n for n, _ in answer][:3]))
    assert not missed, f"{len(missed)} of {requested} requests missed, e.g. {missed[:5]}"
    assert found == requested > 4000  # MedQA alone: 2,097 findings at every depth


def test_a_findings_own_name_returns_nothing_unrelated(cases):
    """Asked by its own name (not a group's, such as 'Blood_Tests'), a finding comes back with
    its parents or children, or with findings of the same name, and nothing else."""
    from agentsim.agents.clinical_records import requested_groups

    unrelated = []
    for where, case in cases:
        table = case_records(case.exam, case.tests)
        by_name = {r.name: r for r in table}
        for record in table:
            if not record.path or requested_groups(record.tokens):
                continue
            for name, _ in find_records(record.path[-1], case.exam, case.tests):
                other = by_name[name]
                if not (other == record or record.within(other) or other.within(record)
                        or other.tokens == record.tokens or other.core == record.core != set()):
                    unrelated.append((where, record.name, name))
    assert not unrelated, unrelated[:5]


@pytest.mark.parametrize("request_", ["physical examination", "physical exam", "examination",
                                      "Physical_Examination_Findings"])
def test_the_physical_examination_is_every_examination_finding(cases, request_):
    for where, case in cases:
        answer = find_records(request_, case.exam, case.tests)
        assert answer == [(EXAM_SECTION, case.exam)], where


def test_vitals_are_found_in_every_case_that_records_them(cases):
    recorded = [(w, c) for w, c in cases if any("vital" in r.tokens for r in
                                                 case_records(c.exam, c.tests))]
    assert len(recorded) >= 106
    for where, case in recorded:
        for request_ in ("vitals", "vital signs", "Vitals"):
            names = [n for n, _ in find_records(request_, case.exam, case.tests)]
            assert names and all("Vital" in n for n in names), (where, names)


@pytest.mark.parametrize("request_", ["blood tests", "Blood work", "bloodwork", "labs",
                                      "laboratory tests", "routine blood tests", "blood"])
def test_blood_tests_never_return_the_blood_pressure(cases, request_):
    answered = 0
    for where, case in cases:
        answer = find_records(request_, case.exam, case.tests)
        answered += bool(answer)
        for name, value in answer:
            assert "pressure" not in name.lower(), (where, name)
            if name.startswith("Vital"):
                pytest.fail(f"{where}: {request_!r} returned {name}")
    assert answered >= 80  # the cases with laboratory results


@pytest.mark.parametrize(("request_", "key"), [
    ("CBC", "Complete_Blood_Count"), ("complete blood count", "Complete_Blood_Count"),
    ("LFTs", "Liver_Function_Tests"), ("liver function tests", "Liver_Function_Tests"),
    ("CXR", "Chest_X-ray"), ("chest x-ray", "Chest_X-ray"), ("Chest X ray", "Chest_X-ray"),
    ("chest radiograph", "Chest_X-ray"), ("ECG", "Electrocardiogram"),
    ("EKG", "Electrocardiogram"), ("12-lead ECG", "Electrocardiogram"),
    ("BP", "Blood_Pressure"), ("blood pressure", "Blood_Pressure"),
    ("urinalysis", "Urinalysis"), ("UA", "Urinalysis"), ("MRI of the brain", "MRI_Brain"),
    ("brain MRI", "MRI_Brain"),
])
def test_doctors_names_find_the_cases_record(cases, request_, key):
    """Wherever a case holds the record, the doctor's name for it finds it."""
    holding = 0
    for where, case in cases:
        records = [r for r in case_records(case.exam, case.tests)
                   if r.path and r.path[-1].lower() == key.lower()]
        if not records:
            continue
        holding += 1
        answer = find_records(request_, case.exam, case.tests)
        assert any(returned(answer, r) for r in records), (where, request_, answer[:2])
    assert holding, f"no published case holds {key}"


def test_a_group_a_case_does_not_hold_is_not_available(cases):
    without_imaging = [(w, c) for w, c in cases
                       if not find_records("imaging", c.exam, c.tests)]
    assert without_imaging  # some cases have no imaging at all
    for where, case in without_imaging:
        assert find_records("chest x-ray", case.exam, case.tests) == [], where


# --- the clerk's rules on records written for the test ------------------------------------------

EXAM = {
    "Vital_Signs": {"Temperature": "36.8 °C", "Blood_Pressure": "152/88 mmHg",
                    "Heart_Rate": "104 bpm"},
    "Abdominal_Examination": {"Palpation": "Soft, mild epigastric tenderness."},
    "Cardiovascular": "A fourth heart sound at the apex.",
}
TESTS = {
    "Blood_Tests": {"Troponin_I": {"On_arrival": "0.42 ng/mL", "3_hours_later": "1.87 ng/mL"},
                    "Complete_Blood_Count": {"Hemoglobin": "13.1 g/dL", "WBC": "7.2 x10^9/L"},
                    "Serum_Electrolytes": {"Na": "138 mmol/L", "K": "4.1 mmol/L"}},
    "Urinalysis": {"Blood": "Negative", "Protein": "Trace"},
    "ECG": "Sinus tachycardia; ST depression in I, aVL, V4-V6.",
    "Imaging": {"Chest_X-Ray": {"Findings": "Mild pulmonary vascular congestion."},
                "Abdominal_Ultrasound": {"Findings": "Normal gallbladder."}},
}


def names(request_: str) -> list[str]:
    return [name for name, _ in find_records(request_, EXAM, TESTS)]


@pytest.mark.parametrize(("request_", "expected"), [
    ("troponin", ["Blood_Tests / Troponin_I"]),  # a partial name
    ("Troponin I level", ["Blood_Tests / Troponin_I"]),  # generic words do not count
    ("serum sodium", ["Blood_Tests / Serum_Electrolytes / Na"]),
    ("potassium", ["Blood_Tests / Serum_Electrolytes / K"]),
    ("white cell count", ["Blood_Tests / Complete_Blood_Count / WBC"]),
    ("haemoglobin", ["Blood_Tests / Complete_Blood_Count / Hemoglobin"]),
    ("CBC and electrolytes", ["Blood_Tests / Complete_Blood_Count",
                              "Blood_Tests / Serum_Electrolytes"]),
    ("cardiac exam", ["Cardiovascular"]),
    ("abdomen", ["Abdominal_Examination"]),
    ("abdominal ultrasound", ["Imaging / Abdominal_Ultrasound"]),
    ("chest x-ray findings", ["Imaging / Chest_X-Ray"]),
    ("urinalysis blood", ["Urinalysis / Blood"]),
    ("imaging", ["Imaging"]),
    ("x-ray", ["Imaging / Chest_X-Ray"]),
    ("vitals", ["Vital_Signs"]),
    ("test results", [TESTS_SECTION]),
    ("blood tests", ["Blood_Tests"]),
    ("labs", ["Blood_Tests", "Urinalysis"]),
    ("EKG", ["ECG"]), ("12-lead EKG", ["ECG"]), ("Electrocardiogram", ["ECG"]),
])
def test_rules(request_, expected):
    assert names(request_) == expected


@pytest.mark.parametrize("request_", ["Lumbar puncture", "MRI brain", "Foo panel", "", "please",
                                      "echocardiogram", "skin biopsy"])
def test_nothing_matching_is_nothing(request_):
    assert find_records(request_, EXAM, TESTS) == []


def test_an_examination_is_no_answer_to_an_imaging_request():
    exam_only = {"Abdominal_Examination": "Soft."}
    assert find_records("abdominal ultrasound", exam_only, {}) == []
    assert find_records("abdominal CT", exam_only, {}) == []


def test_findings_held_as_prose_are_found_by_their_sentences():
    """NEJM cases hold their findings as one text: the sentences naming the test answer."""
    prose = {"physical_examination": (
        "1. Dermoscopy findings: Hyperchromic, pinpoint macules. 2. Skin biopsy results: "
        "Extracellular deposition of yellow-brown bodies in the dermis.\n"
        "- Laboratory studies: Peripheral eosinophilia. Blood pressure 130/85 mmHg.")}
    assert find_records("skin biopsy", prose, {}) == [
        ("physical_examination (excerpt)",
         "Skin biopsy results: Extracellular deposition of yellow-brown bodies in the dermis.")]
    assert find_records("dermoscopy", prose, {})[0][1].startswith("Dermoscopy findings")
    labs = find_records("labs", prose, {})
    assert labs == [("physical_examination (excerpt)",
                     "Laboratory studies: Peripheral eosinophilia.")]
    assert "130/85" not in str(find_records("blood tests", prose, {}))
    assert find_records("physical exam", prose, {}) == [(EXAM_SECTION, prose)]
    assert find_records("CT head", prose, {}) == []


def test_words_read_names_and_requests_alike():
    assert set(words("Chest_X-Ray")) == set(words("chest x ray")) == set(words("CXR"))
    assert set(words("LFTs")) == set(words("Liver_Function_Tests"))
    assert set(words("EKG")) == set(words("ECG")) == set(words("Electrocardiogram"))
    assert set(words("CA-125")) == {"ca125"}  # not calcium
    assert set(words("Finkelstein's_Test")) == set(words("Finkelstein test"))


def test_results_are_read_verbatim():
    answer = find_records("BP", EXAM, TESTS)
    assert answer == [("Vital_Signs / Blood_Pressure", "152/88 mmHg")]
    assert describe_records(answer) == "RESULTS: Vital_Signs / Blood_Pressure: 152/88 mmHg"
    nested = describe_records(find_records("troponin", EXAM, TESTS))
    assert nested == ("RESULTS: Blood_Tests / Troponin_I:\n  On arrival: 0.42 ng/mL\n"
                      "  3 hours later: 1.87 ng/mL")
