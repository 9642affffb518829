"""Comparison of mitigation arms: paired effects on bias and on quality, against a control arm.

Every arm of one scenario and replicate runs with the same seed, variants and bias conditions
(:func:`agentsim.runs.planning.plan_jobs`), so an arm's outcome can be paired with the control's
outcome on the same *unit*. The comparison knows no judge: every registered judge that declares
``paired`` measures (:class:`~agentsim.core.outcomes.PairedMeasure`) yields the value of each of
its units from the log (``outcomes(run)``, :mod:`agentsim.core.outcomes`), and this module pairs
them. A unit is its conversation's (scenario, variant, injected bias, replicate) plus what the
judge says identifies it inside the conversation (e.g. the agent and phase of a decision); the
built-in judges offer bias first / last and escalation (``assignment_bias``), counterfactual
flip rates (``counterfactual``), the selection gap of setups (``selection``), and accuracy and
doctor turns of consultations (``clinical``), with unparsed decisions as a quality measure.

For each non-control arm A, ``delta_<measure>[A]`` is the mean over matched units of
(A − control) (:func:`~agentsim.stats.inference.paired_difference`), positive when A has more of
the measure. The scenario is the unit of inference: the interval is a cluster bootstrap over
scenarios and the permutation test flips the sign of each scenario's total difference (exact up
to 2**12 sign patterns), so the units of one scenario never count as independent evidence and a
run of k scenarios cannot reach a p below 2 / 2**k.

The p-values of all deltas are one family, Holm-corrected (``p_raw`` keeps the uncorrected).
Beside them, the absolute level of each measure in every arm, ``<measure>[arm=A]``, without
tests; a measure declared ``tested=False`` (the placebo flip rate) is a level only. Units
present in one arm only (a failed conversation, an unparsed decision) are left out of the delta
and counted as unmatched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agentsim.core.log_stream import FACTORS, cell_of
from agentsim.core.outcomes import PairedMeasure
from agentsim.core.reader import RunView
from agentsim.errors import InputError
from agentsim.registry import REGISTRY, make_plugin, taken_options
from agentsim.stats.inference import (
    Estimate,
    adjust_pvalues,
    clustered_mean,
    paired_difference,
    share,
)

COMPARISON_FILE = "comparison.json"

Unit = tuple[Hashable, ...]
CONVERSATION = 4  # a unit's first parts name its conversation: scenario, variant, bias, replicate


@dataclass
class Measure:
    """One measure's declaration and its values per cell of the design: unit → (value,
    cluster), the cell being (model, setting, arm) (:data:`agentsim.core.log_stream.FACTORS`)."""

    spec: PairedMeasure
    by_cell: dict[tuple[str, ...], dict[Unit, tuple[float, str]]] = field(
        default_factory=lambda: defaultdict(dict))

    def add(self, cell: tuple[str, ...], unit: Unit, value: float, cluster: str) -> None:
        """Record the value of ``unit`` in ``cell``."""
        self.by_cell[cell][unit] = (value, cluster)

    def by_level(self, factor: str, where: dict[str, str] | None = None,
                 ) -> dict[str, dict[Unit, tuple[float, str]]]:
        """The values per level of ``factor``, each unit named with the other factors' levels
        (so a unit pairs only with the same unit under the same other conditions), of the
        cells matching ``where`` (factor → level) only.

        Settings are compared conversation by conversation: the units inside a conversation
        differ between settings (no-interaction has one decision for the team where the
        others have one per agent), so each conversation's mean over its units is its value.
        """
        index = FACTORS.index(factor)
        whole = factor == "setting"
        out: dict[str, dict[Unit, tuple[float, str]]] = defaultdict(dict)
        sums: dict[tuple[str, Unit], list[Any]] = {}
        for cell, values in self.by_cell.items():
            if where and any(cell[FACTORS.index(f)] != v for f, v in where.items()):
                continue
            others = cell[:index] + cell[index + 1:]
            level = out[cell[index]]
            for unit, (value, cluster) in values.items():
                if not whole:
                    level[(*others, *unit)] = (value, cluster)
                    continue
                total = sums.setdefault((cell[index], (*others, *unit[:CONVERSATION])),
                                        [0.0, 0, cluster])
                total[0] += value
                total[1] += 1
        for (level, unit), (total, count, cluster) in sums.items():
            out[level][unit] = (total / count, cluster)
        return out

    @property
    def by_arm(self) -> dict[str, dict[Unit, tuple[float, str]]]:
        """The values per arm (see :meth:`by_level`)."""
        return self.by_level("arm")


def paired_measures() -> list[tuple[str, PairedMeasure]]:
    """(judge, measure) for every registered judge's paired measures, bias measures first,
    each group in the registry's order of judges."""
    found = [(name, spec) for name in REGISTRY.names("judge")
             for spec in getattr(REGISTRY.get("judge", name), "paired", ())]
    return sorted(found, key=lambda item: item[1].group != "bias")


