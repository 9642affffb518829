"""Comparison of mitigation arms: paired effects on bias and on quality, against a control arm.

Every arm of one scenario and replicate runs with the same seed, variants and bias conditions
(:func:`agentsim.runs.runner.plan_jobs`), so an arm's outcome can be paired with the control's
outcome on the same *unit*:

* a decision: (scenario, variant, bias, replicate, agent, phase), phase ``first`` (``single``
  in the no-interaction setting counts as first) or ``last``;
* a conversation: (scenario, variant, bias, replicate) — for clinical consultations.

For each non-control arm A, ``delta_<effect>[A]`` is the mean over matched units of
(A − control) (:func:`~agentsim.stats.inference.paired_difference`), positive when A has more of
the effect. The scenario is the unit of inference: the interval is a cluster bootstrap over
scenarios and the permutation test flips the sign of each scenario's total difference (exact up
to 2**12 sign patterns), so the units of one scenario never count as independent evidence and a
run of k scenarios cannot reach a p below 2 / 2**k:

* bias — ``delta_bias_first``, ``delta_bias_last`` (label scores, +1 stereotypical … −1 anti,
  each decision labelled against its own variant's scenario), ``delta_escalation`` (last − first
  of the same agent; paired permutation tests), ``delta_flip_rate`` (a counterfactual, non-placebo
  variant decision differs from the base decision of the same unit and arm) when
  counterfactual variants ran;
* ``delta_selection_gap`` (custom setups): the group gap of each rank, pick or rate decision
  (see the ``selection`` judge), paired by (scenario, variant, bias, replicate, agent, point,
  phase, round);
* quality — ``delta_accuracy`` (clinical, moderator verdict), ``delta_unparsed_rate``
  (share of assignment decisions not parsed), ``delta_turns`` (clinical doctor turns;
  paired permutation).

The p-values of all deltas are one family, Holm-corrected (``p_raw`` keeps the uncorrected).
Beside them, the absolute level of each measure in every arm, ``<effect>[arm=A]`` (and
``flip_rate_placebo[arm=A]``), without tests. Units present in one arm only (a failed
conversation, an unparsed decision) are left out of the delta and counted as unmatched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agentsim.stats.inference import Estimate, adjust_pvalues, clustered_mean, paired_difference
from agentsim.errors import InputError
from agentsim.core.reader import RunView
from agentsim.judges.clinical_judge import consultation_rows
from agentsim.judges.counterfactual_judge import (
    PAIR_PHASES,
    LabelledDecision,
    labelled_decisions,
    share,
)
from agentsim.scenario.variants import BASE

# Effect → (label for tables and plots, binary outcome?). Order is the order of every output.
EFFECTS: dict[str, tuple[str, bool]] = {
    "bias_first": ("bias, first decision", False),
    "bias_last": ("bias, last decision", False),
    "escalation": ("escalation (last − first)", False),
    "flip_rate": ("counterfactual flip rate", True),
    "accuracy": ("diagnostic accuracy", True),
    "unparsed_rate": ("unparsed decisions", True),
    "turns": ("doctor turns", False),
    "selection_gap": ("selection gap (rank/pick/rate)", False),
}
BIAS_EFFECTS = ("bias_first", "bias_last", "escalation", "flip_rate", "selection_gap")
QUALITY_EFFECTS = ("accuracy", "unparsed_rate", "turns")
PHASE_GROUP = {"first": "first", "single": "first", "final": "last"}
COMPARISON_FILE = "comparison.json"
_ORDER = [*EFFECTS, "flip_rate_placebo"]

Unit = tuple[Hashable, ...]


@dataclass
class Measure:
    """One measure's values per arm: unit → (value, cluster)."""

    binary: bool
    by_arm: dict[str, dict[Unit, tuple[float, str]]] = field(
        default_factory=lambda: defaultdict(dict))

    def add(self, arm: str, unit: Unit, value: float, cluster: str) -> None:
        """Record the value of ``unit`` in ``arm``."""
        self.by_arm[arm][unit] = (value, cluster)


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


