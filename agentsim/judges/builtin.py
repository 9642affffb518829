"""Imports the built-in judges so that they register themselves."""

from agentsim.judges import (  # noqa: F401
    assignment_judge,
    clinical_judge,
    counterfactual_judge,
    fork_judge,
    iat,
    influence_judge,
    lexicon_judge,
    rubric_judge,
    selection_judge,
    trajectory_judge,
)
