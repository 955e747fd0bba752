"""Scalar reward heads: pooling at the last real token and batched scoring of conversations."""

from __future__ import annotations

import logging

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


def hidden_at_last(model, input_ids, attention_mask):
    """Last-layer hidden state at the last real token (the embedding ArmoRM-style heads read)."""
    import torch

    backbone = getattr(model, model.base_model_prefix)
    out = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask))
    hidden = out.last_hidden_state
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(attention_mask)]


def head_outputs(model, input_ids, attention_mask):
    """Every output of a ``*ForSequenceClassification`` head at the last real token, shape (batch, num_labels)."""
    import torch

    wrapped = getattr(model, "module", None)  # DistributedDataParallel (multi-process training)
    inner = wrapped if wrapped is not None else model
    head = getattr(inner, "score", None)
    if head is None:
        raise TypeError(f"{type(inner).__name__} has no 'score' head; expected a decoder *ForSequenceClassification")
    if wrapped is None:
        pooled = hidden_at_last(model, input_ids, attention_mask)
    else:
        # DDP synchronises gradients only for work done inside its own forward, so the whole model must run
        # through it; the final (normed) hidden states are the ones hidden_at_last reads from the backbone.
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask),
                    output_hidden_states=True)
        hidden = out.hidden_states[-1]
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(attention_mask)]
    return head(pooled.to(head.weight.dtype)).float()


def rewards(model, input_ids, attention_mask, head: int = 0):
    """The reward output ``head`` of a sequence classifier, shape (batch,)."""
    return head_outputs(model, input_ids, attention_mask)[:, head]


class ScalarScorer:
    """Scores conversations with a scalar RM, batching rows of similar length."""

    kind = "scalar"

    def __init__(self, model, tokenizer, max_length: int = 4096, truncation_side: str = "left",
                 batch_size: int = 16, device: str = "cpu", head: int = 0, max_batch_tokens: int = 8192):
        self.model, self.tokenizer, self.head = model.eval().to(device), tokenizer, head
        self.max_length, self.truncation_side = max_length, truncation_side
        self.batch_size, self.device = batch_size, device
        self.max_batch_tokens = max_batch_tokens  # long texts go in smaller batches (attention grows with length^2)

    def score_conversations(self, conversations: list[list[dict]], progress: bool = True) -> list[float]:
        import torch
        from tqdm.auto import tqdm

        from rmflow.train.token_cache import encode_all

        encoded = encode_all(self.tokenizer, conversations, self.max_length, self.truncation_side)
        scores = [0.0] * len(encoded)
        with torch.inference_mode():
            for idx in tqdm(self.batches([len(e) for e in encoded]), desc="score", disable=not progress):
                ids, mask = pad([encoded[i] for i in idx], self.tokenizer.pad_token_id)
                values = rewards(self.model, ids.to(self.device), mask.to(self.device), self.head)
                for i, value in zip(idx, values.tolist()):
                    scores[i] = value
        return scores

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
        n = len(rows)
        scores = self.score_conversations([r["chosen"] for r in rows] + [r["rejected"] for r in rows])
        return {"score_chosen": scores[:n], "score_rejected": scores[n:]}