def effect_label(effect: str) -> str:
    """Human wording of an effect name, with Δ for a difference against the control."""
    base = effect.removeprefix("delta_")
    text = EFFECTS.get(base, (base.replace("_", " "), False))[0]
    if base == "flip_rate_placebo":
        text = "placebo flip rate"
    return f"Δ {text}" if effect.startswith("delta_") else text


def run_arms(run: RunView) -> list[str]:
    """The arms of a run: the manifest's, else those its conversations carry."""
    arms = list(run.manifest.get("arms") or [])
    for event in run.events("conversation_started"):
        arm = event.arm or "none"
        if arm not in arms:
            arms.append(arm)
    return arms


def compare_arms(run: RunView, control: str = "none") -> dict[str, Any]:
    """Every non-control arm against ``control`` on matched units (see the module docstring).

    Returns ``{"control", "arms", "metrics": {name: Estimate}, "counts", "notes"}``; metrics are
    the deltas (Holm-corrected as one family) followed by the per-arm levels.
    """
    arms = run_arms(run)
    if control not in arms:
        raise InputError(f"the control arm {control!r} is not in this run (arms: "
                         f"{', '.join(arms) or 'none recorded'})", source="--control")
    notes: list[str] = []
    decisions, skipped = labelled_decisions(run, PAIR_PHASES)
    notes += [f"compare: {sid} not labelled ({why})" for sid, why in sorted(skipped.items())]
    measures = _decision_measures(decisions)
    measures.update(_consultation_measures(run))
    measures.update(_selection_measures(run))
    seeds = _seed_mismatches(run)
    if seeds:
        notes.append(f"compare: {seeds} (scenario, replicate) unit(s) ran with different seeds "
                     "in different arms, so their arms are not paired draw for draw")

    deltas: dict[str, Estimate] = {}
    pairs: dict[str, dict[str, int]] = defaultdict(dict)
    unmatched: dict[str, dict[str, int]] = defaultdict(dict)
    for effect, measure in measures.items():
        reference = measure.by_arm.get(control, {})
        if effect not in EFFECTS:
            continue  # flip_rate_placebo: a level only (see the module docstring)
        for arm in arms:
            values = measure.by_arm.get(arm, {})
            if arm == control or not values or not reference:
                continue
            common = [u for u in reference if u in values]
            pairs[effect][arm] = len(common)
            unmatched[effect][arm] = len(set(reference) ^ set(values))
            if common:
                deltas[f"delta_{effect}[{arm}]"] = paired_difference(
                    [reference[u][0] for u in common], [values[u][0] for u in common],
                    [reference[u][1] for u in common])
    deltas = adjust_pvalues(deltas, method="holm")
    levels = _levels(measures, arms)

    tested = [k for k, v in deltas.items() if v.p_raw is not None]
    notes.append(f"compare: delta = arm − control ({control!r}) over units matched by (scenario, "
                 "variant, bias, replicate, agent, phase) for decisions and (scenario, variant, "
                 "bias, replicate) for consultations; intervals bootstrap scenarios and "
                 "permutation tests flip the signs of whole scenarios")
    if tested:
        notes.append(f"compare: p-values Holm-corrected over the {len(tested)} deltas; p_raw "
                     "is uncorrected")
    if "flip_rate" in measures:
        notes.append("compare: delta_flip_rate pairs counterfactual (non-placebo) variants; "
                     "placebo flips are reported as levels only (flip_rate_placebo[arm=A])")
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
            "decisions": {a: sum((r.arm or "none") == a for r in decisions) for a in arms},
            "pairs": dict(pairs),
            "unmatched": dict(unmatched),
            "seed_mismatches": seeds,
        },
        "notes": notes,
    }


