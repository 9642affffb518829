"""The model behind ``agentsim study power``: variance components of per-unit values, their
method-of-moments estimates, and the sign-flip test of scenario totals run on many simulated
studies at once.

A simulated study draws, for each of its k scenarios, the total of its per-unit values from a
three-level normal model

    value = effect + scenario (SD ``sd_between``) + conversation (SD ``sd_conversation``)
            + unit (SD ``sd_within``),

with ``units_per_conversation`` units per conversation; the totals go through the two-sided
sign-flip test exactly as :func:`agentsim.stats.clusters.sign_flip_test` runs it (exact
enumeration up to 2**12 patterns or while 2**k ≤ 9999, else 9999 seeded Monte Carlo patterns
with scipy's +1 adjustment; ties within scipy's relative tolerance). The estimates are those of
the nested unbalanced ANOVA (scenarios, conversations within scenarios, units within
conversations) by the method of moments, with Searle's coefficients for the expected mean
squares; a negative estimate is set to 0, which biases small components upward (so the power
computed from them errs low).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from agentsim.stats.clusters import EXACT_CLUSTERS, MONTE_CARLO

__all__ = ["SIMULATIONS", "Components", "estimate_components", "sign_flip_pvalues",
           "simulate_power", "smallest_p"]

SIMULATIONS = 1000


@dataclass(frozen=True)
class Components:
    """The variance components of per-unit values, in the metric's units."""

    sd_between: float  # SD of scenario means
    sd_within: float  # SD of a unit around its conversation's mean
    units_per_conversation: float
    sd_conversation: float = 0.0  # SD of conversation means within a scenario
    source: str = "stated"  # "stated" or "pilot <run folder>"
    mean: float | None = None  # the pilot's mean (reported, not used)
    scenarios: int | None = None  # the pilot's counts
    conversations: int | None = None
    units: int | None = None


def estimate_components(values: Any, scenarios: Any, conversations: Any) -> Components:
    """Method-of-moments (nested ANOVA) estimates from per-unit ``values``, each with its
    ``scenarios`` cluster and ``conversations`` key (any hashables). Conversations with one
    unit each leave the conversation level unidentified: it is folded into ``sd_within``."""
    y = np.asarray(values, dtype=float)
    _, s = np.unique(np.asarray([repr(x) for x in scenarios]), return_inverse=True)
    _, c = np.unique(np.asarray([repr((a, b)) for a, b in zip(scenarios, conversations,
                                                            strict=True)]), return_inverse=True)
    n_total, n_s, n_c = len(y), s.max() + 1, c.max() + 1
    if n_s < 2:
        raise ValueError("two scenarios or more are needed to estimate the components")
    cs = np.zeros(n_c, dtype=int)
    cs[c] = s  # each conversation's scenario
    m_c, m_s = np.bincount(c, minlength=n_c), np.bincount(s, minlength=n_s)
    mean_c = np.bincount(c, y, n_c) / m_c
    mean_s = np.bincount(s, y, n_s) / m_s
    grand = y.mean()
    ss_e = float(((y - mean_c[c]) ** 2).sum())
    ss_c = float((m_c * (mean_c - mean_s[cs]) ** 2).sum())
    ss_s = float((m_s * (mean_s - grand) ** 2).sum())
    sq_within = np.bincount(cs, m_c.astype(float) ** 2, n_s) / m_s  # Σ_j n_ij² / n_i
    k3 = (n_total - (m_s.astype(float) ** 2).sum() / n_total) / (n_s - 1)
    var_c = 0.0
    if n_total > n_c > n_s:
        ms_e = ss_e / (n_total - n_c)
        k1 = (n_total - sq_within.sum()) / (n_c - n_s)
        var_c = max(0.0, (ss_c / (n_c - n_s) - ms_e) / k1)
        k2 = (sq_within.sum() - (m_c.astype(float) ** 2).sum() / n_total) / (n_s - 1)
    else:  # one unit per conversation (or one conversation per scenario): two levels
        ms_e = (ss_e + ss_c) / (n_total - n_s)
        k2 = 0.0
    var_b = max(0.0, (ss_s / (n_s - 1) - ms_e - k2 * var_c) / k3)
    return Components(math.sqrt(var_b), math.sqrt(ms_e), float(n_total / n_c), math.sqrt(var_c),
                      mean=float(grand), scenarios=int(n_s), conversations=int(n_c),
                      units=int(n_total))


