"""Clusters as the unit of every interval and test: their totals in a stable order, and the
paired sign-flip permutation test on them.

Judges read the log in completion order, which changes with ``--concurrency`` and with how fast
each conversation ran. A resampling with a fixed seed draws different clusters when the same
clusters come in another order, and a float sum depends on the order of its terms; so every
statistic that resamples first puts clusters in :func:`cluster_order` and sums with
:func:`math.fsum` (exactly rounded, hence order-free). The same seed and options then give the
same numbers whatever order the conversations finished in.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np
from scipy import stats

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
    result = stats.permutation_test(
        (data,), _total, permutation_type="samples", vectorized=True,
        n_resamples=np.inf if exact else resamples, alternative="two-sided",
        random_state=np.random.default_rng(seed))
    how = "exact" if exact else f"Monte Carlo, {resamples} draws"
    return min(1.0, float(result.pvalue)), f"sign-flip over {k} clusters, {how}"
