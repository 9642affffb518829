"""Power and sample size of a study, by simulation of the test the tool will run on its data
(``agentsim study power FILE``; the model is :mod:`agentsim.studies.power_model`).

Every test of a paired measure in agentsim is a sign-flip permutation test on the scenario
totals of per-unit values (:func:`agentsim.stats.inference.paired_difference`): the scenario is
the unit of inference, and so it is in the simulation. Each simulated study has the planned
scenarios, each with as many conversations per replicate as the study plans in the analysed
cells (variants, bias conditions and, for a delta, the other factors' levels:
:func:`agentsim.runs.planning.plan_jobs`, nothing run), and the power is the share of
simulated studies whose p ≤ α.

The test, per metric (:data:`METRICS`):

* ``escalation``: mean of last − first score per agent ≠ 0, the trajectory judge's
  ``first_to_last`` (sign-flip of scenario totals);
* ``bias_first`` / ``bias_last``: mean decision score ≠ 0 (0 = neither stereotypical nor
  anti-stereotypical), the same one-sample sign-flip test (``paired_difference`` against
  zeros). agentsim reports these levels without a p, so this is the test a primary analysis
  would add; when the question is whether a model or mitigation *changes* bias, ``delta``
  against a control is the more apt design (it also cancels what the scenarios share);
* ``delta``: the paired difference of a measure (default ``bias_last``) between one level of a
  factor and its control (default: the first factor the study varies, its first other level),
  ``compare_design``'s ``delta_<measure>[...]`` judged by its raw p; ``family`` divides α by
  the number of deltas Holm corrects over (its first, strictest step).

One-sample metrics are about the study's control cell (control model, setting and arm). With
a pilot run the variance components are estimated from its per-unit outcomes as the
comparison reads them (:func:`agentsim.analysis.compare.collect_measures`; for a delta, the
matched differences) by the method of moments of the nested one-way ANOVA on scenario
clusters (:func:`~agentsim.studies.power_model.estimate_components`); stated values override
single estimates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from agentsim.errors import AgentsimError, InputError
from agentsim.studies.power_model import (
    SIMULATIONS,
    Components,
    estimate_components,
    simulate_power,
    smallest_p,
)

__all__ = ["METRICS", "PowerResult", "study_power"]

METRICS = ("escalation", "bias_first", "bias_last", "delta")
MEASURES = ("bias_first", "bias_last", "escalation")  # what a delta can be of
FACTORS = ("model", "setting", "arm")
MAX_REPLICATES = 10_000  # the study file's own limit
MAX_SCENARIOS = 256
CONVERSATION = 6  # a paired unit's conversation: 2 other factors' levels + its first 4 parts


@dataclass
class PowerResult:
    """What ``agentsim study power`` reports; :meth:`as_dict` is its JSON."""

    study: str
    metric: str
    analysed: str  # the cell or comparison the metric is about, in words
    effect: float
    alpha: float  # per test, after dividing by ``family``
    target: float
    components: Components
    scenarios: int  # as planned
    replicates: int
    conversations_per_replicate: int  # summed over scenarios, in the analysed cells
    power: float  # of the study as planned
    by_replicates: list[dict[str, Any]]  # {"replicates", "power"} at the planned scenarios
    by_scenarios: list[dict[str, Any]]  # {"scenarios", "power", "reachable"} at planned reps
    recommended: dict[str, Any] | None  # {"replicates", "scenarios", "power"} or None
    plateau: float  # power at the planned scenarios with unlimited replicates
    simulations: int
    seed: int
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return asdict(self)


def _design(study: Any, metric: str, compare: str | None) -> tuple[list[str], np.ndarray,
                                                                   dict[str, Any], str]:
    """The planned scenarios, conversations per scenario and replicate in the analysed cells,
    the cells (a control cell, or a factor's level against its control) and their wording."""
    from agentsim.core.log_stream import cell_of
    from agentsim.runs.planning import plan_jobs
    from agentsim.studies.running import check_study

    scenarios, settings, _ = check_study(study)
    jobs = plan_jobs([s for _, s in scenarios], replace(study.run_options(settings),
                                                        replicates=1))
    spec = study.spec
    control = {f: spec.control_of(f) for f in FACTORS}
    if metric == "delta":
        levels = {"model": list(spec.models), "setting": spec.settings or [],
                  "arm": list(spec.arms)}
        if compare is None:
            varied = [f for f in FACTORS if len(levels[f]) > 1]
            if not varied:
                raise InputError("a delta needs a study that varies models, settings or arms",
                                 source=study.path, field="primary.metric")
            factor = varied[0]
            level = next(v for v in levels[factor] if v != control[factor])
        else:
            factor, _, level = compare.partition("=")
            if factor not in FACTORS or level not in levels[factor] or level == control[factor]:
                raise InputError(f"expected FACTOR=LEVEL, a non-control level of the study's "
                                 f"model, setting or arm (got {compare!r})", source="--compare")
        cell = {"factor": factor, "level": level, "control": control[factor]}
        keep = [j for j in jobs if cell_of(j.model_dump())[FACTORS.index(factor)]
                == control[factor]]
        words = f"{factor} {level} − control {factor} {control[factor]}"
    else:
        cell = control
        keep = [j for j in jobs if all(v is None or v == have for v, have in zip(
            control.values(), cell_of(j.model_dump()), strict=True))]
        words = "control cell " + ", ".join(f"{f} {v}" for f, v in control.items() if v)
    counts: dict[str, int] = {}
    for job in keep:
        counts[job.scenario_id] = counts.get(job.scenario_id, 0) + 1
    if len(counts) < 2:
        raise InputError("the study plans fewer than two scenarios in the analysed cells; "
                         "a clustered test needs two or more", source=study.path,
                         field="scenarios")
    return list(counts), np.array(list(counts.values()), dtype=float), cell, words


def _pilot_rows(pilot: Path, metric: str, measure: str, cell: dict[str, Any],
                ) -> tuple[list[float], list[str], list[Any], list[str]]:
    """Per-unit values of the pilot (differences for a delta), their scenarios and
    conversations, as ``compare_design`` pairs them; and notes."""
    from agentsim.analysis.compare import collect_measures
    from agentsim.core.reader import RunView
    from agentsim.core.store import RunStore

    if not Path(pilot).is_dir():
        raise InputError("no such run folder", source="--pilot")
    try:
        measures, _ = collect_measures(RunView(RunStore.open(Path(pilot))))
    except InputError:
        raise
    except (AgentsimError, OSError, ValueError) as error:
        raise InputError(f"cannot read the pilot run: {error}", source="--pilot") from None
    name = measure if metric == "delta" else metric
    if name not in measures:
        raise InputError(f"the pilot run has no {name} values (a discussion run judged by "
                         "assignment_bias has them)", source="--pilot")
    found, notes = measures[name], []
    if metric == "delta":
        by_level = found.by_level(cell["factor"])
        reference, other = by_level.get(cell["control"]), by_level.get(cell["level"])
        if not reference or not other:
            raise InputError(f"the pilot run needs both {cell['factor']}s {cell['control']!r}"
                             f" and {cell['level']!r} (it has: {', '.join(by_level)})",
                             source="--pilot")
        common = [u for u in reference if u in other]
        return ([other[u][0] - reference[u][0] for u in common],
                [reference[u][1] for u in common], [u[:CONVERSATION] for u in common], notes)
    cells = [c for c in found.by_cell if all(v is None or v == have for v, have in zip(
        cell.values(), c, strict=True))]
    if not cells:
        if len(found.by_cell) > 1:
            raise InputError("the pilot run has no cell matching the study's control cell ("
                             + ", ".join(f"{v}" for v in cell.values() if v) + "); its cells: "
                             + "; ".join("/".join(c) for c in found.by_cell), source="--pilot")
        cells = list(found.by_cell)
        notes.append(f"pilot: its one cell {'/'.join(cells[0])} stands for the control cell")
    rows = [(value, cluster, (c, unit[:4])) for c in cells
            for unit, (value, cluster) in found.by_cell[c].items()]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], notes


