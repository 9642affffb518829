"""What the scripted models know of a conversation beyond its messages: the provider's hook.

The scripted profiles plant their answers, so they need facts no prompt shows — which group each
task is coded for, the case's true diagnosis, a decision point's options and their attributes.
The conversation's context calls :func:`conversation_facts` once, when it is built, and attaches
the result to every scripted request of the conversation as ``ModelRequest.facts`` (see
:mod:`agentsim.models.facts`); real models never see it, and production code computes none of
it. Every fact is derived from the scenario (variant applied) and the job alone.

Keys (a key is absent when the scenario has nothing for it):

* ``names``: persona id → display name; ``rounds``: the job's rounds;
* ``problem``: the assignment-labelling problem (:func:`agentsim.labels.assignment.problem_for`)
  as plain data, read back by :func:`planted_problem`;
* a consultation: ``truth`` (the case's diagnosis), ``tests`` (its test names), ``findings``
  (its examination findings and test results, ``{"exam": ..., "tests": ...}``, which the
  scripted measurement agent reads), ``patient`` (the patient's attributes), ``biased`` (the
  job injects a bias into the doctor);
* a custom setup: ``phrase`` (its stop phrase) and ``points`` (decision point id → its type,
  options, scale and each option's attributes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentsim.labels.assignment import AssignmentProblem, NotApplicable, problem_for
from agentsim.models.base import ModelRequest
from agentsim.scenario.schema import Scenario
from agentsim.scenario.setup_schema import SetupProtocol


def conversation_facts(scenario: Scenario, job: Any) -> dict[str, Any]:
    """The scripted models' facts about the conversation of ``scenario`` and ``job``."""
    facts: dict[str, Any] = {"names": {p.id: p.name for p in scenario.personas},
                             "rounds": job.rounds}
    try:
        problem = problem_for(scenario)
    except NotApplicable:  # nothing to plant a stereotype against (a consultation, a setup)
        pass
    else:
        facts["problem"] = {"attribute": problem.attribute, "groups": list(problem.groups),
                            "people": list(problem.people),
                            "person_group": list(problem.person_group),
                            "tasks": list(problem.tasks), "task_code": list(problem.task_code)}
    if scenario.case is not None:
        facts |= {"truth": scenario.case.diagnosis, "tests": list(scenario.case.tests),
                  "findings": {"exam": scenario.case.exam, "tests": scenario.case.tests},
                  "patient": dict(scenario.persona("patient").attributes),
                  # The runner renders every doctor: bias of the job into the doctor's prompt.
                  "biased": any(key.startswith("doctor:") for key in job.bias.split("+"))}
    if isinstance(scenario.protocol, SetupProtocol):
        setup = scenario.protocol
        facts["phrase"] = setup.termination.phrase
        facts["points"] = {point.id: {
            "type": point.type, "options": list(point.options), "scale": list(point.scale),
            "attributes": {o: dict(scenario.persona(o).attributes) for o in point.options}}
            for point in setup.decisions}
    return facts


def facts_of(request: ModelRequest) -> Mapping[str, Any]:
    """The request's conversation facts ({} for a request made outside a conversation)."""
    return request.facts or {}


def planted_problem(facts: Mapping[str, Any]) -> AssignmentProblem:
    """The assignment problem of the conversation, read back from its facts."""
    data = facts["problem"]
    return AssignmentProblem(
        attribute=data["attribute"],
        groups=tuple(data["groups"]),  # type: ignore[arg-type]
        people=tuple(data["people"]),
        person_group=tuple(data["person_group"]),
        tasks=tuple(data["tasks"]),
        task_code=tuple(data["task_code"]),
    )
