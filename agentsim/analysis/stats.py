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
    values: Sequence[float], clusters: Sequence[Hashable]
) -> tuple[np.ndarray, np.ndarray]:
    sums: dict[Hashable, float] = {}
    counts: dict[Hashable, int] = {}
    for value, cluster in zip(values, clusters, strict=True):
        sums[cluster] = sums.get(cluster, 0.0) + float(value)
        counts[cluster] = counts.get(cluster, 0) + 1
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
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 0, method="no data")
    sums, counts = _cluster_totals(values, clusters)
    value = float(sums.sum() / counts.sum())
    k = len(sums)
    if k < 2:
        return Estimate(value, math.nan, math.nan, n, k, method="one cluster: no interval")
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
