"""JudgeBench (Tan et al. 2024; hub ``ScalerLab/JudgeBench``, split ``gpt``: 350 pairs answered by GPT-4o), scored
as ScalerLab/JudgeBench @ e2c52c2 scores it (``run_judge.py``, ``utils/metrics.py::compute_final_metrics``).

Rows: ``pair_id, original_id, source, question, response_model, response_A, response_B, label`` (``A>B`` / ``B>A``).

- Reward models (``--single_game``, the path its authors ran for Skywork-Reward): the decision is ``A>B`` if
  s(A) > s(B), else ``B>A`` (``utils/judges.py``, the reward-model judges), so **an exact tie counts as B>A** and
  is credited when the label is B>A: a constant model scores the share of B>A labels, not 0.
- Judges and pairwise models (both games, (A, B) then (B, A)): +1 per game whose decision matches the label, -1
  per game matching the flipped label, 0 for a tie decision; a pair is correct iff the sum is > 0. A pairwise
  model's decision in one game is the answer it gives P > 0.5 (exactly 0.5: a tie decision).
- Overall = micro accuracy over the pairs; per-source accuracies (mmlu-pro = every ``mmlu-pro-*`` source,
  livebench-reasoning, livebench-math, livecodebench: ``run_judge.py``'s ``startswith`` groups) beside it.
"""

from __future__ import annotations

from rmflow.data.convert import LayoutError

NAME = "judgebench"
SOURCE = "ScalerLab/JudgeBench run_judge.py, utils/metrics.py (compute_final_metrics)"
TIE_RULE = "reward models: a tie decides B>A (credited when the label is B>A); judges: both games, net > 0"
SOURCES = ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench")
COLUMNS = ("MMLU-Pro", "LiveBench Reasoning", "LiveBench Math", "LiveCodeBench")
LABELS = ("A>B", "B>A")


def source_group(source: str) -> str:
    for group in SOURCES:
        if source.startswith(group):
            return group
    raise LayoutError("source", f"{source!r} starts with none of {', '.join(SOURCES)}")


def convert(raw: dict) -> dict:
    for field in ("pair_id", "source", "question", "response_A", "response_B", "label"):
        if raw.get(field) is None:
            raise LayoutError(field, "is missing (JudgeBench rows: pair_id, source, question, response_A, "
                                     "response_B, label)")
    if raw["label"] not in LABELS:
        raise LayoutError("label", f"must be A>B or B>A, not {raw['label']!r}")
    a_wins = raw["label"] == "A>B"
    return {"id": str(raw["pair_id"]), "subset": source_group(str(raw["source"])), "source": str(raw["source"]),
            "label": raw["label"], "context": [{"role": "user", "content": str(raw["question"])}],
            "candidates": [str(raw["response_A"]), str(raw["response_B"])],
            # the labelled winner first: a pairwise model's two orders then are (winner, loser) and the reverse
            "comparisons": [[0, 1] if a_wins else [1, 0]]}


def single_game(score_a: float, score_b: float) -> str:
    return "A>B" if score_a > score_b else "B>A"


def _game_vote(p_first_wins: float) -> int:
    """+1 when the labelled winner is preferred in that game, -1 when the other is, 0 for a tie decision."""
    return 1 if p_first_wins > 0.5 else -1 if p_first_wins < 0.5 else 0


def credit(item: dict, scores: list[float] | None = None, orders: list | None = None) -> dict:
    if scores is not None:
        decision = single_game(scores[0], scores[1])
        return {"correct": float(decision == item["label"]), "decision": decision}
    p1, p2 = orders[0]
    net = _game_vote(p1) + _game_vote(p2)
    return {"correct": float(net > 0), "net": net}


def score_fn(per_subset: dict[str, tuple[float, int]]) -> dict:
    total = sum(n for _, n in per_subset.values())
    overall = sum(acc * n for acc, n in per_subset.values()) / total if total else None
    return {"Score": overall, **{c: per_subset[s][0] if s in per_subset else None for s, c in zip(SOURCES, COLUMNS)}}
