"""The benchmarks reward-model papers report beyond RewardBench, each with its official scoring rule.

Every benchmark here turns its rows into **items** of one shape (written by ``rmflow prepare-eval``, one JSON line
each): ``id``, ``subset`` (the unit its score groups by), ``context`` (the conversation before the answer),
``candidates`` (the answers a scalar model scores once each) and ``comparisons`` (``[i, j]``: candidate ``i``
should beat candidate ``j``; a pairwise model or judge scores each comparison in both orders), plus what its rule
needs (JudgeBench's label, ProcessBench's steps). A module per benchmark gives:

- ``NAME``, ``SOURCE`` (the official file the rule comes from), ``TIE_RULE`` (what an exact tie earns),
  ``COLUMNS`` (the numbers ``score_fn`` reports besides ``Score``);
- ``convert(raw) -> item`` (``LayoutError`` names the field at fault; ``Skip(reason)`` for a row the rule does not
  score, counted by reason in the prepare report);
- ``credit(item, scores=None, orders=None) -> dict``: ``correct`` (the unit's credit) and detail columns, from a
  scalar model's candidate scores or a pairwise model's ``(P order 1, P order 2)`` per comparison (the first
  candidate of the comparison winning, shown first and shown second);
- ``score_fn({subset: (accuracy, n)}) -> {"Score": x, column: y}``: fractions; the leaderboard's bootstrap calls it
  on every replicate, so it is the rule's aggregation and nothing else;
- optionally ``details(items, rows) -> dict`` (RM-Bench's matrices) and ``STEP_LEVEL`` (ProcessBench: step
  probabilities from a process reward model instead of candidate scores).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rmflow.errors import RmflowError

NAMES = ("rm_bench", "judgebench", "rmb", "ppe_preference", "ppe_correctness", "processbench")
# every benchmark rmflow scores: RewardBench's two (rmflow.evaluate.rewardbench, rewardbench2) and these
ALL = ("rewardbench_v1", "rewardbench_v2", *NAMES)
TITLES = {"rewardbench_v1": "RewardBench", "rewardbench_v2": "RewardBench 2", "rm_bench": "RM-Bench",
          "judgebench": "JudgeBench", "rmb": "RMB", "ppe_preference": "PPE Preference",
          "ppe_correctness": "PPE Correctness", "processbench": "ProcessBench"}


class Skip(Exception):
    """A row the benchmark's rule leaves out (e.g. a PPE human tie): counted by reason, never silently."""


def get(name: str) -> ModuleType:
    if name not in NAMES:
        raise RmflowError(f"benchmark must be one of {', '.join(ALL)}, not '{name}'", field="benchmark")
    return importlib.import_module(f"rmflow.evaluate.benchmarks.{name}")


def columns_of(name: str) -> tuple[str, ...]:
    """The leaderboard columns a benchmark's row may fill besides Score: its rule's, then its detail points."""
    module = get(name)
    return (*module.COLUMNS, *getattr(module, "DETAIL_COLUMNS", ()))


def is_extra(name: str) -> bool:
    """Whether a benchmark is one of this package's (not RewardBench v1/v2)."""
    return name in NAMES


def scorable_by(name: str, kind: str, step_level: bool) -> bool:
    """Whether a model of ``kind`` ("scalar" | "pairwise") can be scored on benchmark ``name``: RewardBench 2
    needs per-completion rewards, ProcessBench per-step ones; the others take either (pairwise by comparison)."""
    if name == "rewardbench_v2":
        return kind == "scalar"
    if name == "processbench":
        return step_level
    return True


def mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def strict_win(scores: list[float], i: int, j: int) -> float:
    """1 when candidate i scores strictly above j (a tie or NaN loses): the rule of RM-Bench, RMB and PPE."""
    return 1.0 if scores[i] > scores[j] else 0.0


def pair_win(orders: tuple[float, float]) -> float:
    """A pairwise model's verdict on one comparison: P(first wins) averaged over both orders above 0.5 (the
    RewardBench convention for pairwise models; exactly 0.5 loses, as a scalar tie does)."""
    p1, p2 = orders
    return 1.0 if (p1 + p2) / 2 > 0.5 else 0.0


def comparison_wins(item: dict, scores: list[float] | None, orders: list | None) -> list[float]:
    """Per comparison of ``item``: 1 if its first candidate wins, from candidate scores or both-order verdicts."""
    if scores is not None:
        return [strict_win(scores, i, j) for i, j in item["comparisons"]]
    return [pair_win(o) for o in orders]
