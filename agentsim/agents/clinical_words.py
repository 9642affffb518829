"""The words of examination and test names, read the same way in a doctor's request and in a
case's records: 'CBC' and 'Complete_Blood_Count', 'LFTs' and 'Liver_Function_Tests', 'chest
x-ray' and 'Chest_X-Ray', 'vitals' and 'Vital_Signs' give the same words.

:func:`words` lower-cases, drops accents and punctuation, joins the spellings of an x-ray,
reduces plurals, expands abbreviations (:data:`ABBREVIATIONS`, :data:`PHRASES`), maps synonyms
to one word (:data:`SYNONYMS`) and drops filler (:data:`STOP`). :data:`GENERIC` words ('test',
'results', 'examination', 'level', ...) say what kind of record something is, not which one;
the records clerk (:mod:`agentsim.agents.clinical_records`) compares names without them.
"""

from __future__ import annotations

import re
import unicodedata

# Abbreviations doctors write, and the words of the name they stand for.
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "ecg": ("electrocardiogram",), "ekg": ("electrocardiogram",),
    "electrocardiography": ("electrocardiogram",),
    "echo": ("echocardiogram",), "echocardiography": ("echocardiogram",),
    "tte": ("echocardiogram",), "eeg": ("electroencephalogram",),
    "electroencephalography": ("electroencephalogram",), "emg": ("electromyography",),
    "ncs": ("nerve", "conduction", "study"),
    "ultrasonography": ("ultrasound",), "sonography": ("ultrasound",),
    "sonogram": ("ultrasound",), "usg": ("ultrasound",), "mr": ("mri",),
    "radiograph": ("xray",), "radiography": ("xray",),
    "cxr": ("chest", "xray"), "cbc": ("complete", "blood", "count"), "fbc": ("complete", "blood", "count"),
    "bmp": ("basic", "metabolic", "panel"), "cmp": ("comprehensive", "metabolic", "panel"),
    "lft": ("liver", "function", "test"), "rft": ("renal", "function", "test"),
    "kft": ("renal", "function", "test"), "tft": ("thyroid", "function", "test"),
    "pft": ("pulmonary", "function", "test"), "abg": ("arterial", "blood", "gas"),
    "ua": ("urinalysis",), "bp": ("blood", "pressure"), "hr": ("heart", "rate"),
    "rr": ("respiratory", "rate"), "temp": ("temperature",),
    "spo2": ("oxygen", "saturation"), "sao2": ("oxygen", "saturation"),
    "so2": ("oxygen", "saturation"), "sat": ("oxygen", "saturation"),
    "oximetry": ("oxygen", "saturation"), "vital": ("vital", "sign"), "vitals": ("vital", "sign"),
    "wbc": ("white", "blood", "cell"), "wcc": ("white", "blood", "cell"),
    "leukocyte": ("white", "blood", "cell"), "leucocyte": ("white", "blood", "cell"),
    "rbc": ("red", "blood", "cell"), "erythrocyte": ("red", "blood", "cell"),
    "hb": ("hemoglobin",), "hgb": ("hemoglobin",), "haemoglobin": ("hemoglobin",),
    "hct": ("hematocrit",), "haematocrit": ("hematocrit",), "plt": ("platelet",),
    "thrombocyte": ("platelet",), "crp": ("c", "reactive", "protein"),
    "esr": ("red", "blood", "cell", "sedimentation", "rate"),
    "tsh": ("thyroid", "stimulating", "hormone"), "ana": ("antinuclear", "antibody"),
    "ldh": ("lactate", "dehydrogenase"), "alp": ("alkaline", "phosphatase"),
    "ck": ("creatine", "kinase"), "cpk": ("creatine", "kinase"), "bun": ("urea", "nitrogen"),
    "na": ("sodium",), "k": ("potassium",), "cl": ("chloride",), "ca": ("calcium",),
    "ca2": ("calcium",), "cr": ("creatinine",), "creat": ("creatinine",),
    "glu": ("glucose",), "hco3": ("bicarbonate",), "bicarb": ("bicarbonate",),
    "pt": ("prothrombin", "time"), "ptt": ("partial", "thromboplastin", "time"),
    "aptt": ("partial", "thromboplastin", "time"), "lp": ("lumbar", "puncture"),
    "exam": ("examination",), "lab": ("laboratory",), "bloodwork": ("blood", "work"),
}
# Several words that mean one thing (matched on the words after ABBREVIATIONS).
PHRASES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("blood", "urea", "nitrogen"): ("urea", "nitrogen"),
    ("anti", "nuclear"): ("antinuclear",),
    ("white", "cell"): ("white", "blood", "cell"),
    ("red", "cell"): ("red", "blood", "cell"),
    ("computed", "tomography"): ("ct",),
    ("magnetic", "resonance", "imaging"): ("mri",), ("magnetic", "resonance"): ("mri",),
    ("urine", "analysis"): ("urinalysis",),
    ("pulse", "ox"): ("oxygen", "saturation"), ("pulse", "oxygen", "saturation"):
        ("oxygen", "saturation"), ("o2", "oxygen", "saturation"): ("oxygen", "saturation"),
    ("oxygen", "oxygen", "saturation"): ("oxygen", "saturation"),
    ("ear", "nose", "throat"): ("ent",),
    ("cerebrospinal", "fluid"): ("csf",), ("spinal", "tap"): ("lumbar", "puncture"),
    ("alk", "phos"): ("alkaline", "phosphatase"),
    ("liver", "enzyme"): ("liver", "function"),
}
# Words for one thing, read as one word.
SYNONYMS = {
    "abdomen": "abdominal", "abd": "abdominal", "abdo": "abdominal",
    "neuro": "neurological", "neurologic": "neurological", "neurology": "neurological",
    "heart": "cardiac", "cardio": "cardiac", "cardiovascular": "cardiac",
    "lung": "respiratory", "pulmonary": "respiratory",
    "dermatological": "skin", "dermatologic": "skin", "dermatology": "skin",
    "cutaneous": "skin", "ophthalmic": "eye", "ophthalmologic": "eye",
    "ophthalmological": "eye", "ocular": "eye", "kidney": "renal", "hepatic": "liver",
    "thorax": "chest", "thoracic": "chest", "haematology": "hematology",
}
# Words that say what kind of record it is, not which one.
GENERIC = frozenset({
    "test", "result", "finding", "examination", "level", "study", "panel", "value", "report",
    "analysis", "assessment", "evaluation", "comment", "interpretation", "observation",
    "screen", "screening", "profile", "workup", "measurement", "reading", "investigation",
    "scan", "serum",
})
STOP = frozenset({
    "a", "an", "the", "of", "for", "and", "or", "with", "on", "in", "at", "to", "from", "by",
    "please", "order", "request", "requesting", "like", "would", "i", "we", "me", "us", "can",
    "could", "get", "do", "check", "obtain", "perform", "run", "send", "see", "show", "let",
    "my", "your", "his", "her", "their", "patient", "s", "some", "any", "also", "additional",
    "further", "repeat", "now", "this", "that", "these", "those", "want", "need", "done",
})
IRREGULAR = {"gases": "gas", "analyses": "analysis", "diagnoses": "diagnosis",
             "reflexes": "reflex", "indices": "index", "feces": "feces", "faeces": "feces"}
