"""Demographic parity between two groups, from rows or from streamed per-cluster totals, with
cluster bootstrap intervals (see :mod:`agentsim.stats.inference`)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np

from agentsim.stats.clusters import cluster_order
from agentsim.stats.inference import CONFIDENCE, RESAMPLES, Estimate, _cluster_bootstrap

__all__ = ["add_parity_row", "demographic_parity", "parity_from_totals"]


def _rate_difference(sel_a, n_a, sel_b, n_b, axis: int = -1):
    return (np.sum(sel_b, axis=axis) / np.sum(n_b, axis=axis)
            - np.sum(sel_a, axis=axis) / np.sum(n_a, axis=axis))


def _rate_ratio(sel_a, n_a, sel_b, n_b, axis: int = -1):
    return ((np.sum(sel_b, axis=axis) / np.sum(n_b, axis=axis))
            / (np.sum(sel_a, axis=axis) / np.sum(n_a, axis=axis)))


def demographic_parity(
    selected: Sequence[bool],
    groups: Sequence[str],
    clusters: Sequence[Hashable],
    first: str,
    second: str,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[Estimate, Estimate]:
    """Demographic parity between two groups: ``(difference, ratio)`` of selection rates.

    Direction: ``first`` is the reference group. difference = rate[second] − rate[first]
    (negative when ``second`` is selected less often); ratio = rate[second] / rate[first]
    (below 1 when ``second`` is selected less often; the "four-fifths rule" flags < 0.8). A rate
    is the pooled share of selected rows of that group; rows of other groups are ignored. Each
    estimate has a bootstrap interval that resamples whole clusters and recomputes both rates
    (scipy.stats.bootstrap, BCa then percentile, seeded; both use the same resamples). ``n`` is
    the number of rows in the two groups, ``clusters`` the number of distinct clusters among
    them. A group without rows gives NaN for both; a zero rate in ``first`` gives a NaN ratio.
    Resamples that miss a group entirely make the interval NaN ("bootstrap failed").
    """
    if not (len(selected) == len(groups) == len(clusters)):
        raise ValueError("selected, groups and clusters must have the same length")
    table: dict[Hashable, list[float]] = {}
    for s, g, c in zip(selected, groups, clusters, strict=True):
        if g in (first, second):
            add_parity_row(table, bool(s), g == second, c)
    return parity_from_totals(table, first, second, confidence=confidence,
                              resamples=resamples, seed=seed)


def add_parity_row(table: dict[Hashable, list[float]], selected: bool, second: bool,
                   cluster: Hashable) -> None:
    """Count one row of :func:`demographic_parity` into per-cluster totals: [selected in the
    first group, rows of the first group, selected in the second, rows of the second]."""
    totals = table.setdefault(cluster, [0.0, 0.0, 0.0, 0.0])
    offset = 2 if second else 0
    totals[offset] += selected
    totals[offset + 1] += 1


def parity_from_totals(table: dict[Hashable, list[float]], first: str, second: str, *,
                       confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                       seed: int = 0) -> tuple[Estimate, Estimate]:
    """:func:`demographic_parity` from per-cluster totals (:func:`add_parity_row`)."""
    keys = cluster_order(list(table))
    totals = np.array([table[c] for c in keys], dtype=float).T.reshape(4, len(keys))
    n, k = int(totals[1].sum() + totals[3].sum()), len(keys)
    missing = [g for g, rows in ((first, totals[1].sum()), (second, totals[3].sum())) if not rows]
    if missing:
        nan = Estimate(math.nan, math.nan, math.nan, n, k,
                       method=f"no rows for group {missing[0]!r}")
        return nan, nan
    rate_a = totals[0].sum() / totals[1].sum()
    rate_b = totals[2].sum() / totals[3].sum()

    def estimate(value: float, statistic) -> Estimate:
        if k < 2:
            return Estimate(value, math.nan, math.nan, n, k, method="one cluster: no interval")
        low, high, method = _cluster_bootstrap(
            list(totals), statistic, confidence=confidence, resamples=resamples, seed=seed)
        return Estimate(value, low, high, n, k, method=method)

    difference = estimate(float(rate_b - rate_a), _rate_difference)
    if rate_a == 0:
        ratio = Estimate(math.nan, math.nan, math.nan, n, k,
                         method=f"zero selection rate in {first!r}: ratio undefined")
    else:
        ratio = estimate(float(rate_b / rate_a), _rate_ratio)
    return difference, ratio
