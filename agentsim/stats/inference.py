"""Statistics shared by every judge and report: estimates with clustered bootstrap intervals.

Decisions in one scenario are not independent (same personas, same tasks, often the same
conversation), so intervals resample the highest independent unit — the cluster, by default the
scenario — and recompute the pooled mean (a ratio of cluster sums to cluster counts). The
resampling is scipy.stats.bootstrap's (BCa, falling back to percentile when BCa is undefined).
Clusters enter every resampling in a stable order (:mod:`agentsim.stats.clusters`), so results
do not depend on the order of the log, and paired tests flip the signs of whole clusters.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from agentsim.stats.clusters import ClusterTotals, sign_flip_test

CONFIDENCE = 0.95
RESAMPLES = 2000


ROUNDING = 1e-9  # relative disagreement of two floating-point routes to one number


@dataclass(frozen=True)
class Estimate:
    """A metric with its interval: ``value`` in [``ci_low``, ``ci_high``] from ``n`` units in
    ``clusters`` clusters; ``p`` where a test applies; ``method`` says how the interval was made.
    After a multiple-comparison correction (:func:`adjust_pvalues`) ``p`` is the corrected value
    and ``p_raw`` the uncorrected one; otherwise ``p_raw`` is None."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    clusters: int
    method: str = "cluster bootstrap (BCa)"
    p: float | None = None
    p_raw: float | None = None  # the uncorrected p once adjust_pvalues has replaced ``p``

    def __post_init__(self) -> None:
        # An estimate and its interval computed by different routes (a closed-form point, a
        # bootstrap or a score interval) can disagree in the last bits: 0 successes giving a
        # lower bound of 1e-17. Within rounding, the interval is widened to hold its estimate.
        for bound, outside in (("ci_low", self.ci_low > self.value),
                               ("ci_high", self.ci_high < self.value)):
            gap = abs(getattr(self, bound) - self.value)
            if outside and gap <= ROUNDING * max(1.0, abs(self.value)):
                object.__setattr__(self, bound, self.value)

    def as_dict(self) -> dict[str, float | int | str | None]:
        """JSON-ready dict; NaN becomes None."""
        return {
            key: (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in asdict(self).items()
        }


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
    return totals_ratio(ClusterTotals.of(numerators, clusters, denominators),
                        confidence=confidence, resamples=resamples, seed=seed)


def totals_ratio(totals: ClusterTotals, *, confidence: float = CONFIDENCE,
                 resamples: int = RESAMPLES, seed: int = 0) -> Estimate:
    """Σ values / Σ weights of streamed rows (:class:`ClusterTotals`) with a bootstrap interval
    that resamples whole clusters: :func:`clustered_ratio` of the same rows, exactly."""
    n = totals.n
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 0, method="no data")
    sums, counts = totals.totals()
    if counts.sum() == 0:
        return Estimate(math.nan, math.nan, math.nan, n, len(sums), method="zero denominator")
    value = math.fsum(sums) / math.fsum(counts)
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
            from scipy import stats  # lazy: scipy costs ~1 s to import
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
    """A proportion with its Wilson score interval, treating trials as independent: the
    formula of statsmodels' ``proportion_confint(method="wilson")``, term for term (a test
    holds them equal), without the half second that importing statsmodels costs."""
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 0, method="no data")
    from scipy.special import ndtri  # what scipy's norm.isf computes; scipy.stats is not needed

    crit = -float(ndtri((1 - confidence) / 2.0))
    crit2 = crit**2
    share_ = successes / n
    denom = 1 + crit2 / n
    center = (share_ + crit2 / (2 * n)) / denom
    dist = crit * math.sqrt(share_ * (1.0 - share_) / n + crit2 / (4.0 * n**2)) / denom
    low, high = min(max(center - dist, 0.0), 1.0), min(max(center + dist, 0.0), 1.0)
    return Estimate(share_, low, high, n, n, method="Wilson")


