"""Running a study: every cell into one run folder, then the comparison of its factors.

:func:`run_study` reads and checks the study file and its scenarios (nothing is written before
every check passed), plans every cell — each model set × setting × arm over the same scenarios,
variants, replicates and seeds — runs them as one run (resume, judge, fork, export and the
Python API work on it as on any run), judges each cell alone and all together
(``results.json``'s ``cells``), and compares each factor's levels with its control, paired by
seed (``comparison.json``, the forest plot). The manifest records the study file under
``study``: its path, the sha256 of its bytes and its validated data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentsim.errors import InputError
from agentsim.studies.loader import Study, load_study

__all__ = ["check_study", "open_study", "run_study", "study_options"]

# How a study runs, not what it is: these come from the command line or the caller, never
# from the study file (which the manifest hashes).
RUN_TIME = frozenset({"out", "concurrency", "executor", "ray_address", "no_cache",
                      "cache_dir", "no_probe", "max_failures", "max_cost", "api_base",
                      "structured", "rpm", "tpm", "max_in_flight", "timeout", "retries",
                      "router_config", "models_config"})


def check_study(study: Study, run_time: dict[str, Any] | None = None,
                ) -> tuple[list[tuple[Path, Any]], Any, list[str]]:
    """The study's scenarios, its checked :class:`~agentsim.api.settings.RunSettings` and
    the warnings of its checks; every problem an InputError naming the file and field."""
    unknown = sorted(set(run_time or {}) - RUN_TIME)
    if unknown:
        raise InputError(f"not options of how a study runs: {', '.join(unknown)} (the study "
                         "file defines the design; run-time options: "
                         f"{', '.join(sorted(RUN_TIME))})", source=unknown[0])
    run_time = dict(run_time or {})
    if run_time.get("models_config") is not None and study.spec.models_config is not None:
        raise InputError("the study file names its models config (models_config); give "
                         "--models-config only for a study without one",
                         source="--models-config")
    settings = study.settings(**run_time)
    try:
        settings.check()
    except InputError as error:  # named as the study file's field
        raise InputError(error.message, source=study.path,
                         field=_field_of(error.source)) from None
    scenarios = study.load_scenarios()
    warnings: list[str] = []
    if study.spec.settings:
        from agentsim.orchestrator.kernel import plugin_for

        taking = [s for _, s in scenarios if plugin_for(s.protocol.name).takes("setting", s)]
        if not taking:
            raise InputError("settings apply to discussion scenarios only, and the study has "
                             "none; drop the field", source=study.path, field="settings")
        if len(taking) < len(scenarios):
            warnings.append(f"settings apply to discussion scenarios only: "
                            f"{len(scenarios) - len(taking)} of the {len(scenarios)} scenarios "
                            "run once per model, in their own setting")
    return scenarios, settings, warnings


def _field_of(option: str | None) -> str | None:
    """The study file's field of a run option's flag (``--rounds`` → ``rounds``)."""
    if option is None:
        return None
    name = option.removeprefix("--").replace("-", "_")
    return {"mitigation_arg": "mitigation_options", "bias": "biases", "vary": "variants",
            "role": "models", "model": "models"}.get(name, name)


def study_options(study: Study, settings: Any) -> Any:
    """The runner's options of a checked study: its design over ``settings``."""
    return study.run_options(settings)


def open_study(path: str | Path, models: Any = None, replicates: int | None = None,
               sets: Any = None) -> Study:
    """The study file at ``path`` with one run's replacements: ``models`` (``a=MODEL,...``, a
    list or a mapping, as ``--models``), ``replicates`` and ``sets`` (``FIELD=YAML`` strings
    as ``--set``, or a mapping field → value)."""
    from agentsim.api.settings import check_number, parse_models, strings
    from agentsim.studies.loader import parse_sets

    check_number("replicates", replicates)
    given = dict(sets) if isinstance(sets, dict) else parse_sets(strings(sets, "--set"))
    return load_study(path).overridden(models=parse_models(models) or None,
                                       replicates=replicates, sets=given)


def run_study(path: str | Path, *, models: Any = None, replicates: int | None = None,
              sets: Any = None, on_start: Any = None, on_done: Any = None,
              on_warning: Any = None, **run_time: Any) -> Any:
    """Run a study file (``agentsim study run FILE``) and return the
    :class:`~agentsim.api.run_folder.Run`, with ``comparison`` when the study varies a
    factor. ``models``/``replicates``/``sets`` replace the file's fields for this run
    (recorded in the manifest); ``run_time``: how it runs (``out``, ``concurrency``, ``executor``,
    ``no_cache``, ``max_cost``, per-model limits, ...; see :data:`RUN_TIME`)."""
    from agentsim.api import Run, comparison_finalizer, execute_settings

    study = open_study(path, models, replicates, sets)
    scenarios, settings, warnings = check_study(study, run_time)
    controls = study.controls()
    made: dict[str, Any] = {}
    finalize = comparison_finalizer(controls, made) if controls else None
    summary = execute_settings(
        scenarios, settings, tuple(study.spec.arms), "agentsim study run", on_start, on_done,
        on_warning, finalize, design=lambda options: study.run_options(settings),
        manifest_fields={"study": study.manifest_entry()}, warnings=warnings)
    return Run(summary.run_dir, summary, comparison=made.get("comparison"),
               plots=made.get("plots") or ())
