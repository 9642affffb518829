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

from agentsim.core.outcomes import PairedMeasure
from agentsim.core.reader import RunView
from agentsim.errors import InputError
from agentsim.registry import REGISTRY, make_plugin, options_model
from agentsim.stats.inference import (
    Estimate,
    adjust_pvalues,
    clustered_mean,
    paired_difference,
    share,
)

COMPARISON_FILE = "comparison.json"

Unit = tuple[Hashable, ...]


@dataclass
class Measure:
    """One measure's declaration and its values per arm: unit → (value, cluster)."""

    spec: PairedMeasure
    by_arm: dict[str, dict[Unit, tuple[float, str]]] = field(
        default_factory=lambda: defaultdict(dict))

    def add(self, arm: str, unit: Unit, value: float, cluster: str) -> None:
        """Record the value of ``unit`` in ``arm``."""
        self.by_arm[arm][unit] = (value, cluster)


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
    arms = list(run.manifest.get("arms") or [])
    for event in run.events("conversation_started"):
        arm = event.arm or "none"
        if arm not in arms:
            arms.append(arm)
    return arms


def compare_arms(run: RunView, control: str = "none",
                 options: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every non-control arm against ``control`` on matched units (see the module docstring);
    ``options``: judge → the options it judged the run with (e.g. a preset's bias rule).

    Returns ``{"control", "arms", "metrics": {name: Estimate}, "counts", "notes"}``; metrics are
    the deltas (Holm-corrected as one family) followed by the per-arm levels.
    """
    arms = run_arms(run)
    if control not in arms:
        raise InputError(f"the control arm {control!r} is not in this run (arms: "
                         f"{', '.join(arms) or 'none recorded'})", source="--control")
    measures, notes = collect_measures(run, options)
    seeds = _seed_mismatches(run)
    if seeds:
        notes.append(f"compare: {seeds} (scenario, replicate) unit(s) ran with different seeds "
                     "in different arms, so their arms are not paired draw for draw")

    deltas: dict[str, Estimate] = {}
    pairs: dict[str, dict[str, int]] = defaultdict(dict)
    unmatched: dict[str, dict[str, int]] = defaultdict(dict)
    for name, measure in measures.items():
        reference = measure.by_arm.get(control, {})
        if not measure.spec.tested:
            continue  # a level only (see the module docstring)
        for arm in arms:
            values = measure.by_arm.get(arm, {})
            if arm == control or not values or not reference:
                continue
            common = [u for u in reference if u in values]
            pairs[name][arm] = len(common)
            unmatched[name][arm] = len(set(reference) ^ set(values))
            if common:
                deltas[f"delta_{name}[{arm}]"] = paired_difference(
                    [reference[u][0] for u in common], [values[u][0] for u in common],
                    [reference[u][1] for u in common])
    deltas = adjust_pvalues(deltas, method="holm")
    levels = _levels(measures, arms)

    tested = [k for k, v in deltas.items() if v.p_raw is not None]
    notes.append(f"compare: delta = arm − control ({control!r}) over units matched by their "
                 "conversation's (scenario, variant, bias, replicate) and, inside it, what the "
                 "measure's judge names (agent and phase for decisions); intervals bootstrap "
                 "scenarios and permutation tests flip the signs of whole scenarios")
    if tested:
        notes.append(f"compare: p-values Holm-corrected over the {len(tested)} deltas; p_raw "
                     "is uncorrected")
    notes += [f"compare: {m.spec.note}" for m in measures.values() if m.spec.note]
    lost = {f"{e}[{a}]": k for e, by in unmatched.items() for a, k in by.items() if k}
    if lost:
        notes.append("compare: units present in only one of the two arms, left out: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(lost.items())))
    return {
        "control": control,
        "arms": arms,
        "metrics": {**deltas, **levels},
        "counts": {
            "conversations": _conversations_per_arm(run),
            "units": {name: {a: len(m.by_arm.get(a, {})) for a in arms if m.by_arm.get(a)}
                      for name, m in measures.items()},
            "pairs": dict(pairs),
            "unmatched": dict(unmatched),
            "seed_mismatches": seeds,
        },
        "notes": notes,
    }


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
        plugin = make_plugin("judge", judge, _own_options(judge, (options or {}).get(judge)))
        found = plugin.outcomes(run.for_protocols(getattr(plugin, "protocols", None)))
        notes += [f"compare: {note}" for note in found.notes]
        for outcome in found.values:
            start = started.get(outcome.conversation_id)
            measure = measures.get(outcome.measure)
            if start is None or measure is None:
                continue  # a unit of an unfinished conversation, or an undeclared measure
            unit = (start.scenario_id, start.variant, str(start.job.get("bias", "none")),
                    start.replicate, *outcome.within)
            measure.add(start.arm or "none", unit, outcome.value, start.scenario_id)
    return {k: m for k, m in measures.items() if m.by_arm}, notes


def _own_options(judge: str, recorded: dict[str, Any] | None) -> dict[str, Any]:
    """Recorded options the judge takes (a judging pass records every option, defaults and
    test hooks such as a null ``client`` included)."""
    if not recorded:
        return {}
    known = options_model(REGISTRY.get("judge", judge)).model_fields
    return {k: v for k, v in recorded.items() if k in known and v is not None}


def _levels(measures: dict[str, Measure], arms: list[str]) -> dict[str, Estimate]:
    """The absolute level of every measure in every arm (no test: the deltas are the tests)."""
    levels: dict[str, Estimate] = {}
    for name, measure in measures.items():
        for arm in arms:
            values = list(measure.by_arm.get(arm, {}).values())
            if not values:
                continue
            flags, clusters = [v for v, _ in values], [c for _, c in values]
            levels[f"{name}[arm={arm}]"] = (share(flags, clusters) if measure.spec.binary
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
    deltas = Table(title=f"Effects of each arm vs control ({comparison['control']})",
                   title_justify="left")
    levels = Table(title="Levels per arm", title_justify="left")
    for table, columns in ((deltas, ("arm", "effect", "value", "95% CI", "n", "p (Holm)")),
                           (levels, ("arm", "measure", "value", "95% CI", "n"))):
        for column in columns:
            text = column in ("arm", "effect", "measure")
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
