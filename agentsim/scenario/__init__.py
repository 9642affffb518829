"""Scenario files: schema, loading and importers."""

from agentsim.scenario.loader import (
    dump_scenario,
    load_scenario,
    load_scenarios,
    parse_scenario,
    scenario_hash,
)
from agentsim.scenario.schema import (
    DiscussionProtocol,
    Persona,
    Scenario,
    StereotypeLabel,
    Task,
)

__all__ = [
    "DiscussionProtocol",
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