def measure_labels() -> dict[str, str]:
    """Measure name → its wording, for tables and plots."""
    return {spec.name: spec.label for _, spec in paired_measures()}


def parse_arms(text: str) -> tuple[str, ...]:
    """``none,debias_prompt,a+b`` → the arms, in order; empty or repeated names are errors."""
    arms = tuple(part.strip() for part in text.split(",") if part.strip())
    if not arms:
        raise InputError("no arm given (e.g. --arms none,debias_prompt)", source="--arms")
    repeated = sorted({a for a in arms if arms.count(a) > 1})
    if repeated:
        raise InputError(f"arm(s) given twice: {', '.join(repeated)}", source="--arms")
    return arms


def split_name(name: str) -> tuple[str, str]:
    """``delta_bias_first[debias_prompt]`` → (``delta_bias_first``, ``debias_prompt``);
    ``bias_first[arm=none]`` → (``bias_first``, ``none``); no brackets → (name, "")."""
    if not name.endswith("]") or "[" not in name:
        return name, ""
    effect, arm = name[:-1].split("[", 1)
    return effect, arm.removeprefix("arm=")


def effect_label(effect: str, labels: dict[str, str] | None = None) -> str:
    """Human wording of a measure's name, with Δ for a difference against the control."""
    base = effect.removeprefix("delta_")
    text = (labels if labels is not None else measure_labels()).get(base, base.replace("_", " "))
    return f"Δ {text}" if effect.startswith("delta_") else text


def run_arms(run: RunView) -> list[str]:
    """The arms of a run: the manifest's, else those its conversations carry."""
    return run_levels(run)["arm"]


def run_levels(run: RunView) -> dict[str, list[str]]:
    """The levels of each factor of a run's design (model, setting, arm), in plan order:
    the manifest's jobs' (and arms), then any its conversations carry besides."""
    levels: dict[str, list[str]] = {factor: [] for factor in FACTORS}
    levels["arm"] = list(run.manifest.get("arms") or [])
    cells = [cell_of(job) for job in run.manifest.get("jobs") or ()]
    cells += [cell_of(event) for event in run.events("conversation_started")]
    for cell in cells:
        for factor, level in zip(FACTORS, cell, strict=True):
            if level not in levels[factor]:
                levels[factor].append(level)
    return levels