STATED = ("sd_between", "sd_within", "units_per_conversation", "sd_conversation")


def _components(stated: dict[str, float | None], pilot: Path | None, metric: str,
                measure: str, cell: dict[str, Any]) -> tuple[Components, list[str]]:
    """The pilot's estimates (if any), each overridden by a stated value."""
    for name, value in stated.items():
        if value is not None and (value < 0 or (name == "units_per_conversation"
                                                and value <= 0) or not math.isfinite(value)):
            raise InputError("must be a finite number, > 0 for units and ≥ 0 for an SD",
                             source="--" + name.replace("_", "-"))
    notes: list[str] = []
    if pilot is None:
        missing = [n for n in STATED[:3] if stated.get(n) is None]
        if missing:
            raise InputError("without --pilot RUN, state the variance components: "
                             + ", ".join("--" + n.replace("_", "-") for n in missing),
                             source="--" + missing[0].replace("_", "-"))
        found = Components(stated["sd_between"], stated["sd_within"],  # type: ignore[arg-type]
                           stated["units_per_conversation"],  # type: ignore[arg-type]
                           stated.get("sd_conversation") or 0.0)
    else:
        values, clusters, conversations, notes = _pilot_rows(pilot, metric, measure, cell)
        if len(set(clusters)) < 2:
            raise InputError("the pilot run has values in fewer than two scenarios",
                             source="--pilot")
        found = replace(estimate_components(values, clusters, conversations),
                        source=f"pilot {pilot}")
        given = {n: v for n, v in stated.items() if v is not None}
        if given:
            found = replace(found, **given, source=f"pilot {pilot}, stated "
                            + ", ".join("--" + n.replace("_", "-") for n in given))
        if min(values) >= 0 or max(values) <= 0:
            notes.append("pilot: every value has one sign, so the sign-flip test rejects more "
                         "easily than under the normal model simulated: its power is a lower "
                         "bound")
    return found, notes


