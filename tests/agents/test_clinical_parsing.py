"""Reading clinical answers: doctor turns (JSON or the published markers, with the both-markers
rule), the moderator's verdict, diagnosis normalisation and perception ratings (the records
clerk's lookup is tested in test_clinical_records)."""

from __future__ import annotations

import json

import pytest

from agentsim.agents.clinical_parsing import (
    DoctorAction,
    normalise_diagnosis,
    parse_doctor_turn,
    parse_perception,
    parse_verdict,
    same_diagnosis,
)

# --- parse_doctor_turn ------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "text"), [
    ("ask", "Where exactly is the pain?"),
    ("test", "Troponin I"),
    ("diagnose", "Pulmonary embolism"),
])
def test_json_actions(action, text):
    parsed = parse_doctor_turn(json.dumps({"action": action, "text": text}), last_turn=False)
    assert (parsed.kind, parsed.text, parsed.parsed_by, parsed.ambiguous) == (
        action, text, "json", False)


def test_json_action_with_surrounding_whitespace():
    parsed = parse_doctor_turn('  \n{"action": "test", "text": " ECG "}\n', last_turn=False)
    assert (parsed.kind, parsed.text, parsed.parsed_by) == ("test", "ECG", "json")


def test_json_action_is_kept_on_the_last_turn():
    parsed = parse_doctor_turn('{"action": "ask", "text": "Any chest pain?"}', last_turn=True)
    assert parsed.kind == "ask" and parsed.parsed_by == "json"


@pytest.mark.parametrize("action", ["ask", "test", "diagnose"])
def test_json_with_empty_text_is_never_an_empty_test_or_diagnosis(action):
    # Nothing to ask, request or diagnose: the turn is unparsed, never an accepted test or
    # diagnosis, and never an empty question to the patient.
    for last_turn in (False, True):
        parsed = parse_doctor_turn(json.dumps({"action": action, "text": ""}), last_turn)
        assert parsed.kind == "ask" and parsed.text == ""
        assert parsed.parsed_by == "json"
        assert parsed.unparsed == f"a JSON {action!r} action with no text"
        assert not parsed.ambiguous


def test_json_with_unknown_action_is_unparsed():
    parsed = parse_doctor_turn('{"action": "refer", "text": "cardiology"}', last_turn=False)
    assert parsed.kind == "ask" and parsed.text == "" and parsed.unparsed


@pytest.mark.parametrize(("raw", "kind", "text"), [
    ("REQUEST TEST: ECG", "test", "ECG"),
    ("request test:   Chest X-ray  ", "test", "Chest X-ray"),
    ("Let me check something.\nREQUEST TEST: [Troponin I]", "test", "Troponin I"),
    ("DIAGNOSIS READY: Non-ST-elevation myocardial infarction", "diagnose",
     "Non-ST-elevation myocardial infarction"),
    ("Diagnosis Ready: \"Graves disease\"", "diagnose", "Graves disease"),
    ("DIAGNOSIS READY: Celiac disease.", "diagnose", "Celiac disease"),
])
def test_markers(raw, kind, text):
    parsed = parse_doctor_turn(raw, last_turn=False)
    assert (parsed.kind, parsed.text, parsed.parsed_by, parsed.ambiguous) == (
        kind, text, "markers", False)


def test_both_markers_before_the_last_turn_run_the_test_and_are_flagged():
    raw = "REQUEST TEST: ECG\nDIAGNOSIS READY: Acute MI"
    parsed = parse_doctor_turn(raw, last_turn=False)
    assert (parsed.kind, parsed.text, parsed.parsed_by, parsed.ambiguous) == (
        "test", "ECG", "markers", True)
    # Order in the text does not matter.
    parsed = parse_doctor_turn("DIAGNOSIS READY: Acute MI\nREQUEST TEST: ECG", last_turn=False)
    assert (parsed.kind, parsed.text, parsed.ambiguous) == ("test", "ECG", True)