def compare_arms(run: RunView, control: str = "none",
                 options: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every non-control arm against ``control`` on matched units (see the module docstring);
    ``options``: judge → the options it judged the run with (e.g. a preset's bias rule).
    :func:`compare_design` with the arms as the one factor compared."""
    return compare_design(run, {"arm": control}, options)


def compare_design(run: RunView, controls: dict[str, str],
                   options: dict[str, dict[str, Any]] | None = None,
                   interaction: tuple[str, str] | None = None) -> dict[str, Any]:
    """Every level of each factor in ``controls`` (factor → its control level: ``arm``,
    ``model``, ``setting``) against the control on matched units, a unit pairing with itself
    under the same levels of the other factors; ``interaction`` = (factor, by): the first
    factor's deltas again within each level of the second (model × arm: ``("arm",
    "model")``).

    Returns ``{"control", "controls", "arms", "levels", "metrics": {name: Estimate},
    "counts", "notes"}``; metrics are the deltas (Holm-corrected as one family) followed by the
    levels of every compared factor. Names: ``delta_<measure>[A]`` and ``<measure>[arm=A]``
    for arms, ``delta_<measure>[model=B]`` and ``<measure>[model=B]`` for the other factors,
    ``delta_<measure>[A|model=B]`` for an arm within a model.
    """
    levels = run_levels(run)
    for factor, control in controls.items():
        flag = "--control" if factor == "arm" else f"--{factor}s"
        if control not in levels[factor]:
            raise InputError(f"the control {factor} {control!r} is not in this run "
                             f"({factor}s: {', '.join(levels[factor]) or 'none recorded'})",
                             source=flag)
    measures, notes = collect_measures(run, options)
    seeds = _seed_mismatches(run)
    if seeds:
        notes.append(f"compare: {seeds} (scenario, replicate) unit(s) ran with different seeds "
                     "in different cells, so their cells are not paired draw for draw")
    deltas: dict[str, Estimate] = {}
    pairs: dict[str, dict[str, int]] = defaultdict(dict)
    unmatched: dict[str, dict[str, int]] = defaultdict(dict)
    plans = [(factor, control, None) for factor, control in controls.items()]
    if interaction is not None:
        factor, by = interaction
        plans += [(factor, controls[factor], (by, level)) for level in levels[by]]
    for factor, control, where in plans:
        for name, measure in measures.items():
            if not measure.spec.tested:
                continue  # a level only (see the module docstring)
            found = measure.by_level(factor, dict([where]) if where else None)
            reference = found.get(control, {})
            for level in levels[factor]:
                values = found.get(level, {})
                if level == control or not values or not reference:
                    continue
                key = _condition(factor, level, where)
                common = [u for u in reference if u in values]
                pairs[name][key] = len(common)
                unmatched[name][key] = len(set(reference) ^ set(values))
                if common:
                    deltas[f"delta_{name}[{key}]"] = paired_difference(
                        [reference[u][0] for u in common], [values[u][0] for u in common],
                        [reference[u][1] for u in common])
    deltas = adjust_pvalues(deltas, method="holm")
    compared = {factor: levels[factor] for factor in controls}
    tested = [k for k, v in deltas.items() if v.p_raw is not None]
    against = ", ".join(f"{factor} − control {factor} ({control!r})"
                        for factor, control in controls.items())
    notes.append(f"compare: delta = {against} over units matched by their conversation's "
                 "(scenario, variant, bias, replicate, the other factors' levels) and, inside "
                 "it, what the measure's judge names (agent and phase for decisions); "
                 "intervals bootstrap scenarios and permutation tests flip the signs of whole "
                 "scenarios")
    if tested:
        notes.append(f"compare: p-values Holm-corrected over the {len(tested)} deltas; p_raw "
                     "is uncorrected")
    notes += [f"compare: {m.spec.note}" for m in measures.values() if m.spec.note]
    lost = {f"{e}[{a}]": k for e, by in unmatched.items() for a, k in by.items() if k}
    if lost:
        notes.append("compare: units present in only one of the two cells, left out: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(lost.items())))
    return {
        "control": controls.get("arm", "none"),
        "controls": dict(controls),
        "arms": levels["arm"],
        "levels": compared,
        "metrics": {**deltas, **_levels(measures, compared)},
        "counts": {
            "conversations": _conversations_per_arm(run),
            "units": {name: {a: len(v) for a, v in m.by_arm.items() if v}
                      for name, m in measures.items()},
            "pairs": dict(pairs),
            "unmatched": dict(unmatched),
            "seed_mismatches": seeds,
        },
        "notes": notes,
    }


def _condition(factor: str, level: str, where: tuple[str, str] | None) -> str:
    """The bracket of a delta's name: ``A`` for an arm, ``model=B`` for another factor's
    level, ``A|model=B`` within a level of another factor."""
    name = level if factor == "arm" else f"{factor}={level}"
    return name if where is None else f"{name}|{where[0]}={where[1]}"


def collect_measures(run: RunView, options: dict[str, dict[str, Any]] | None = None,
                     ) -> tuple[dict[str, Measure], list[str]]:
    """Every paired measure with values in this run, by arm and unit; and the judges' notes.

    Each judge is made with its ``options`` (its defaults for a judge not given) and reads the
    view of the protocols it declares, as when it judges.
    """
    started = {e.conversation_id: e for e in run.events("conversation_started")}
    measures: dict[str, Measure] = {}
    notes: list[str] = []
    by_judge: dict[str, list[PairedMeasure]] = defaultdict(list)
    for judge, spec in paired_measures():
        by_judge[judge].append(spec)
        measures[spec.name] = Measure(spec)
    for judge in by_judge:
        given = taken_options(REGISTRY.get("judge", judge), (options or {}).get(judge))
        plugin = make_plugin("judge", judge, given)
        found = plugin.outcomes(run.for_protocols(getattr(plugin, "protocols", None)))
        notes += [f"compare: {note}" for note in found.notes]
        for outcome in found.values:
            start = started.get(outcome.conversation_id)
            measure = measures.get(outcome.measure)
            if start is None or measure is None:
                continue  # a unit of an unfinished conversation, or an undeclared measure
            unit = (start.scenario_id, start.variant, str(start.job.get("bias", "none")),
                    start.replicate, *outcome.within)
            measure.add(cell_of(start), unit, outcome.value, start.scenario_id)
    return {k: m for k, m in measures.items() if m.by_cell}, notes


def _levels(measures: dict[str, Measure],
            compared: dict[str, list[str]]) -> dict[str, Estimate]:
    """The absolute level of every measure at every level of each compared factor, pooled
    over the others (no test: the deltas are the tests)."""
    levels: dict[str, Estimate] = {}
    for factor, names in compared.items():
        for name, measure in measures.items():
            found = measure.by_level(factor)
            for level in names:
                values = list(found.get(level, {}).values())
                if not values:
                    continue
                flags, clusters = [v for v, _ in values], [c for _, c in values]
                levels[f"{name}[{factor}={level}]"] = (
                    share(flags, clusters) if measure.spec.binary
                    else clustered_mean(flags, clusters))
    return levels


def _seed_mismatches(run: RunView) -> int:
    """(scenario, replicate) units whose arms ran with different seeds (should be 0)."""
    seeds: dict[tuple[str, Any], set[Any]] = defaultdict(set)
    for event in run.events("conversation_started"):
        seeds[(event.scenario_id, event.replicate)].add(event.seed)
    return sum(len(found) > 1 for found in seeds.values())


def _conversations_per_arm(run: RunView) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for event in run.events("conversation_started"):
        counts[event.arm or "none"] += 1
    return dict(counts)


def comparison_as_data(comparison: dict[str, Any]) -> dict[str, Any]:
    """The comparison as JSON-ready data (Estimates as dicts, NaN as null)."""
    return {**comparison, "metrics": {k: v.as_dict() for k, v in comparison["metrics"].items()}}


def deltas_of(metrics: dict[str, Estimate]) -> dict[str, Estimate]:
    """The paired differences among a comparison's metrics (what the forest plot draws)."""
    return {k: v for k, v in metrics.items() if k.startswith("delta_")}


