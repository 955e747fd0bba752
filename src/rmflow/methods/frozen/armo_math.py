"""The numeric parts of ArmoRM (methods.md §5) with no I/O: ridge probing, verbosity debiasing, the gate."""

from __future__ import annotations

import numpy as np

ALPHAS = tuple(10.0 ** k for k in range(-4, 5))  # 1e-4 ... 1e4, the recipe's 9 powers of ten
LAMBDA_GRID = (0, .01, .025, .05, .075, .1, .125, .15, .2, .25, .3, .35, .4, .45, .5, .55, .6, .65, .7, .75,
               .8, .85, .9, .95)


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression without intercept: (XᵀX + αI)⁻¹ Xᵀy."""
    d = x.shape[1]
    return np.linalg.solve(x.T @ x + alpha * np.eye(d), x.T @ y)


def fit_objective(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, validation_fraction: float,
                  alphas=ALPHAS) -> tuple[np.ndarray, float, float]:
    """Pick α by validation MSE on rows with a label (NaN = missing), refit on the training part (the recipe).

    Returns (weights, alpha, validation MSE)."""
    has = ~np.isnan(y)
    idx = np.flatnonzero(has)
    rng.shuffle(idx)
    n_val = max(1, int(round(validation_fraction * len(idx))))
    val, train = idx[:n_val], idx[n_val:]
    if len(train) == 0:
        train = val
    best = None
    for alpha in alphas:
        w = ridge(x[train], y[train], alpha)
        mse = float(np.mean((x[val] @ w - y[val]) ** 2))
        if best is None or mse < best[2]:
            best = (w, alpha, mse)
    return best


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as scipy.stats.rankdata does."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2
        i = j + 1
    return ranks


def verbosity_penalties(rewards: np.ndarray, verbosity: int, threshold: float,
                        grid=LAMBDA_GRID) -> np.ndarray:
    """λ_i per objective: the smallest grid value with Spearman(r_i − λ r_v, r_v) ≤ threshold (1 if none)."""
    r_v = rewards[:, verbosity]
    lambdas = np.ones(rewards.shape[1])
    for i in range(rewards.shape[1]):
        if i == verbosity:
            continue
        for lam in grid:
            if spearman(rewards[:, i] - lam * r_v, r_v) <= threshold:
                lambdas[i] = lam
                break
    return lambdas


def transform_matrix(lambdas: np.ndarray, verbosity: int) -> np.ndarray:
    """T with r' = T r: r'_j = r_j − λ_j r_v for j ≠ v, r'_v = 0."""
    t = np.eye(len(lambdas))
    for j in range(len(lambdas)):
        if j != verbosity:
            t[j, verbosity] = -lambdas[j]
    t[verbosity, verbosity] = 0.0
    return t


def make_gate(d_in: int, n_out: int, hidden: int, layers: int, dropout: float):
    """prompt embedding → layers × [Linear, ReLU, Dropout] → Linear(n_out) logits (softmax applied outside)."""
    import torch.nn as nn

    blocks, width = [], d_in
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    blocks.append(nn.Linear(width, n_out))
    return nn.Sequential(*blocks)


def gated_score(gate_logits, rewards, transform, beta, temperature: float):
    """score = β Σ_j g_j (T r)_j with g = softmax(logits / τ); also returns g."""
    import torch

    g = torch.softmax(gate_logits / temperature, dim=-1)
    transformed = rewards @ transform.T
    return beta * (g * transformed).sum(-1), g
