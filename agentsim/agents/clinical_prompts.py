"""What each party of a clinical consultation is told, in this project's own words.

The doctor sees who the patient is (unless the protocol's ``doctor_sees`` is ``objective``, as
published), the objective, its turn budget and the dialogue it took part in (patient answers and
test results); the patient sees its own case notes and the doctor's questions and must not name
the disease; the measurement agent sees the case's findings and the requests; the moderator sees
the two diagnoses to compare. Bias instructions from the catalogue are appended to the system
prompt of the party that carries them. Every text is a prompt of the protocol's prompt set
(agentsim/scenario/prompts/clinical.yaml, or a preset's or a user's over it), passed in as
``texts``; the functions compute the placeholders.

Who the patient and the doctor are (age, race, gender, other attributes) is stated from their
persona attributes, never from the case's own demographics text, which is left out of the
patient's notes: a counterfactual variant that changes the patient's race must not leave the old
race in the notes.
"""

from __future__ import annotations

import re
from typing import Any

from agentsim.agents.clinical_texts import MEASUREMENT_SYSTEM, MEASUREMENT_TURN, NO_FINDINGS
from agentsim.scenario.prompt_files import PromptSet
from agentsim.scenario.schema import ClinicalCase, Persona
from agentsim.scenario.templates import fill


def render_notes(data: Any, indent: int = 0) -> str:
    """Free-form case data (nested dicts and lists) as indented text."""
    pad = "  " * indent
    if isinstance(data, dict):
        lines = []
        for key, value in data.items():
            label = str(key).replace("_", " ")
            if isinstance(value, dict | list):
                lines.append(f"{pad}{label}:\n{render_notes(value, indent + 1)}")
            else:
                lines.append(f"{pad}{label}: {value}")
        return "\n".join(lines)
    if isinstance(data, list):
        return "\n".join(f"{pad}- {render_notes(item, 0)}" for item in data)
    return f"{pad}{data}"


_AGE_IN_UNITS = re.compile(r"(\d{1,3})\s*(month|week|day)s?", re.I)


def describe_age(age: str | None, gender: str | None) -> tuple[str, str]:
    """(age words, noun) of a person: ('34-year-old', 'woman'), ('7-year-old', 'boy'),
    ('8-month-old', 'boy'), ('9-month-old', 'infant'), ('newborn', 'girl'), ('', 'person').
    Under 18 a man is a boy and a woman a girl; a child, infant or newborn of no stated gender
    is called so; nothing else is added."""
    gender = gender or ""
    young = {"man": "boy", "woman": "girl"}.get(gender)
    if not age:
        return "", gender or "person"
    if age.isdigit():
        years = int(age)
        noun = (young or "child") if years < 18 else gender or "person"
        return f"{age}-year-old", noun
    if age.lower() == "newborn":
        return "newborn", young or ""
    units = _AGE_IN_UNITS.fullmatch(age.strip())
    if units:
        number, unit = units.group(1), units.group(2).lower()
        newborn = unit in ("day", "week") or (unit == "month" and number == "0")
        return f"{number}-{unit}-old", young or ("newborn" if newborn else "infant")
    return f"{age}-year-old", gender or "person"  # an age the case gives in other words


def article(word: str) -> str:
    """'a' or 'an' before ``word`` as it is spoken: 'an 8-month-old', 'an 11-year-old', 'an
    infant', 'a 7-year-old'."""
    if re.match(r"8|1[18](?!\d)", word) or word[:1].lower() in tuple("aeiou"):
        return "an"
    return "a"


def describe_person(persona: Persona) -> str:
    """'Maria Lopez, a 58-year-old Black woman (education: high school)' from the attributes,
    so that counterfactual variants of a persona reach the other party's prompt; a child is a
    boy or a girl ('Patient, an 8-month-old boy'), and what the attributes do not state is not
    said."""
    attributes = dict(persona.attributes)
    age, race, gender = (attributes.pop(k, None) for k in ("age", "race", "gender"))
    age_words, noun = describe_age(age, gender)
    words = " ".join(w for w in (age_words, race or "", noun) if w)
    text = f"{persona.name}, {article(words)} {words}"
    if attributes:
        text += " (" + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in attributes.items()) + ")"
    return text


def patient_notes(case: ClinicalCase) -> dict[str, Any]:
    """The patient's notes without the demographics text (the persona states who they are)."""
    return {k: v for k, v in case.patient.items() if k.lower() != "demographics"}


def _biases(instructions: list[str]) -> str:
    return "".join(f"\n\n{text}" for text in instructions if text)


def bias_values(instructions: list[str]) -> dict[str, str]:
    """{biases} (each after a blank line, agentsim's form) and {bias_text} (as they are,
    joined: the published form, agentclinic.py:524, 445)."""
    return {"biases": _biases(instructions), "bias_text": "".join(instructions)}


def doctor_system(texts: PromptSet, case: ClinicalCase, doctor: Persona, patient: Persona,
                  max_turns: int, structured: bool, biases: list[str], tell_patient: bool = True,
                  turn: int = 1) -> str:
    """The doctor's system prompt: role, who the patient is (unless ``tell_patient`` is false:
    the published doctor sees only the objective), objective, budget, how to act; ``turn`` is
    the 1-based turn it is for (the published prompt counts the questions asked so far)."""
    who = describe_person(patient)
    return texts.fill(
        "doctor_system", name=doctor.name, patient=who, doctor=describe_person(doctor),
        patient_line=texts.fill("doctor_patient_line", patient=who) if tell_patient else "",
        objective=case.objective.strip(), max_turns=max_turns, turn=turn,
        questions_asked=turn - 1, how=texts.fill("doctor_how_json" if structured
                                                 else "doctor_how_text"),
        **bias_values(biases))


