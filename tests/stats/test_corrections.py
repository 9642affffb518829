"""Multiple-comparison corrections, relative decision bias, clustered slopes and demographic
parity (agentsim.stats.inference)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from agentsim.stats.inference import (
    Estimate,
    adjust_pvalues,
    demographic_parity,
    relative_decision_bias,
    slope,
)

# -- helpers --------------------------------------------------------------------------------------

RAW = {"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5}


def family(ps: dict[str, float | None]) -> dict[str, Estimate]:
    return {key: Estimate(0.1, 0.0, 0.2, 10, 5, method="test", p=p) for key, p in ps.items()}


def clustered_line(true_slope: float, clusters: int, seed: int, balanced: bool = True):
    """y = true_slope·x + cluster shift + noise. Balanced: x = 0..4 inside every cluster;
    otherwise clusters differ in size (2..8 rows) and in where their x values lie."""
    rng = np.random.default_rng(seed)
    xs, ys, labels = [], [], []
    for c in range(clusters):
        shift = rng.normal(0, 2)
        size = 5 if balanced else int(rng.integers(2, 9))
        offset = 0.0 if balanced else rng.uniform(-3, 3)
        for x in range(size):
            x = x + offset
            xs.append(float(x))
            ys.append(true_slope * x + 1 + shift + rng.normal(0, 0.5))
            labels.append(f"s{c}")
    return xs, ys, labels


def contains(estimate: Estimate, target: float) -> bool:
    return estimate.ci_low <= target <= estimate.ci_high


# -- adjust_pvalues -------------------------------------------------------------------------------


def test_holm_matches_hand_computation():
    # Sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1 = 0.04, 0.09, 0.08, 0.5; running max gives
    # 0.04, 0.09, 0.09, 0.5.
    out = adjust_pvalues(family(RAW), "holm")
    expected = {"a": 0.04, "b": 0.09, "c": 0.09, "d": 0.5}
    for key, p in expected.items():
        assert out[key].p == pytest.approx(p)
        assert out[key].p_raw == RAW[key]
        assert out[key].method == "test; Holm-corrected over 4 tests"


def test_bh_matches_hand_computation():
    # Sorted 0.01, 0.03, 0.04, 0.5 times 4/1, 4/2, 4/3, 4/4 = 0.04, 0.06, 0.0533…, 0.5; running
    # min from the top gives 0.04, 0.0533…, 0.0533…, 0.5.
    out = adjust_pvalues(family(RAW), "bh")
    expected = {"a": 0.04, "b": 0.16 / 3, "c": 0.16 / 3, "d": 0.5}
    for key, p in expected.items():
        assert out[key].p == pytest.approx(p)
        assert out[key].p_raw == RAW[key]
        assert out[key].method == "test; BH-corrected over 4 tests"


def test_estimates_without_p_are_untouched_and_not_counted():
    ests = family({**RAW, "none": None, "nan": math.nan})
    out = adjust_pvalues(ests, "holm")
    assert list(out) == list(ests)
    assert out["none"] is ests["none"]
    assert out["nan"] is ests["nan"]
    assert out["a"].method.endswith("over 4 tests")  # the family is the four real p-values


def test_input_is_not_modified_and_fields_survive():
    ests = family(RAW)
    out = adjust_pvalues(ests, "bh")
    assert ests["b"].p == 0.04 and ests["b"].p_raw is None
    assert (out["b"].value, out["b"].ci_low, out["b"].ci_high, out["b"].n, out["b"].clusters) == (
        0.1, 0.0, 0.2, 10, 5)


def test_single_test_is_not_changed_numerically():
    out = adjust_pvalues(family({"only": 0.03}), "holm")
    assert out["only"].p == pytest.approx(0.03)
    assert out["only"].method.endswith("Holm-corrected over 1 tests")


def test_unknown_method_and_double_correction_raise():
    with pytest.raises(ValueError, match="unknown correction"):
        adjust_pvalues(family(RAW), "bonferroni-ish")
    once = adjust_pvalues(family(RAW), "holm")
    with pytest.raises(ValueError, match="already"):
        adjust_pvalues(once, "holm")


def test_empty_family():
    assert adjust_pvalues({}, "holm") == {}


def test_as_dict_has_p_raw_and_nan_becomes_none():
    corrected = adjust_pvalues(family(RAW), "holm")["a"].as_dict()
    assert corrected["p_raw"] == 0.01 and corrected["p"] == pytest.approx(0.04)
    empty = Estimate(math.nan, math.nan, math.nan, 0, 0, method="no data").as_dict()
    assert empty["value"] is None and empty["p"] is None and empty["p_raw"] is None


def test_existing_positional_construction_still_works():
    est = Estimate(0.5, 0.4, 0.6, 10, 2, "m", 0.2)
    assert est.p == 0.2 and est.p_raw is None


# -- relative_decision_bias -----------------------------------------------------------------------


def exact_two_sided_binomial(k: int, n: int) -> float:
    """Two-sided exact binomial p against 0.5, by hand (symmetric null: double the tail)."""
    tail = max(k, n - k)
    mass = sum(Fraction(math.comb(n, i), 2**n) for i in range(tail, n + 1))
    return min(1.0, float(2 * mass))


def test_decision_bias_70_30():
    est = relative_decision_bias(70, 30)
    assert est.value == pytest.approx(0.7)
    assert est.n == 100
    assert est.p == pytest.approx(exact_two_sided_binomial(70, 100), rel=1e-9)
    assert est.p == pytest.approx(7.85e-05, rel=1e-3)
    assert est.ci_low < 0.7 < est.ci_high
    assert est.ci_low > 0.5  # the Wilson interval excludes no preference
    assert est.ci_low == pytest.approx(0.6041515, abs=1e-6)
    assert est.ci_high == pytest.approx(0.7810511, abs=1e-6)


def test_decision_bias_even_split_has_p_one():
    est = relative_decision_bias(50, 50)
    assert est.value == 0.5
    assert est.p == pytest.approx(1.0)


def test_decision_bias_excludes_refusals_but_reports_them():
    est = relative_decision_bias(70, 30, refusals=20)
    assert est.value == pytest.approx(0.7)
    assert est.n == 100
    assert "refusals 20 of 120" in est.method
    assert "refusals 0 of 100" in relative_decision_bias(70, 30).method


def test_decision_bias_no_data():
    est = relative_decision_bias(0, 0)
    assert math.isnan(est.value) and est.method == "no data" and est.n == 0
    refused = relative_decision_bias(0, 0, refusals=4)
    assert math.isnan(refused.value)
    assert refused.method.startswith("no data") and "refusals 4 of 4" in refused.method
    with pytest.raises(ValueError):
        relative_decision_bias(-1, 3)


# -- slope ----------------------------------------------------------------------------------------


def test_slope_of_exact_line():
    x = [0, 1, 2, 3, 4, 5, 6, 7]
    y = [2 * v + 1 for v in x]
    est = slope(x, y, ["a", "a", "b", "b", "c", "c", "d", "d"])
    assert est.value == pytest.approx(2.0)
    assert est.ci_high - est.ci_low < 1e-9
    assert est.ci_low == pytest.approx(2.0)
    assert (est.n, est.clusters) == (8, 4)


def test_slope_interval_contains_true_slope_on_clustered_noise():
    x, y, labels = clustered_line(0.5, clusters=40, seed=3)
    est = slope(x, y, labels, seed=1)
    assert (est.n, est.clusters) == (200, 40)
    assert est.method.startswith("cluster bootstrap")
    assert est.value == pytest.approx(np.polyfit(x, y, 1)[0])
    assert contains(est, 0.5)
    assert 0 < est.ci_high - est.ci_low < 0.5
    assert not contains(est, 0.0)  # a real trend is detected


def test_slope_interval_matches_a_plain_cluster_resampling_loop():
    x, y, labels = clustered_line(-1.0, clusters=25, seed=7, balanced=False)
    est = slope(x, y, labels, seed=2)
    assert est.value == pytest.approx(np.polyfit(x, y, 1)[0])
    xs, ys = np.asarray(x), np.asarray(y)
    members = [np.flatnonzero(np.asarray(labels) == f"s{c}") for c in range(25)]
    rng = np.random.default_rng(123)
    draws = []
    for _ in range(4000):
        rows = np.concatenate([members[i] for i in rng.integers(0, 25, 25)])
        draws.append(np.polyfit(xs[rows], ys[rows], 1)[0])
    low, high = np.percentile(draws, [2.5, 97.5])
    width = high - low
    assert est.ci_low == pytest.approx(low, abs=0.15 * width)
    assert est.ci_high == pytest.approx(high, abs=0.15 * width)


def test_slope_is_seeded():
    x, y, labels = clustered_line(0.5, clusters=15, seed=5)
    assert slope(x, y, labels, seed=4) == slope(x, y, labels, seed=4)


def test_slope_degenerate_cases():
    one = slope([0, 1, 2], [1, 3, 5], ["a", "a", "a"])
    assert one.value == pytest.approx(2.0)
    assert math.isnan(one.ci_low) and math.isnan(one.ci_high)
    assert one.clusters == 1 and "one cluster" in one.method

    flat = slope([3, 3, 3, 3], [1, 2, 3, 4], ["a", "b", "c", "d"])
    assert math.isnan(flat.value) and "all x equal" in flat.method
    assert (flat.n, flat.clusters) == (4, 4)

    empty = slope([], [], [])
    assert math.isnan(empty.value) and empty.method == "no data"

    with pytest.raises(ValueError):
        slope([1, 2], [1], ["a", "b"])


# -- demographic_parity ---------------------------------------------------------------------------


def parity_table():
    """Four scenarios, 10 rows each per group: group A selected 8, 5, 6, 5 of 10 (pooled 0.6),
    group B selected 4, 2, 3, 3 of 10 (pooled 0.3), plus rows of an unrelated group C."""
    selected, groups, clusters = [], [], []
    for scenario, (a_hits, b_hits) in enumerate([(8, 4), (5, 2), (6, 3), (5, 3)]):
        for group, hits in (("A", a_hits), ("B", b_hits), ("C", 10)):
            for i in range(10):
                selected.append(i < hits)
                groups.append(group)
                clusters.append(f"s{scenario}")
    return selected, groups, clusters


def test_demographic_parity_hand_table():
    difference, ratio = demographic_parity(*parity_table(), first="A", second="B")
    assert difference.value == pytest.approx(-0.3)  # rate[B] − rate[A] = 0.3 − 0.6
    assert ratio.value == pytest.approx(0.5)  # rate[B] / rate[A] = 0.3 / 0.6
    for est in (difference, ratio):
        assert (est.n, est.clusters) == (80, 4)  # group C rows are ignored
        assert est.method.startswith("cluster bootstrap")
        assert est.ci_low <= est.value <= est.ci_high
        assert est.ci_high > est.ci_low
    assert difference.ci_high < 0  # B is selected less in every scenario
    assert ratio.ci_high < 1
    # Resamples of four scenarios can only mix the per-scenario rates: bounded by the extremes.
    assert difference.ci_low >= -0.4 - 1e-9 and difference.ci_high <= -0.2 + 1e-9
    assert ratio.ci_low >= 0.4 - 1e-9 and ratio.ci_high <= 0.6 + 1e-9


def test_demographic_parity_direction_flips_with_argument_order():
    difference, ratio = demographic_parity(*parity_table(), first="B", second="A")
    assert difference.value == pytest.approx(0.3)
    assert ratio.value == pytest.approx(2.0)


def test_demographic_parity_degenerate_cases():
    selected, groups, clusters = parity_table()
    missing = demographic_parity(selected, groups, clusters, first="A", second="Z")
    assert all(math.isnan(est.value) for est in missing)
    assert "'Z'" in missing[0].method

    zero = demographic_parity([False, False, True, True], ["A", "A", "B", "B"],
                              ["s0", "s1", "s0", "s1"], first="A", second="B")
    assert zero[0].value == pytest.approx(1.0)
    assert math.isnan(zero[1].value) and "zero selection rate" in zero[1].method

    single = demographic_parity([True, False, True, False], ["A", "A", "B", "B"],
                                ["s0", "s0", "s0", "s0"], first="A", second="B")
    assert single[0].value == pytest.approx(0.0)
    assert math.isnan(single[0].ci_low) and "one cluster" in single[0].method
