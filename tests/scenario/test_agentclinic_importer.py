"""Tests of the AgentClinic importer on the published MedQA file and on hand-made files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.errors import InputError
from agentsim.scenario import load_scenario
from agentsim.scenario.agentclinic import (
    import_agentclinic,
    load_agentclinic,
    parse_case_selection,
    parse_demographics,
)

REPO = Path(__file__).resolve().parents[2]
MEDQA = REPO.parent / "shared" / "anchors" / "agentclinic" / "agentclinic_medqa.jsonl"

# Observed on agentclinic_medqa.jsonl (107 lines, all in the OSCE layout with the five required
# keys as the right types): every line converts. Two cases (index 68, 105) have an empty
# Test_Results object, which is valid; one finding is a JSON boolean (case 76 = line
# 77, Vital_Signs.Within_Normal_Limits: true) and survives as such.
MEDQA_LINES = 107
MEDQA_CONVERTED = 107
# Case-insensitive: no objective contains its diagnosis verbatim. (Fifteen Test_Results do, e.g.
# case 2's "Hirschsprung disease"; that is what the measurement agent reveals, not a leak.)
MEDQA_OBJECTIVE_LEAKS = 0


@pytest.fixture(scope="module")
def medqa() -> Path:
    if not MEDQA.exists():
        pytest.skip(f"published AgentClinic data not found at {MEDQA} (shared/anchors is absent)")
    return MEDQA


@pytest.fixture(scope="module")
def medqa_cases(medqa: Path):
    return load_agentclinic(medqa)


def test_medqa_converts_every_line(medqa_cases) -> None:
    scenarios, skipped = medqa_cases
    assert skipped == []
    assert len(scenarios) == MEDQA_CONVERTED == MEDQA_LINES
    assert len({s.id for s in scenarios}) == MEDQA_LINES
    first = scenarios[0]
    assert first.id == "agentclinic-agentclinic-medqa-000"
    assert first.source == "AgentClinic (Schmidgall et al. 2024), agentclinic_medqa.jsonl line 1"
    assert first.tags == ("agentclinic", "osce")
    assert first.domain == "clinical" and first.protocol.name == "clinical"
    assert first.case.diagnosis == "Myasthenia gravis"
    assert first.persona("patient").attributes == {"age": "35", "gender": "woman"}
    assert first.persona("doctor").attributes == {}


def test_medqa_cases_are_complete(medqa_cases) -> None:
    scenarios, _ = medqa_cases
    for scenario in scenarios:
        case = scenario.case
        assert case.diagnosis.strip() and case.objective.strip(), scenario.id
        assert scenario.description == case.objective[:120].rstrip()
        assert case.patient["Demographics"]


def test_medqa_objective_hides_the_diagnosis(medqa_cases) -> None:
    scenarios, _ = medqa_cases
    leaks = [s.id for s in scenarios if s.case.diagnosis.lower() in s.case.objective.lower()]
    assert len(leaks) == MEDQA_OBJECTIVE_LEAKS
    assert len(scenarios) - len(leaks) >= 0.95 * len(scenarios)


def test_medqa_keeps_nested_keys_verbatim(medqa: Path, medqa_cases) -> None:
    scenarios, _ = medqa_cases
    lines = medqa.read_text(encoding="utf-8").splitlines()
    # Case 0 has nested test panels; case 76 carries a boolean finding.
    raw = json.loads(lines[0])["OSCE_Examination"]
    case = scenarios[0].case
    assert case.tests["Imaging"]["Chest_CT"]["Findings"] == raw["Test_Results"]["Imaging"][
        "Chest_CT"]["Findings"]
    assert case.patient == raw["Patient_Actor"]
    assert case.exam == raw["Physical_Examination_Findings"]
    assert case.extra == {}
    assert scenarios[76].case.exam["Vital_Signs"]["Within_Normal_Limits"] is True
    # A few cases have keys others lack (Current_Medications in four, Drug_History in one).
    with_medications = [s for s in scenarios if "Current_Medications" in s.case.patient]
    assert len(with_medications) == 4
    assert sum("Drug_History" in s.case.patient for s in scenarios) == 1


def test_medqa_demographics(medqa_cases) -> None:
    scenarios, _ = medqa_cases
    attributes = [s.persona("patient").attributes for s in scenarios]
    # Every case states an age (in years, months, weeks or days, or "newborn"); "college
    # student", "child", "infant" and a newborn of no stated sex give no gender; two state a race.
    assert all("age" in a for a in attributes)
    assert sum(set(a) == {"age", "gender"} for a in attributes) == 98
    assert sum(set(a) == {"age"} for a in attributes) == 7
    assert attributes[2] == {"age": "8 months", "gender": "man"}  # "8-month-old boy"
    assert attributes[7] == {"age": "newborn", "gender": "woman"}  # "Newborn, female"
    assert attributes[40] == {"age": "42", "gender": "man", "race": "Caucasian"}
    assert attributes[95] == {"age": "23"}  # "23-year-old college student"


def test_selection_and_limit(medqa: Path) -> None:
    scenarios, _ = load_agentclinic(medqa, select=parse_case_selection("0-9"))
    assert [s.id[-3:] for s in scenarios] == [f"{i:03d}" for i in range(10)]
    scenarios, _ = load_agentclinic(medqa, limit=3)
    assert len(scenarios) == 3
    scenarios, _ = load_agentclinic(medqa, select=[106, 5, 5], limit=1)
    assert [s.id for s in scenarios] == ["agentclinic-agentclinic-medqa-005"]
    with pytest.raises(InputError) as error:
        load_agentclinic(medqa, select=[107])
    assert error.value.source == "--cases"


def _image_case(**changes) -> dict:
    case = {
        "image_url": "https://example.org/ic.png",
        "question": "A 34-year-old woman has a rash on her shins. What is the diagnosis?",
        "patient_info": "You are a 34-year-old woman. The spots have grown over 8 years.",
        "physical_exams": "Skin biopsy: necrobiosis within the dermis.",
        "answers": [{"text": "Granuloma annulare", "correct": False},
                    {"text": "Necrobiosis lipoidica", "correct": True}],
        "type": "dermatology",
        "reviewer": "kept",
    }
    case.update(changes)
    return case


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    two = [{"text": "A", "correct": True}, {"text": "B", "correct": True}]
    none = [{"text": "A", "correct": False}, {"text": "B", "correct": "true"}]
    lines = [json.dumps(_image_case()), json.dumps(_image_case(answers=two)),
             json.dumps(_image_case(answers=none)), "{not json", "", "[1, 2]"]
    path = tmp_path / "NEJM Cases.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_bad_line_is_an_error_naming_line_and_field(image_file: Path) -> None:
    # Nothing runs on silently reduced data: the first bad line is named, with the others.
    with pytest.raises(InputError) as error:
        load_agentclinic(image_file)
    assert error.value.source == str(image_file) and error.value.line == 2
    assert error.value.field == "answers"
    assert "exactly one correct answer, found 2" in str(error.value)
    assert "3 more bad lines: 3, 4, 6" in str(error.value)
    # Selecting only the good case does not hide the bad ones either.
    with pytest.raises(InputError, match=":2: answers"):
        load_agentclinic(image_file, select=[0])


def test_image_challenge_file(image_file: Path) -> None:
    scenarios, skipped = load_agentclinic(image_file, skip_bad=True)
    assert len(scenarios) == 1
    scenario = scenarios[0]
    assert scenario.id == "agentclinic-nejm-cases-000"
    assert scenario.tags == ("agentclinic", "image-challenge")
    case = scenario.case
    assert case.diagnosis == "Necrobiosis lipoidica"
    # The question tells the whole case, so the doctor gets only the published objective.
    assert case.objective == "What is the most likely diagnosis?"
    assert case.extra["question"].startswith("A 34-year-old woman")
    assert case.patient == {"information": _image_case()["patient_info"]}
    assert case.exam == {"physical_examination": "Skin biopsy: necrobiosis within the dermis."}
    assert case.tests == {}
    assert case.extra == {"image_url": "https://example.org/ic.png", "type": "dermatology",
                          "reviewer": "kept",
                          "answers": ["Granuloma annulare", "Necrobiosis lipoidica"],
                          "question": case.extra["question"]}
    assert scenario.persona("patient").attributes == {"age": "34", "gender": "woman"}
    # Line 5 is blank: not a case, not a skip. A string "true" is not a correct flag.
    assert [number for number, _ in skipped] == [2, 3, 4, 6]
    reasons = dict(skipped)
    assert "exactly one correct answer, found 2" in reasons[2]
    assert "exactly one correct answer, found 0" in reasons[3]
    assert reasons[4].startswith("line 4: not valid JSON")
    assert reasons[2].startswith("line 2: answers: ")
    assert "line 6" in reasons[6] and "JSON object" in reasons[6]


def test_osce_missing_key_and_wrapping(tmp_path: Path) -> None:
    osce = {"Objective_for_Doctor": "Assess the cough.", "Patient_Actor": "67 year old male",
            "Physical_Examination_Findings": None, "Test_Results": {"CXR": "clear"},
            "Correct_Diagnosis": "Asthma", "Notes": {"kept": 1}}
    broken = {k: v for k, v in osce.items() if k != "Correct_Diagnosis"}
    path = tmp_path / "osce.jsonl"
    path.write_text("\n".join(json.dumps({"OSCE_Examination": c}) for c in (osce, broken)))
    with pytest.raises(InputError) as error:
        load_agentclinic(path)
    assert (error.value.line, error.value.field) == (2, "OSCE_Examination.Correct_Diagnosis")
    scenarios, skipped = load_agentclinic(path, skip_bad=True)
    case = scenarios[0].case
    assert case.patient == {"text": "67 year old male"} and case.exam == {}
    assert case.extra == {"Notes": {"kept": 1}}
    assert skipped == [(2, "line 2: OSCE_Examination.Correct_Diagnosis: OSCE_Examination lacks "
                           "Correct_Diagnosis")]


def test_nothing_converts_or_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("nope\n\n[]\n")
    with pytest.raises(InputError, match=r":1: not valid JSON.*1 more bad lines: 3") as error:
        load_agentclinic(path)
    assert error.value.source == str(path)
    with pytest.raises(InputError, match="no case converted.*line 1.*line 3") as error:
        load_agentclinic(path, skip_bad=True)
    assert error.value.source == str(path)
    with pytest.raises(InputError, match="no such file"):
        load_agentclinic(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n \n")
    with pytest.raises(InputError, match="no cases"):
        load_agentclinic(tmp_path / "empty.jsonl")


@pytest.mark.parametrize(("text", "expected"), [
    ("A 34-year-old woman", {"age": "34", "gender": "woman"}),
    ("67 year old male", {"age": "67", "gender": "man"}),
    ("a girl aged 9", {"age": "9", "gender": "woman"}),
    ("8-month-old boy", {"age": "8 months", "gender": "man"}),
    ("1-month-old boy", {"age": "1 month", "gender": "man"}),
    ("2-day-old male infant", {"age": "2 days", "gender": "man"}),
    ("2-week-old female newborn", {"age": "2 weeks", "gender": "woman"}),
    ("Newborn, born at 33 weeks of gestation", {"age": "newborn"}),
    ("1100-g (2-lb 7-oz) newborn, 31 weeks' gestation", {"age": "newborn"}),
    ("32-year-old woman, gravida 2, para 1, at 38 weeks' gestation",
     {"age": "32", "gender": "woman"}),
    ("66-year-old white male", {"age": "66", "gender": "man", "race": "white"}),
    ("a 68-year-old woman with a black, scab-like sore", {"age": "68", "gender": "woman"}),
    ("a 3-year-old girl with a white pupil", {"age": "3", "gender": "woman"}),
    ("", {}),
])
def test_parse_demographics(text: str, expected: dict) -> None:
    assert parse_demographics(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("0-9", list(range(10))), ("3", [3]), ("0-2,5,7-8", [0, 1, 2, 5, 7, 8]),
    (" 5 , 1-2, 2 ", [1, 2, 5]),
])
def test_parse_case_selection(text: str, expected: list[int]) -> None:
    assert parse_case_selection(text) == expected


@pytest.mark.parametrize("text", ["", "a", "1,,2", "5-3", "-1", "1-", "0-99999999", "1.5"])
def test_parse_case_selection_rejects(text: str) -> None:
    with pytest.raises(InputError) as error:
        parse_case_selection(text)
    assert error.value.source == "--cases"


def test_import_round_trips(medqa: Path, image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = import_agentclinic(medqa, out, select=[0, 1, 76], limit=3)
    assert report.layout == "osce" and report.skipped == [] and len(report.written) == 3
    expected, _ = load_agentclinic(medqa, select=[0, 1, 76])
    for path, scenario in zip(report.written, expected, strict=True):
        assert path == out / f"{scenario.id}.yaml"
        assert load_scenario(path) == scenario
    with pytest.raises(InputError, match=":2: answers"):
        import_agentclinic(image_file, out / "bad")
    assert not (out / "bad").exists()  # nothing written
    good = tmp_path / "nejm.jsonl"
    good.write_text(json.dumps(_image_case()) + "\n", encoding="utf-8")
    report = import_agentclinic(good, out)
    assert report.layout == "image-challenge" and report.rows == 1
    assert load_scenario(report.written[0]).case.extra["answers"][1] == "Necrobiosis lipoidica"
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(medqa.read_text(encoding="utf-8").splitlines()[0] + "\n"
                     + json.dumps(_image_case()) + "\n", encoding="utf-8")
    report = import_agentclinic(mixed, out)
    assert report.layout == "mixed" and len(report.written) == 2
    assert [load_scenario(p).tags[1] for p in report.written] == ["osce", "image-challenge"]
