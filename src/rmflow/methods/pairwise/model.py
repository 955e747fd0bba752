"""Training, two-order scoring and n-way ranking for the pair-PM family (shared by pair_pm, ssrm and rrm)."""

from __future__ import annotations

import logging
from typing import Callable

from rmflow.methods.pairwise.pm import (
    AFTER_GENERATION_PROMPT,
    TIE,
    A,
    B,
    answer_loss,
    answer_token_ids,
    check_pm_rows,
    check_score_position,
    pm_prompt,
    prompts_ids,
)
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

log = logging.getLogger(__name__)


def train_pm(spec: RunSpec, out_dir: str, extra_metrics: dict | None = None, data: str | None = None,
             init: str | None = None) -> None:
    """Fine-tune a causal LM on PM rows (``data`` or the spec's), starting from ``init`` or the base model."""
    import polars as pl

    from rmflow.train.batching import length_grouped_batches, padding_fraction
    from rmflow.train.loop import train_loop
    from rmflow.train.save import save_run
    from rmflow.train.start import start_run

    def read_checked(source: str) -> list[dict]:
        rows = pl.read_parquet(source).to_dicts()
        check_pm_rows(rows, source)
        return rows

    config, source, start, rows, tokenizer, model = start_run(spec, read_checked, data, init,
                                                              auto_class="AutoModelForCausalLM")
    answers = answer_token_ids(tokenizer)
    prompts = prompts_ids(tokenizer, [r["messages"][0]["content"] for r in rows], config.max_length,
                          config.truncation_side)
    examples = [(ids, answers[r["messages"][1]["content"]]) for ids, r in zip(prompts, rows)]
    ab_ids = (answers[A][0], answers[B][0])
    lengths = [len(p) + len(a) for p, a in examples]

    def epoch_batches(epoch: int) -> list[list[int]]:
        return length_grouped_batches(lengths, config.per_device_batch, config.seed + epoch, config.group_by_length)

    def loss_fn(model, indices: list[int]):
        return answer_loss(model, [examples[i] for i in indices], tokenizer.pad_token_id, ab_ids)

    first_epoch = epoch_batches(0)
    pad_frac = padding_fraction([[examples[i][0] + examples[i][1] for i in b] for b in first_epoch])
    label_counts = {label: sum(r["messages"][1]["content"] == label for r in rows) for label in (A, B, TIE)}
    log.info("%d PM rows %s from %s, padding fraction %.3f", len(rows), label_counts, source, pad_frac)
    result = train_loop(model, epoch_batches, len(first_epoch), loss_fn, config)
    metrics = {**result["metrics"], "padding_fraction": pad_frac, "train_rows": len(rows),
               "train_labels": label_counts, "train_data": source, "initialised_from": start,
               **(extra_metrics or {})}
    save_run(result, tokenizer, spec, out_dir, metrics)


