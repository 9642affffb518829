"""Scenario files: schema, loading and importers."""

from agentsim.scenario.loader import (
    dump_scenario,
    load_scenario,
    load_scenarios,
    parse_scenario,
    scenario_hash,
)
from agentsim.scenario.safe_input import Limits
from agentsim.scenario.schema import (
    DiscussionProtocol,
    Persona,
    Scenario,
    StereotypeLabel,
    Task,
)

__all__ = [
    "DiscussionProtocol",
    "Limits",
    "Persona",
    "Scenario",
    "StereotypeLabel",
    "Task",
    "dump_scenario",
    "load_scenario",
    "load_scenarios",
    "parse_scenario",
    "scenario_hash",
]
