"""Training shared by scalar reward models (bt, odin): pairs side by side in length-grouped batches."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable

from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairBatch:
    """What a pair loss sees of one micro-batch, all from its one forward (DDP and ZeRO need one per backward)."""

    model: Any  # the model being trained (wrapped by DDP/DeepSpeed when several processes run)
    scores: Any  # (2B, num_labels) head outputs, rows [c0, r0, c1, r1, ...]
    indices: list[int]  # the pairs' positions in the training rows
    margin: Any = None  # (B,) margins (train.margin_field), else None
    # with train_scalar(answer_states=True): per row of ``scores``, (final hidden states at the positions that
    # predict the answer's tokens (n, hidden), those tokens (n,)). The answer is what follows the two sides' common
    # prefix (the prompt), the same on the shared-prompt and the separate path. None otherwise.
    answers: list[tuple[Any, Any]] | None = None


# pair_loss(batch: PairBatch) -> loss, or (loss, {term name: value}): each term is logged, averaged per pair, beside
# the loss (train_log.jsonl, TensorBoard/W&B as train/<name>)
PairLoss = Callable[[PairBatch], Any]


def train_scalar(spec: RunSpec, out_dir: str, num_labels: int, pair_loss: PairLoss, reward_head: int = 0,
                 data: str | None = None, init: str | None = None, extra_metrics: dict | None = None,
                 prepare_model: Callable[[object], None] | None = None, answer_states: bool = False) -> None:
    """Train a ``*ForSequenceClassification`` with ``num_labels`` heads; ``reward_head`` is the one reported.
    ``prepare_model`` sees the loaded model before the accelerator wraps it (hooks or modules a loss needs);
    ``answer_states`` hands the loss each answer's hidden states (``PairBatch.answers``)."""
    import torch

    from rmflow.data.prepare import read_pairs
    from rmflow.errors import RmflowError
    from rmflow.train.batching import cut, length_grouped_batches, padded_tokens
    from rmflow.train.loop import TERM, train_loop
    from rmflow.train.save import save_run
    from rmflow.train.shared_prompt import pair_outputs_in_parts
    from rmflow.train.start import start_run
    from rmflow.train.token_cache import encode_all

    config, source, start, rows, tokenizer, model = start_run(spec, read_pairs, data, init, num_labels=num_labels)
    if prepare_model:
        prepare_model(model)
    margins = None
    if config.margin_field:
        missing = [i for i, r in enumerate(rows, 1) if not isinstance(r.get(config.margin_field), (int, float))]
        if missing:
            raise RmflowError(f"margin_field '{config.margin_field}' is not a number in {len(missing)} rows "
                              f"(first: row {missing[0]})", file=source, field=config.margin_field)
        margins = [float(r[config.margin_field]) for r in rows]
    # each side tokenised whole once, then cut: per side (the separate path) or once per pair (shared prompt)
    whole = (10 ** 9, config.truncation_side)
    full = list(zip(encode_all(tokenizer, [r["chosen"] for r in rows], *whole, desc="tokenize chosen"),
                    encode_all(tokenizer, [r["rejected"] for r in rows], *whole, desc="tokenize rejected")))
    # DDP expects one forward per backward: several processes keep the single padded pass
    split = config.split_padding if int(os.environ.get("WORLD_SIZE", "1")) == 1 else 1.0
    sharing = shared_prompt_plan(model, config, full)
    if sharing["used"]:
        packed = sharing.pop("pairs")
        # (tokens of each side as the separate path would run it): counted, never built, as the prompt is shared
        sides = [(len(p.prompt) + len(p.chosen), len(p.prompt) + len(p.rejected)) for p in packed]
    else:
        pairs = [(cut(c, config.max_length, config.truncation_side), cut(r, config.max_length, config.truncation_side))
                 for c, r in full]
        sides = [(len(c), len(r)) for c, r in pairs]
    del full  # the whole sides are cut now: a large data set should not hold its tokens twice
    # batches grouped by the longer side either way: the same batches, so the switch changes only float rounding
    lengths = [max(pair) for pair in sides]

    def epoch_batches(epoch: int) -> list[list[int]]:
        return length_grouped_batches(lengths, config.per_device_batch, config.seed + epoch, config.group_by_length)

    def loss_fn(model, indices: list[int]):
        device = next(model.parameters()).device
        answers = None
        if sharing["used"]:
            batch = [packed[i] for i in indices]
            scores = pair_outputs_in_parts(model, batch, tokenizer.pad_token_id, device, split, answer_states)
            computed = sum(p.length for p in batch)
        else:
            sequences = [seq for i in indices for seq in pairs[i]]
            starts = [answer_start(*pairs[i]) for i in indices for _ in (0, 1)] if answer_states else None
            scores = forward_in_parts(model, sequences, tokenizer.pad_token_id, device, split, starts)
            computed = sum(map(len, sequences))
        if answer_states:
            scores, answers = scores
        margin = torch.tensor([margins[i] for i in indices], device=device) if margins else None
        out = pair_loss(PairBatch(model, scores, indices, margin, answers))
        # a pair loss may also return its named terms (ODIN's rank, length fit, ...): logged per pair, not summed in
        loss, terms = out if isinstance(out, tuple) else (out, {})
        reward = scores[:, reward_head]
        # tokens: both sides whole, the way peer trainers count; computed_tokens: what the forwards ran
        return loss, {"pairs": len(indices), "correct": int((reward[0::2] > reward[1::2]).sum()),
                      "tokens": sum(sum(sides[i]) for i in indices), "computed_tokens": computed,
                      **{f"{TERM}{name}": float(value) * len(indices) for name, value in terms.items()}}

    first_epoch = epoch_batches(0)
    # the rows each micro-batch's forwards pad (only their lengths matter): packed pairs, or every side alone
    if sharing["used"]:
        rows_per_pass = [[range(packed[i].length) for i in b] for b in first_epoch]
    else:
        rows_per_pass = [[s for i in b for s in pairs[i]] for b in first_epoch]
    real = sum(len(s) for seqs in rows_per_pass for s in seqs)
    pad_frac = 1 - real / max(1, sum(padded_tokens(seqs, split) for seqs in rows_per_pass))
    log.info("%d pairs, %d micro-batches per epoch, padding fraction %.3f, shared prompt: %s", len(sides),
             len(first_epoch), pad_frac, "on" if sharing["used"] else f"off ({sharing['reason']})")
    result = train_loop(model, epoch_batches, len(first_epoch), loss_fn, config)
    result["metrics"]["utilisation"]["padding_fraction"] = round(pad_frac, 4)
    metrics = {**result["metrics"], "padding_fraction": pad_frac, "share_prompt": sharing, "train_pairs": len(sides),
               "train_data": source, "initialised_from": start, **(extra_metrics or {})}
    save_run(result, tokenizer, spec, out_dir, metrics)