def _search(power_of: Any, low: int, high: int, target: float) -> int | None:
    """The fewest n in [low, high] with power_of(n) ≥ target, doubling then bisecting (power
    grows with n; common random numbers keep it nearly monotone)."""
    previous, n = low - 1, low
    while power_of(n) < target:
        if n >= high:
            return None
        previous, n = n, min(high, 2 * n)
    while n - previous > 1:
        middle = (previous + n) // 2
        previous, n = (previous, middle) if power_of(middle) >= target else (middle, n)
    return n


def study_power(path: str | Path, effect: float | None = None, *, metric: str | None = None,
                measure: str = "bias_last", compare: str | None = None,
                pilot: str | Path | None = None, sd_between: float | None = None,
                sd_within: float | None = None, sd_conversation: float | None = None,
                units_per_conversation: float | None = None, alpha: float | None = None,
                power: float | None = None, family: int = 1,
                simulations: int = SIMULATIONS, seed: int = 0) -> PowerResult:
    """The power of the study file at ``path`` as planned, tables over replicates and
    scenarios, and the fewest replicates (at the planned scenarios) or else scenarios (at the
    planned replicates) that reach the target power, by simulation (see the module docstring).
    ``effect``/``metric``/``alpha``/``power`` default to the study's ``primary`` block;
    ``measure`` and ``compare`` (``FACTOR=LEVEL``) choose a delta's measure and level. Nothing
    is run: the scenarios come from ``check_study``, the conversations from the plan."""
    from agentsim.studies.loader import load_study

    study = load_study(path)
    primary = study.spec.primary
    if effect is None and primary is not None and metric not in (None, primary.metric):
        raise InputError(f"the study's primary.effect is for {primary.metric}; give --effect "
                         f"for {metric}", source="--effect")
    effect = effect if effect is not None else (primary.effect if primary else None)
    if effect is None:
        raise InputError("no effect to detect: give --effect D or the study's primary.effect",
                         source="--effect")
    if effect == 0 or not math.isfinite(effect):
        raise InputError("the effect must be a non-zero number", source="--effect")
    metric = metric or (primary.metric if primary else "escalation")
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; use {', '.join(METRICS)}",
                         source="--metric")
    if measure not in MEASURES:
        raise InputError(f"a delta is of {', '.join(MEASURES)}", source="--measure")
    alpha = float(alpha if alpha is not None else (primary.alpha if primary else 0.05))
    target = float(power if power is not None else (primary.power if primary else 0.8))
    for flag, value in (("--alpha", alpha), ("--power", target)):
        if not 0 < value < 1:
            raise InputError("must be between 0 and 1", source=flag)
    if family < 1 or simulations < 100:
        raise InputError("--family must be ≥ 1 and --simulations ≥ 100",
                         source="--family" if family < 1 else "--simulations")
    _, conv, cell, words = _design(study, metric, compare)
    if metric == "delta":
        words = f"{measure}: {words}"
    stated = {"sd_between": sd_between, "sd_within": sd_within,
              "units_per_conversation": units_per_conversation,
              "sd_conversation": sd_conversation}
    comps, notes = _components(stated, Path(pilot) if pilot is not None else None, metric,
                               measure, cell)
    level = alpha / family
    # Units are label scores or their differences (whole numbers), except a delta between
    # settings, which compares conversation means.
    integers = not (metric == "delta" and cell["factor"] == "setting")
    k, planned = len(conv), study.spec.replicates
    most = max(MAX_SCENARIOS, 4 * k)  # the largest scenario count searched
    # One set of draws for every design point (common random numbers): smooth curves.
    draws = np.random.default_rng(seed).standard_normal((2, simulations, most))
    cache: dict[tuple[int, float], float] = {}

    def power_at(n: int, replicates: float) -> float:
        """Power with n scenarios (the planned ones, cycled) of ``replicates`` each."""
        if (n, replicates) not in cache:
            cache[(n, replicates)] = (0.0 if smallest_p(n) > level else simulate_power(
                effect, comps, np.resize(conv, n), replicates, level, draws=draws,
                integers=integers, seed=seed))
        return cache[(n, replicates)]

    plateau = power_at(k, math.inf)
    if smallest_p(k) > level:
        notes.append(f"with {k} scenarios the sign-flip test cannot reach p ≤ {level:.3g} "
                     f"(its smallest p is 2/2**{k} = {smallest_p(k):.3g}): no number of "
                     "replicates helps, only more scenarios")
    elif plateau < target:
        notes.append(f"between-scenario variation caps the power at {k} scenarios at "
                     f"{plateau:.2f} however many replicates: more scenarios are needed")
    recommended = None
    best_r = (_search(lambda r: power_at(k, r), 1, MAX_REPLICATES, target)
              if plateau >= target else None)
    if best_r is not None:
        recommended = {"replicates": best_r, "scenarios": k, "power": power_at(k, best_r)}
    else:
        best_k = _search(lambda n: power_at(n, planned), 2, most, target)
        if best_k is not None:
            recommended = {"replicates": planned, "scenarios": best_k,
                           "power": power_at(best_k, planned)}
            if best_k > k:
                notes.append(f"{best_k - k} more scenarios needed than the study has: "
                             "write or import them")
        else:
            notes.append(f"no design up to {most} scenarios at {planned} "
                         f"replicate(s) reaches power {target}")
    top = max(planned, recommended["replicates"] if recommended else 0, 4)
    ladder = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 100, 200, 500, 1000, MAX_REPLICATES]
    reps = sorted({r for r in ladder if r <= top} | {planned, top}
                  | ({recommended["replicates"]} if recommended else set()))
    top_k = max(2 * k, recommended["scenarios"] if recommended else 0)
    ks = sorted({n for n in (4, 5, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
                 if n <= min(top_k, most)} | {k}
                | ({recommended["scenarios"]} if recommended else set()))
    if family > 1:
        notes.append(f"α {alpha} divided by a family of {family} deltas (Holm's first step)")
    return PowerResult(
        study=study.id, metric=metric, analysed=words, effect=float(effect), alpha=level,
        target=target, components=comps, scenarios=k, replicates=planned,
        conversations_per_replicate=int(conv.sum()), power=power_at(k, planned),
        by_replicates=[{"replicates": r, "power": power_at(k, r)} for r in reps],
        by_scenarios=[{"scenarios": n, "power": power_at(n, planned),
                       "reachable": smallest_p(n) <= level} for n in ks],
        recommended=recommended, plateau=plateau, simulations=simulations, seed=seed,
        notes=notes)
