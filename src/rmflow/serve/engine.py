"""The model behind ``rmflow serve``: any method's own scorer (the one ``rmflow evaluate`` uses), so a served reward is
the evaluated one, and the two ways a trainer can ask for rewards.

- ``score``: a reward per conversation, for methods that score one answer at a time (KIND scalar), with the vector
  ``/pooling`` returns: ArmoRM's per-objective rewards, a PRM's or ORM's P(+) per step, else the reward alone.
- ``compare``: P(x ≻ y | context), both presentation orders averaged, for methods that compare two answers (KIND
  pairwise: the pair-PM family, the judge, the decision tree). A group of completions gets one reward each from
  these comparisons (``group_rewards``), as ``rmflow rank`` ranks them offline.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Awaitable, Callable

from rmflow.errors import RmflowError
from rmflow.options import SCORE_BATCH_SIZE

GROUP_MODES = ("round_robin", "knockout")
VECTOR_KEYS = ("rewards", "steps")  # ArmoScorer.details: per-objective rewards; StepScorer.details: P(+) per step


class RewardEngine:
    def __init__(self, model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
        from rmflow import methods
        from rmflow.spec import RunSpec

        run, exported = Path(model_dir, "rmflow_run.json"), Path(model_dir, "rmflow_export.json")
        self.model_dir, self.step_level = model_dir, False
        if exported.is_file():  # rmflow export's checkpoint: a one-head classifier, scored as its source was
            self.scorer, record = _exported_scorer(model_dir, device, batch_size)
            self.method, self.base = record["method"], record["base"]
        elif run.is_file():
            spec = RunSpec.read(str(run))
            module = methods.get(spec.method)
            self.method, self.base = spec.method, spec.base
            self.scorer = module.load_scorer(model_dir, device=device, batch_size=batch_size)
            self.step_level = bool(methods.hook(module, "STEP_LEVEL", False))
        else:
            raise RmflowError("is neither a model rmflow trained (rmflow_run.json) nor one it exported "
                              "(rmflow_export.json)", file=model_dir)
        self.kind = self.scorer.kind
        self.tokenizer = getattr(self.scorer, "tokenizer", None)
        model = getattr(self.scorer, "model", None)
        config = getattr(model, "config", None)
        self.context_length = getattr(config, "max_position_embeddings", None)

    @property
    def name(self) -> str:
        return f"{self.base}/{self.method}"  # the leaderboard's Model column

    def card(self) -> dict:
        return {"method": self.method, "base": self.base, "kind": self.kind, "model_dir": self.model_dir,
                "step_level": self.step_level, "context_length": self.context_length}

    def count_tokens(self, conversation: list[dict]) -> int:
        """Tokens of the conversation as the model renders it (an endpoint judge has no tokenizer: ~4 chars a token)."""
        if self.tokenizer is None:
            return sum(len(m["content"]) for m in conversation) // 4 + 1
        from rmflow.train.batching import render

        return len(self.tokenizer(render(self.tokenizer, conversation), add_special_tokens=False)["input_ids"])

    def score(self, conversations: list[list[dict]]) -> list[tuple[float, list[float]]]:
        """(reward, pooled vector) per conversation; one call of the scorer, so concurrent requests share forwards."""
        if self.kind != "scalar":
            raise RmflowError(f"{self.method} compares two answers: ask for group rewards (/v1/group_rewards) or send "
                              "/classify a list of answers to one prompt")
        if hasattr(self.scorer, "details"):
            details = self.scorer.details(conversations)
            key = next((k for k in VECTOR_KEYS if k in details), None)
            vectors = details[key] if key else [[s] for s in details["score"]]
            return list(zip(details["score"], vectors))
        values = self.scorer.score_conversations(conversations, progress=False)
        return [(v, [v]) for v in values]

    def compare(self, triples: list[tuple[list[dict], str, str]]) -> list[float]:
        """P(x ≻ y) per (context, x, y) from the method's own pair scoring (``score_pairs``, as ``evaluate``)."""
        rows = [{"chosen": c + [{"role": "assistant", "content": x}],
                 "rejected": c + [{"role": "assistant", "content": y}]} for c, x, y in triples]
        return list(self.scorer.score_pairs(rows)["p_chosen"])


def _exported_scorer(model_dir: str, device: str, batch_size: int):
    from rmflow.models.load import load_for_scoring, load_tokenizer
    from rmflow.models.scalar import ScalarScorer

    record = json.loads(Path(model_dir, "rmflow_export.json").read_text(encoding="utf-8"))
    tokenizer = load_tokenizer(model_dir)
    model = load_for_scoring(model_dir, tokenizer, num_labels=1)
    return ScalarScorer(model, tokenizer, record["max_length"], record["truncation_side"], batch_size, device), record


Compare = Callable[[list[tuple[int, int]]], Awaitable[list[float]]]  # P(i ≻ j) for each (i, j), awaited in batches


async def group_rewards(n: int, compare: Compare, mode: str = "round_robin") -> dict:
    """One reward in [0, 1] per completion of a group, from pairwise comparisons only.

    ``round_robin``: every pair once (n(n − 1)/2 comparisons, in one batch); reward = the mean of P(i ≻ j) over
    the others (rank's round-robin win count / (n − 1)); with n = 2 it is ``evaluate``'s P(chosen) itself.
    ``knockout``: a single-elimination bracket in ⌈log2 n⌉ rounds (n − 1 comparisons, one batch per round);
    reward = the rounds a completion survived / the rounds played (a bye counts as survived), so the winner gets 1
    and first-round losers 0."""
    if mode not in GROUP_MODES:
        raise RmflowError(f"must be one of {', '.join(GROUP_MODES)}, not {mode!r}", field="mode")
    if n == 1:
        return {"rewards": [1.0], "best": 0, "comparisons": 0}
    if mode == "round_robin":
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        wins = [0.0] * n
        for (i, j), p in zip(pairs, await compare(pairs)):
            wins[i] += p
            wins[j] += 1 - p
        rewards = [w / (n - 1) for w in wins]
        return {"rewards": rewards, "best": max(range(n), key=rewards.__getitem__), "comparisons": len(pairs)}
    rounds, survived, players, used = math.ceil(math.log2(n)), [0] * n, list(range(n)), 0
    while len(players) > 1:
        pairs = [(players[k], players[k + 1]) for k in range(0, len(players) - 1, 2)]
        winners = [i if p >= 0.5 else j for (i, j), p in zip(pairs, await compare(pairs))]
        used += len(pairs)
        if len(players) % 2:
            winners.append(players[-1])  # a bye
        for i in winners:
            survived[i] += 1
        players = winners
    return {"rewards": [s / rounds for s in survived], "best": players[0], "comparisons": used}

