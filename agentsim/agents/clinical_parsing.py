"""Reading clinical answers: doctor actions, the moderator's verdict, perception ratings, and
the measurement agent's lookup of requested tests.

Doctor turns are JSON-constrained where the model supports it; otherwise the published markers
are read (``REQUEST TEST: …``, ``DIAGNOSIS READY: …``). **A turn with both markers** is not
silently taken as either: unless it is the doctor's last turn, the test is carried out and the
diagnosis is not accepted (the doctor is still gathering evidence), and the turn is flagged
``ambiguous`` in the log; on the last turn the diagnosis is taken, since no test could follow.

**An unparsed turn** is neither a JSON action nor a marked action nor a question: an empty
answer, JSON that is cut off or holds no known action (``{"action": "diagnose", "text":
"Myasth``), an action with no text, a marker with nothing after it. Its ``unparsed`` says why;
the protocol asks again and never passes it to the patient as a question. Plain text without a
marker is a question, as published.

The moderator's verdict is read leniently (:func:`parse_verdict`) or as published
(:func:`strict_verdict`: correct only when the answer, whitespace runs collapsed, is "yes").
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from typing import Literal

from agentsim.agents.clinical_prompts import PERCEPTION_QUESTIONS
from agentsim.agents.clinical_records import describe_records, find_records

__all__ = ["Action", "DoctorAction", "describe_records", "find_records", "normalise_diagnosis",
           "parse_doctor_turn", "parse_perception", "parse_verdict", "same_diagnosis",
           "strict_verdict"]

Action = Literal["ask", "test", "diagnose"]
TEST_MARKER = re.compile(r"REQUEST\s+TEST\s*:\s*(?P<text>[^\n]*)", re.IGNORECASE)
DIAGNOSIS_MARKER = re.compile(r"DIAGNOSIS\s+READY\s*:\s*(?P<text>[^\n]*)", re.IGNORECASE)


@dataclass(frozen=True)
class DoctorAction:
    """One classified doctor turn."""

    kind: Action
    text: str
    parsed_by: str
    ambiguous: bool = False
    unparsed: str | None = None  # why the turn is no action (None: it is one)


ANY_MARKER = re.compile(r"REQUEST\s+TEST\s*:|DIAGNOSIS\s+READY\s*:", re.IGNORECASE)
# JSON, or the start of it: an answer opening with '{' or '[' (a code fence allowed), or an
# '"action"' key anywhere.
LOOKS_LIKE_JSON = re.compile(r'\A(?:```[a-zA-Z]*\s*)?[{\[]|\{\s*"action"')


ABBREVIATED = {"st", "vit", "dr", "mr", "mrs", "ms", "no", "vs", "approx", "inc", "sp", "spp"}
SENTENCE_BREAK = re.compile(r"\.\s+(?=[A-Z])")


def _clean(text: str) -> str:
    """A marker's text: up to another marker (even on the same line) and to the end of its
    sentence ('Acute MI. I will admit her.' → 'Acute MI'), keeping abbreviations ('St. Louis
    encephalitis')."""
    head = ANY_MARKER.split(text)[0]
    for match in SENTENCE_BREAK.finditer(head):
        before = re.findall(r"[A-Za-z]+$", head[: match.start()])
        if not before or before[0].lower() not in ABBREVIATED:
            head = head[: match.start()]
            break
    return head.strip().strip("[]\"' .")


def _json_action(text: str) -> tuple[str, str] | None:
    """(action, text) from the first JSON object in the answer (code fences and prose around
    it are fine), or None."""
    from agentsim.agents.decisions import json_objects

    for data in json_objects(text):
        if isinstance(data, dict) and data.get("action") in ("ask", "test", "diagnose"):
            return data["action"], str(data.get("text", "")).strip()
    return None


def parse_doctor_turn(raw: str, last_turn: bool) -> DoctorAction:
    """Classify a doctor turn as ask / test / diagnose, or as unparsed (see the module
    docstring). An unparsed turn is an empty ``ask`` whose ``unparsed`` says why; a test or a
    diagnosis is never empty."""
    text = raw.strip()
    if not text:
        return DoctorAction("ask", "", "none", unparsed="empty answer")
    action = _json_action(text)
    if action is not None:
        kind, body = action
        if body:
            return DoctorAction(kind, body, "json")  # type: ignore[arg-type]
        return DoctorAction("ask", "", "json", unparsed=f"a JSON {kind!r} action with no text")
    test = _clean(m["text"]) if (m := TEST_MARKER.search(text)) else ""
    diagnosis = _clean(m["text"]) if (m := DIAGNOSIS_MARKER.search(text)) else ""
    if test and diagnosis:
        if last_turn:
            return DoctorAction("diagnose", diagnosis, "markers", ambiguous=True)
        return DoctorAction("test", test, "markers", ambiguous=True)
    if diagnosis:
        return DoctorAction("diagnose", diagnosis, "markers")
    if test:
        return DoctorAction("test", test, "markers")
    if ANY_MARKER.search(text):
        return DoctorAction("ask", "", "markers", unparsed="a marker with nothing after it")
    if LOOKS_LIKE_JSON.search(text):
        return DoctorAction("ask", "", "markers",
                            unparsed="not a complete JSON action (cut off, or no known action)")
    return DoctorAction("ask", text, "markers")


def parse_verdict(raw: str) -> bool | None:
    """The moderator's yes/no, read tolerantly ('Yes.', 'yes, same disease', '{"verdict":
    "no"}'); None when it says neither or both."""
    text = raw.strip().lower()
    try:
        data = json.loads(text)
        if isinstance(data, dict) and "verdict" in data:
            text = str(data["verdict"])
    except json.JSONDecodeError:
        pass
    words = re.findall(r"[a-z]+", text)
    if not words:
        return None
    if words[0] in ("yes", "no"):
        return words[0] == "yes"
    said_yes, said_no = "yes" in words, "no" in words or "not" in words
    return said_yes if said_yes != said_no else None


def strict_verdict(raw: str) -> bool:
    """The published moderator's verdict (AgentClinic, agentclinic.py:78 and 566-567, 640):
    the answer with runs of whitespace collapsed to one space, lower-cased, must be exactly
    "yes" ("Yes." and "yes, same disease" are not)."""
    return re.sub(r"\s+", " ", raw).lower() == "yes"


ABBREVIATIONS = {
    "mi": "myocardial infarction", "ami": "acute myocardial infarction",
    "nstemi": "non st elevation myocardial infarction",
    "stemi": "st elevation myocardial infarction", "pe": "pulmonary embolism",
    "dvt": "deep vein thrombosis", "tia": "transient ischemic attack", "cva": "stroke",
    "copd": "chronic obstructive pulmonary disease", "gerd": "gastroesophageal reflux disease",
    "uti": "urinary tract infection", "dka": "diabetic ketoacidosis",
    "sle": "systemic lupus erythematosus", "lupus": "systemic lupus erythematosus",
    "ra": "rheumatoid arthritis", "ms": "multiple sclerosis",
    "als": "amyotrophic lateral sclerosis", "chf": "congestive heart failure",
    "afib": "atrial fibrillation", "af": "atrial fibrillation", "tb": "tuberculosis",
    "ibs": "irritable bowel syndrome", "uc": "ulcerative colitis", "gbs": "guillain barre syndrome",
    "aaa": "abdominal aortic aneurysm", "cad": "coronary artery disease",
}
FILLER = {"acute", "the", "a", "an", "of", "disease", "syndrome", "disorder", "likely",
          "probable", "possible", "suspected", "diagnosis", "with", "due", "to", "s"}


def normalise_diagnosis(text: str) -> str:
    """Case, accents, punctuation and common abbreviations removed: 'Acute MI.' →
    'myocardial infarction'."""
    import unicodedata

    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = text.translate(str.maketrans({c: " " for c in string.punctuation}))
    words = " ".join(ABBREVIATIONS.get(w, w) for w in text.split()).split()
    return " ".join(w for w in words if w not in FILLER)


NEGATIONS = {"non", "not", "no", "without", "absence", "absent"}


def same_diagnosis(truth: str, diagnosis: str) -> bool:
    """The deterministic verdict: equal after normalisation, or one contains the other as
    whole words ('NSTEMI' vs 'non-ST-elevation myocardial infarction') — unless the longer one
    adds a negation ('STEMI' is not 'non-ST-elevation myocardial infarction')."""
    a, b = normalise_diagnosis(truth), normalise_diagnosis(diagnosis)
    if not a or not b:
        return False
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    if f" {short} " not in f" {long} ":
        return False
    extra = set(long.split()) - set(short.split())
    return not extra & NEGATIONS


def parse_perception(raw: str) -> tuple[dict[str, int], str] | None:
    """The patient's three 1–10 ratings and how they were read ('json' or 'text', from
    'confidence: 7' lines); None if any is missing or out of range."""
    values: dict[str, int] = {}
    how = "json"
    try:
        data = json.loads(raw)
        if isinstance(data, dict):
            values = {k: int(v) for k, v in data.items() if k in PERCEPTION_QUESTIONS}
    except (json.JSONDecodeError, TypeError, ValueError):
        how = "text"
        for key in PERCEPTION_QUESTIONS:
            match = re.search(rf"{key}\D{{0,20}}(\d+)", raw, re.IGNORECASE)
            if match:
                values[key] = int(match.group(1))
    if set(values) != set(PERCEPTION_QUESTIONS) or not all(1 <= v <= 10 for v in values.values()):
        return None
    return values, how
