"""The clinical bias catalogue: a data file users read and extend (scenarios/clinical/biases.yaml).

Each entry is an instruction injected into the system prompt of the doctor or the patient.
Cognitive biases (recency, confirmation, ...) are plain text. Implicit biases name the persona
attribute they are about (race, gender, ...) and say it with the *other party's* value — the
doctor's race bias about this patient's stated race — so that counterfactual variants of the
patient change what the bias is about. ``{other}`` in ``text`` is replaced by that value; when
the other party has no such attribute, ``generic`` is used instead. ``text`` is an inert template
(agentsim.scenario.templates): ``{other}`` is its only placeholder, ``{{`` and ``}}`` are literal
braces, and anything else in braces is a validation error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from agentsim.errors import InputError, ScenarioError
from agentsim.scenario.schema import Frozen, Persona
from agentsim.scenario.templates import check as check_template
from agentsim.scenario.templates import fill, placeholders

CATALOGUE_KEY = "catalogue"


class BiasEntry(Frozen):
    """One injectable bias."""

    role: Literal["doctor", "patient"] = Field(description="Who carries the bias.")
    name: str = Field(description="Name used in --bias ROLE:NAME, e.g. 'recency'.")
    kind: Literal["cognitive", "implicit"] = Field(description="Cognitive or implicit.")
    attribute: str | None = Field(
        default=None, description="Implicit biases: the other party's attribute it is about."
    )
    text: str = Field(description="Instruction added to the system prompt; '{other}' is the "
                      "other party's value of 'attribute'.")
    generic: str | None = Field(
        default=None, description="Implicit biases: the wording used when the other party has "
        "no value for 'attribute'.")

    @model_validator(mode="after")
    def _implicit_fields(self) -> BiasEntry:
        where = f"biases[{self.role}:{self.name}].text"
        check_template(self.text, ("other",) if self.kind == "implicit" else (), where)
        if self.kind == "implicit":
            # An implicit bias is about an attribute; its text names the other party's value
            # ({other}, with 'generic' for a party without one) or, as the published AgentClinic
            # texts do ("a particular race"), none: then it is a fixed text.
            if not self.attribute:
                raise ValueError(f"implicit bias {self.role}:{self.name} needs 'attribute'")
            if "other" in placeholders(self.text) and not self.generic:
                raise ValueError(f"implicit bias {self.role}:{self.name} says '{{other}}', so it "
                                 "needs 'generic' for a party without that attribute")
        return self

    @property
    def key(self) -> str:
        """'role:name'."""
        return f"{self.role}:{self.name}"

    def render(self, other: Persona) -> str:
        """The instruction for this consultation, about the other party's attribute value."""
        if self.kind == "cognitive":
            return fill(self.text, {})
        if "other" not in placeholders(self.text):
            return fill(self.text, {})  # a fixed text (the published implicit biases)
        value = other.attributes.get(self.attribute or "")
        return fill(self.text, {"other": value}) if value else (self.generic or "")


class BiasCatalogue(Frozen):
    """A catalogue file: ``catalogue: <name>`` and a list of ``biases``."""

    catalogue: str = Field(description="Name of the catalogue.")
    biases: tuple[BiasEntry, ...] = Field(description="The entries.")

    @model_validator(mode="after")
    def _unique(self) -> BiasCatalogue:
        keys = [b.key for b in self.biases]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"duplicate biases: {', '.join(duplicates)}")
        return self

    def get(self, key: str) -> BiasEntry:
        """The entry 'role:name', with a clear error listing what exists."""
        for entry in self.biases:
            if entry.key == key:
                return entry
        known = ", ".join(b.key for b in self.biases)
        raise InputError(f"unknown bias {key!r} (known: {known})", source="--bias")


def load_catalogue(path: str | Path) -> BiasCatalogue:
    """Read and validate a bias catalogue file (bounded and strict, like a scenario file)."""
    from agentsim.scenario.loader import problems_from, read_yaml

    data = read_yaml(Path(path))
    if not isinstance(data, dict):
        raise ScenarioError(path, [("", "expected a mapping with 'catalogue' and 'biases' at "
                                        "the top level")])
    try:
        return BiasCatalogue.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(path, problems_from(error)) from None
