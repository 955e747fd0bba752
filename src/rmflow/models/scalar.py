"""Scalar reward heads: pooling at the last real token and batched scoring of conversations."""

from __future__ import annotations

import logging

from rmflow.options import SCORE_BATCH_SIZE
from rmflow.train.batching import pad

log = logging.getLogger(__name__)


def last_token_index(attention_mask):
    """Index of the last position whose mask is 1, for left or right padding alike.

    Pooling on the mask rather than searching for the pad id keeps working when pad == eos (methods-detail §1a).
    """
    import torch

    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
    return (positions * attention_mask).argmax(-1)


def position_ids(attention_mask):
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def last_hidden(model, input_ids, attention_mask):
    """The backbone's last-layer (normed) hidden states at every position, (batch, length, hidden)."""
    backbone = getattr(model, model.base_model_prefix)
    return backbone(input_ids=input_ids, attention_mask=attention_mask,
                    position_ids=position_ids(attention_mask)).last_hidden_state


def hidden_at_last(model, input_ids, attention_mask):
    """Last-layer hidden state at the last real token (the embedding ArmoRM-style heads read)."""
    import torch

    hidden = last_hidden(model, input_ids, attention_mask)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(attention_mask)]


def head_outputs(model, input_ids, attention_mask, keep_hidden: bool = False):
    """Every output of a ``*ForSequenceClassification`` head at the last real token, shape (batch, num_labels);
    with ``keep_hidden``, also the last layer's hidden states at every position (batch, length, hidden) from the
    same forward (a loss that reads them, e.g. GRM's LM term, then needs no second forward)."""
    import torch

    wrapped = getattr(model, "module", None)  # DistributedDataParallel (multi-process training)
    inner = wrapped if wrapped is not None else model
    head = getattr(inner, "score", None)
    if head is None:
        raise TypeError(f"{type(inner).__name__} has no 'score' head; expected a decoder *ForSequenceClassification")
    if wrapped is None:
        hidden = last_hidden(model, input_ids, attention_mask)
    else:
        # DDP synchronises gradients only for work done inside its own forward, so the whole model must run
        # through it; the final (normed) hidden states are the ones the backbone alone returns.
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask),
                    output_hidden_states=True)
        hidden = out.hidden_states[-1]
    pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(attention_mask)]
    scores = head(pooled.to(head.weight.dtype)).float()
    return (scores, hidden) if keep_hidden else scores


def rewards(model, input_ids, attention_mask, head: int = 0):
    """The reward output ``head`` of a sequence classifier, shape (batch,)."""
    return head_outputs(model, input_ids, attention_mask)[:, head]


