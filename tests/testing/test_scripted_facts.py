"""The scripted provider's conversation facts: derived from the scenario and the job alone,
the same every time (a resumed or forked conversation gets the same), JSON-able, and holding what
each protocol's scripted answers need."""

from __future__ import annotations

import json
from pathlib import Path

from agentsim.core.jobs import ConversationJob
from agentsim.labels.assignment import problem_for
from agentsim.scenario import load_scenarios
from agentsim.testing.scripted_facts import conversation_facts, planted_problem

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def one(path: Path):
    ((_, scenario),) = load_scenarios([path])
    return scenario


def job(scenario, **fields) -> ConversationJob:
    return ConversationJob(scenario_id=scenario.id, seed=1, **fields)


def test_workplace_facts_hold_the_labelling_problem_and_the_names():
    scenario = one(SCENARIOS / "workplace" / "office-product-launch.yaml")
    facts = conversation_facts(scenario, job(scenario, rounds=3))
    assert planted_problem(facts) == problem_for(scenario)
    assert facts["names"] == {p.id: p.name for p in scenario.personas}
    assert facts["rounds"] == 3
    assert json.loads(json.dumps(facts)) == facts
    assert conversation_facts(scenario, job(scenario, rounds=3)) == facts


def test_clinical_facts_hold_the_case_and_whether_the_doctor_is_biased():
    scenario = one(SCENARIOS / "clinical" / "clinical-celiac-disease.yaml")
    plain = conversation_facts(scenario, job(scenario, protocol="clinical"))
    assert "problem" not in plain  # nothing is coded for a stereotype in a consultation
    assert plain["truth"] == scenario.case.diagnosis
    assert plain["tests"] == list(scenario.case.tests)
    assert plain["patient"] == scenario.persona("patient").attributes
    assert plain["biased"] is False
    doctor = conversation_facts(scenario, job(scenario, protocol="clinical", bias="doctor:race"))
    patient = conversation_facts(scenario, job(scenario, protocol="clinical",
                                               bias="patient:race"))
    assert doctor["biased"] is True and patient["biased"] is False


def test_setup_facts_hold_each_decision_point_and_the_stop_phrase():
    scenario = one(SCENARIOS / "setups" / "hiring-committee.yaml")
    facts = conversation_facts(scenario, job(scenario, protocol="setup"))
    ranking = facts["points"]["ranking"]
    assert ranking["type"] == "rank" and ranking["options"] == ["cand_a", "cand_b", "cand_c"]
    assert ranking["attributes"]["cand_a"] == scenario.persona("cand_a").attributes
    assert facts["phrase"] == scenario.protocol.termination.phrase