def test_both_markers_on_the_last_turn_take_the_diagnosis_and_are_flagged():
    raw = "REQUEST TEST: ECG\nDIAGNOSIS READY: Acute MI"
    parsed = parse_doctor_turn(raw, last_turn=True)
    assert (parsed.kind, parsed.text, parsed.parsed_by, parsed.ambiguous) == (
        "diagnose", "Acute MI", "markers", True)


def test_both_markers_on_one_line_are_split_where_the_next_marker_starts():
    raw = "REQUEST TEST: ECG DIAGNOSIS READY: Acute MI"
    assert parse_doctor_turn(raw, last_turn=False) == DoctorAction(
        "test", "ECG", "markers", ambiguous=True)
    assert parse_doctor_turn(raw, last_turn=True) == DoctorAction(
        "diagnose", "Acute MI", "markers", ambiguous=True)


@pytest.mark.parametrize(("raw", "expected"), [
    ("DIAGNOSIS READY: Acute MI. I will also start aspirin and admit her.", "Acute MI"),
    ("DIAGNOSIS READY: Pulmonary embolism. Start anticoagulation now.", "Pulmonary embolism"),
    ("DIAGNOSIS READY: Guillain-Barré syndrome (GBS). Admit for IVIG.",
     "Guillain-Barré syndrome (GBS)"),
])
def test_diagnosis_marker_followed_by_more_text_on_the_same_line(raw, expected):
    parsed = parse_doctor_turn(raw, last_turn=False)
    assert (parsed.kind, parsed.text) == ("diagnose", expected)


@pytest.mark.parametrize("raw", [
    "How long have you had this pain?",
    "  Do you smoke?  ",
    "Could you describe the rash, please?\nWhen did it start?",
])
def test_plain_question_is_an_ask(raw):
    parsed = parse_doctor_turn(raw, last_turn=False)
    assert (parsed.kind, parsed.text, parsed.parsed_by, parsed.ambiguous) == (
        "ask", raw.strip(), "markers", False)
    assert parsed.unparsed is None
    # A plain question on the last turn is still a question (the budget then ends it).
    assert parse_doctor_turn(raw, last_turn=True).kind == "ask"


@pytest.mark.parametrize("raw", ["DIAGNOSIS READY:", "REQUEST TEST:   ", "DIAGNOSIS READY: []"])
def test_marker_without_content_is_not_an_action(raw):
    parsed = parse_doctor_turn(raw, last_turn=False)
    assert parsed.kind == "ask" and parsed.text == ""
    assert parsed.unparsed == "a marker with nothing after it"


@pytest.mark.parametrize(("raw", "last_turn"), [
    ("REQUEST TEST: ECG\nDIAGNOSIS READY:", True),
    ("REQUEST TEST:\nDIAGNOSIS READY: Acute MI", False),
])
def test_both_markers_one_empty_never_yields_an_empty_action(raw, last_turn):
    parsed = parse_doctor_turn(raw, last_turn=last_turn)
    assert parsed.kind == "ask" or parsed.text


# --- parse_verdict ----------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("Yes.", True),
    ("yes", True),
    ("YES", True),
    ("yes, same disease", True),
    ("No", False),
    ("no, different", False),
    ("No. These are different diseases.", False),
    ('{"verdict": "yes"}', True),
    ('{"verdict": "no"}', False),
    ('  {"verdict": "Yes"}  ', True),
    ("They are not the same disease.", False),
    ("The answer is yes.", True),
    ("maybe", None),
    ("", None),
    ("   ", None),
    ("...", None),
    ("Hard to say: yes and no.", None),
])
def test_parse_verdict(raw, expected):
    assert parse_verdict(raw) is expected


# --- normalise_diagnosis / same_diagnosis -------------------------------------------------------


