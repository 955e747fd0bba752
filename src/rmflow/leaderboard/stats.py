"""Bootstrap confidence intervals and paired bootstrap tests for leaderboard scores.

Examples are resampled *within each subset* (a stratified bootstrap), so every replicate keeps each subset's row
count and the section weights stay what RewardBench defines; each replicate is scored with the same functions as
the point estimate (``score_from_subsets``), so the intervals cover exactly the reported numbers. Intervals are
percentile intervals. The paired test resamples the same example ids for both models (they were scored on the same
rows) and reports a two-sided bootstrap p-value for "no difference" and the percentile interval of the difference.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

# score_fn(per-subset accuracy {subset: (acc, n)}) -> {"Score": x, "Chat": y, ...}; values may be None
ScoreFn = Callable[[dict[str, tuple[float, int]]], dict[str, float | None]]


def _groups(subsets: list[str]) -> dict[str, np.ndarray]:
    order: dict[str, list[int]] = {}
    for i, subset in enumerate(subsets):
        order.setdefault(subset, []).append(i)
    return {s: np.asarray(idx) for s, idx in sorted(order.items())}


def _resampled_subset_means(credits: np.ndarray, groups: dict[str, np.ndarray], n_boot: int,
                            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """For each subset, ``n_boot`` means of a resample (with replacement) of its rows; columns of ``credits`` are
    models scored on the same rows, resampled with the same indices (shape n_boot x models)."""
    out = {}
    for subset, idx in groups.items():
        draws = rng.integers(0, len(idx), size=(n_boot, len(idx)))
        out[subset] = credits[idx][draws].mean(axis=1)
    return out


def bootstrap(subsets: list[str], credits, score_fn: ScoreFn, n_boot: int = 1000, seed: int = 0,
              level: float = 0.95) -> dict[str, tuple[float | None, float | None]]:
    """Percentile interval of every number ``score_fn`` reports, for one model."""
    matrix = np.asarray(credits, dtype=float).reshape(-1, 1)
    draws = replicate_scores(subsets, matrix, score_fn, n_boot, seed)
    return {key: _interval(values[:, 0], level) for key, values in draws.items()}


def replicate_scores(subsets: list[str], credit_matrix: np.ndarray, score_fn: ScoreFn, n_boot: int,
                     seed: int) -> dict[str, np.ndarray]:
    """``{key: array (n_boot, models)}`` of every score over bootstrap replicates shared by all models."""
    groups = _groups(subsets)
    rng = np.random.default_rng(seed)
    means = _resampled_subset_means(credit_matrix, groups, n_boot, rng)
    models = credit_matrix.shape[1]
    out: dict[str, np.ndarray] = {}
    for b in range(n_boot):
        for m in range(models):
            scores = score_fn({s: (float(means[s][b, m]), len(groups[s])) for s in groups})
            for key, value in scores.items():
                out.setdefault(key, np.full((n_boot, models), np.nan))[b, m] = np.nan if value is None else value
    return out


def _interval(values: np.ndarray, level: float) -> tuple[float | None, float | None]:
    values = values[~np.isnan(values)]
    if not len(values):
        return None, None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def paired_test(subsets: list[str], credits_a, credits_b, score_fn: ScoreFn, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95, key: str = "Score") -> dict:
    """Bootstrap test of score(a) - score(b) on the same rows: the difference, its interval and a p-value.

    p = 2 x the smaller share of replicates on either side of zero (capped at 1): the usual percentile-bootstrap
    test; identical models give p = 1.
    """
    matrix = np.column_stack([np.asarray(credits_a, dtype=float), np.asarray(credits_b, dtype=float)])
    point_a = score_fn(_point_subsets(subsets, matrix[:, 0]))[key]
    point_b = score_fn(_point_subsets(subsets, matrix[:, 1]))[key]
    draws = replicate_scores(subsets, matrix, score_fn, n_boot, seed)[key]
    diff = draws[:, 0] - draws[:, 1]
    diff = diff[~np.isnan(diff)]
    if point_a is None or point_b is None or not len(diff):
        return {"difference": None, "diff_lo": None, "diff_hi": None, "p_value": None, "significant": None}
    low, high = _interval(diff, level)
    p_value = min(1.0, 2 * min(float(np.mean(diff <= 0)), float(np.mean(diff >= 0))))
    return {"difference": point_a - point_b, "diff_lo": low, "diff_hi": high, "p_value": p_value,
            "significant": bool(low > 0 or high < 0)}


def _point_subsets(subsets: list[str], credits: np.ndarray) -> dict[str, tuple[float, int]]:
    return {s: (float(credits[idx].mean()), len(idx)) for s, idx in _groups(subsets).items()}
