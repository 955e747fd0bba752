"""rmflow.leaderboard.stats: bootstrap intervals against the analytic Bernoulli interval, resampling inside subsets, the
paired test on planted and null differences, and its edges by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rmflow.leaderboard import stats


def mean_of_subsets(per_subset):
    total = sum(n for _, n in per_subset.values())
    return {"Score": sum(acc * n for acc, n in per_subset.values()) / total}


def test_bootstrap_interval_matches_the_analytic_bernoulli_interval():
    n, p = 400, 0.7
    credits = [1.0] * int(n * p) + [0.0] * (n - int(n * p))
    low, high = stats.bootstrap(["s"] * n, credits, mean_of_subsets, n_boot=4000, seed=1)["Score"]
    half = 1.959964 * math.sqrt(p * (1 - p) / n)  # Wald interval: 0.655 .. 0.745
    assert low == pytest.approx(p - half, abs=0.006) and high == pytest.approx(p + half, abs=0.006)


def test_resampling_stays_inside_each_subset():
    # subset "a" always right, "b" always wrong: any replicate keeps 10 a-rows and 30 b-rows, so the pooled mean
    # cannot move; an unstratified bootstrap would spread around 0.25
    subsets, credits = ["a"] * 10 + ["b"] * 30, [1.0] * 10 + [0.0] * 30
    low, high = stats.bootstrap(subsets, credits, mean_of_subsets, n_boot=500)["Score"]
    assert low == high == pytest.approx(0.25)


def test_paired_test_finds_a_planted_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    n = 600
    subsets = [f"s{i % 3}" for i in range(n)]
    strong = (rng.random(n) < 0.80).astype(float)
    weak = (rng.random(n) < 0.60).astype(float)
    planted = stats.paired_test(subsets, strong, weak, mean_of_subsets, n_boot=2000, seed=0)
    assert planted["difference"] == pytest.approx(strong.mean() - weak.mean())
    assert planted["p_value"] < 0.01 and planted["significant"] and planted["diff_lo"] > 0
    # same accuracy, different rows: 30 right answers swapped for 30 others
    twin = strong.copy()
    right, wrong = np.flatnonzero(twin == 1)[:30], np.flatnonzero(twin == 0)[:30]
    twin[right], twin[wrong] = 0.0, 1.0
    null = stats.paired_test(subsets, strong, twin, mean_of_subsets, n_boot=2000, seed=0)
    assert null["difference"] == pytest.approx(0.0) and null["p_value"] > 0.5 and not null["significant"]
    same = stats.paired_test(subsets, strong, strong, mean_of_subsets, n_boot=200)
    assert same["p_value"] == 1.0 and same["diff_lo"] == same["diff_hi"] == 0.0


def test_percentile_interval_edges_and_the_documented_defaults():
    """The interval's percentile points on values whose percentiles are known exactly; the defaults (1,000
    replicates, seed 0, 95 %) the README states; a fixed seed gives the same interval every time."""
    assert stats._interval(np.arange(101.0), 0.90) == pytest.approx((5.0, 95.0), abs=1e-9)
    assert stats._interval(np.array([np.nan, 2.0, np.nan]), 0.5) == (2.0, 2.0)
    assert stats._interval(np.array([np.nan]), 0.95) == (None, None)
    rng = np.random.default_rng(5)
    subsets, credits = [f"s{i % 2}" for i in range(60)], (rng.random(60) < 0.6).astype(float)
    explicit = stats.bootstrap(subsets, credits, mean_of_subsets, n_boot=1000, seed=0, level=0.95)
    assert stats.bootstrap(subsets, credits, mean_of_subsets) == explicit
    assert stats.bootstrap(subsets, credits, mean_of_subsets, n_boot=1000, seed=1) != explicit
    other = 1.0 - credits
    assert stats.paired_test(subsets, credits, other, mean_of_subsets) == \
        stats.paired_test(subsets, credits, other, mean_of_subsets, n_boot=1000, seed=0, level=0.95)


def test_paired_p_value_and_significance_at_zero_by_hand():
    """Two rows, a = [1, 0], b = [0, 0]: a replicate's difference is 0 exactly when both draws pick row 2
    (probability 1/4), else 0.5 or 1. So p = 2 x 1/4 = 0.5, the interval's low end is 0 and, touching zero, the
    difference is not significant; mirrored, the high end is 0."""
    one = ["s", "s"]
    result = stats.paired_test(one, [1.0, 0.0], [0.0, 0.0], mean_of_subsets, n_boot=8000, seed=3)
    assert result["difference"] == 0.5 and result["p_value"] == pytest.approx(0.5, abs=0.03)
    assert result["diff_lo"] == 0.0 and result["diff_hi"] == 1.0 and result["significant"] is False
    mirrored = stats.paired_test(one, [0.0, 0.0], [1.0, 0.0], mean_of_subsets, n_boot=8000, seed=3)
    assert mirrored["diff_hi"] == 0.0 and mirrored["diff_lo"] == -1.0 and mirrored["significant"] is False
    # a score that does not exist for these rows gives an empty result with every field
    assert stats.paired_test(one, [1.0, 0.0], [0.0, 0.0], lambda per_subset: {"Score": None}, n_boot=10) == {
        "difference": None, "diff_lo": None, "diff_hi": None, "p_value": None, "significant": None}
