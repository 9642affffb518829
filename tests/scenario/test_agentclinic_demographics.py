"""Who the patient of a published case is comes from the case's own demographics text: an age
in years, months, weeks or days, 'newborn', the sex, a race stated beside the person; a child
is a boy or a girl, never "a man"; what the text does not state stays unstated. Checked on every
published case in the anchors."""

from __future__ import annotations

import re

import pytest

from agentsim.agents.clinical_prompts import article, describe_age, describe_person
from agentsim.scenario.agentclinic import load_agentclinic
from agentsim.scenario.schema import Persona

SEX_WORDS = re.compile(r"\b(male|man|boy|female|woman|girl)\b", re.I)
ADULT_WORDS = re.compile(r"\b(man|woman)\b")


@pytest.fixture
def described(anchors) -> list[tuple[str, str]]:
    """(demographics text, how the doctor is told who the patient is) of every MedQA case."""
    scenarios, _ = load_agentclinic(anchors / "agentclinic" / "agentclinic_medqa.jsonl")
    return [(s.case.patient.get("Demographics", ""), describe_person(s.persona("patient")))
            for s in scenarios]


def years(text: str) -> int | None:
    match = re.search(r"(\d+)[\s-]*years?[\s-]*old", text)
    return int(match.group(1)) if match else None


def test_children_are_never_men_or_women(described):
    young = 0
    for text, description in described:
        age = years(text)
        infant = re.search(r"\d+[\s-]*(month|week|day)s?[\s-]*old|newborn|infant", text, re.I)
        if (age is not None and age < 18) or infant:
            young += 1
            assert not ADULT_WORDS.search(description), (text, description)
    assert young == 33  # infants, newborns and children under 18 in MedQA-107


def test_what_the_case_states_is_said_and_nothing_else(described):
    for text, description in described:
        if not SEX_WORDS.search(text):
            assert not re.search(r"\b(man|woman|boy|girl)\b", description), (text, description)
        age = re.search(r"(\d+)-(year|month|week|day)-old", text)
        if age:
            assert age.group(0) in description, (text, description)
        if "newborn" in text.lower() and not age:
            assert "newborn" in description
        assert not re.search(r"\ba [8]|\ba 1[18]-", description), description  # an 8-, an 11-


@pytest.mark.parametrize(("index", "expected"), [
    (2, "Patient, an 8-month-old boy"),  # "8-month-old boy"
    (7, "Patient, a newborn girl"),  # "Newborn, female"
    (11, "Patient, a 7-year-old boy"),
    (13, "Patient, a 2-day-old boy"),  # "2-day-old male infant"
    (30, "Patient, a newborn"),  # "Newborn, born at 33 weeks of gestation": no sex stated
    (34, "Patient, an 11-year-old girl"),
    (40, "Patient, a 42-year-old Caucasian man"),
    (45, "Patient, a 9-month-old infant"),
    (51, "Patient, a 3-year-old child"),
    (95, "Patient, a 23-year-old person"),  # "23-year-old college student"
    (0, "Patient, a 35-year-old woman"),
    (18, "Patient, a 32-year-old woman"),  # "... at 38 weeks' gestation" is not her age
])
def test_published_cases(described, index, expected):
    assert described[index][1] == expected


@pytest.mark.parametrize(("age", "gender", "expected"), [
    ("34", "woman", ("34-year-old", "woman")), ("17", "man", ("17-year-old", "boy")),
    ("3", None, ("3-year-old", "child")), ("8 months", "man", ("8-month-old", "boy")),
    ("9 months", None, ("9-month-old", "infant")), ("2 days", None, ("2-day-old", "newborn")),
    ("1 month", "woman", ("1-month-old", "girl")), ("newborn", None, ("newborn", "")),
    (None, "woman", ("", "woman")), (None, None, ("", "person")),
    ("40s", "man", ("40s-year-old", "man")),
])
def test_describe_age(age, gender, expected):
    assert describe_age(age, gender) == expected


def test_a_gender_variant_of_a_child_stays_a_child():
    boy = Persona(id="patient", name="Sam", attributes={"age": "8 months", "gender": "man"})
    girl = boy.model_copy(update={"attributes": {"age": "8 months", "gender": "woman"}})
    assert describe_person(boy) == "Sam, an 8-month-old boy"
    assert describe_person(girl) == "Sam, an 8-month-old girl"


@pytest.mark.parametrize(("word", "expected"), [
    ("8-year-old", "an"), ("11-year-old", "an"), ("18-month-old", "an"), ("80-year-old", "an"),
    ("110-year-old", "a"), ("1-month-old", "a"), ("7-year-old", "a"), ("infant", "an"),
    ("Asian", "an"), ("newborn", "a"),
])
def test_article(word, expected):
    assert article(word) == expected
