"""The published AgentClinic bias texts ship as a second catalogue, verbatim: every entry equals
the text the published code returns for that bias (read from agentclinic.py in the anchors),
and the catalogue has every published bias and nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from agentsim.resources import asset_path
from agentsim.scenario.biases import load_catalogue
from agentsim.scenario.schema import Persona

CATALOGUE = asset_path("agentsim.scenario", "data", "biases_agentclinic2024.yaml")


def published_biases(source: str) -> dict[str, tuple[str, int]]:
    """'role:name' → (text, line) of every bias the published agents' generate_bias return."""
    found = {}
    for agent in ast.parse(source).body:
        if not (isinstance(agent, ast.ClassDef) and agent.name in ("PatientAgent", "DoctorAgent")):
            continue
        role = "patient" if agent.name == "PatientAgent" else "doctor"
        method = next(f for f in agent.body if isinstance(f, ast.FunctionDef)
                      and f.name == "generate_bias")
        branch = next(b for b in method.body if isinstance(b, ast.If))
        while isinstance(branch, ast.If):
            body = branch.body[0]
            if isinstance(branch.test, ast.Compare) and isinstance(body, ast.Return):
                found[f"{role}:{branch.test.comparators[0].value}"] = (body.value.value,
                                                                       body.lineno)
            branch = branch.orelse[0] if branch.orelse else None
    return found


@pytest.fixture
def published(anchors) -> dict[str, tuple[str, int]]:
    return published_biases((anchors / "agentclinic" / "agentclinic.py").read_text())


def test_every_published_bias_verbatim(published):
    catalogue = load_catalogue(CATALOGUE)
    assert {entry.key for entry in catalogue.biases} == set(published)
    assert len(published) == 23  # 12 doctor, 11 patient biases
    nobody = Persona(id="other", name="Other")
    for entry in catalogue.biases:
        assert entry.render(nobody) == published[entry.key][0], entry.key


def test_each_entry_cites_its_source_line(published):
    text = Path(CATALOGUE).read_text()
    for key, (_, line) in published.items():
        role, name = key.split(":")
        assert f"- role: {role}  # agentclinic.py:{line}\n    name: {name}\n" in text, key


def test_the_doctors_cognitive_biases_keep_their_anchor(published):
    catalogue = load_catalogue(CATALOGUE)
    for name in ("recency", "frequency", "false_consensus", "confirmation", "status_quo"):
        assert "cancer" in catalogue.get(f"doctor:{name}").text


def test_an_implicit_bias_may_be_a_fixed_text_but_needs_its_attribute():
    """The published implicit biases name no value ("a particular race"): a fixed text is an
    implicit bias about its attribute; a text naming {other} still needs 'generic'."""
    from agentsim.scenario.biases import BiasEntry
    from agentsim.scenario.schema import Persona

    fixed = BiasEntry(role="doctor", name="race", kind="implicit", attribute="race",
                      text="You are uncomfortable with patients of a particular race.")
    patient = Persona(id="patient", name="P", attributes={"race": "Black"})
    assert fixed.render(patient) == "You are uncomfortable with patients of a particular race."
    with pytest.raises(ValueError, match="needs 'attribute'"):
        BiasEntry(role="doctor", name="x", kind="implicit", text="A fixed text.")
    with pytest.raises(ValueError, match="needs 'generic'"):
        BiasEntry(role="doctor", name="x", kind="implicit", attribute="race",
                  text="You distrust {other} patients.")
