"""Streamed per-cluster totals give exactly the numbers computed from every row kept, in any
order of the rows."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from agentsim.stats.clusters import ClusterTotals, ExactSum
from agentsim.stats.inference import clustered_mean, slope, totals_ratio

values = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, 1 / 3]),
                   st.floats(-1e6, 1e6, allow_nan=False), st.integers(-2**60, 2**60).map(float))


@given(st.lists(values, max_size=60))
def test_an_exact_sum_equals_fsum_in_any_order(terms):
    shuffled = random.Random(len(terms)).sample(terms, len(terms))
    for order in (terms, shuffled):
        total = ExactSum()
        for term in order:
            total.add(term)
        assert total.value == math.fsum(terms)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([-1.0, 0.0, 1.0, 0.25]), st.sampled_from("abcde")),
                min_size=1, max_size=80))
def test_streamed_totals_give_the_estimate_of_the_rows(rows):
    kept = clustered_mean([v for v, _ in rows], [c for _, c in rows])
    totals = ClusterTotals()
    for value, cluster in reversed(rows):
        totals.add(value, cluster)
    streamed = totals_ratio(totals)
    assert streamed.as_dict() == kept.as_dict()


def test_the_streamed_slope_is_the_least_squares_slope():
    rng = random.Random(3)
    rows = [(r, rng.choice([-1.0, 0.0, 1.0]) + 0.1 * r, rng.choice("abcdef"))
            for r in range(6) for _ in range(30)]
    estimate = slope(*zip(*rows))
    xs, ys = [r[0] for r in rows], [r[1] for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    expected = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    assert math.isclose(estimate.value, expected, rel_tol=1e-12)
    assert estimate.ci_low <= estimate.value <= estimate.ci_high and estimate.clusters == 6