@pytest.mark.parametrize(("truth", "diagnosis"), [
    ("Myocardial infarction", "MI"),
    ("Myocardial infarction", "Acute MI."),
    ("Non-ST-elevation myocardial infarction", "NSTEMI"),
    ("Non-ST-elevation myocardial infarction", "non ST elevation myocardial infarction"),
    ("Pulmonary embolism", "PE"),
    ("Pulmonary embolism", "Acute pulmonary embolism"),
    ("Pulmonary embolism", "pulmonary embolism."),
    ("Systemic lupus erythematosus", "SLE"),
    ("Systemic lupus erythematosus", "Lupus"),
    ("Guillain-Barré syndrome", "GUILLAIN BARRE SYNDROME"),
    ("Guillain-Barré syndrome", "GBS"),
    ("Graves disease", "Graves' disease"),
    ("Celiac disease", "celiac"),
])
def test_same_diagnosis_true(truth, diagnosis):
    assert same_diagnosis(truth, diagnosis)
    assert same_diagnosis(diagnosis, truth)


@pytest.mark.parametrize(("truth", "diagnosis"), [
    ("Pulmonary embolism", "Pneumonia"),
    ("Non-ST-elevation myocardial infarction", "Viral upper respiratory infection"),
    ("Graves disease", "Hashimoto thyroiditis"),
    ("Meningococcal meningitis", "Viral meningitis"),
    ("Celiac disease", "Crohn disease"),
    ("Pulmonary embolism", ""),
    ("", "Pulmonary embolism"),
    ("", ""),
    ("Pulmonary embolism", "   "),
    ("Celiac disease", "disease"),  # only filler words left
])
def test_same_diagnosis_false(truth, diagnosis):
    assert not same_diagnosis(truth, diagnosis)


def test_normalise_diagnosis():
    assert normalise_diagnosis("Acute MI.") == "myocardial infarction"
    assert normalise_diagnosis("NSTEMI") == "non st elevation myocardial infarction"
    assert normalise_diagnosis("Guillain-Barré Syndrome") == "guillain barre"
    assert normalise_diagnosis("") == ""


def test_stemi_is_not_nstemi():
    assert not same_diagnosis("Non-ST-elevation myocardial infarction", "STEMI")


# --- parse_perception ---------------------------------------------------------------------------


def test_perception_json():
    assert parse_perception('{"confidence": 7, "compliance": 8, "return": 9}') == ({
        "confidence": 7, "compliance": 8, "return": 9}, "json")
    # Numbers given as strings and extra keys are fine.
    assert parse_perception('{"confidence": "1", "compliance": 10, "return": 5, "x": 3}') == ({
        "confidence": 1, "compliance": 10, "return": 5}, "json")


def test_perception_text_lines():
    raw = "Confidence: 6\nCompliance: 9/10\nReturn: 4"
    assert parse_perception(raw) == ({"confidence": 6, "compliance": 9, "return": 4}, "text")
    raw = "- confidence: 7\n- compliance: 7\n- return: 8"
    assert parse_perception(raw) == ({"confidence": 7, "compliance": 7, "return": 8}, "text")


@pytest.mark.parametrize("raw", [
    '{"confidence": 0, "compliance": 8, "return": 9}',
    '{"confidence": 7, "compliance": 11, "return": 9}',
    '{"confidence": 7, "compliance": 8, "return": -2}',
    "confidence: 12\ncompliance: 8\nreturn: 9",
    "confidence: 0\ncompliance: 8\nreturn: 9",
])
def test_perception_out_of_range_is_none(raw):
    assert parse_perception(raw) is None


@pytest.mark.parametrize("raw", [
    '{"confidence": 7, "compliance": 8}',
    '{"confidence": 7, "return": 8}',
    "confidence: 7\ncompliance: 8",
    "I am quite happy with the doctor.",
    "",
    '{"ratings": {"confidence": 7, "compliance": 8, "return": 9}}',
])
def test_perception_missing_key_is_none(raw):
    assert parse_perception(raw) is None
