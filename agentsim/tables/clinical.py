"""Layout ``agentclinic-bias``: AgentClinic (Schmidgall et al. 2024) — accuracy under each bias.

Per model (and arm, when the runs have several): the unbiased accuracy, then each injected bias
grouped by who carries it (doctor, patient) and its kind (cognitive, implicit), as the run's bias
catalogue says, with

* ``accuracy`` — the share of its consultations whose diagnosis was right (the moderator's
  verdict, as the ``clinical`` judge counts it), Wilson interval;
* ``normalised`` — normalised accuracy: accuracy under the bias over accuracy without it **on
  the same cases** (scenario, variant, replicate), i.e. Σ right under the bias / Σ right
  without it over those pairs — a ratio of means, defined whenever some unbiased consultation
  of the pairs was right, never a mean of per-pair ratios — with a bootstrap interval that
  resamples whole cases;

and, after each group, its average: the group's consultations pooled (accuracy clustered by
case; normalised accuracy as the ratio over every pair of the group's biases).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from agentsim.errors import InputError
from agentsim.stats.clusters import ClusterTotals
from agentsim.stats.inference import RESAMPLES, Estimate, clustered_mean, totals_ratio, wilson
from agentsim.tables.runs import RunInput
from agentsim.tables.table import Column, Table, estimate_fields

UNBIASED = "none"
ROLE_ORDER = {"doctor": 0, "patient": 1}
KIND_ORDER = {"cognitive": 0, "implicit": 1}


def ratio_of_means(numerators: Sequence[float], denominators: Sequence[float],
                   clusters: Sequence[Any], *, seed: int = 0) -> Estimate:
    """Σ numerators / Σ denominators with an interval that resamples whole clusters.

    The BCa bootstrap of :func:`~agentsim.stats.inference.totals_ratio` when every cluster has
    a denominator (the ``clinical`` judge's own number, exactly); when some cluster's is zero
    (every unbiased consultation of a case was wrong) a percentile bootstrap over clusters,
    leaving out the rare resamples whose denominator is zero.
    """
    totals = ClusterTotals.of(numerators, clusters, denominators)
    estimate = totals_ratio(totals, seed=seed)
    if estimate.method != "a cluster has no denominator":
        return estimate
    sums, counts = totals.totals()
    value, k = estimate.value, len(sums)
    if np.allclose(sums, value * counts):
        return Estimate(value, value, value, estimate.n, k, method="all clusters equal")
    draws = np.random.default_rng(seed).integers(0, k, size=(RESAMPLES, k))
    top, bottom = sums[draws].sum(axis=1), counts[draws].sum(axis=1)
    kept = bottom > 0
    ratios = top[kept] / bottom[kept]
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Estimate(value, min(float(low), value), max(float(high), value), estimate.n, k,
                    method=f"cluster bootstrap (percentile; {int((~kept).sum())} of "
                    f"{RESAMPLES} resamples without a denominator left out)")


def bias_groups(run: RunInput) -> dict[str, tuple[str, str]]:
    """role:name → (role, kind) of every entry of the run's bias catalogue (the manifest's copy,
    else the shipped catalogue)."""
    catalogue = run.manifest.get("bias_catalogue")
    if not isinstance(catalogue, dict):
        from agentsim.runs.planning import DEFAULT_CATALOGUE
        from agentsim.scenario.biases import load_catalogue

        path = (run.manifest.get("options") or {}).get("bias_catalogue") or DEFAULT_CATALOGUE
        catalogue = load_catalogue(path).model_dump()
    return {f"{e['role']}:{e['name']}": (e["role"], e["kind"])
            for e in catalogue.get("biases") or ()}


def group_of(bias: str, known: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """(role, kind) of a bias condition; a combination ``a+b`` joins its parts' roles and
    kinds ('doctor+patient', 'cognitive+implicit') where they differ."""
    parts = [known.get(p, (p.partition(":")[0], "unknown")) for p in bias.split("+")]
    roles = "+".join(dict.fromkeys(role for role, _ in parts))
    kinds = "+".join(dict.fromkeys(kind for _, kind in parts))
    return roles, kinds


def _pairs(rows: list[dict[str, Any]], biases: Sequence[str]) -> list[tuple[dict, dict]]:
    """(biased, unbiased) consultations of the same case, variant, replicate and cell."""
    def key(r: dict[str, Any]) -> tuple:
        return r["scenario"], r["variant"], r["replicate"], r["cell"]

    base = {key(r): r for r in rows if r["bias"] == UNBIASED}
    return [(r, base[key(r)]) for r in rows if r["bias"] in biases and key(r) in base]


def _row(rows: list[dict[str, Any]], biases: Sequence[str], pooled: bool) -> dict[str, Any]:
    chosen = [r for r in rows if r["bias"] in biases]
    correct = [float(r["correct"]) for r in chosen]
    accuracy = (clustered_mean(correct, [r["scenario"] for r in chosen]) if pooled
                else wilson(int(sum(correct)), len(correct)))
    out = estimate_fields("accuracy", accuracy)
    if biases != [UNBIASED]:
        pairs = _pairs(rows, biases)
        ratio = ratio_of_means([float(b["correct"]) for b, _ in pairs],
                               [float(u["correct"]) for _, u in pairs],
                               [b["scenario"] for b, _ in pairs]) if pairs else None
        fields = estimate_fields("normalised", ratio)
        out |= {k: fields[k] for k in ("normalised", "normalised_ci_low", "normalised_ci_high")}
        out["pairs"] = len(pairs)
    return {**out, "n": len(chosen)}


def group_rows(rows: list[dict[str, Any]], known: dict[str, tuple[str, str]]
               ) -> list[dict[str, Any]]:
    """The rows of one model: unbiased, then each group's biases and its average."""
    out = [{"role": None, "kind": None, "bias": UNBIASED, **_row(rows, [UNBIASED], False)}]
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for bias in sorted({r["bias"] for r in rows} - {UNBIASED}):
        groups[group_of(bias, known)].append(bias)
    order = sorted(groups, key=lambda g: (ROLE_ORDER.get(g[0], 9), g[0],
                                          KIND_ORDER.get(g[1], 9), g[1]))
    for role, kind in order:
        names = groups[(role, kind)]
        out += [{"role": role, "kind": kind, "bias": name.split(":", 1)[-1]
                 if "+" not in name else name, **_row(rows, [name], False)} for name in names]
        out.append({"role": role, "kind": kind, "bias": "average",
                    **_row(rows, names, True)})
    return out


