"""Each pair's prompt computed once in training: ``[prompt | chosen | rejected]`` packed in one row.

A pair's two sides share their prompt token for token (the common prefix of the two tokenised conversations), so
in a causal decoder the prompt's hidden states are the same on both sides. The packed row runs the prompt once;
a block attention mask lets each answer see the prompt and itself but never the other answer, and position ids
continue from the prompt for both answers. The rewards, losses and gradients are the separate-forward path's up
to float rounding (tests/unit/train/test_shared_prompt.py), for ``prompt + chosen + rejected`` tokens instead of
``2 * prompt + chosen + rejected``.

Truncation is decided once per pair. Right truncation keeps every side's first ``max_length`` tokens, as the
separate path does. Left truncation cuts the prompt, once, by what the longer answer needs, so both answers are
read against the same context: the separate path would cut the shorter answer's copy of the prompt less. Pairs
where that differs are counted (``share_prompt.pairs_cut_once`` in metrics.json).

Where it cannot be exact the trainer keeps the separate path and says why in metrics.json: an attention
implementation that takes no 4D mask (flash-attention's varlen kernels), a model that is not a causal decoder,
or a sliding window without per-layer attention types to give it its own mask.
"""

from __future__ import annotations

from dataclasses import dataclass

# attention implementations that read a custom 4D mask: SDPA as a boolean mask, eager as an additive one
MASKED_ATTENTION = ("sdpa", "eager")


@dataclass(frozen=True)
class PackedPair:
    """One pair as the packed row holds it: the shared prompt, then each answer's own tokens."""

    prompt: list[int]
    chosen: list[int]
    rejected: list[int]

    @property
    def length(self) -> int:
        return len(self.prompt) + len(self.chosen) + len(self.rejected)

    def views(self) -> tuple[list[int], list[int]]:
        """The two sequences the separate path would run for this pair."""
        return self.prompt + self.chosen, self.prompt + self.rejected


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def pack_pair(chosen: list[int], rejected: list[int], max_length: int, truncation_side: str) -> PackedPair:
    """Split two untruncated tokenised sides into (shared prompt, chosen answer, rejected answer), cut to
    ``max_length`` tokens per side. Each answer keeps at least one token: its reward is read at its last one."""
    shared = min(common_prefix(chosen, rejected), len(chosen) - 1, len(rejected) - 1)
    prompt, own_c, own_r = chosen[:shared], chosen[shared:], rejected[shared:]
    if truncation_side == "right":
        keep = min(len(prompt), max_length - 1)
        # tokens of the prompt past what fits are dropped on both sides alike, as the separate cut does
        own_c = (prompt[keep:] + own_c)[:max_length - keep]
        own_r = (prompt[keep:] + own_r)[:max_length - keep]
        return PackedPair(prompt[:keep], own_c, own_r)
    keep = max(0, min(len(prompt), max_length - max(len(own_c), len(own_r))))
    room = max_length - keep
    return PackedPair(prompt[len(prompt) - keep:], own_c[-room:], own_r[-room:])


def cut_differently(pair: PackedPair, chosen: list[int], rejected: list[int], max_length: int, side: str) -> bool:
    """Whether the separate path's per-side cut would give either side other tokens than ``pair`` does."""
    from rmflow.train.batching import cut

    return pair.views() != (cut(chosen, max_length, side), cut(rejected, max_length, side))


def why_not_shared(model) -> str | None:
    """None where the packed row gives the separate path's numbers for ``model``; else the reason it does not."""
    config = model.config
    implementation = getattr(config, "_attn_implementation", None) or "eager"
    if implementation not in MASKED_ATTENTION:
        return f"attention implementation {implementation} takes no block mask"
    if getattr(config, "is_encoder_decoder", False) or getattr(config, "use_bidirectional_attention", False):
        return "not a causal decoder: the prompt would see the answers"
    if not hasattr(getattr(model, "module", model), "score"):
        return f"{type(model).__name__} has no decoder 'score' head"
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if window and not (layer_types and "sliding_attention" in layer_types) and getattr(config, "use_sliding_window",
                                                                                          True):
        return "a sliding window without per-layer attention types"
    return None


