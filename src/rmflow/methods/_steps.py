"""Process and outcome reward models (methods.md §7): step chats with "+"/"-" answers, trained on labels only.

A PRM conversation: user turn 1 = problem + " " + step 1, each later user turn = the next step, every assistant turn
"+" or "-". The ORM puts the whole solution in one user turn with one label (the last step's). Token ids are built
turn by turn from the chat template, so the position of every label token is known; scoring fixes every label to
"+" and reads P(+) at all steps in a single forward pass (the recipe ran one pass per step, §7 pitfall).
"""

from __future__ import annotations

import logging

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)

PLUS, MINUS = "+", "-"
AGGREGATIONS = ("mean", "min", "prod", "last")


def split_steps(answer: str) -> list[str]:
    """Steps of a solution: its non-empty lines."""
    return [line.strip() for line in answer.split("\n") if line.strip()]


def step_messages(problem: str, steps: list[str], labels: list[bool] | None, outcome: bool) -> list[dict]:
    """The PRM chat (one user turn per step) or, with ``outcome``, the ORM chat (one turn, one label)."""
    if labels is None:
        labels = [True] * len(steps)
    if outcome:
        return [{"role": "user", "content": f"{problem} " + "\n".join(steps)},
                {"role": "assistant", "content": PLUS if labels[-1] else MINUS}]
    messages = []
    for i, (step, good) in enumerate(zip(steps, labels)):
        messages.append({"role": "user", "content": f"{problem} {step}" if i == 0 else step})
        messages.append({"role": "assistant", "content": PLUS if good else MINUS})
    return messages


def check_step_rows(rows: list[dict], source: str) -> None:
    for i, row in enumerate(rows, start=1):
        for field in ("problem", "steps", "labels"):
            if field not in row:
                raise RmflowError("is missing", file=source, row=row.get("__row__", i), field=field)
        if not row["steps"]:
            raise RmflowError("has no steps", file=source, row=row.get("__row__", i), field="steps")
        if len(row["labels"]) != len(row["steps"]):
            raise RmflowError(f"has {len(row['labels'])} labels for {len(row['steps'])} steps",
                              file=source, row=row.get("__row__", i), field="labels")


def label_ids(tokenizer) -> tuple[int, int]:
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in (PLUS, MINUS)]
    for text, tokens in zip((PLUS, MINUS), ids):
        if len(tokens) != 1:
            raise RmflowError(f"label '{text}' is {len(tokens)} tokens in the tokenizer of "
                              f"'{tokenizer.name_or_path}'; step labels must be single tokens")
    return ids[0][0], ids[1][0]


def encode_conversation(tokenizer, messages: list[dict], ids_of: dict[str, int]) -> tuple[list[int], list[int]]:
    """Token ids of the chat and the index of every assistant label token in them."""
    ids, positions, rendered = [], [], ""
    for k in range(1, len(messages), 2):
        prompt = tokenizer.apply_chat_template(messages[:k], tokenize=False, add_generation_prompt=True)
        if not prompt.startswith(rendered):
            raise RmflowError(f"the chat template of '{tokenizer.name_or_path}' re-renders earlier turns, so label "
                              "positions cannot be located turn by turn")
        ids += tokenizer(prompt[len(rendered):], add_special_tokens=False)["input_ids"]
        positions.append(len(ids))
        ids.append(ids_of[messages[k]["content"]])
        rendered = prompt + messages[k]["content"]
    return ids, positions


def aggregate(step_probs: list[float], how: str) -> float:
    if how not in AGGREGATIONS:
        raise RmflowError(f"aggregation must be one of {AGGREGATIONS}, not '{how}'", field="aggregation")
    if how == "mean":
        return sum(step_probs) / len(step_probs)
    if how == "min":
        return min(step_probs)
    if how == "last":
        return step_probs[-1]
    product = 1.0
    for p in step_probs:
        product *= p
    return product


def label_loss(model, batch: list[tuple[list[int], list[int]]], pad_id: int):
    """Cross-entropy on label tokens only: position t − 1 predicts the label at t; nothing else is a target."""
    import torch
    import torch.nn.functional as F

    from rmflow.methods._pairpm import logits_at
    from rmflow.train.batching import pad

    ids, mask = pad([seq for seq, _ in batch], pad_id)
    width = max(len(p) for _, p in batch)
    predict_at = torch.tensor([[p - 1 for p in pos] + [0] * (width - len(pos)) for _, pos in batch])
    targets = torch.tensor([[seq[p] for p in pos] + [-100] * (width - len(pos)) for seq, pos in batch])
    device = next(model.parameters()).device
    logits = logits_at(model, ids.to(device), mask.to(device), predict_at.to(device))
    targets = targets.to(device)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
    hit = (logits.argmax(-1) == targets) & (targets != -100)
    return loss, {"pairs": int((targets != -100).sum()), "correct": int(hit.sum()), "tokens": int(mask.sum())}


def pack(lengths: list[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: groups of example indices whose total length fits ``capacity``; nothing dropped."""
    bins: list[tuple[int, list[int]]] = []
    for i in sorted(range(len(lengths)), key=lambda j: -lengths[j]):
        for k, (used, members) in enumerate(bins):
            if used + lengths[i] <= capacity:
                bins[k] = (used + lengths[i], members + [i])
                break
        else:
            bins.append((lengths[i], [i]))
    return [members for _, members in bins]


def packed_label_loss(model, packs: list[list[tuple[list[int], list[int]]]], pad_id: int):
    """``label_loss`` over packed rows: conversations share a row but not attention (block-diagonal causal mask)
    and each restarts its position ids, so the loss equals the unpacked one."""
    import torch
    import torch.nn.functional as F

    from rmflow.methods._pairpm import logits_at

    width = max(sum(len(seq) for seq, _ in pack) for pack in packs)
    ids = torch.full((len(packs), width), pad_id)
    pos = torch.zeros((len(packs), width), dtype=torch.long)
    seg = torch.full((len(packs), width), -1)
    predict, targets = [], []
    for row, pack in enumerate(packs):
        offset, row_predict, row_targets = 0, [], []
        for k, (seq, positions) in enumerate(pack):
            ids[row, offset:offset + len(seq)] = torch.tensor(seq)
            pos[row, offset:offset + len(seq)] = torch.arange(len(seq))
            seg[row, offset:offset + len(seq)] = k
            row_predict += [offset + p - 1 for p in positions]
            row_targets += [seq[p] for p in positions]
            offset += len(seq)
        predict.append(row_predict)
        targets.append(row_targets)
    n = max(len(t) for t in targets)
    predict_at = torch.tensor([p + [0] * (n - len(p)) for p in predict])
    target = torch.tensor([t + [-100] * (n - len(t)) for t in targets])
    causal = torch.tril(torch.ones(width, width, dtype=torch.bool))
    allowed = (seg[:, :, None] == seg[:, None, :]) & causal & (seg[:, :, None] >= 0)
    allowed |= torch.eye(width, dtype=torch.bool)  # pad rows attend to themselves: no all-masked softmax
    device = next(model.parameters()).device
    logits = logits_at(model, ids.to(device), allowed[:, None].to(device), predict_at.to(device), pos.to(device))
    target = target.to(device)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)
    hit = (logits.argmax(-1) == target) & (target != -100)
    return loss, {"pairs": int((target != -100).sum()), "correct": int(hit.sum()), "tokens": int((seg >= 0).sum())}
