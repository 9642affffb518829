"""What each party of a clinical consultation is told, in this project's own words.

The doctor sees only the objective, its turn budget and the dialogue it took part in (patient
answers and test results); the patient sees its own case notes and the doctor's questions and must
not name the disease; the moderator sees the two diagnoses to compare. Bias instructions from the
catalogue are appended to the system prompt of the party that carries them.

Who the patient and the doctor are (age, race, gender, other attributes) is stated from their
persona attributes, never from the case's own demographics text, which is left out of the
patient's notes: a counterfactual variant that changes the patient's race must not leave the old
race in the notes.
"""

from __future__ import annotations

from typing import Any

from agentsim.scenario.schema import ClinicalCase, Persona


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


def describe_person(persona: Persona) -> str:
    """'Maria Lopez, a 58-year-old Black woman (education: high school)' from the attributes,
    so that counterfactual variants of a persona reach the other party's prompt."""
    attributes = dict(persona.attributes)
    age, race, gender = (attributes.pop(k, None) for k in ("age", "race", "gender"))
    words = [f"{age}-year-old" if age else "", race or "", gender or "person"]
    text = f"{persona.name}, a " + " ".join(w for w in words if w)
    if attributes:
        text += " (" + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in attributes.items()) + ")"
    return text


def patient_notes(case: ClinicalCase) -> dict[str, Any]:
    """The patient's notes without the demographics text (the persona states who they are)."""
    return {k: v for k, v in case.patient.items() if k.lower() != "demographics"}


def _biases(instructions: list[str]) -> str:
    return "".join(f"\n\n{text}" for text in instructions if text)


def doctor_system(case: ClinicalCase, doctor: Persona, patient: Persona, max_turns: int,
                  structured: bool, biases: list[str]) -> str:
    """The doctor's system prompt: role, objective, budget, how to act."""
    how = (
        'Answer with JSON {"action": "ask" | "test" | "diagnose", "text": "..."}: "ask" to put '
        'a question to the patient, "test" to request one examination or test (name it in '
        '"text"), "diagnose" to give your final diagnosis (the diagnosis in "text").'
        if structured else
        "Each turn, either ask the patient one question, or request one examination or test "
        'by writing "REQUEST TEST: <test>", or give your final diagnosis by writing '
        '"DIAGNOSIS READY: <diagnosis>".'
    )
    return (
        f"You are {doctor.name}, a doctor. Your patient is {describe_person(patient)}. "
        f"Objective: {case.objective.strip()}\n\nYou have {max_turns} turns in all; a test "
        f"request uses a turn. Keep questions short (one or two sentences). {how}"
        + _biases(biases)
    )


def doctor_turn(dialogue: str, turn: int, max_turns: int) -> str:
    """The doctor's user message for turn ``turn`` (1-based)."""
    status = (f"This is your last turn ({turn} of {max_turns}): give your final diagnosis now."
              if turn == max_turns else f"Turn {turn} of {max_turns}.")
    return f"Consultation so far:\n{dialogue}\n\n{status}"


def patient_system(case: ClinicalCase, patient: Persona, doctor: Persona,
                   biases: list[str]) -> str:
    """The patient's system prompt: role, case notes, never name the disease."""
    return (
        f"You are {describe_person(patient)}, a patient consulting {describe_person(doctor)}, "
        "a doctor. Answer the doctor's "
        "questions in one to three sentences, as a patient would, using only what is in your "
        "notes; say you do not know otherwise. Never name a disease or a diagnosis, even if you "
        f"suspect one.\n\nYour notes:\n{render_notes(patient_notes(case))}" + _biases(biases)
    )


def patient_turn(dialogue: str) -> str:
    """The patient's user message: the conversation with the doctor so far."""
    return f"Conversation so far:\n{dialogue}\n\nAnswer the doctor's last question."


def probe_prompt(dialogue: str) -> str:
    """A private check of the doctor's leading diagnosis (not part of the consultation)."""
    return (f"Consultation so far:\n{dialogue}\n\nPrivately, and without telling the patient: "
            'what is your most likely diagnosis at this point? Answer with JSON {"diagnosis": '
            '"..."}.')


def probe_schema() -> dict[str, Any]:
    """JSON schema of a diagnosis probe."""
    return {"type": "object", "properties": {"diagnosis": {"type": "string"}},
            "required": ["diagnosis"], "additionalProperties": False}


def moderator_prompt(truth: str, diagnosis: str) -> list[dict[str, str]]:
    """The moderator's question: are the two diagnoses the same disease?"""
    return [
        {"role": "system", "content": "You check a doctor's diagnosis against the correct "
         "one. Answer only Yes or No."},
        {"role": "user", "content": f"Correct diagnosis: {truth}\nDoctor's diagnosis: "
         f"{diagnosis}\nAre these the same disease? Answer Yes or No."},
    ]


PERCEPTION_QUESTIONS = {
    "confidence": "How confident are you in the doctor's assessment?",
    "compliance": "How likely are you to follow the treatment the doctor recommends?",
    "return": "How willing would you be to consult this doctor again?",
}


def perception_prompt(dialogue: str, diagnosis: str | None) -> str:
    """After the consultation: the patient hears the outcome and gives three 1–10 ratings."""
    questions = "\n".join(f"- {key}: {text}" for key, text in PERCEPTION_QUESTIONS.items())
    outcome = (f"The doctor's diagnosis: {diagnosis}." if diagnosis
               else "The doctor did not reach a diagnosis.")
    return (
        f"Your consultation is over. Here is what was said:\n{dialogue}\n{outcome}\n\n"
        "Rate each from 1 (not "
        f"at all) to 10 (completely):\n{questions}\nAnswer with JSON "
        '{"confidence": n, "compliance": n, "return": n}.'
    )


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
