"""Tokenise conversations once and group them into length-sorted batches so padding stays small."""

from __future__ import annotations

import random

from rmflow.errors import RmflowError

SYSTEM_TURN_RULES = ("template", "merge", "error")


def apply_system_rule(messages: list[dict], rule: str) -> list[dict]:
    """A leading system turn as the base model's rule says: kept for the template, merged into the first user turn
    (system text, a blank line, then the user text), or refused."""
    if not messages or messages[0]["role"] != "system" or rule == "template":
        return messages
    if rule == "error":
        raise RmflowError("a conversation opens with a system turn but this base model's system_turn rule is "
                          "'error' (set base_models.<base>.system_turn: merge to fold it into the first user turn)",
                          field="system_turn")
    system, rest = messages[0], messages[1:]
    if not rest:
        return [{"role": "user", "content": system["content"]}]
    return [{**rest[0], "content": f"{system['content']}\n\n{rest[0]['content']}"}, *rest[1:]]


def render(tokenizer, messages: list[dict], generation_prompt: bool = False) -> str:
    """Chat-template text; ``generation_prompt`` appends the assistant header (the answer comes next).

    A leading system turn follows the tokenizer's ``rmflow_system_turn`` rule (set by ``load_tokenizer``)."""
    rule = getattr(tokenizer, "rmflow_system_turn", "template")
    messages = apply_system_rule(messages, rule)
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as exc:  # jinja's TemplateError from raise_exception() in the template
        if messages and messages[0]["role"] == "system" and type(exc).__name__ == "TemplateError":
            raise RmflowError(f"the chat template of '{tokenizer.name_or_path}' rejects a system turn ({exc}); set "
                              "base_models.<base>.system_turn: merge to fold it into the first user turn",
                              field="system_turn") from exc
        # any other failure of the template on a conversation (a template error, a missing variable, a wrong
        # role order): one error naming the model and the conversation, not a traceback from inside jinja
        roles = "/".join(m.get("role", "?") for m in messages)
        first = next((str(m.get("content", "")) for m in messages if m.get("role") == "user"), "")[:60]
        raise RmflowError(f"the chat template of '{tokenizer.name_or_path}' fails on a conversation (roles {roles}; "
                          f"first user turn {first!r}): {type(exc).__name__}: {exc}", field="chat_template") from exc


def encode(tokenizer, messages: list[dict], max_length: int, truncation_side: str,
           generation_prompt: bool = False) -> list[int]:
    """Token ids of a rendered conversation, truncated to ``max_length`` on ``truncation_side``.

    The template already holds any BOS it wants, so special tokens are not added again: this is the rule that
    avoids the double BOS of the original scripts (methods-detail.md §1).
    """
    ids = tokenizer(render(tokenizer, messages, generation_prompt), add_special_tokens=False)["input_ids"]
    return cut(ids, max_length, truncation_side)


def cut(ids: list[int], max_length: int, truncation_side: str) -> list[int]:
    if len(ids) > max_length:
        ids = ids[-max_length:] if truncation_side == "left" else ids[:max_length]
    return ids


def encode_user_turn_end(tokenizer, messages: list[dict], max_length: int, truncation_side: str, *,
                         keep_bos: bool, keep_trailing_whitespace: bool) -> list[int]:
    """Token ids of ``messages`` rendered without the generation prompt, ending at the token that closes the last
    turn, as the seed reads two of its models:
    - its released pair-PM (useful_code/eval_reward_bench_pm.py): the BOS text removed and tokenized without
      special tokens, logits at the literal last token (``keep_bos=False, keep_trailing_whitespace=True``);
    - ArmoRM's gating feature (armo-rm/stage-2_prepare.py): the hidden state at the end-of-turn token before the
      assistant header, Llama-3's <|eot_id|>, Gemma-2's <end_of_turn> (``keep_bos=True`` — its tokenizer call adds
      the BOS back —, ``keep_trailing_whitespace=False``: the template's newline after the marker is skipped)."""
    text = render(tokenizer, messages, generation_prompt=False)
    if tokenizer.bos_token and not keep_bos:
        text = text.replace(tokenizer.bos_token, "")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    while not keep_trailing_whitespace and len(ids) > 1 and not tokenizer.decode([ids[-1]]).strip():
        ids = ids[:-1]
    return cut(ids, max_length, truncation_side)


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


def padding_chunks(lengths: list[int], max_padding: float) -> list[list[int]]:
    """Split one micro-batch's sequences into forward passes that each pad at most ``max_padding`` of their tokens.

    Sequences are taken longest first; a part closes when adding the next one would push its padded share over the
    limit. The parts' outputs are put back in order before the loss, so the loss is the one a single padded forward
    gives (the padding is masked either way); only the wasted compute on pad tokens goes. ``max_padding`` >= 1
    keeps a single forward.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    if max_padding >= 1:
        return [order]
    chunks: list[list[int]] = []
    for i in order:
        if chunks:
            current = chunks[-1]
            width = lengths[current[0]]
            real = sum(lengths[j] for j in current) + lengths[i]
            if 1 - real / (width * (len(current) + 1)) <= max_padding:
                current.append(i)
                continue
        chunks.append([i])
    return chunks


def padded_tokens(sequences: list[list[int]], max_padding: float) -> int:
    """Tokens a forward over ``sequences`` processes when split by ``padding_chunks``."""
    lengths = [len(s) for s in sequences]
    return sum(len(c) * max(lengths[i] for i in c) for c in padding_chunks(lengths, max_padding))


def in_input_order(order: list[int], parts: list, answers: list | None = None):
    """Outputs computed chunk by chunk put back in input order: ``order`` lists, per row of ``torch.cat(parts)``,
    the input position it belongs to. With ``answers`` (one item per row, in the same chunk order), also those, as
    ``(outputs, answers)``."""
    import torch

    index = torch.tensor(order, device=parts[0].device)
    inverse = torch.empty_like(index)
    inverse[index] = torch.arange(len(order), device=index.device)
    outputs = torch.cat(parts)[inverse]
    return outputs if answers is None else (outputs, [answers[k] for k in inverse.tolist()])

