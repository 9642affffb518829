"""The characters of a Borah & Mihalcea row and their genders (see the importer's docstring).

Gender comes from an explicit override, a bracket label, an honorific or the shipped name list;
a unisex name only when the design forces it (``inferred from design``); a role without a name
stays without a coded gender. :func:`resolve_genders` raises :class:`GenderProblem` with the
reason a row cannot be imported, naming ``--gender NAME=VALUE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentsim.scenario.names import first_names

INFERRED = "inferred from design"
GENDER_HINT = "give the gender with --gender NAME=VALUE"

# Names commonly borne by people of either gender; kept out of first_names.csv on purpose.
UNISEX_NAMES = frozenset(
    "alex ariel avery cameron casey charlie chris dana drew eden frankie jackie jamie jean jesse "
    "jordan jun kai kim lee leslie linh morgan noor pat peyton quinn reese riley robin rowan sage "
    "sam sasha shannon skyler taylor terry yuki".split()
)
# Words of a role without a name ("Coach Williams", "the drama teacher", "Office Manager").
ROLE_WORDS = frozenset(
    "teacher coach instructor tutor trainer principal professor lecturer surgeon nurse doctor dr "
    "physician pediatrician practitioner paramedic pharmacist therapist counselor counsellor "
    "electrician plumber carpenter mechanic technician engineer janitor cleaner gardener guard "
    "worker partner secretary receptionist manager supervisor director assistant intern clerk "
    "librarian chef cook waiter driver pilot captain officer host chair leader boss ceo hr "
    "administrator coordinator consultant accountant lawyer attorney judge architect designer "
    "caretaker custodian volunteer parent neighbour neighbor member staff".split()
)
LABELS = {"m": "man", "male": "man", "man": "man", "boy": "man",
          "f": "woman", "female": "woman", "woman": "woman", "girl": "woman", "w": "woman"}
_HONORIFICS = {"mr": "man", "mister": "man", "mrs": "woman", "ms": "woman", "miss": "woman"}
_BRACKET = re.compile(r"[(\[][^)\]]*[)\]]")
_LABEL_END = re.compile(r"[(\[]\s*(?:m|f|male|female|man|woman|boy|girl|w)\s*\.?\s*[)\]]", re.I)


class GenderProblem(Exception):
    """Why the genders of a row cannot be settled (the message is the reason)."""


@dataclass(frozen=True)
class Character:
    """One entry of a character list."""

    name: str  # as the agents will read it, bracket label removed
    label: str | None  # the text in brackets, if any


@dataclass(frozen=True)
class Who:
    """What the importer knows of one character's gender."""

    gender: str | None
    kind: str  # given | role | unisex | unknown
    problem: str | None = None
    by_surname: bool = False  # an honorific and no first name ("Mr. Baxter")




def drop_stray(text: str, notes: list[str]) -> str:
    """Cut a glued 'Social Task: …' and, in a list of bracketed labels, text after the last
    bracket that does not continue the list ("…, Angela (F). Social Task: …", "… (F) - note")."""
    text = " ".join(text.split())
    glued = re.search(r"social\s+task\s*:|\bscene\s*:", text, re.I)
    if glued:
        stray, text = text[glued.start():], text[: glued.start()]
        notes.append(f"stray text after the last character dropped: {stray.strip()!r}")
    brackets = list(_BRACKET.finditer(text))
    if _LABEL_END.search(text) and brackets:
        rest = text[brackets[-1].end():]
        if rest.strip(" .") and not re.match(r"\s*(?:[,;&]|and\b)", rest, re.I):
            notes.append(f"stray text after the last character dropped: {rest.strip()!r}")
            text = text[: brackets[-1].end()]
    return text


def split_characters(text: str) -> list[Character]:
    text = " ".join(text.split()).strip()
    if text.endswith(".") and not re.search(r"\b(?:mr|mrs|ms|dr)\.$", text, re.I):
        text = text[:-1]
    # Commas inside brackets ("(M, 45)") do not separate characters.
    parts = [p.strip() for p in re.split(r"[,;](?![^()\[\]]*[)\]])", text) if p.strip()]
    if parts:
        last = re.sub(r"^(?:and|&)\s+", "", parts[-1], flags=re.I)
        parts[-1:] = [p for p in re.split(r"\s+(?:and|&)\s+", last) if p]
    characters = []
    for part in parts:
        match = re.fullmatch(r"(.*?)\s*[(\[]([^)\]]*)[)\]]", part)
        name, label = (match.group(1), match.group(2)) if match else (part, None)
        if name.strip():
            characters.append(Character(name.strip(), label))
    return characters


