"""Imports the built-in judges so that they register themselves."""

from agentsim.judges import assignment_judge, clinical_judge  # noqa: F401
