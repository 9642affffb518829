"""Cluster-bootstrap means (agentsim.stats.inference.clustered_mean) and the paired sign-flip
test on cluster totals (agentsim.stats.clusters.sign_flip_test, used by paired_difference)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from agentsim.stats.clusters import cluster_totals, sign_flip_test
from agentsim.stats.inference import clustered_mean, paired_difference

# -- helpers --------------------------------------------------------------------------------------


def bernoulli_clusters(p: float, clusters: int, per_cluster: int, seed: int):
    rng = np.random.default_rng(seed)
    values = (rng.random(clusters * per_cluster) < p).astype(float).tolist()
    labels = [f"s{i // per_cluster}" for i in range(clusters * per_cluster)]
    return values, labels


def width(estimate) -> float:
    return estimate.ci_high - estimate.ci_low


# -- tests ----------------------------------------------------------------------------------------


def test_value_is_pooled_mean_not_mean_of_cluster_means():
    # Cluster a: 3 values (mean 1/3), cluster b: 1 value (mean 1); pooled 2/4.
    values = [1.0, 0.0, 0.0, 1.0]
    clusters = ["a", "a", "a", "b"]
    est = clustered_mean(values, clusters, resamples=500)
    assert est.value == pytest.approx(0.5)
    assert est.value != pytest.approx((1 / 3 + 1) / 2)
    assert (est.n, est.clusters) == (4, 2)


def test_empty_input():
    est = clustered_mean([], [])
    assert math.isnan(est.value) and math.isnan(est.ci_low) and math.isnan(est.ci_high)
    assert (est.n, est.clusters, est.method) == (0, 0, "no data")
    assert est.as_dict()["value"] is None


def test_single_cluster_has_no_interval():
    est = clustered_mean([1, 0, 1, 1], ["s"] * 4)
    assert est.value == pytest.approx(0.75)
    assert math.isnan(est.ci_low) and math.isnan(est.ci_high)
    assert (est.n, est.clusters) == (4, 1)
    assert "one cluster" in est.method and "no interval" in est.method


def test_all_clusters_equal():
    est = clustered_mean([1, 0, 0, 1, 1, 0], ["a", "a", "b", "b", "c", "c"])
    assert (est.value, est.ci_low, est.ci_high) == (0.5, 0.5, 0.5)
    assert est.method == "all clusters equal"
    assert est.clusters == 3


def test_bernoulli_interval_covers_truth():
    values, clusters = bernoulli_clusters(0.3, clusters=20, per_cluster=30, seed=11)
    est = clustered_mean(values, clusters, seed=1)
    assert est.value == pytest.approx(np.mean(values))
    assert est.ci_low <= est.value <= est.ci_high
    assert est.ci_low < 0.3 < est.ci_high
    assert 0 < width(est) < 0.2
    assert (est.n, est.clusters) == (600, 20)
    assert est.method.startswith("cluster bootstrap")


def test_same_seed_same_interval():
    values, clusters = bernoulli_clusters(0.3, clusters=10, per_cluster=10, seed=3)
    first = clustered_mean(values, clusters, resamples=500, seed=4)
    again = clustered_mean(values, clusters, resamples=500, seed=4)
    assert first == again


def test_clustering_widens_interval_for_correlated_values():
    # Ten clusters of ten identical values: half all-ones, half all-zeros. Within-cluster
    # correlation is perfect, so there are really only ten independent units.
    values = [1.0 if c % 2 == 0 else 0.0 for c in range(10) for _ in range(10)]
    clustered = clustered_mean(values, [c for c in range(10) for _ in range(10)], seed=2)
    independent = clustered_mean(values, list(range(100)), seed=2)
    assert clustered.value == independent.value == pytest.approx(0.5)
    assert (clustered.clusters, independent.clusters) == (10, 100)
    assert width(clustered) > 2 * width(independent)


# -- the paired sign-flip test on cluster totals -----------------------------------------------


def brute_force_p(totals) -> float:
    """Two-sided sign-flip p by enumeration: share of patterns with |Σ ±t| ≥ |Σ t|."""
    observed = abs(sum(totals))
    patterns = list(itertools.product((1, -1), repeat=len(totals)))
    extreme = sum(abs(sum(s * t for s, t in zip(signs, totals))) >= observed - 1e-9
                  for signs in patterns)
    return extreme / len(patterns)


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_all_clusters_positive_gives_two_over_two_to_the_k(k):
    # Three pairs per cluster, all improving: the pairs are not independent evidence, so the
    # p-value is that of k units (2 / 2**k), not of 3k pairs (2 / 2**(3k)).
    clusters = [f"s{c}" for c in range(k) for _ in range(3)]
    first = [0.0] * (3 * k)
    second = [1.0 + 0.1 * i for i in range(3 * k)]
    est = paired_difference(first, second, clusters)
    assert est.p == pytest.approx(2 / 2**k)
    assert (est.n, est.clusters) == (3 * k, k)
    assert "paired permutation (sign-flip over" in est.method and "exact" in est.method


def test_p_matches_enumeration_on_cluster_sums():
    # Unequal clusters: the test flips each cluster's *sum* (a: 3, b: −1, c: 2, d: −0.5, e: 4).
    diffs = {"a": [1.0, 1.0, 1.0], "b": [-1.0], "c": [0.5, 1.5], "d": [-0.5], "e": [4.0]}
    rows = [(c, d) for c, values in diffs.items() for d in values]
    est = paired_difference([0.0] * len(rows), [d for _, d in rows], [c for c, _ in rows])
    expected = brute_force_p([3.0, -1.0, 2.0, -0.5, 4.0])
    assert est.p == pytest.approx(expected)
    assert 0.1 < expected < 0.5  # a case where clusters disagree, not an extreme pattern
    sums, counts = cluster_totals([d for _, d in rows], [c for c, _ in rows])
    assert sums.tolist() == [3.0, -1.0, 2.0, -0.5, 4.0] and counts.tolist() == [3, 1, 2, 1, 1]


def test_symmetry_of_the_test():
    rng = np.random.default_rng(5)
    first = rng.normal(size=30).tolist()
    second = (np.asarray(first) + rng.normal(0.4, 1.0, 30)).tolist()
    clusters = [f"s{i % 6}" for i in range(30)]
    forward = paired_difference(first, second, clusters)
    backward = paired_difference(second, first, clusters)
    assert backward.value == pytest.approx(-forward.value)
    assert backward.p == forward.p  # two-sided: the direction does not matter
    totals = cluster_totals([b - a for a, b in zip(first, second)], clusters)[0]
    assert sign_flip_test(-totals)[0] == sign_flip_test(totals)[0]
    assert sign_flip_test(totals[::-1])[0] == sign_flip_test(totals)[0]


def test_monte_carlo_matches_the_exact_answer():
    totals = np.random.default_rng(8).normal(0.25, 1.0, 16)
    exact, how = sign_flip_test(totals, exact_clusters=16)
    assert how == "sign-flip over 16 clusters, exact"
    assert exact == pytest.approx(brute_force_p(totals.tolist()))
    drawn, how = sign_flip_test(totals, seed=3)  # 2**16 patterns > 9999 draws
    assert how == "sign-flip over 16 clusters, Monte Carlo, 9999 draws"
    assert drawn == pytest.approx(exact, abs=0.02)
    assert sign_flip_test(totals, seed=3) == (drawn, how)  # seeded: the same draws again
    assert 0.01 < exact < 0.9


def test_one_cluster_has_no_permutation_p_and_no_difference_has_p_one():
    one = paired_difference([0.0, 0.0, 0.0], [1.0, 2.0, 3.0], ["s", "s", "s"])
    assert one.p is None and one.value == pytest.approx(2.0)
    same = paired_difference([1.0, 2.0], [1.0, 2.0], ["a", "b"])
    assert same.p == 1.0 and "no differences" in same.method
    with pytest.raises(ValueError, match="two clusters"):
        sign_flip_test([1.0])


def test_an_interval_always_holds_its_estimate():
    """Two floating-point routes to one number (a score interval and its proportion, a
    closed-form slope and its bootstrap) may disagree in the last bits; the interval holds the
    estimate all the same (regression: wilson(0, 3).ci_low was ~1e-17 above 0)."""
    from agentsim.stats.inference import Estimate, wilson

    for n in range(1, 40):
        for successes in (0, n):
            estimate = wilson(successes, n)
            assert estimate.ci_low <= estimate.value <= estimate.ci_high, (successes, n)
    nudged = Estimate(0.5, 0.5 + 1e-16, 0.5 + 1e-16, 4, 4)
    assert nudged.ci_low == 0.5 and nudged.ci_high == 0.5 + 1e-16
    real = Estimate(0.5, 0.6, 0.7, 4, 4)  # a real disagreement is not hidden
    assert real.ci_low == 0.6


def test_wilson_and_corrections_equal_statsmodels():
    """The in-house Wilson interval and Holm/BH corrections are statsmodels' to float noise
    (they exist so that a judging pass does not import statsmodels)."""
    import numpy as np
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import proportion_confint

    from agentsim.stats.inference import Estimate, corrected_pvalues, wilson

    for n in (1, 2, 7, 30, 101):
        for k in range(n + 1):
            for confidence in (0.9, 0.95, 0.99):
                low, high = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
                expected = Estimate(k / n, float(low), float(high), n, n, method="Wilson")
                assert wilson(k, n, confidence=confidence) == expected
    rng = np.random.default_rng(0)
    for _ in range(300):
        p = rng.random(int(rng.integers(1, 12)))
        p[rng.random(len(p)) < 0.3] = p[0]  # ties
        for method in ("holm", "fdr_bh"):
            assert corrected_pvalues(p, method) == list(multipletests(p, method=method)[1])
