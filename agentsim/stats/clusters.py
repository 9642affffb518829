"""Clusters as the unit of every interval and test: their totals in a stable order, and the
paired sign-flip permutation test on them.

Judges read the log in completion order, which changes with ``--concurrency`` and with how fast
each conversation ran. A resampling with a fixed seed draws different clusters when the same
clusters come in another order, and a float sum depends on the order of its terms; so every
statistic that resamples first puts clusters in :func:`cluster_order` and sums with
:func:`math.fsum` (exactly rounded, hence order-free). The same seed and options then give the
same numbers whatever order the conversations finished in.

Judges read a run in one streaming pass and keep, per metric, only :class:`ClusterTotals`:
each cluster's exactly rounded sums (:class:`ExactSum`, Shewchuk's partials: the sum
``math.fsum`` of every term would give, in memory that does not grow with the terms). Memory
then grows with the clusters (scenarios), not with the decisions, and the numbers equal those
computed from every decision kept.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np

# Up to 2**EXACT_CLUSTERS sign patterns are enumerated (exact p); beyond, MONTE_CARLO seeded draws.
EXACT_CLUSTERS = 12
MONTE_CARLO = 9999


def cluster_key(cluster: Hashable) -> tuple[str, str]:
    """A total order on cluster labels of any type (str, int, tuple, None), stable across
    processes (never a hash, which Python salts per process for strings)."""
    return type(cluster).__name__, repr(cluster)


def cluster_order(clusters: Sequence[Hashable]) -> list[Hashable]:
    """The distinct clusters, sorted by :func:`cluster_key` (not in order of appearance)."""
    return sorted(set(clusters), key=cluster_key)


def cluster_totals(
    values: Sequence[float], clusters: Sequence[Hashable],
    weights: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(Σ values, Σ weights) per cluster, clusters in :func:`cluster_order`, each sum exactly
    rounded so that neither the order of clusters nor that of rows changes a bit."""
    weights = weights if weights is not None else [1.0] * len(values)
    members: dict[Hashable, tuple[list[float], list[float]]] = {}
    for value, weight, cluster in zip(values, weights, clusters, strict=True):
        terms, counts = members.setdefault(cluster, ([], []))
        terms.append(float(value))
        counts.append(float(weight))
    keys = cluster_order(list(members))
    return (np.array([math.fsum(members[k][0]) for k in keys], dtype=float),
            np.array([math.fsum(members[k][1]) for k in keys], dtype=float))


class ExactSum:
    """A running float sum that is exactly rounded: its :attr:`value` equals ``math.fsum`` of
    every term added, whatever their order (whole terms in an integer, the others in
    Shewchuk's non-overlapping partials)."""

    __slots__ = ("partials", "whole")

    def __init__(self) -> None:
        self.partials: list[float] = []
        self.whole = 0  # the sum of the terms that are whole numbers, exactly

    def add(self, term: float) -> None:
        """Add one term."""
        x = float(term)
        if x.is_integer():  # most terms (scores, indicators, counts): exact and fast
            self.whole += int(x)
            return
        kept = 0
        partials = self.partials
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                partials[kept] = low
                kept += 1
            x = high
        partials[kept:] = [x]

    @property
    def value(self) -> float:
        """The exactly rounded sum of the terms."""
        if not self.partials:
            return float(self.whole)
        # fsum of an exact integer beyond 2**53 would round it first: split it exactly.
        whole, parts = self.whole, []
        while whole:
            part = float(whole)
            parts.append(part)
            whole -= int(part)
        return math.fsum([*self.partials, *parts])


class ClusterTotals:
    """Per-cluster sums of values and of weights (1 each unless given) and the number of rows:
    what every clustered estimate needs, kept as the rows stream by."""

    __slots__ = ("_sums", "n", "nonzero")

    def __init__(self) -> None:
        self._sums: dict[Hashable, tuple[ExactSum, ExactSum]] = {}
        self.n = 0  # rows added
        self.nonzero = 0  # rows whose value is not 0

    def add(self, value: float, cluster: Hashable, weight: float = 1.0) -> None:
        """Add one row: ``value`` (with ``weight``) in ``cluster``."""
        sums = self._sums.get(cluster)
        if sums is None:
            sums = self._sums[cluster] = (ExactSum(), ExactSum())
        sums[0].add(value)
        sums[1].add(weight)
        self.n += 1
        self.nonzero += value != 0

    def add_rows(self, total: int, cluster: Hashable, rows: int, nonzero: int) -> None:
        """Add ``rows`` rows of weight 1 whose whole-number values sum to ``total`` (``nonzero``
        of them not 0): counts kept per cluster by a caller, folded in at once."""
        sums = self._sums.get(cluster)
        if sums is None:
            sums = self._sums[cluster] = (ExactSum(), ExactSum())
        sums[0].whole += total
        sums[1].whole += rows
        self.n += rows
        self.nonzero += nonzero

    def __len__(self) -> int:
        return self.n

    @property
    def clusters(self) -> list[Hashable]:
        """The clusters seen, in :func:`cluster_order`."""
        return cluster_order(list(self._sums))

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        """(Σ values, Σ weights) per cluster, in :func:`cluster_order` (as
        :func:`cluster_totals` gives them for the same rows)."""
        keys = self.clusters
        return (np.array([self._sums[k][0].value for k in keys], dtype=float),
                np.array([self._sums[k][1].value for k in keys], dtype=float))

    @classmethod
    def of(cls, values: Sequence[float], clusters: Sequence[Hashable],
           weights: Sequence[float] | None = None) -> ClusterTotals:
        """The totals of given rows."""
        totals = cls()
        weights = weights if weights is not None else [1.0] * len(values)
        for value, weight, cluster in zip(values, weights, clusters, strict=True):
            totals.add(value, cluster, weight)
        return totals


def _total(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.sum(x, axis=axis)


def sign_flip_test(totals: Sequence[float], *, seed: int = 0,
                   exact_clusters: int = EXACT_CLUSTERS,
                   resamples: int = MONTE_CARLO) -> tuple[float, str]:
    """Two-sided p-value of "the paired differences are symmetric about 0", flipping the sign
    of whole clusters: ``totals`` holds one total (or mean) of paired differences per cluster,
    the statistic is their sum, and under the null each cluster's sign is + or − at random
    (scipy.stats.permutation_test, one sample, ``permutation_type="samples"``).

    The unit is the cluster, as in the cluster bootstrap of the interval, so the pairs of one
    scenario never count as independent evidence. With k clusters the smallest p is 2 / 2**k.
    Every pattern is enumerated when k ≤ ``exact_clusters`` or 2**k ≤ ``resamples`` (method
    "exact"); otherwise ``resamples`` patterns are drawn from a generator seeded with ``seed``
    ("Monte Carlo").
    Returns (p, a short description for an Estimate's method)."""
    data = np.asarray(totals, dtype=float)
    k = len(data)
    if k < 2:
        raise ValueError("the sign-flip test needs two clusters or more")
    exact = k <= exact_clusters or 2**k <= resamples  # scipy enumerates when it can afford to
    from scipy import stats  # lazy: scipy costs ~1 s to import
    result = stats.permutation_test(
        (data,), _total, permutation_type="samples", vectorized=True,
        n_resamples=np.inf if exact else resamples, alternative="two-sided",
        random_state=np.random.default_rng(seed))
    how = "exact" if exact else f"Monte Carlo, {resamples} draws"
    return min(1.0, float(result.pvalue)), f"sign-flip over {k} clusters, {how}"