def share(flags: Sequence[bool], clusters: Sequence[Hashable]) -> Estimate:
    """A proportion: clustered by scenario when there are two or more, else Wilson."""
    if len(set(clusters)) >= 2:
        return clustered_mean([float(f) for f in flags], clusters)
    return wilson(sum(bool(f) for f in flags), len(flags))


def paired_difference(
    first: Sequence[float],
    second: Sequence[float],
    clusters: Sequence[Hashable],
    *,
    seed: int = 0,
) -> Estimate:
    """Mean of ``second - first`` over matched pairs, with a cluster bootstrap interval and a
    p-value from a paired permutation test that flips the sign of each cluster's total
    difference (:func:`sign_flip_test`) — for yes/no outcomes too — so that the test and the
    interval share their unit: the cluster. Fewer than two clusters give no p (one cluster's
    sign alone is no test); no difference at all gives p = 1."""
    diffs = [b - a for a, b in zip(first, second, strict=True)]
    return totals_paired(ClusterTotals.of(diffs, clusters), seed=seed)


def totals_paired(differences: ClusterTotals, *, seed: int = 0) -> Estimate:
    """:func:`paired_difference` from the streamed paired differences' cluster totals: the
    interval and the sign-flip test both run on the clusters' totals, never on the pairs."""
    estimate = totals_ratio(differences, seed=seed)
    if not differences.n:
        return estimate
    if differences.nonzero == 0:
        p, method = 1.0, estimate.method + "; no differences"
    elif estimate.clusters < 2:
        return estimate
    else:
        # Cluster sums: flipping them reproduces the pooled mean's null distribution.
        p, how = sign_flip_test(differences.totals()[0], seed=seed)
        method = f"{estimate.method}; paired permutation ({how})"
    return Estimate(estimate.value, estimate.ci_low, estimate.ci_high, estimate.n,
                    estimate.clusters, method=method, p=p)


# -- multiple comparisons, decision bias, trends, parity ----------------------------------------

_CORRECTIONS = {"holm": ("holm", "Holm"), "bh": ("fdr_bh", "BH"), "fdr_bh": ("fdr_bh", "BH")}


def adjust_pvalues(estimates: dict[str, Estimate], method: str = "holm") -> dict[str, Estimate]:
    """Correct the p-values of a family of estimates for multiple comparisons.

    ``method`` is ``"holm"`` (Holm–Bonferroni, controls the family-wise error rate) or ``"bh"``
    (Benjamini–Hochberg, controls the false discovery rate; ``"fdr_bh"`` is accepted too); the
    correction is that of statsmodels' ``multipletests``, step for step (a test holds them
    equal; :func:`corrected_pvalues`). The family is every estimate whose ``p`` is a
    number (not None, not NaN); k is its size. Returns a new dict in the same order: each
    estimate in the family gets the corrected ``p``, the uncorrected one in ``p_raw`` and
    ``"; Holm-corrected over k tests"`` / ``"; BH-corrected over k tests"`` appended to
    ``method``; the others are returned unchanged. Raises ValueError for an unknown method or an
    estimate that has already been corrected (``p_raw`` set), so a family is never corrected
    twice.
    """
    from dataclasses import replace

    if method not in _CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; use 'holm' or 'bh'")
    sm_method, label = _CORRECTIONS[method]
    family = [key for key, est in estimates.items()
              if est.p is not None and not math.isnan(est.p)]
    for key in family:
        if estimates[key].p_raw is not None:
            raise ValueError(f"estimate {key!r} already has a corrected p (p_raw is set)")
    adjusted = dict(estimates)
    if not family:
        return adjusted
    raw = [float(estimates[key].p) for key in family]
    corrected = corrected_pvalues(raw, sm_method)
    suffix = f"; {label}-corrected over {len(family)} tests"
    for key, p_raw, p in zip(family, raw, corrected, strict=True):
        est = estimates[key]
        adjusted[key] = replace(est, p=float(p), p_raw=p_raw, method=est.method + suffix)
    return adjusted