def _selection_measures(run: RunView) -> dict[str, Measure]:
    """selection_gap: each rank/pick/rate decision's group gap (custom setups)."""
    from agentsim.judges.selection_judge import decision_gaps

    gaps = decision_gaps(run)
    if not gaps:
        return {}
    measure = Measure(EFFECTS["selection_gap"][1])
    for row, gap in gaps:
        measure.add(row.arm or "none", (row.scenario, row.variant, row.bias, row.replicate,
                                        row.agent, row.point, row.phase, row.round),
                    gap, row.scenario)
    return {"selection_gap": measure}


def _decision_measures(rows: list[LabelledDecision]) -> dict[str, Measure]:
    """bias_first, bias_last, escalation, unparsed_rate and flip rates from labelled decisions."""
    measures = {name: Measure(EFFECTS[name][1]) for name in
                ("bias_first", "bias_last", "escalation", "unparsed_rate")}
    # The same agent's first and last score in one conversation, for escalation.
    scores: dict[tuple[str, Unit], dict[str, float]] = defaultdict(dict)
    for row in rows:
        arm, group = row.arm or "none", PHASE_GROUP[row.phase]
        unit = (row.scenario, row.variant, row.bias, row.replicate, row.agent)
        measures["unparsed_rate"].add(arm, (*unit, row.phase), float(row.value is None),
                                      row.scenario)
        if row.label is None:
            continue
        measures[f"bias_{group}"].add(arm, (*unit, row.phase), float(row.label.score),
                                      row.scenario)
        scores[(arm, unit)][group] = float(row.label.score)
    for (arm, unit), by_phase in scores.items():
        if "first" in by_phase and "last" in by_phase:
            measures["escalation"].add(arm, unit, by_phase["last"] - by_phase["first"], unit[0])

    # Flips: a variant decision against the base decision of the same unit in the same arm.
    base = {(r.arm, r.scenario, r.bias, r.replicate, r.agent, r.phase): r.value for r in rows
            if r.variant == BASE and r.value is not None}
    flips = {"flip_rate": Measure(True), "flip_rate_placebo": Measure(True)}
    for row in rows:
        partner = base.get((row.arm, row.scenario, row.bias, row.replicate, row.agent, row.phase))
        if row.variant == BASE or row.value is None or partner is None:
            continue
        name = "flip_rate_placebo" if row.placebo else "flip_rate"
        unit = (row.scenario, row.variant, row.bias, row.replicate, row.agent, row.phase)
        flips[name].add(row.arm or "none", unit, float(row.value != partner), row.scenario)
    measures.update({k: m for k, m in flips.items() if m.by_arm})
    return {k: m for k, m in measures.items() if m.by_arm}


def _consultation_measures(run: RunView) -> dict[str, Measure]:
    """accuracy and doctor turns per finished clinical consultation."""
    rows = consultation_rows(run)
    if not rows:
        return {}
    # consultation_rows does not carry the arm: read it from the conversation starts.
    arm_of = {e.conversation_id: e.arm or "none" for e in run.events("conversation_started")}
    accuracy, turns = Measure(True), Measure(False)
    for row in rows:
        arm = arm_of.get(row["conversation"], "none")
        unit = (row["scenario"], row["variant"], row["bias"], row["replicate"])
        accuracy.add(arm, unit, float(row["correct"]), row["scenario"])
        turns.add(arm, unit, float(row["turns"]), row["scenario"])
    return {"accuracy": accuracy, "turns": turns}


def _levels(measures: dict[str, Measure], arms: list[str]) -> dict[str, Estimate]:
    """The absolute level of every measure in every arm (no test: the deltas are the tests)."""
    levels: dict[str, Estimate] = {}
    for effect in sorted(measures, key=_ORDER.index):
        measure = measures[effect]
        for arm in arms:
            values = list(measure.by_arm.get(arm, {}).values())
            if not values:
                continue
            flags, clusters = [v for v, _ in values], [c for _, c in values]
            # Shares use Wilson with a single scenario, where a cluster bootstrap cannot run.
            levels[f"{effect}[arm={arm}]"] = (share([bool(f) for f in flags], clusters)
                                              if measure.binary
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
        row = [arm, effect_label(effect), fmt(est.value, signed), ci, str(est.n)]
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
