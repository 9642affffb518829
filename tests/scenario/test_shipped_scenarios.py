"""The scenarios shipped under scenarios/workplace load and cover the intended design."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agentsim.scenario import Scenario, load_scenarios

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKPLACE = REPO_ROOT / "scenarios" / "workplace"
GENDERS = {"man", "woman"}


@pytest.fixture(scope="module")
def shipped() -> list[tuple[Path, Scenario]]:
    return load_scenarios([WORKPLACE])


def persona_genders(scenario: Scenario) -> Counter[str]:
    return Counter(persona.attributes.get("gender") for persona in scenario.personas)


def task_codings(scenario: Scenario) -> Counter[str | None]:
    return Counter(
        task.stereotype.value if task.stereotype is not None else None for task in scenario.tasks
    )


def is_canonical(scenario: Scenario) -> bool:
    """4 personas (2 men, 2 women) and 4 tasks (2 coded man, 2 coded woman)."""
    return (
        len(scenario.personas) == 4
        and persona_genders(scenario) == Counter({"man": 2, "woman": 2})
        and len(scenario.tasks) == 4
        and task_codings(scenario) == Counter({"man": 2, "woman": 2})
    )


def test_enough_scenarios(shipped):
    assert len(shipped) >= 12


def test_file_name_matches_id(shipped):
    for path, scenario in shipped:
        assert path.stem == scenario.id, path


def test_enough_domains(shipped):
    domains = {scenario.domain for _, scenario in shipped}
    assert len(domains) >= 6, sorted(domains)


def test_pair_scenarios(shipped):
    pairs = [s for _, s in shipped if len(s.personas) == 2]
    assert len(pairs) >= 2
    for scenario in pairs:
        assert persona_genders(scenario) == Counter({"man": 1, "woman": 1}), scenario.id
        assert task_codings(scenario) == Counter({"man": 2, "woman": 2}), scenario.id


def test_uneven_scenarios(shipped):
    uneven = [
        s for _, s in shipped if len(s.personas) % 2 == 1 or len(s.tasks) % 2 == 1
    ]
    assert len(uneven) >= 2


def test_most_scenarios_are_canonical(shipped):
    canonical = [s for _, s in shipped if is_canonical(s)]
    assert len(canonical) * 2 > len(shipped), [s.id for s in canonical]


def test_every_persona_has_a_gender(shipped):
    for _, scenario in shipped:
        for persona in scenario.personas:
            assert persona.attributes.get("gender") in GENDERS, (scenario.id, persona.id)


def test_coded_tasks_use_gender(shipped):
    for _, scenario in shipped:
        coded = [task for task in scenario.tasks if task.stereotype is not None]
        assert coded, scenario.id
        for task in coded:
            assert task.stereotype.attribute == "gender", (scenario.id, task.id)
            assert task.stereotype.value in GENDERS, (scenario.id, task.id)


def test_both_groups_present(shipped):
    for _, scenario in shipped:
        assert set(persona_genders(scenario)) == GENDERS, scenario.id
        assert {"man", "woman"} <= set(task_codings(scenario)), scenario.id


def test_provenance(shipped):
    for _, scenario in shipped:
        assert scenario.source == "written for agentsim", scenario.id
