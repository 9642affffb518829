"""Statistics shared by every judge and report: estimates with clustered bootstrap intervals.

Decisions in one scenario are not independent (same personas, same tasks, often the same
conversation), so intervals resample the highest independent unit — the cluster, by default the
scenario — and recompute the pooled mean (a ratio of cluster sums to cluster counts). The
resampling is scipy.stats.bootstrap's (BCa, falling back to percentile when BCa is undefined).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    """A metric with its interval: ``value`` in [``ci_low``, ``ci_high``] from ``n`` units in
    ``clusters`` clusters; ``p`` where a test applies; ``method`` says how the interval was made."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    clusters: int
    method: str = "cluster bootstrap (BCa)"
    p: float | None = None

    def as_dict(self) -> dict[str, float | int | str | None]:
        """JSON-ready dict; NaN becomes None."""
        return {
            key: (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in asdict(self).items()
        }


def _cluster_totals(
    values: Sequence[float], clusters: Sequence[Hashable],
    weights: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    sums: dict[Hashable, float] = {}
    counts: dict[Hashable, float] = {}
    weights = weights if weights is not None else [1.0] * len(values)
    for value, weight, cluster in zip(values, weights, clusters, strict=True):
        sums[cluster] = sums.get(cluster, 0.0) + float(value)
        counts[cluster] = counts.get(cluster, 0.0) + float(weight)
    keys = list(sums)
    return np.array([sums[k] for k in keys]), np.array([counts[k] for k in keys], dtype=float)


def _ratio(sums: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.sum(sums, axis=axis) / np.sum(counts, axis=axis)


def clustered_mean(
    values: Sequence[float],
    clusters: Sequence[Hashable],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Mean of ``values`` with a bootstrap interval that resamples whole clusters."""
    return clustered_ratio(values, [1.0] * len(values), clusters, confidence=confidence,
                           resamples=resamples, seed=seed)


def clustered_ratio(
    numerators: Sequence[float],
    denominators: Sequence[float],
    clusters: Sequence[Hashable],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Σ numerators / Σ denominators with a bootstrap interval that resamples whole clusters
    (a mean when every denominator is 1; e.g. accuracy under a bias over accuracy without it)."""
    n = len(numerators)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 0, method="no data")
    sums, counts = _cluster_totals(numerators, clusters, denominators)
    if counts.sum() == 0:
        return Estimate(math.nan, math.nan, math.nan, n, len(sums), method="zero denominator")
    value = float(sums.sum() / counts.sum())
    k = len(sums)
    if k < 2:
        return Estimate(value, math.nan, math.nan, n, k, method="one cluster: no interval")
    if np.any(counts == 0):
        return Estimate(value, math.nan, math.nan, n, k, method="a cluster has no denominator")
    if np.allclose(sums / counts, sums[0] / counts[0]):
        return Estimate(value, value, value, n, k, method="all clusters equal")
    rng = np.random.default_rng(seed)
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap(
                (sums, counts), _ratio, paired=True, vectorized=True, n_resamples=resamples,
                confidence_level=confidence, method=method, random_state=rng,
            )
        low, high = result.confidence_interval
        if not (math.isnan(low) or math.isnan(high)):
            return Estimate(value, float(low), float(high), n, k,
                            method=f"cluster bootstrap ({method})")
    return Estimate(value, math.nan, math.nan, n, k, method="bootstrap failed")


def wilson(successes: int, n: int, *, confidence: float = CONFIDENCE) -> Estimate:
    """A proportion with its Wilson score interval (statsmodels), treating trials as
    independent."""
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 0, method="no data")
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    return Estimate(successes / n, float(low), float(high), n, n, method="Wilson")


def paired_difference(
    first: Sequence[float],
    second: Sequence[float],
    clusters: Sequence[Hashable],
    *,
    binary: bool = False,
    seed: int = 0,
) -> Estimate:
    """Mean of ``second - first`` over matched pairs, with a cluster bootstrap interval and a
    p-value: McNemar's exact test for binary outcomes, otherwise a paired (sign-flip)
    permutation test."""
    diffs = [b - a for a, b in zip(first, second, strict=True)]
    estimate = clustered_mean(diffs, clusters, seed=seed)
    if not diffs:
        return estimate
    if binary:
        from statsmodels.stats.contingency_tables import mcnemar

        only_first = sum(1 for a, b in zip(first, second, strict=True) if a and not b)
        only_second = sum(1 for a, b in zip(first, second, strict=True) if b and not a)
        both = sum(1 for a, b in zip(first, second, strict=True) if a and b)
        neither = len(diffs) - only_first - only_second - both
        p = float(mcnemar([[both, only_first], [only_second, neither]], exact=True).pvalue)
        method = estimate.method + "; McNemar exact"
    elif all(d == 0 for d in diffs):
        p, method = 1.0, estimate.method + "; no differences"
    else:
        result = stats.permutation_test(
            (np.asarray(diffs, dtype=float),), np.mean, permutation_type="samples",
            n_resamples=RESAMPLES, random_state=np.random.default_rng(seed),
        )
        p, method = float(result.pvalue), estimate.method + "; paired permutation"
    return Estimate(estimate.value, estimate.ci_low, estimate.ci_high, estimate.n,
                    estimate.clusters, method=method, p=p)