def clinical_table(runs: Sequence[RunInput]) -> Table:
    """The table over ``runs`` (already checked to share one design)."""
    from agentsim.core.reader import RunView
    from agentsim.judges.clinical_judge import consultation_rows

    arms = list(dict.fromkeys(cell[2] for run in runs for cell in run.cells()))
    rows: list[dict[str, Any]] = []
    for run in runs:
        consultations = consultation_rows(RunView(run.store))
        known = bias_groups(run)
        by_cell: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for row in consultations:
            by_cell[(row["cell"][0], row["cell"][2])].append(row)
        for (model, arm), chosen in by_cell.items():
            if not any(r["bias"] == UNBIASED for r in chosen):
                continue
            rows += [{"model": run.label(model), "arm": arm, **row}
                     for row in group_rows(chosen, known)]
    if not any("normalised" in row for row in rows):
        names = ", ".join(str(run.path) for run in runs)
        raise InputError("no consultations both with and without an injected bias, "
                         "which the agentclinic-bias layout compares (a clinical run with "
                         "--bias ROLE:NAME)", source=names)
    columns = [Column("model", "model")]
    columns += [Column("arm", "arm")] if len(arms) > 1 else []
    columns += [Column("role", "carried by"), Column("kind", "kind"), Column("bias", "bias"),
                Column("accuracy", "% accuracy [95% CI]", "share", "accuracy_ci_low",
                       "accuracy_ci_high"), Column("n", "n", "count"),
                Column("normalised", "normalised accuracy [95% CI]", "number",
                       "normalised_ci_low", "normalised_ci_high"),
                Column("pairs", "pairs", "count")]
    notes = [("accuracy: the moderator's verdict (the clinical judge's 'accuracy'); Wilson "
             "intervals per bias, a bootstrap over cases for the averages"),
             ("normalised accuracy = accuracy under the bias / accuracy without it on the same "
             "cases (Σ right biased / Σ right unbiased over the pairs); 95% intervals "
             "bootstrap whole cases"),
             "average: the group's biases pooled (every pair of the group's biases)"]
    return Table("agentclinic-bias", "Diagnostic accuracy under injected biases (AgentClinic, "
                 "Schmidgall et al. 2024)", columns, rows, notes, sections=("model",),
                 runs=[str(run.path) for run in runs])