def packed_batch(pairs: list[PackedPair], pad_id: int, config, device):
    """(input_ids, attention mask as the model takes it, position ids, index of each answer's last token (B, 2))
    for packed rows padded on the right."""
    import torch

    width = max(p.length for p in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    segment = torch.full((len(pairs), width), -1, dtype=torch.long)  # 0 prompt, 1 chosen, 2 rejected, -1 pad
    positions = torch.zeros((len(pairs), width), dtype=torch.long)
    ends = torch.zeros((len(pairs), 2), dtype=torch.long)
    for row, p in enumerate(pairs):
        n, c = len(p.prompt), len(p.chosen)
        ids[row, :p.length] = torch.tensor(p.prompt + p.chosen + p.rejected)
        segment[row, :n], segment[row, n:n + c], segment[row, n + c:p.length] = 0, 1, 2
        positions[row, :p.length] = torch.tensor([*range(n + c), *range(n, n + len(p.rejected))])
        ends[row] = torch.tensor([n + c - 1, p.length - 1])
    # the (B, W, W) masks are built where they are used: on a GPU, a CPU-built mask of 8k-token rows would cost
    # more per step than the copy of the small per-token tensors
    segment, positions = segment.to(device), positions.to(device)
    index = torch.arange(width, device=device)
    diagonal = torch.eye(width, dtype=torch.bool, device=device)[None]
    seg_q, seg_k = segment[:, :, None], segment[:, None, :]
    allowed = ((index[None, :, None] >= index[None, None, :]) & (seg_k >= 0)
               & ((seg_k == 0) | (seg_k == seg_q)))
    allowed |= diagonal  # pad queries see themselves: no all-masked softmax row
    masks = {"full_attention": allowed}
    window = getattr(config, "sliding_window", None)
    if "sliding_attention" in (getattr(config, "layer_types", None) or ()) and window:
        # transformers' sliding rule (kv_idx > q_idx - window) on positions: the distance each side's own sequence
        # would have
        near = positions[:, :, None] - positions[:, None, :] < window
        masks["sliding_attention"] = allowed & (near | diagonal)
    implementation = getattr(config, "_attn_implementation", None) or "eager"
    for name, mask in masks.items():
        mask = mask[:, None]
        if implementation == "eager":  # eager attention adds its mask to the scores
            mask = torch.zeros(mask.shape, device=device).masked_fill(~mask, torch.finfo(torch.float32).min)
        masks[name] = mask
    attention = masks if len(masks) > 1 else masks["full_attention"]
    return ids.to(device), attention, positions, ends.to(device)


def pair_head_outputs(model, pairs: list[PackedPair], pad_id: int, device, keep_hidden: bool = False):
    """Every head output for both sides of each pair, shape (2B, num_labels), rows [c0, r0, c1, r1, …]; with
    ``keep_hidden``, also the packed rows' last-layer hidden states (B, width, hidden) from the same forward."""
    import torch

    wrapped = getattr(model, "module", None)  # DistributedDataParallel: run the whole model through its forward
    inner = wrapped if wrapped is not None else model
    ids, mask, positions, ends = packed_batch(pairs, pad_id, inner.config, device)
    if wrapped is None:
        backbone = getattr(model, model.base_model_prefix)
        hidden = backbone(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
    else:
        hidden = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                       output_hidden_states=True).hidden_states[-1]
    rows = torch.arange(len(pairs), device=hidden.device)[:, None].expand(-1, 2)
    pooled = hidden[rows, ends].reshape(2 * len(pairs), hidden.shape[-1])
    scores = inner.score(pooled.to(inner.score.weight.dtype)).float()
    return (scores, hidden) if keep_hidden else scores


def answer_predictors(pair: PackedPair) -> tuple[tuple[list[int], list[int]], tuple[list[int], list[int]]]:
    """For each answer of a packed row, (positions whose next-token prediction is one of its tokens, those
    tokens). The first answer token of either side is predicted from the prompt's last position, as in its own
    sequence; without a prompt an answer's first token has no predictor and is left out."""
    n, c, r = len(pair.prompt), len(pair.chosen), len(pair.rejected)
    if n:
        chosen = ([n - 1, *range(n, n + c - 1)], pair.chosen)
        rejected = ([n - 1, *range(n + c, n + c + r - 1)], pair.rejected)
    else:
        chosen = (list(range(0, c - 1)), pair.chosen[1:])
        rejected = (list(range(c, c + r - 1)), pair.rejected[1:])
    return chosen, rejected


def pair_outputs_in_parts(model, pairs: list[PackedPair], pad_id: int, device, max_padding: float,
                          keep_answers: bool = False):
    """``pair_head_outputs`` over forwards split by ``padding_chunks`` (each pads at most ``max_padding``), put
    back in the pairs' order; with ``keep_answers``, also each side's (hidden states predicting its answer tokens,
    those tokens) in the same order: ``answer_predictors`` read from the same forward."""
    import torch

    from rmflow.train.batching import in_input_order, padding_chunks

    chunks = padding_chunks([p.length for p in pairs], max_padding)
    parts, answers = [], []
    for chunk in chunks:
        batch = [pairs[i] for i in chunk]
        out = pair_head_outputs(model, batch, pad_id, device, keep_hidden=keep_answers)
        if keep_answers:
            out, hidden = out
            for row, pair in enumerate(batch):
                for where, tokens in answer_predictors(pair):
                    answers.append((hidden[row, where], torch.tensor(tokens, device=hidden.device)))
        parts.append(out)
    order = [2 * i + side for chunk in chunks for i in chunk for side in (0, 1)]
    return in_input_order(order, parts, answers if keep_answers else None)
