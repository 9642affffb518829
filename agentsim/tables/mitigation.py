"""Layout ``mitigation``: each mitigation arm against the control arm, measure by measure.

Per model (and setting, when a run has several): for every paired measure (bias first and
last, escalation, flip rates, accuracy, ...) the level of each arm and, for every arm but the
control, the paired delta (arm − control over units matched by scenario, variant, bias and
replicate) with its 95 % interval (a bootstrap of whole scenarios), its number of pairs and its
sign-flip p-value, Holm-corrected over the deltas of the model.

A run of one model and one setting that has its ``comparison.json`` is read from it (the
numbers ``agentsim compare`` printed); otherwise the deltas are computed from the log, the
same way as :func:`agentsim.analysis.compare.compare_design`, within each model and setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentsim.analysis.compare import collect_measures, measure_labels, split_name
from agentsim.core.log_stream import FACTORS
from agentsim.errors import InputError
from agentsim.stats.inference import (
    Estimate,
    adjust_pvalues,
    clustered_mean,
    paired_difference,
    share,
)
from agentsim.tables.runs import RunInput
from agentsim.tables.table import Column, Table, estimate_fields


def control_arm(run: RunInput, arms: list[str]) -> str:
    """The run's control arm: its comparison's, its study's, else 'none' or its first arm."""
    recorded = (run.comparison or {}).get("controls", {}).get("arm")
    study = (((run.manifest.get("study") or {}).get("data") or {}).get("controls") or {})
    for candidate in (recorded, study.get("arm"), "none"):
        if candidate in arms:
            return candidate
    return arms[0]


def group_comparison(measures: dict[str, Any], control: str, arms: list[str],
                     where: dict[str, str]) -> dict[str, Estimate]:
    """``delta_<m>[A]`` and ``<m>[arm=A]`` of the cells matching ``where`` (model, setting),
    as compare_design names them; the deltas' p-values Holm-corrected as one family."""
    deltas: dict[str, Estimate] = {}
    levels: dict[str, Estimate] = {}
    for name, measure in measures.items():
        found = measure.by_level("arm", where)
        reference = found.get(control, {})
        for arm in arms:
            values = found.get(arm, {})
            if values:
                flags, clusters = [v for v, _ in values.values()], [c for _, c in values.values()]
                levels[f"{name}[arm={arm}]"] = (share(flags, clusters) if measure.spec.binary
                                                else clustered_mean(flags, clusters))
            common = [u for u in reference if u in values]
            if arm != control and common and measure.spec.tested:
                deltas[f"delta_{name}[{arm}]"] = paired_difference(
                    [reference[u][0] for u in common], [values[u][0] for u in common],
                    [reference[u][1] for u in common])
    return {**adjust_pvalues(deltas, method="holm"), **levels}


def run_groups(run: RunInput) -> list[tuple[str, str, dict[str, Any]]]:
    """(model, setting, metrics by compare_design's names) of each model and setting."""
    cells = run.cells()
    arms = list(dict.fromkeys(cell[2] for cell in cells))
    if len(arms) < 2:
        raise InputError(f"one arm only ({arms[0]}); the mitigation layout compares arms "
                         "(a run of agentsim compare --arms none,A,...)", source=str(run.path))
    groups = list(dict.fromkeys(cell[:2] for cell in cells))
    control = control_arm(run, arms)
    comparison = run.comparison or {}
    if len(groups) == 1 and (comparison.get("controls") or {}).get("arm") == control:
        return [(*groups[0], comparison.get("metrics") or {})]
    from agentsim.core.reader import RunView

    options = (run.results or {}).get("judge_options") or {}
    measures, _ = collect_measures(RunView(run.store), options)
    return [(model, setting, group_comparison(
        measures, control, arms, {FACTORS[0]: model, FACTORS[1]: setting}))
        for model, setting in groups]


def mitigation_rows(run: RunInput) -> list[dict[str, Any]]:
    """The rows of one run: model, setting, measure, arm, level and delta."""
    arms = list(dict.fromkeys(cell[2] for cell in run.cells()))
    control = control_arm(run, arms)
    labels = measure_labels()
    rows = []
    for model, setting, metrics in run_groups(run):
        # an arm's delta or level only: split_name leaves '=' in other factors' brackets
        named = [split_name(name) for name in metrics]
        measures = list(dict.fromkeys(effect.removeprefix("delta_") for effect, arm in named
                                      if arm and "=" not in arm and "|" not in arm))
        for measure in measures:
            for arm in [control, *(a for a in arms if a != control)]:
                level = metrics.get(f"{measure}[arm={arm}]")
                delta = metrics.get(f"delta_{measure}[{arm}]")
                if level is None and delta is None:
                    continue
                rows.append({"model": run.label(model), "setting": setting, "measure": measure,
                             "what": labels.get(measure, measure.replace("_", " ")),
                             "arm": arm, "control": control,
                             **estimate_fields("level", level), **estimate_fields("delta", delta)})
    return rows


def mitigation_table(runs: Sequence[RunInput]) -> Table:
    """The table over ``runs`` (already checked to share one design)."""
    rows = [row for run in runs for row in mitigation_rows(run)]
    if not rows:
        names = ", ".join(str(run.path) for run in runs)
        raise InputError("no paired measures to compare (were the runs judged?)",
                         source=names)
    settings = {row["setting"] for row in rows}
    columns = [Column("model", "model")]
    columns += [Column("setting", "setting")] if len(settings) > 1 else []
    columns += [Column("measure", "measure", shown=False), Column("what", "measure"),
                Column("arm", "arm"), Column("control", "control", shown=False),
                Column("level", "level [95% CI]", "number", "level_ci_low", "level_ci_high"),
                Column("level_n", "n", "count"),
                Column("delta", "Δ vs control [95% CI]", "signed", "delta_ci_low",
                       "delta_ci_high"),
                Column("delta_n", "pairs", "count"), Column("delta_p", "p (Holm)", "p")]
    notes = [("Δ = arm − control arm over units matched by scenario, variant, bias and "
             "replicate (paired); 95% intervals bootstrap whole scenarios; p: sign-flip test "
             "over scenarios, Holm-corrected over the deltas of each model"),
             "levels of yes/no measures (rates) are fractions 0–1"]
    return Table("mitigation", "Mitigations against the control arm", columns, rows, notes,
                 sections=("model", "setting"), runs=[str(run.path) for run in runs])
