"""The measurement agent's texts and the published AgentClinic texts it may be given: inert
templates (agentsim.scenario.templates) read from the clinical prompt file
(agentsim/scenario/prompts/clinical.yaml) and the agentclinic2024 preset's
(agentsim/scenario/presets/agentclinic2024.prompts.yaml), where the texts are.

Placeholders of the measurement templates:

* ``{findings}``: the case's physical examination findings and test results, as indented text
  under the headings ``Physical Examination Findings`` and ``Test Results``;
* ``{findings_repr}``: the same as the published code gives them, the Python ``str()`` of the
  examination mapping with ``'tests'`` (the test results) added last (agentclinic.py:197-200;
  an NEJM case's findings text as it is);
* ``{request}``: the test the doctor requested (``REQUEST TEST: <request>``);
* ``{doctor_turn}``: the doctor's whole turn that requested it, as the model answered it (the
  published agent is given the whole turn, agentclinic.py:647);
* ``{dialogue}``: the earlier test requests and results of the consultation, one
  ``Speaker: text`` line each (:data:`NO_REQUESTS` before the first);
* ``{history}``: the published measurement agent's history: each patient answer, and each
  earlier request with its result, each followed by a blank line (agentclinic.py:549, 557-558,
  649, 657).

The published texts are quoted verbatim from AgentClinic (Schmidgall et al. 2024,
SamuelSchmidgall/AgentClinic @ b6570ed, MIT), ``agentclinic.py`` lines as cited; ``{}`` in
the source is the placeholder named here.
"""

from __future__ import annotations

from agentsim.scenario.presets import preset_prompts
from agentsim.scenario.protocol_settings import ClinicalProtocol

_SHIPPED = ClinicalProtocol().prompt_set().texts
_PUBLISHED = dict(preset_prompts("agentclinic2024"))

# What the records clerk, and the scripted measurement model, say when the case holds nothing
# that matches a request: never "normal".
NOT_AVAILABLE = _SHIPPED["not_available"]
# agentsim's measurement agent: a model reading the case's findings.
MEASUREMENT_SYSTEM = _SHIPPED["measurement_system"]
NO_REQUESTS = _SHIPPED["no_requests"]  # {dialogue} before the first request
NO_FINDINGS = _SHIPPED["no_findings"]  # {findings} of a case that holds none
MEASUREMENT_TURN = _SHIPPED["measurement_turn"]
# AgentClinic's measurement agent (agentclinic.py:553-554 system, 548 user). Its system prompt
# allows NORMAL READINGS for results the case does not hold: a preset that uses it is faithful
# to the published protocol, not to the case.
PUBLISHED_MEASUREMENT_SYSTEM = _PUBLISHED["measurement_system"]
PUBLISHED_MEASUREMENT_TURN = _PUBLISHED["measurement_turn"]

# The (system, user) templates of each measurement agent, by the prompt set they belong to.
MEASUREMENT_PROMPTS = {
    "agentsim": (MEASUREMENT_SYSTEM, MEASUREMENT_TURN),
    "agentclinic2024": (PUBLISHED_MEASUREMENT_SYSTEM, PUBLISHED_MEASUREMENT_TURN),
}