@lru_cache(maxsize=8)  # a search revisits scenario counts (256 scenarios: 20 MB of patterns)
def _patterns(k: int, seed: int) -> tuple[np.ndarray, bool]:
    """The sign patterns :func:`~agentsim.stats.clusters.sign_flip_test` uses for k clusters:
    all of them when scipy enumerates, else MONTE_CARLO seeded draws (others than scipy's,
    alike in distribution); and whether they are all of them."""
    exact = k <= EXACT_CLUSTERS or 2**k <= MONTE_CARLO
    if exact:
        bits = (np.arange(2**k)[:, None] >> np.arange(k)) & 1
    else:
        bits = np.random.default_rng([seed, k]).integers(0, 2, size=(MONTE_CARLO, k))
    return (2 * bits - 1).astype(float), exact


def sign_flip_pvalues(totals: Any, *, seed: int = 0) -> np.ndarray:
    """The two-sided sign-flip p of each row of ``totals`` (studies × scenarios), computed as
    scipy.stats.permutation_test computes it for ``sign_flip_test`` (ties within its relative
    tolerance, +1 adjustment for Monte Carlo), for many studies at once."""
    data = np.atleast_2d(np.asarray(totals, dtype=float))
    patterns, exact = _patterns(data.shape[1], seed)
    count, adjust = len(patterns), 0 if exact else 1
    out = np.empty(len(data))
    step = max(1, 2_000_000 // count)  # keep the null matrices to ~16 MB
    for start in range(0, len(data), step):
        chunk = data[start:start + step]
        null = chunk @ patterns.T
        observed = chunk.sum(axis=1, keepdims=True)
        gamma = np.abs(observed) * np.finfo(float).eps * 100
        greater = (null >= observed - gamma).sum(axis=1) + adjust
        less = (null <= observed + gamma).sum(axis=1) + adjust
        out[start:start + step] = 2 * np.minimum(greater, less) / (count + adjust)
    return np.minimum(out, 1.0)


def smallest_p(k: int) -> float:
    """The smallest p the sign-flip test can give with k scenarios."""
    exact = k <= EXACT_CLUSTERS or 2**k <= MONTE_CARLO
    return 2 / 2**k if exact else 2 / (MONTE_CARLO + 1)


def simulate_power(effect: float, components: Components, conversations: Any,
                   replicates: float, alpha: float, *, draws: np.ndarray | None = None,
                   integers: bool = True, simulations: int = SIMULATIONS,
                   seed: int = 0) -> float:
    """Share of simulated studies whose sign-flip p ≤ ``alpha``: scenario i has
    ``conversations[i]`` conversations per replicate, ``replicates`` replicates (``math.inf``:
    the limit where only scenarios vary). ``draws`` (2 × simulations × ≥ k standard normals)
    lets calls share random numbers, so that power curves are smooth. With ``integers``
    (label scores, escalation and their differences are whole numbers) each simulated total is
    rounded: a few units per scenario give whole totals with many ties, which make the
    permutation test more conservative than continuous totals would (unrounded, the power of
    16 scenarios × 1 replicate of the scripted model's escalation is overstated by 0.1)."""
    conv = np.asarray(conversations, dtype=float)
    k = len(conv)
    if draws is None:
        draws = np.random.default_rng(seed).standard_normal((2, simulations, k))
    z = draws[:, :, :k]
    m = components.units_per_conversation
    scenario = effect + components.sd_between * z[0]
    if math.isinf(replicates):  # totals / replicates: the noise of conversations vanishes
        totals = conv * m * scenario
    else:
        c = conv * replicates
        noise = c * m**2 * components.sd_conversation**2 + c * m * components.sd_within**2
        totals = c * m * scenario + np.sqrt(noise) * z[1]
        if integers:  # whole-number outcomes have whole totals, whose ties the test feels
            totals = np.round(totals)
    return float(np.mean(sign_flip_pvalues(totals, seed=seed) <= alpha))