def comparison_tables(comparison: dict[str, Any]) -> list[Any]:
    """Rich tables: the deltas (arm, effect, value, CI, n, Holm p) and the per-arm levels."""
    from rich.table import Table

    def fmt(value: float | None, signed: bool) -> str:
        if value is None or value != value:  # NaN
            return "—"
        return f"{value:+.3f}" if signed else f"{value:.3f}"

    metrics: dict[str, Estimate] = comparison["metrics"]
    labels = measure_labels()
    controls = comparison.get("controls") or {"arm": comparison["control"]}
    only_arms = set(controls) == {"arm"}
    against = ", ".join(f"{factor} {level}" for factor, level in controls.items())
    condition = "arm" if only_arms else "condition"
    deltas = Table(title=f"Effects of each {condition} vs control "
                   f"({comparison['control'] if only_arms else against})",
                   title_justify="left")
    levels = Table(title=f"Levels per {condition}", title_justify="left")
    for table, columns in ((deltas, (condition, "effect", "value", "95% CI", "n", "p (Holm)")),
                           (levels, (condition, "measure", "value", "95% CI", "n"))):
        for column in columns:
            text = column in (condition, "effect", "measure")
            # Numbers never wrap: a CI broken over two lines is easy to misread.
            table.add_column(column, justify="left" if text else "right", no_wrap=not text)
    for name, est in _by_arm(metrics.items(), comparison["arms"]):
        effect, arm = split_name(name)
        delta = effect.startswith("delta_")
        signed = delta or effect.startswith(("bias", "escalation"))
        ci = (f"[{fmt(est.ci_low, signed)}, {fmt(est.ci_high, signed)}]"
              if est.ci_low == est.ci_low else "—")
        row = [arm, effect_label(effect, labels), fmt(est.value, signed), ci, str(est.n)]
        if delta:
            deltas.add_row(*row, f"{est.p:.3g}" if est.p is not None else "")
        else:
            levels.add_row(*row)
    return [deltas, levels]


def _by_arm(items: Iterable[tuple[str, Estimate]],
            arms: list[str]) -> list[tuple[str, Estimate]]:
    """Metrics grouped by arm in the run's order of arms (stable within an arm)."""
    order = {arm: i for i, arm in enumerate(arms)}
    return sorted(items, key=lambda item: order.get(split_name(item[0])[1], len(order)))
