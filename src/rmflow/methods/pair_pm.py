"""Pairwise preference model (methods.md §2): a causal LM answers "A" or "B"; scored over both orders.

Ranking n responses: ``rank(scorer, context, responses, mode)`` with a knockout tournament (n − 1 comparisons,
2(n − 1) forward passes) or a round robin (n(n − 1)/2 comparisons, n(n − 1) forward passes); a BT model needs n.
"""

from __future__ import annotations

from dataclasses import dataclass

from rmflow.methods.pairwise.model import load_pm_scorer, rank, train_pm  # noqa: F401 - rank is public API
from rmflow.methods.pairwise.pm import A, B, check_score_position, standard_to_pm
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

VERSION = 1
KIND = "pairwise"

# rmflow plan: one sequence per row (the pair-PM text), logits over the vocabulary; scored in both orders
SIZING = {"sequences_per_row": 1, "head": "lm", "score": "both_orders", "logit_positions": 2}


@dataclass(frozen=True)
class Config:
    """pair-PM options."""

    both_orders: bool = False  # train on both presentation orders of every pair (2 rows per pair)
    placement_seed: int = 0  # seed of the coin that puts chosen at A or B when both_orders is off
    # scoring only: where the A/B logits are read (training always puts the answer after the assistant header)
    score_position: str = "after_generation_prompt"  # or user_turn_end, the seed scorer's position

    def __post_init__(self):
        check_score_position(self.score_position)


def transform(rows: list[dict], config: Config) -> tuple[list[dict], dict]:
    pm = standard_to_pm(rows, config.placement_seed, config.both_orders)
    counts = {"pairs_in": len(rows), "rows_out": len(pm), "both_orders": config.both_orders,
              "answer_A": sum(r["messages"][1]["content"] == A for r in pm),
              "answer_B": sum(r["messages"][1]["content"] == B for r in pm)}
    return pm, counts


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    train_pm(spec, out_dir, {"both_orders": spec.options.both_orders}, data, init)


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    return load_pm_scorer(model_dir, device, batch_size)