class ScalarScorer:
    """Scores conversations with a scalar RM, batching rows of similar length."""

    kind = "scalar"

    def __init__(self, model, tokenizer, max_length: int = 4096, truncation_side: str = "left",
                 batch_size: int = SCORE_BATCH_SIZE, device: str = "cpu", head: int = 0,
                 max_batch_tokens: int = 8192):
        self.model, self.tokenizer, self.head = model.eval().to(device), tokenizer, head
        self.max_length, self.truncation_side = max_length, truncation_side
        self.batch_size, self.device = batch_size, device
        self.max_batch_tokens = max_batch_tokens  # long texts go in smaller batches (attention grows with length^2)

    def score_conversations(self, conversations: list[list[dict]], progress: bool = True,
                            groups: list[list[int]] | None = None) -> list[float]:
        """A reward per conversation. ``groups`` (lists of indices whose conversations share their prompt, such as
        the two sides of a pair) lets a shared token prefix be computed once: its keys and values are reused for
        every member's answer, which gives the same rewards (up to float rounding) for less compute."""
        import torch
        from tqdm.auto import tqdm

        from rmflow.train.token_cache import encode_all

        encoded = encode_all(self.tokenizer, conversations, self.max_length, self.truncation_side)
        scores = [0.0] * len(encoded)
        # on a CPU one unpadded sequence already keeps the cores busy: groups go one at a time, prefix computed
        # once; on a GPU, length-sorted batches of whole sequences keep the device full
        shared = self._shareable(encoded, groups or []) if str(self.device).startswith("cpu") else []
        rest = sorted(set(range(len(encoded))) - {i for group, _ in shared for i in group})
        with torch.inference_mode():
            for group, length in tqdm(shared, desc="score shared", disable=not progress or not shared):
                for i, value in zip(group, self._group_rewards(encoded, group, length)):
                    scores[i] = value
            for idx in tqdm(self.batches([len(encoded[i]) for i in rest]), desc="score", disable=not progress):
                members = [rest[i] for i in idx]
                ids, mask = pad([encoded[i] for i in members], self.tokenizer.pad_token_id)
                values = rewards(self.model, ids.to(self.device), mask.to(self.device), self.head)
                for i, value in zip(members, values.tolist()):
                    scores[i] = value
        return scores

    def _shareable(self, encoded: list[list[int]], groups: list[list[int]], min_shared: int = 32):
        """(group, shared prefix length) for groups worth sharing: a common prefix of at least ``min_shared`` tokens,
        no member cut at max_length (truncation would shift it), and within a sliding attention window."""
        window = getattr(self.model.config, "sliding_window", None) or float("inf")
        out = []
        for group in groups:
            seqs = [encoded[i] for i in group]
            if len(seqs) < 2 or any(len(s) >= self.max_length for s in seqs):
                continue
            shared = 0
            while shared < min(map(len, seqs)) - 1 and all(s[shared] == seqs[0][shared] for s in seqs):
                shared += 1
            if min_shared <= shared <= window:
                out.append((list(group), shared))
        return out

    def _group_rewards(self, encoded: list[list[int]], group: list[int], shared: int) -> list[float]:
        """The group's shared prefix in one forward (no padding), then each member's answer on top of the cached keys
        and values, one at a time (no padding either); the cache is cut back to the prefix after each answer."""
        import torch

        backbone = getattr(self.model, self.model.base_model_prefix)
        prefix = torch.tensor([encoded[group[0]][:shared]], device=self.device)
        cache = backbone(input_ids=prefix, use_cache=True).past_key_values
        head, out = self.model.score, []
        for i in group:
            suffix = torch.tensor([encoded[i][shared:]], device=self.device)
            positions = torch.arange(shared, shared + suffix.shape[1], device=self.device)[None, :]
            hidden = backbone(input_ids=suffix, position_ids=positions, past_key_values=cache,
                              use_cache=True).last_hidden_state[:, -1]
            out.append(head(hidden.to(head.weight.dtype)).float()[0, self.head].item())
            cache.crop(-suffix.shape[1])  # back to the prefix alone
        return out

    def batches(self, lengths: list[int], max_padding: float = 0.1) -> list[list[int]]:
        """Indices sorted by length, cut at batch_size rows, max_batch_tokens padded tokens, or when padding would
        exceed ``max_padding`` of the batch (on a CPU pad tokens cost as much as real ones)."""
        out, current, real = [], [], 0
        for i in sorted(range(len(lengths)), key=lambda j: lengths[j]):
            padded = (len(current) + 1) * lengths[i]
            if current and (len(current) >= self.batch_size or padded > self.max_batch_tokens
                            or 1 - (real + lengths[i]) / padded > max_padding):
                out.append(current)
                current, real = [], 0
            current.append(i)
            real += lengths[i]
        return out + [current] if current else out

    def score_pairs(self, rows: list[dict]) -> dict:
        """Both sides of every pair; a pair's shared prompt is computed once (see score_conversations)."""
        n = len(rows)
        scores = self.score_conversations([r["chosen"] for r in rows] + [r["rejected"] for r in rows],
                                          groups=[[i, n + i] for i in range(n)])
        return {"score_chosen": scores[:n], "score_rejected": scores[n:]}