_XRAY = re.compile(r"\bx[\s_\-]*rays?\b")
_CA125 = re.compile(r"\bca[\s_\-]*125\b")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def _ascii(text: str) -> str:
    """Lower-case ASCII with underscores as spaces and x-rays and CA-125 spelt one way."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    text = text.lower().replace("_", " ")
    return _CA125.sub(" ca125 ", _XRAY.sub(" xray ", text))


def _singular(word: str) -> str:
    if word in IRREGULAR:
        return IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("xes", "ches", "shes", "sses")):
        return word[:-2]
    if word.endswith("s") and len(word) > 3 and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _phrases(tokens: list[str]) -> list[str]:
    out: list[str] = []
    index = 0
    longest = max(len(key) for key in PHRASES)
    while index < len(tokens):
        for size in range(min(longest, len(tokens) - index), 1, -1):
            replaced = PHRASES.get(tuple(tokens[index:index + size]))
            if replaced is not None:
                out += replaced
                index += size
                break
        else:
            out.append(tokens[index])
            index += 1
    return out


def words(text: str) -> tuple[str, ...]:
    """The words of a test or examination name, in order (see the module docstring)."""
    text = _ascii(text)
    text = re.sub(r"'s\b", "", text)
    tokens = [_singular(w) for w in _NOT_WORD.sub(" ", text).split()]
    expanded = [part for w in tokens for part in ABBREVIATIONS.get(w, (w,))]
    canonical = [SYNONYMS.get(w, w) for w in _phrases(expanded)]
    return tuple(w for w in canonical if w not in STOP)


def plain_words(text: str) -> frozenset[str]:
    """The words of free text as written (lower case, singular, no filler), abbreviations not
    expanded: what a finding's text says, searched for a request's words."""
    text = _ascii(text)
    tokens = (_singular(w) for w in _NOT_WORD.sub(" ", text).split())
    return frozenset(SYNONYMS.get(w, w) for w in tokens if w not in STOP)


def core(tokens: tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """The words that say which record it is (the generic ones left out)."""
    return frozenset(tokens) - GENERIC