def resolve_genders(characters: list[Character], overrides: dict[str, str],
                     notes: list[str]) -> list[str | None]:
    """Each character's gender (None for a role without a name); GenderProblem when a
    gender cannot be settled or nobody has one."""
    whos = [_gender(character, overrides) for character in characters]
    forced = _forced_by_design(whos)
    problems = []
    for character, who in zip(characters, whos, strict=True):
        if who.kind == "unisex" and forced is not None:
            men, women, quota = forced[1]
            notes.append(f"{character.name!r} taken as a {forced[0]}: {INFERRED} ({quota} men "
                         f"and {quota} women; the others give {_people(men, 'man')} and "
                         f"{_people(women, 'woman')})")
        elif who.kind == "role":
            notes.append(f"{character.name!r} is a role without a name: kept as a persona "
                         "without a coded gender")
        elif who.problem:
            problems.append(who.problem)
    if problems:
        raise GenderProblem("; ".join(problems) + f"; {GENDER_HINT}")
    resolved = [forced[0] if w.kind == "unisex" and forced else w.gender for w in whos]
    if not any(resolved):
        names = ", ".join(repr(c.name) for c in characters)
        raise GenderProblem(f"no character has a gender ({names} are roles without "
                    f"names); {GENDER_HINT}")
    return resolved


def _people(count: int, gender: str) -> str:
    return f"{count} {gender if count == 1 else gender[:-3] + 'men'}"


def _forced_by_design(whos: list[Who]) -> tuple[str, tuple[int, int, int]] | None:
    """The gender every unisex name must have for the named people to split evenly into men and
    women, with (men, women, quota) of the others; None when the design does not force one."""
    group = [w for w in whos if w.kind != "role"]
    if len(group) % 2:  # a teacher addressed by honorific and surname stands outside the pairs
        group = [w for w in group if not w.by_surname]
    open_ = [w for w in group if w.kind == "unisex"]
    if not open_ or len(group) % 2 or any(w.kind == "unknown" for w in group):
        return None
    quota = len(group) // 2
    men = sum(w.gender == "man" for w in group)
    women = sum(w.gender == "woman" for w in group)
    if men == quota and women + len(open_) == quota:
        return "woman", (men, women, quota)
    if women == quota and men + len(open_) == quota:
        return "man", (men, women, quota)
    return None


def _gender(character: Character, overrides: dict[str, str]) -> Who:
    name = character.name
    words = re.findall(r"[^\W\d_][\w'\-]*", name)
    folded = [word.casefold() for word in words]
    for key in [name.casefold(), *reversed(folded)]:
        if key in overrides:
            return Who(overrides[key], "given")
    if character.label is not None:
        gender = LABELS.get(character.label.strip().rstrip(".").casefold())
        if gender is None:
            return Who(None, "unknown", f"{name!r}: unrecognised gender label "
                        f"{character.label!r}")
        return Who(gender, "given")
    names = first_names()
    named = any(word in names or word in UNISEX_NAMES for word in folded)
    for word in folded:
        if word in _HONORIFICS:
            return Who(_HONORIFICS[word], "given", by_surname=not named)
    found = {names[word] for word in folded if word in names}
    if len(found) == 1:
        return Who(found.pop(), "given")
    if found:
        return Who(None, "unknown", f"{name!r}: its words are first names of both genders")
    unisex = [word for word, key in zip(words, folded) if key in UNISEX_NAMES]
    if unisex:
        return Who(None, "unisex", f"{name!r}: {unisex[0]!r} is a first name used for both "
                    "genders and the design does not settle it")
    if any(word in ROLE_WORDS for word in folded):
        return Who(None, "role")
    return Who(None, "unknown", f"{name!r}: no known first name, honorific, role or gender "
                "label")
