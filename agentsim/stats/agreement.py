"""Agreement between raters (judge panels): Krippendorff's alpha and Cohen's kappa.

Agreement on a constant (every rating the same score) is 0/0: it is reported as undefined (NaN),
never as perfect, because it says nothing about reliability.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from agentsim.stats.inference import RESAMPLES, Estimate
from agentsim.errors import PluginError

UNDEFINED = "undefined: every rating is the same score (no variance)"

def _no_variance(ratings: np.ndarray) -> bool:
    values = ratings[~np.isnan(ratings)]
    return values.size == 0 or bool(np.all(values == values[0]))


def alpha_estimate(ratings: np.ndarray, clusters: Sequence[str], scale: tuple[int, int],
                   resamples: int = RESAMPLES // 2) -> Estimate:
    """Ordinal Krippendorff's alpha of a raters × units matrix (NaN: missing), with a
    percentile bootstrap over whole clusters (alpha is no ratio of sums, so not via stats)."""
    try:
        import krippendorff  # optional dependency, needed only for panels
    except ImportError:
        raise PluginError("the rubric judge's agreement metric needs the krippendorff package: "
                          "pip install krippendorff") from None
    n, names = ratings.shape[1], sorted(set(clusters))
    if _no_variance(ratings):
        return Estimate(math.nan, math.nan, math.nan, n, len(names), method=UNDEFINED)

    def alpha(matrix: np.ndarray) -> float:
        if _no_variance(matrix):
            return math.nan
        return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal",
                                        value_domain=list(range(scale[0], scale[1] + 1))))

    value = alpha(ratings)
    if len(names) < 2:
        return Estimate(value, math.nan, math.nan, n, 1, method="one cluster: no interval")
    columns = [[i for i, c in enumerate(clusters) if c == name] for name in names]
    rng = np.random.default_rng(0)
    draws = [alpha(ratings[:, [i for p in rng.choice(len(names), len(names)) for i in columns[p]]])
             for _ in range(resamples)]
    finite = [d for d in draws if not math.isnan(d)]
    low, high = np.percentile(finite, [2.5, 97.5]) if finite else (math.nan, math.nan)
    return Estimate(value, float(low), float(high), n, len(names),
                    method="Krippendorff's alpha (ordinal), cluster bootstrap (percentile)")


def kappa_estimate(first: Sequence[int], second: Sequence[int], clusters: Sequence[str],
                   scale: tuple[int, int]) -> Estimate:
    """Unweighted Cohen's kappa of two raters (statsmodels) with its asymptotic interval."""
    from statsmodels.stats.inter_rater import cohens_kappa

    n, k = len(first), len(set(clusters))
    if _no_variance(np.array([*first, *second], dtype=float)):
        return Estimate(math.nan, math.nan, math.nan, n, k, method=UNDEFINED)
    table = np.zeros((scale[1] - scale[0] + 1,) * 2)
    for a, b in zip(first, second, strict=True):
        table[a - scale[0], b - scale[0]] += 1
    with warnings.catch_warnings():  # std is 0 at perfect or zero agreement: its z is 0/0
        warnings.simplefilter("ignore")
        result = cohens_kappa(table)
    return Estimate(float(result.kappa), max(-1.0, float(result.kappa_low)),
                    min(1.0, float(result.kappa_upp)), n, k,
                    method="Cohen's kappa (unweighted), asymptotic CI assuming independent units")
