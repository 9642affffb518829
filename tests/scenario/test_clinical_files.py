"""The clinical scenarios and the bias catalogue shipped under scenarios/clinical load and are
complete: every case is solvable from its own data, and the catalogue holds the published set of
biases (AgentClinic, Schmidgall et al. 2024) in our own words."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsim.scenario import Persona, Scenario, load_scenarios
from agentsim.scenario.biases import BiasCatalogue, load_catalogue
from agentsim.scenario.schema import ClinicalProtocol

REPO_ROOT = Path(__file__).resolve().parents[2]
CLINICAL = REPO_ROOT / "scenarios" / "clinical"
CATALOGUE = CLINICAL / "biases.yaml"

IMPLICIT = {
    "gender": "gender",
    "race": "race",
    "sexual_orientation": "sexual_orientation",
    "cultural": "culture",
    "education": "education",
    "religion": "religion",
    "socioeconomic": "socioeconomic_status",
}
PUBLISHED = {
    "patient": {
        "cognitive": {"recency", "frequency", "false_consensus", "self_diagnosis"},
        "implicit": set(IMPLICIT),
    },
    "doctor": {
        "cognitive": {"recency", "frequency", "false_consensus", "confirmation", "status_quo"},
        "implicit": set(IMPLICIT),
    },
}


@pytest.fixture(scope="module")
def shipped() -> list[tuple[Path, Scenario]]:
    return load_scenarios([CLINICAL])


@pytest.fixture(scope="module")
def catalogue() -> BiasCatalogue:
    return load_catalogue(CATALOGUE)


def flatten(value: object) -> str:
    """All text of a nested case section, keys included."""
    if isinstance(value, dict):
        return " ".join(f"{key} {flatten(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return " ".join(flatten(item) for item in value)
    return str(value)


def test_enough_cases_and_domains(shipped):
    assert len(shipped) >= 6
    domains = {scenario.domain for _, scenario in shipped}
    assert len(domains) >= 5, sorted(domains)


def test_catalogue_is_not_loaded_as_a_scenario(shipped):
    assert CATALOGUE not in {path for path, _ in shipped}


def test_file_name_matches_id(shipped):
    for path, scenario in shipped:
        assert path.stem == scenario.id, path
        assert scenario.id.startswith("clinical-"), scenario.id


def test_cases_are_complete(shipped):
    for path, scenario in shipped:
        assert isinstance(scenario.protocol, ClinicalProtocol), path
        assert scenario.protocol.name == "clinical", path
        case = scenario.case
        assert case is not None, path
        assert case.objective.strip(), path
        assert case.patient, path
        assert case.exam, path
        assert case.tests, path
        assert case.diagnosis.strip(), path
        assert "clinical" in scenario.tags, path


def test_personas(shipped):
    for path, scenario in shipped:
        assert {p.id for p in scenario.personas} == {"doctor", "patient"}, path
        patient = scenario.persona("patient")
        for attribute in ("gender", "race", "age"):
            assert patient.attributes.get(attribute, "").strip(), (path, attribute)
        assert patient.attributes["age"].isdigit(), path


def test_patients_vary(shipped):
    patients = [scenario.persona("patient").attributes for _, scenario in shipped]
    assert {p["gender"] for p in patients} >= {"man", "woman"}
    assert len({p["race"] for p in patients}) >= 3
    assert len({p["age"] for p in patients}) >= 3


def test_answer_is_not_given_away(shipped):
    for path, scenario in shipped:
        case = scenario.case
        diagnosis = case.diagnosis.lower()
        assert diagnosis not in case.objective.lower(), path
        assert diagnosis not in flatten(case.patient).lower(), path


def test_catalogue_holds_the_published_set(catalogue):
    for role, kinds in PUBLISHED.items():
        for kind, names in kinds.items():
            found = {b.name for b in catalogue.biases if b.role == role and b.kind == kind}
            assert found == names, (role, kind)
    assert len(catalogue.biases) == sum(len(n) for k in PUBLISHED.values() for n in k.values())


def test_implicit_attributes(catalogue):
    for entry in catalogue.biases:
        if entry.kind == "implicit":
            assert entry.attribute == IMPLICIT[entry.name], entry.key
            assert "{other}" in entry.text, entry.key
            assert entry.generic and "{other}" not in entry.generic, entry.key


def test_implicit_biases_render_the_other_partys_value(catalogue):
    with_value = Persona(
        id="other", name="Other",
        attributes={attribute: f"value-of-{attribute}" for attribute in IMPLICIT.values()},
    )
    without = Persona(id="bare", name="Bare")
    for entry in catalogue.biases:
        if entry.kind != "implicit":
            continue
        rendered = entry.render(with_value)
        assert f"value-of-{entry.attribute}" in rendered, entry.key
        assert "{other}" not in rendered, entry.key
        assert entry.render(without) == entry.generic, entry.key


def test_cognitive_biases_render_as_written(catalogue):
    bare = Persona(id="bare", name="Bare")
    for entry in catalogue.biases:
        if entry.kind == "cognitive":
            assert entry.text.strip(), entry.key
            assert entry.render(bare) == entry.text, entry.key
            assert "{" not in entry.text, entry.key


def test_biases_render_with_the_shipped_personas(shipped, catalogue):
    for _, scenario in shipped:
        doctor, patient = scenario.persona("doctor"), scenario.persona("patient")
        for entry in catalogue.biases:
            other = patient if entry.role == "doctor" else doctor
            text = entry.render(other)
            assert text.strip() and "{other}" not in text, (scenario.id, entry.key)
            value = other.attributes.get(entry.attribute or "")
            if entry.kind == "implicit" and value:
                assert value in text, (scenario.id, entry.key)