def corrected_pvalues(raw: Sequence[float], method: str) -> list[float]:
    """Holm (``"holm"``) or Benjamini–Hochberg (``"fdr_bh"``) adjusted p-values, in the order
    given: statsmodels' ``multipletests`` steps, without importing statsmodels."""
    pvals = np.asarray(raw, dtype=float)
    order = np.argsort(pvals)
    ranked = pvals[order]
    m = len(ranked)
    if method == "holm":
        adjusted = np.maximum.accumulate(ranked * np.arange(m, 0, -1))
    elif method == "fdr_bh":
        adjusted = np.minimum.accumulate((ranked / (np.arange(1, m + 1) / m))[::-1])[::-1]
    else:
        raise ValueError(f"unknown correction {method!r}")
    adjusted = np.minimum(adjusted, 1.0)
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return [float(p) for p in out]


def relative_decision_bias(consistent: int, inconsistent: int, refusals: int = 0) -> Estimate:
    """Two-candidate relative decision bias (after Bai et al. 2024, "Measuring implicit bias in
    explicitly unbiased large language models", arXiv:2402.04105): the share of
    stereotype-consistent choices among the choices that were made (refusals excluded).

    0.5 means no preference, above 0.5 a stereotype-consistent lean. The interval is Wilson's
    (statsmodels, choices treated as independent), ``p`` an exact two-sided binomial test of
    the share against 0.5 (scipy.stats.binomtest). ``n`` counts the choices made; ``method``
    ends in ``"refusals r of t"`` (t = choices + refusals) so the refusal rate travels with the
    number. With no choices the estimate is NaN with method ``"no data"`` (plus the refusal
    count when there were refusals).
    """
    if min(consistent, inconsistent, refusals) < 0:
        raise ValueError("counts must be non-negative")
    n = consistent + inconsistent
    total = n + refusals
    if n == 0:
        method = "no data" if refusals == 0 else f"no data; refusals {refusals} of {total}"
        return Estimate(math.nan, math.nan, math.nan, 0, 0, method=method)
    est = wilson(consistent, n)
    from scipy import stats  # lazy: scipy costs ~1 s to import
    p = float(stats.binomtest(consistent, n, 0.5, alternative="two-sided").pvalue)
    method = f"Wilson; exact binomial vs 0.5; refusals {refusals} of {total}"
    return Estimate(est.value, est.ci_low, est.ci_high, n, n, method=method, p=p)


def _cluster_bootstrap(
    arrays: Sequence[np.ndarray], statistic, *, confidence: float, resamples: int, seed: int,
) -> tuple[float, float, str]:
    """Interval for ``statistic(*arrays, axis=-1)`` where each array holds one per-cluster total
    and resampling draws whole clusters (scipy.stats.bootstrap, paired, BCa then percentile)."""
    rng = np.random.default_rng(seed)
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            from scipy import stats  # lazy: scipy costs ~1 s to import
            result = stats.bootstrap(
                tuple(arrays), statistic, paired=True, vectorized=True, n_resamples=resamples,
                confidence_level=confidence, method=method, random_state=rng,
            )
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high), f"cluster bootstrap ({method})"
    return math.nan, math.nan, "bootstrap failed"


def _slope_from_totals(n, sx, sy, sxx, sxy, axis: int = -1):
    n, sx, sy = np.sum(n, axis=axis), np.sum(sx, axis=axis), np.sum(sy, axis=axis)
    sxx, sxy = np.sum(sxx, axis=axis), np.sum(sxy, axis=axis)
    return (n * sxy - sx * sy) / (n * sxx - sx * sx)