class PairwiseScorer:
    """P(x ≻ y | context) from a PM, averaged over both presentation orders (methods.md §2)."""

    kind = "pairwise"

    def __init__(self, model, tokenizer, max_length: int, truncation_side: str, batch_size: int = SCORE_BATCH_SIZE,
                 device: str = "cpu", three_way: bool = False, render=pm_prompt,
                 position: str = AFTER_GENERATION_PROMPT):
        self.model, self.tokenizer, self.render = model.eval().to(device), tokenizer, render
        self.position = check_score_position(position)
        self.max_length, self.truncation_side, self.batch_size, self.device = max_length, truncation_side, \
            batch_size, device
        ids = answer_token_ids(tokenizer)
        # a multi-token "Same" is read by its first token: the tie mass is an estimate then, never a vote
        self.answer_ids = [ids[A][0], ids[B][0]] + ([ids[TIE][0]] if three_way else [])

    def _answer_probs(self, prompts: list[str], progress: bool = True):
        """Per prompt: softmax over the answer tokens' logits at the answer position (A, B[, Same])."""
        import torch
        from tqdm.auto import tqdm

        from rmflow.methods.pairwise.pm import logits_at
        from rmflow.models.scalar import last_token_index
        from rmflow.train.batching import pad

        encoded = prompts_ids(self.tokenizer, prompts, self.max_length, self.truncation_side, self.position)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = torch.zeros((len(encoded), len(self.answer_ids)))
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), self.batch_size), desc="score", disable=not progress):
                idx = order[start:start + self.batch_size]
                ids, mask = pad([encoded[i] for i in idx], self.tokenizer.pad_token_id)
                ids, mask = ids.to(self.device), mask.to(self.device)
                logits = logits_at(self.model, ids, mask, last_token_index(mask).unsqueeze(-1))[:, 0]
                out[idx] = torch.softmax(logits[:, self.answer_ids], dim=-1).cpu()
        return out

    def compare(self, triples: list[tuple[list[dict], str, str]], progress: bool = True) -> dict:
        """For (context, x, y): P(x ≻ y) with x shown first, with x shown second, their mean, and tie mass."""
        prompts = [self.render(c, x, y) for c, x, y in triples] + [self.render(c, y, x) for c, x, y in triples]
        probs = self._answer_probs(prompts, progress)
        n = len(triples)
        first, second = probs[:n], probs[n:]
        # two-token softmax: ties only ever enter as the mass Same takes away from both letters
        p1 = (first[:, 0] / (first[:, 0] + first[:, 1])).tolist()
        p2 = (second[:, 1] / (second[:, 0] + second[:, 1])).tolist()
        result = {"p_order1": p1, "p_order2": p2, "p_chosen": [(a + b) / 2 for a, b in zip(p1, p2)]}
        if len(self.answer_ids) == 3:
            result["tie_mass"] = ((first[:, 2] + second[:, 2]) / 2).tolist()
        return result

    def score_pairs(self, rows: list[dict]) -> dict:
        triples = [(r["chosen"][:-1], r["chosen"][-1]["content"], r["rejected"][-1]["content"]) for r in rows]
        return self.compare(triples)

    @staticmethod
    def summary(scored: dict) -> dict:
        """Position bias (mean |P(order 1) − P(order 2)|) and, for three-way models, the mean tie mass."""
        p1, p2 = scored["p_order1"], scored["p_order2"]
        out = {"position_bias": sum(abs(a - b) for a, b in zip(p1, p2)) / max(len(p1), 1)}
        if "tie_mass" in scored:
            out["mean_tie_mass"] = sum(scored["tie_mass"]) / max(len(scored["tie_mass"]), 1)
        return out


def load_pm_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE, three_way: bool = False):
    from rmflow.models.load import load_for_scoring, load_tokenizer

    spec = RunSpec.read(f"{model_dir}/rmflow_run.json")
    config = spec.train
    tokenizer = load_tokenizer(model_dir)
    model = load_for_scoring(model_dir, tokenizer, auto_class="AutoModelForCausalLM")
    return PairwiseScorer(model, tokenizer, config.max_length, config.truncation_side, batch_size, device, three_way,
                          position=getattr(spec.options, "score_position", AFTER_GENERATION_PROMPT))


# ---- ranking n responses --------------------------------------------------------------------------------------
Compare = Callable[[int, int], float]  # P(i ≻ j), both orders already averaged


def knockout(n: int, compare: Compare) -> tuple[int, int]:
    """Single-elimination bracket: n − 1 comparisons; returns (winner index, comparisons used)."""
    players, used = list(range(n)), 0
    while len(players) > 1:
        winners = []
        for i in range(0, len(players) - 1, 2):
            a, b = players[i], players[i + 1]
            winners.append(a if compare(a, b) >= 0.5 else b)
            used += 1
        if len(players) % 2:
            winners.append(players[-1])  # a bye
        players = winners
    return players[0], used


def round_robin(n: int, compare: Compare) -> tuple[list[float], int]:
    """Every pair once (n(n − 1)/2 comparisons, each already both orders); returns (win counts, comparisons)."""
    wins, used = [0.0] * n, 0
    for i in range(n):
        for j in range(i + 1, n):
            p = compare(i, j)
            wins[i] += p
            wins[j] += 1 - p
            used += 1
    return wins, used


def rank(scorer: PairwiseScorer, context: list[dict], responses: list[str], mode: str = "knockout") -> dict:
    """Pick the best response with a knockout tournament or rank all by round-robin win counts."""
    def compare(i: int, j: int) -> float:
        return scorer.compare([(context, responses[i], responses[j])], progress=False)["p_chosen"][0]

    if mode == "knockout":
        best, used = knockout(len(responses), compare)
        return {"best": best, "comparisons": used, "forward_passes": 2 * used}
    if mode == "round_robin":
        wins, used = round_robin(len(responses), compare)
        return {"best": max(range(len(wins)), key=wins.__getitem__), "wins": wins, "comparisons": used,
                "forward_passes": 2 * used}
    raise ValueError(f"unknown ranking mode {mode!r} (knockout | round_robin)")
