"""agentsim: simulate conversations between LLM agents and measure social bias in them.

The public API is small and stable; implementation modules may change::

    import agentsim
    run = agentsim.run("scenarios/workplace", model="scripted/stereotyped", replicates=2)
    run.metrics()                                  # a pandas DataFrame
    agentsim.open_run(run.path).frame("decisions")

Functions (see :mod:`agentsim.api`): ``load_scenarios``, ``run``, ``compare``, ``judge`` (score a
stored run again), ``resume``, ``fork``, ``open_run``, returning :class:`~agentsim.api.Run`;
``report`` writes a run's HTML report and returns its path. Studies (see
:mod:`agentsim.studies`): ``run_study`` runs a study file into one run folder, ``load_study``
reads and validates one. Tables (see :mod:`agentsim.tables`): ``make_table`` builds a
paper's table from run folders, ``render_table`` writes it as rich, CSV, Markdown or LaTeX.
Plugins: ``Mitigation`` with the ``@mitigation(name)`` decorator, the ``Judge`` protocol and
``JudgeOutput`` with ``@register_judge(name)`` (``agentsim.judge`` is the function that judges a
run), ``@protocol(name)``. Errors: ``AgentsimError``, ``InputError``.

Everything but ``__version__`` is imported on first use, so ``import agentsim`` stays cheap and
heavy dependencies (pandas, scipy, litellm, langgraph, llama.cpp) load only when needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agentsim._version import __version__

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports
    from agentsim.api import (Run, compare, fork, judge, load_scenarios, open_run, report,
                              resume, run)
    from agentsim.core.metrics import MetricRecord
    from agentsim.errors import AgentsimError, InputError
    from agentsim.judges.base import Judge, JudgeOutput
    from agentsim.mitigations.base import Mitigation, mitigation
    from agentsim.registry import judge as register_judge
    from agentsim.registry import protocol
    from agentsim.studies import load_study, run_study
    from agentsim.tables import make_table
    from agentsim.tables import render as render_table

# Public name → (module, attribute in it).
_EXPORTS: dict[str, tuple[str, str]] = {
    **{name: ("agentsim.api", name) for name in (
        "Run", "compare", "fork", "judge", "load_scenarios", "open_run", "report", "resume",
        "run")},
    "MetricRecord": ("agentsim.core.metrics", "MetricRecord"),
    "AgentsimError": ("agentsim.errors", "AgentsimError"),
    "InputError": ("agentsim.errors", "InputError"),
    "Judge": ("agentsim.judges.base", "Judge"),
    "JudgeOutput": ("agentsim.judges.base", "JudgeOutput"),
    "Mitigation": ("agentsim.mitigations.base", "Mitigation"),
    "mitigation": ("agentsim.mitigations.base", "mitigation"),
    # The registry's decorator is `judge`; here that name is the function that judges a run.
    "register_judge": ("agentsim.registry", "judge"),
    "protocol": ("agentsim.registry", "protocol"),
    "load_study": ("agentsim.studies", "load_study"),
    "run_study": ("agentsim.studies", "run_study"),
    "make_table": ("agentsim.tables", "make_table"),
    "render_table": ("agentsim.tables", "render"),
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562) and keep it in the module."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agentsim' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
