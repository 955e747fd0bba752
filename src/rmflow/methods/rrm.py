"""Robust reward model augmentation (methods.md §4): pair-PM training on prompt-causal augmented triples.

Per original example i, with j and k drawn by two independent permutations: 8 rows where an on-prompt answer
(winner or loser of i) beats an off-prompt one (winner or loser of j or k), and 6 neutral rows ("Same") among the
four off-prompt answers. The A/B order of every row is a seeded coin. Scoring compares only A and B; the mass the
model puts on "Same" is reported as the tie mass.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from rmflow.methods.pairwise.model import load_pm_scorer, train_pm
from rmflow.methods.pairwise.pm import TIE, A, B, pm_row, standard_to_pm
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

VERSION = 1
KIND = "pairwise"


@dataclass(frozen=True)
class Config:
    """RRM options."""

    seed: int = 0  # permutations and A/B coins
    include_original: bool = True  # train on the original pairs too (the augmented rows alone are 14 per pair)


def _permutation_without_fixed_points(n: int, rng: random.Random) -> list[int]:
    if n < 2:
        raise ValueError("RRM augmentation needs at least 2 examples")
    while True:
        perm = list(range(n))
        rng.shuffle(perm)
        if all(p != i for i, p in enumerate(perm)):
            return perm


def augment(rows: list[dict], seed: int) -> list[dict]:
    """The 14 augmented PM rows per standard pair, in the order methods.md lists them."""
    rng = random.Random(seed)
    n = len(rows)
    j_of, k_of = _permutation_without_fixed_points(n, rng), _permutation_without_fixed_points(n, rng)
    win = [r["chosen"][-1]["content"] for r in rows]
    lose = [r["rejected"][-1]["content"] for r in rows]

    def emit(context, first, second, label_if_first_wins, kind):
        if rng.random() < 0.5:
            return pm_row(context, first, second, label_if_first_wins, augmentation=kind)
        flipped = {A: B, B: A, TIE: TIE}[label_if_first_wins]
        return pm_row(context, second, first, flipped, augmentation=kind)

    out = []
    for i, row in enumerate(rows):
        context, j, k = row["chosen"][:-1], j_of[i], k_of[i]
        off_prompt = [win[j], win[k], lose[j], lose[k]]
        for on_prompt in (win[i], lose[i]):
            out += [emit(context, on_prompt, other, A, "on_prompt_wins") for other in off_prompt]
        out += [emit(context, x, y, TIE, "neutral")
                for x, y in itertools.combinations([win[j], lose[j], win[k], lose[k]], 2)]
    return out


def transform(rows: list[dict], config: Config) -> tuple[list[dict], dict]:
    augmented = augment(rows, config.seed)
    original = standard_to_pm(rows, config.seed) if config.include_original else []
    out = original + augmented
    labels = {label: sum(r["messages"][1]["content"] == label for r in out) for label in (A, B, TIE)}
    counts = {"pairs_in": len(rows), "original_rows": len(original),
              "non_neutral_rows": sum(r.get("augmentation") == "on_prompt_wins" for r in augmented),
              "neutral_rows": sum(r.get("augmentation") == "neutral" for r in augmented),
              "rows_out": len(out), "labels": labels}
    return out, counts


def sizing(config: Config) -> dict:
    """rmflow plan: pair-PM rows, 14 augmented per pair (+ the original)."""
    return {"sequences_per_row": 1, "head": "lm", "score": "both_orders", "logit_positions": 2,
            "rows_factor": 14 + (1 if config.include_original else 0)}


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    train_pm(spec, out_dir, {"include_original": spec.options.include_original}, data, init)


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    return load_pm_scorer(model_dir, device, batch_size, three_way=True)