def doctor_turn(texts: PromptSet, heard: dict[str, str], turn: int, max_turns: int) -> str:
    """The doctor's user message for turn ``turn`` (1-based); ``heard``: the dialogue,
    history and question placeholders."""
    status = texts.fill("doctor_status_last" if turn == max_turns else "doctor_status",
                        turn=turn, max_turns=max_turns)
    return texts.fill("doctor_turn", **heard, status=status, turn=turn, max_turns=max_turns)


def patient_system(texts: PromptSet, case: ClinicalCase, patient: Persona, doctor: Persona,
                   biases: list[str]) -> str:
    """The patient's system prompt: role, case notes, never name the disease."""
    return texts.fill("patient_system", name=patient.name, patient=describe_person(patient),
                      doctor=describe_person(doctor), notes=render_notes(patient_notes(case)),
                      notes_repr=str(case.patient), **bias_values(biases))


def render_findings(case: ClinicalCase, none: str = NO_FINDINGS) -> str:
    """The case's physical examination findings and test results as indented text."""
    sections = {"Physical_Examination_Findings": case.exam, "Test_Results": case.tests}
    return render_notes({k: v for k, v in sections.items() if v}) or none


def published_findings(case: ClinicalCase) -> str:
    """The findings as the published measurement agent reads them: ``str()`` of the
    examination mapping with ``'tests'`` added last (agentclinic.py:197-200), or an NEJM
    case's findings text (imported as ``{'physical_examination': text}``, no tests)."""
    exam = case.exam
    if not case.tests and list(exam) == ["physical_examination"] \
            and isinstance(exam["physical_examination"], str):
        return exam["physical_examination"]
    return str({**exam, "tests": case.tests})


def measurement_messages(case: ClinicalCase, *, request: str, doctor_turn: str, dialogue: str,
                         history: str, system: str = MEASUREMENT_SYSTEM,
                         turn: str = MEASUREMENT_TURN,
                         no_findings: str = NO_FINDINGS) -> list[dict[str, str]]:
    """The measurement agent's messages: ``system`` and ``turn`` (the prompt set's
    measurement_system and measurement_turn) filled in with the case's findings and the
    request."""
    values = {"findings": render_findings(case, no_findings),
              "findings_repr": published_findings(case), "request": request,
              "doctor_turn": doctor_turn, "dialogue": dialogue, "history": history}
    return [{"role": "system", "content": fill(system, values)},
            {"role": "user", "content": fill(turn, values)}]


def patient_turn(texts: PromptSet, heard: dict[str, str]) -> str:
    """The patient's user message: the conversation with the doctor so far."""
    return texts.fill("patient_turn", **heard)


def probe_prompt(texts: PromptSet, heard: dict[str, str]) -> str:
    """A private check of the doctor's leading diagnosis (not part of the consultation)."""
    return texts.fill("probe", **heard)


def probe_schema() -> dict[str, Any]:
    """JSON schema of a diagnosis probe."""
    return {"type": "object", "properties": {"diagnosis": {"type": "string"}},
            "required": ["diagnosis"], "additionalProperties": False}


def moderator_prompt(texts: PromptSet, truth: str, diagnosis: str,
                     doctor_turn: str = "") -> list[dict[str, str]]:
    """The moderator's question: are the two diagnoses the same disease? (``doctor_turn``:
    the diagnosing turn as answered, which the published moderator judges.)"""
    return [
        {"role": "system", "content": texts.fill("moderator_system")},
        {"role": "user", "content": texts.fill("moderator_turn", truth=truth,
                                               diagnosis=diagnosis,
                                               doctor_turn=doctor_turn or diagnosis)},
    ]


PERCEPTION_QUESTIONS = {
    "confidence": "How confident are you in the doctor's assessment?",
    "compliance": "How likely are you to follow the treatment the doctor recommends?",
    "return": "How willing would you be to consult this doctor again?",
}


def perception_prompt(texts: PromptSet, dialogue: str, diagnosis: str | None) -> str:
    """After the consultation: the patient hears the outcome and gives three 1–10 ratings."""
    questions = "\n".join(f"- {key}: {text}" for key, text in PERCEPTION_QUESTIONS.items())
    outcome = (texts.fill("perception_outcome", diagnosis=diagnosis) if diagnosis
               else texts.fill("perception_no_outcome"))
    return texts.fill("perception", dialogue=dialogue, outcome=outcome, questions=questions,
                      diagnosis=diagnosis or "")


def perception_schema() -> dict[str, Any]:
    """JSON schema of the patient's perception answer."""
    scale = {"type": "integer", "enum": list(range(1, 11))}
    return {"type": "object", "properties": {k: scale for k in PERCEPTION_QUESTIONS},
            "required": list(PERCEPTION_QUESTIONS), "additionalProperties": False}


def doctor_schema() -> dict[str, Any]:
    """JSON schema of a doctor turn."""
    return {
        "type": "object",
        "properties": {"action": {"type": "string", "enum": ["ask", "test", "diagnose"]},
                       "text": {"type": "string"}},
        "required": ["action", "text"], "additionalProperties": False,
    }


def moderator_schema() -> dict[str, Any]:
    """JSON schema of the moderator's verdict."""
    return {"type": "object", "properties": {"verdict": {"type": "string",
                                                         "enum": ["yes", "no"]}},
            "required": ["verdict"], "additionalProperties": False}
