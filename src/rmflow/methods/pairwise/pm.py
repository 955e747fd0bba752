"""Shared machinery of the pairwise preference model family (pair_pm, ssrm, rrm): methods.md sections 2-4.

A pair-PM is a causal LM asked, in one user turn, which of two responses is better; the answer is the single token
``A`` or ``B`` (``Same`` for RRM's neutral rows). Data on disk uses the recipe's PM chat layout:
``{"messages": [{"role": "user", "content": "[CONTEXT] … [RESPONSE A] … [RESPONSE B] … \\n"},
{"role": "assistant", "content": "A" | "B" | "Same"}]}``.
"""

from __future__ import annotations

import logging
import random

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)

A, B, TIE = "A", "B", "Same"
LABELS = (A, B, TIE)
# where the A/B answer is read: after the assistant header (as rmflow trains), or at the last token of the user
# turn rendered without it, BOS removed (the seed's scorer for its released pair-preference-model-LLaMA3-8B)
AFTER_GENERATION_PROMPT, USER_TURN_END = "after_generation_prompt", "user_turn_end"
SCORE_POSITIONS = (AFTER_GENERATION_PROMPT, USER_TURN_END)


def check_score_position(position: str, name: str = "score_position") -> str:
    if position not in SCORE_POSITIONS:
        raise ValueError(f"{name} must be one of {', '.join(SCORE_POSITIONS)}, not {position!r}")
    return position


def render_context(messages: list[dict]) -> str:
    """The recipe's model-independent context template (everything but the compared answers)."""
    parts = ["\n"]
    for message in messages:  # a system turn renders as "<turn> system"
        parts.append(f"\n\n<turn> {message['role']}\n {message['content']}")
    parts.append("\n\n\n")
    return "".join(parts)


def pm_prompt(context: list[dict], response_a: str, response_b: str) -> str:
    return f"[CONTEXT] {render_context(context)} [RESPONSE A] {response_a} [RESPONSE B] {response_b} \n"


def pm_row(context: list[dict], response_a: str, response_b: str, label: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": pm_prompt(context, response_a, response_b)},
                         {"role": "assistant", "content": label}], **extra}


def standard_to_pm(rows: list[dict], seed: int, both_orders: bool = False) -> list[dict]:
    """Standard pairs to PM rows; chosen lands on A or B by a seeded coin (or both orders when asked)."""
    rng = random.Random(seed)
    out = []
    for row in rows:
        context, good, bad = row["chosen"][:-1], row["chosen"][-1]["content"], row["rejected"][-1]["content"]
        if both_orders:
            out += [pm_row(context, good, bad, A), pm_row(context, bad, good, B)]
        elif rng.random() < 0.5:
            out.append(pm_row(context, good, bad, A))
        else:
            out.append(pm_row(context, bad, good, B))
    return out


def check_pm_rows(rows: list[dict], source: str) -> None:
    """Every PM row needs a user prompt and an assistant answer that is exactly A, B or Same."""
    for i, row in enumerate(rows, start=1):
        messages = row.get("messages")
        if not isinstance(messages, list) or len(messages) != 2:
            raise RmflowError("must be [user prompt, assistant answer]", file=source, row=i, field="messages")
        if messages[0].get("role") != "user" or not messages[0].get("content"):
            raise RmflowError("must be the user's pair-PM prompt", file=source, row=i, field="messages[0]")
        if messages[1].get("role") != "assistant" or messages[1].get("content") not in LABELS:
            raise RmflowError(f"the answer is {messages[1].get('content')!r}; a pair-PM answer must be one of "
                              f"{', '.join(LABELS)}", file=source, row=i, field="messages[1].content")


def answer_token_ids(tokenizer) -> dict[str, list[int]]:
    """Token ids of each answer; A and B must be single tokens (the scorer reads one position)."""
    ids = {label: tokenizer(label, add_special_tokens=False)["input_ids"] for label in LABELS}
    for label in (A, B):
        if len(ids[label]) != 1:
            raise RmflowError(f"answer '{label}' is {len(ids[label])} tokens in the tokenizer of "
                              f"'{tokenizer.name_or_path}'; the pair-PM needs 'A' and 'B' to be single tokens")
    return ids


def prompts_ids(tokenizer, prompts: list[str], max_length: int, truncation_side: str,
                position: str = AFTER_GENERATION_PROMPT) -> list[list[int]]:
    """``prompt_ids`` for many prompts, through the token cache (the same data set is tokenised once); with
    ``position`` user_turn_end, the seed scorer's ids ending at the user turn's last token."""
    from rmflow.train.batching import encode_user_turn_end
    from rmflow.train.token_cache import encode_all

    if check_score_position(position) == USER_TURN_END:
        return [encode_user_turn_end(tokenizer, [{"role": "user", "content": p}], max_length, truncation_side,
                                     keep_bos=False, keep_trailing_whitespace=True) for p in prompts]

    return encode_all(tokenizer, [[{"role": "user", "content": p}] for p in prompts], max_length, truncation_side,
                      generation_prompt=True, desc="tokenize prompts")


def prompt_ids(tokenizer, prompt: str, max_length: int, truncation_side: str) -> list[int]:
    """The chat-templated user turn followed by the assistant header: the answer is the next token."""
    from rmflow.train.batching import encode

    return encode(tokenizer, [{"role": "user", "content": prompt}], max_length, truncation_side,
                  generation_prompt=True)


def logits_at(model, input_ids, attention_mask, positions, positions_ids=None):
    """LM logits only at ``positions`` (batch, k), fp32: the full (batch, seq, vocab) tensor is never built.

    ``attention_mask`` is the usual (batch, seq) mask, or a (batch, 1, seq, seq) block mask for packed rows, which
    then come with their own ``positions_ids`` (restarting at 0 for every packed conversation). The model's own
    forward computes them (``logits_to_keep`` takes per-row positions): a DDP or DeepSpeed wrapper sees the work
    it must synchronise, and a head's own post-processing (Gemma-2's final-logit soft-capping) is applied exactly
    as in plain transformers."""
    from rmflow.models.scalar import position_ids

    out = model(input_ids=input_ids, attention_mask=attention_mask,
                position_ids=position_ids(attention_mask) if positions_ids is None else positions_ids,
                logits_to_keep=positions, use_cache=False)
    return out.logits.float()


def answer_loss(model, batch: list[tuple[list[int], list[int]]], pad_id: int, ab_ids: tuple[int, int]):
    """Cross-entropy on the answer tokens only (train_on_inputs false); accuracy on A/B rows by logit order."""
    import torch
    import torch.nn.functional as F

    from rmflow.train.batching import pad

    sequences = [p + a for p, a in batch]
    ids, mask = pad(sequences, pad_id, side="right")
    width = max(len(a) for _, a in batch)
    # position t predicts token t + 1: the answer's k-th token is predicted at len(prompt) - 1 + k
    positions = torch.tensor([[len(p) - 1 + min(k, len(a) - 1) for k in range(width)] for p, a in batch])
    targets = torch.tensor([a + [-100] * (width - len(a)) for _, a in batch])
    device = next(model.parameters()).device
    logits = logits_at(model, ids.to(device), mask.to(device), positions.to(device))
    targets = targets.to(device)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
    first = logits[:, 0, list(ab_ids)]
    is_ab = torch.tensor([a[0] in ab_ids and len(a) == 1 for _, a in batch], device=device)
    picks_label = (first.argmax(-1) == (targets[:, 0] == ab_ids[1]).long())
    return loss, {"pairs": int(is_ab.sum()), "correct": int((picks_label & is_ab).sum()), "tokens": int(mask.sum())}
