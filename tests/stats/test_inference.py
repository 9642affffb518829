"""Cluster-bootstrap means (agentsim.stats.inference.clustered_mean)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agentsim.stats.inference import clustered_mean

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
