"""Reading clinical answers: doctor actions, the moderator's verdict, perception ratings, and
the measurement agent's lookup of requested tests.

Doctor turns are JSON-constrained where the model supports it; otherwise the published markers
are read (``REQUEST TEST: …``, ``DIAGNOSIS READY: …``). **A turn with both markers** is not
silently taken as either: unless it is the doctor's last turn, the test is carried out and the
diagnosis is not accepted (the doctor is still gathering evidence), and the turn is flagged
``ambiguous`` in the log; on the last turn the diagnosis is taken, since no test could follow.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from typing import Any, Literal

from agentsim.agents.clinical_prompts import PERCEPTION_QUESTIONS, render_notes

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


ANY_MARKER = re.compile(r"REQUEST\s+TEST\s*:|DIAGNOSIS\s+READY\s*:", re.IGNORECASE)


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
    """Classify a doctor turn as ask / test / diagnose (see the module docstring).

    A test or a diagnosis with no text is not an action: it falls back to the other marker, or
    to a question (logged with the text as given), never to an empty test or diagnosis.
    """
    text = raw.strip()
    action = _json_action(text)
    if action is not None:
        kind, body = action
        if body:
            return DoctorAction(kind, body, "json")  # type: ignore[arg-type]
        return DoctorAction("ask", body, "json")
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


TEST_ALIASES = {
    "ecg": "electrocardiogram", "ekg": "electrocardiogram", "cbc": "complete blood count",
    "cxr": "chest x ray", "xray": "x ray", "ua": "urinalysis", "lp": "lumbar puncture",
    "lft": "liver function", "lfts": "liver function", "bmp": "basic metabolic panel",
    "cmp": "comprehensive metabolic panel", "ct": "ct", "mri": "mri", "abg": "arterial blood gas",
    "bp": "blood pressure", "hr": "heart rate", "ctpa": "ct pulmonary angiogram",
}
STOP = {"a", "an", "the", "of", "for", "and", "test", "tests", "level", "levels", "please",
        "order", "request", "i", "would", "like", "to", "check", "results", "result", "exam",
        "examination", "s", "panel", "study", "scan", "on", "do", "me", "can", "we", "get"}


def _tokens(text: str) -> set[str]:
    text = text.lower().replace("-", " ").replace("_", " ")
    text = text.translate(str.maketrans({c: " " for c in string.punctuation}))
    words = " ".join(TEST_ALIASES.get(w, w) for w in text.split()).split()
    return {w for w in words if w not in STOP}


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        items.append((name, value))
        if isinstance(value, dict):
            items += _flatten(value, f"{name} / ")
    return items


def find_records(request: str, records: dict[str, Any]) -> list[tuple[str, Any]]:
    """Entries of the case's exam and test records that a test request asks for.

    An entry matches when every meaningful word of its name appears in the request, or every
    word of the request appears in its name; the most specific matches win, so 'Troponin I'
    returns that test and not every blood test.
    """
    wanted = _tokens(request)
    if not wanted:
        return []
    matches = []
    for name, value in _flatten(records):
        leaf = name.split(" / ")[-1]
        have = _tokens(leaf)
        if have and (have <= wanted or wanted <= have):
            matches.append((name, value, len(have & wanted)))
    if not matches:
        return []
    best = max(score for _, _, score in matches)
    chosen = [(n, v) for n, v, score in matches if score == best]
    # Drop entries nested inside another chosen entry: the parent already shows them.
    return [(n, v) for n, v in chosen if not any(n.startswith(f"{p} / ") for p, _ in chosen)]


def describe_records(found: list[tuple[str, Any]]) -> str:
    """Test results as the doctor reads them."""
    parts = []
    for name, value in found:
        body = render_notes(value, 1) if isinstance(value, dict | list) else f" {value}"
        parts.append(f"{name}:{chr(10) if isinstance(value, dict | list) else ''}{body}")
    return "RESULTS: " + "\n".join(parts)
