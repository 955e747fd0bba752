"""Tokenise conversations once and group them into length-sorted batches so padding stays small."""

from __future__ import annotations

import random
from dataclasses import dataclass


def render(tokenizer, messages: list[dict], generation_prompt: bool = False) -> str:
    """Chat-template text; ``generation_prompt`` appends the assistant header (the answer comes next)."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def encode(tokenizer, messages: list[dict], max_length: int, truncation_side: str,
           generation_prompt: bool = False) -> list[int]:
    """Token ids of a rendered conversation, truncated to ``max_length`` on ``truncation_side``.

    The template already holds any BOS it wants, so special tokens are not added again: this is the rule that
    avoids the double BOS of the original scripts (methods-detail.md §1).
    """
    ids = tokenizer(render(tokenizer, messages, generation_prompt), add_special_tokens=False)["input_ids"]
    if len(ids) > max_length:
        ids = ids[-max_length:] if truncation_side == "left" else ids[:max_length]
    return ids


@dataclass
class PairBatch:
    """Indices of the pairs in one micro-batch; the collate step builds tensors."""

    indices: list[int]


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, group: bool = True,
                           mega_factor: int = 50) -> list[list[int]]:
    """Shuffle, sort by length inside mega-batches of ``batch_size * mega_factor``, cut, shuffle the batches.

    The last incomplete batch is kept (nothing dropped). With ``group=False`` batches follow the shuffled order.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group:
        mega = batch_size * mega_factor
        order = [i for start in range(0, len(order), mega)
                 for i in sorted(order[start:start + mega], key=lambda j: -lengths[j])]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if group:
        rng.shuffle(batches)
    return batches


def pad(sequences: list[list[int]], pad_id: int, side: str = "right"):
    """Stack id lists into (input_ids, attention_mask) tensors padded on ``side``."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if side == "right":
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        else:
            ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
    return ids, mask


def padding_fraction(batches: list[list[list[int]]]) -> float:
    """Share of pad tokens when each batch (a list of sequences) is padded to its longest sequence."""
    real = sum(len(s) for batch in batches for s in batch)
    total = sum(len(batch) * max(len(s) for s in batch) for batch in batches)
    return 1.0 - real / total if total else 0.0