def shared_prompt_plan(model, config, full: list[tuple[list[int], list[int]]]) -> dict:
    """Whether the run packs each pair's shared prompt once (metrics.json ``share_prompt``), the packed pairs if
    so, and what it saves: prompt tokens not recomputed, pairs whose left cut differs from the per-side cut."""
    from rmflow.train.shared_prompt import cut_differently, pack_pair, why_not_shared

    if not config.share_prompt:
        return {"used": False, "reason": "train.share_prompt is false"}
    reason = why_not_shared(model)
    if reason:
        log.warning("shared-prompt training off: %s; each side of a pair runs its own forward", reason)
        return {"used": False, "reason": reason}
    packed = [pack_pair(c, r, config.max_length, config.truncation_side) for c, r in full]
    separate = sum(2 * len(p.prompt) + len(p.chosen) + len(p.rejected) for p in packed)
    saved = sum(len(p.prompt) for p in packed)
    cut_once = sum(cut_differently(p, c, r, config.max_length, config.truncation_side)
                   for p, (c, r) in zip(packed, full))
    return {"used": True, "reason": None, "pairs": packed, "prompt_tokens_saved_per_epoch": saved,
            "prompt_share_saved": round(saved / max(1, separate), 4), "pairs_cut_once": cut_once}


def answer_start(chosen: list[int], rejected: list[int]) -> int:
    """Where a pair's answers begin in each side's tokens: after their common prefix, as ``pack_pair`` splits it."""
    from rmflow.train.shared_prompt import common_prefix

    return min(common_prefix(chosen, rejected), len(chosen) - 1, len(rejected) - 1)


def forward_in_parts(model, sequences: list[list[int]], pad_id: int, device, max_padding: float,
                     answer_starts: list[int] | None = None):
    """Head outputs (len(sequences), num_labels) in input order, from forward passes split by padding_chunks; with
    ``answer_starts`` (where each sequence's answer begins), also each sequence's (hidden states predicting its
    answer tokens, those tokens), as ``PairBatch.answers`` holds them."""
    import torch

    from rmflow.models.scalar import head_outputs
    from rmflow.train.batching import in_input_order, pad, padding_chunks

    chunks = padding_chunks([len(s) for s in sequences], max_padding)
    parts, answers = [], []
    for chunk in chunks:
        ids, mask = pad([sequences[i] for i in chunk], pad_id, side="right")
        out = head_outputs(model, ids.to(device), mask.to(device), keep_hidden=answer_starts is not None)
        if answer_starts is not None:
            out, hidden = out
            for row, i in enumerate(chunk):
                first = max(answer_starts[i], 1)  # a first token with nothing before it has no predictor
                answers.append((hidden[row, first - 1:len(sequences[i]) - 1],
                                torch.tensor(sequences[i][first:], device=hidden.device)))
        parts.append(out)
    order = [i for chunk in chunks for i in chunk]
    return in_input_order(order, parts, answers if answer_starts is not None else None)


def load_scalar_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE, num_labels: int = 1,
                       head: int = 0):
    """A scorer over a saved scalar RM, loaded with plain transformers; ``head`` picks the reward output."""
    import os

    from rmflow.models.load import load_for_scoring, load_tokenizer
    from rmflow.models.scalar import ScalarScorer
    from rmflow.train.config import TrainConfig

    tokenizer = load_tokenizer(model_dir)
    model = load_for_scoring(model_dir, tokenizer, num_labels=num_labels)
    config = TrainConfig(max_length=4096, truncation_side="left")
    if os.path.exists(f"{model_dir}/rmflow_run.json"):
        config = RunSpec.read(f"{model_dir}/rmflow_run.json").train
    else:  # a model not trained by rmflow: recipe defaults
        log.info("no rmflow_run.json in %s; scoring with max_length 4096, left truncation", model_dir)
    return ScalarScorer(model, tokenizer, max_length=config.max_length, truncation_side=config.truncation_side,
                        batch_size=batch_size, device=device, head=head)