class SlopeTotals:
    """Per-cluster sufficient statistics of an OLS slope (count, Σx, Σy, Σx², Σxy, each an
    exactly rounded sum), kept as (x, y) rows stream by."""

    __slots__ = ("_parts", "low", "high")

    def __init__(self) -> None:
        self._parts = [ClusterTotals() for _ in range(4)]  # x, y, x², xy (weights: counts)
        self.low = self.high = math.nan  # smallest and largest x

    def add(self, x: float, y: float, cluster: Hashable) -> None:
        """Add one row."""
        x, y = float(x), float(y)
        for part, value in zip(self._parts, (x, y, x * x, x * y), strict=True):
            part.add(value, cluster)
        self.low = x if math.isnan(self.low) else min(self.low, x)
        self.high = x if math.isnan(self.high) else max(self.high, x)

    def add_rows(self, x: int, y: int, cluster: Hashable, rows: int) -> None:
        """Add ``rows`` rows of the same whole-number (x, y), counted by the caller."""
        for part, value in zip(self._parts, (x, y, x * x, x * y), strict=True):
            part.add_rows(value * rows, cluster, rows, rows if value else 0)
        self.low = x if math.isnan(self.low) else min(self.low, x)
        self.high = x if math.isnan(self.high) else max(self.high, x)

    @property
    def n(self) -> int:
        """Rows added."""
        return self._parts[0].n

    def totals(self) -> list[np.ndarray]:
        """[count, Σx, Σy, Σx², Σxy] per cluster, in cluster order."""
        sums = [part.totals() for part in self._parts]
        return [sums[0][1], *(s for s, _ in sums)]


def slope(
    x: Sequence[float],
    y: Sequence[float],
    clusters: Sequence[Hashable],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Ordinary least-squares slope of ``y`` on ``x`` with a bootstrap interval that resamples
    whole clusters (see :func:`totals_slope`, which this is for rows given at once)."""
    if not (len(x) == len(y) == len(clusters)):
        raise ValueError("x, y and clusters must have the same length")
    totals = SlopeTotals()
    for row in zip(x, y, clusters, strict=True):
        totals.add(*row)
    return totals_slope(totals, confidence=confidence, resamples=resamples, seed=seed)


def totals_slope(totals: SlopeTotals, *, confidence: float = CONFIDENCE,
                 resamples: int = RESAMPLES, seed: int = 0) -> Estimate:
    """OLS slope of streamed rows with a bootstrap interval that resamples whole clusters.

    The bootstrap is scipy.stats.bootstrap (BCa, falling back to percentile) over the clusters'
    sufficient statistics, so each resample's slope is exactly the OLS slope of the rows of the
    drawn clusters; every sum is exactly rounded, so the order of the rows changes no bit.
    ``n`` is the number of rows, ``clusters`` the number of distinct clusters. Fewer than two
    clusters gives a NaN interval ("one cluster: no interval"); all ``x`` equal gives a NaN
    value ("all x equal: slope undefined"). When many resamples draw only clusters with one
    shared ``x`` the slope is undefined there and the interval is NaN ("bootstrap failed").
    """
    n = totals.n
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 0, method="no data")
    arrays = totals.totals()
    k = len(arrays[0])
    if totals.low == totals.high:
        return Estimate(math.nan, math.nan, math.nan, n, k, method="all x equal: slope undefined")
    count, sx, sy, sxx, sxy = (math.fsum(a) for a in arrays)
    value = float((count * sxy - sx * sy) / (count * sxx - sx * sx))
    if k < 2:
        return Estimate(value, math.nan, math.nan, n, k, method="one cluster: no interval")
    low, high, method = _cluster_bootstrap(
        arrays, _slope_from_totals, confidence=confidence, resamples=resamples, seed=seed)
    return Estimate(value, low, high, n, k, method=method)


# Demographic parity lives in its own module; importable from here as before.
from agentsim.stats.parity import (  # noqa: E402,F401
    add_parity_row,
    demographic_parity,
    parity_from_totals,
)
