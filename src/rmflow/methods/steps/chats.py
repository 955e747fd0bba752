"""Process and outcome reward models (methods.md §7): step chats with "+"/"-" answers, trained on labels only.

A PRM conversation: user turn 1 = problem + " " + step 1, each later user turn = the next step, every assistant turn
"+" or "-". The ORM puts the whole solution in one user turn with one label (the last step's). Token ids are built
turn by turn from the chat template, so the position of every label token is known; scoring fixes every label to
"+" and reads P(+) at all steps in a single forward pass (the recipe ran one pass per step, §7 pitfall).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rmflow.data.layouts import MINUS, PLUS, step_messages  # noqa: F401 - step_messages is used by the scorers
from rmflow.errors import RmflowError

log = logging.getLogger(__name__)

AGGREGATIONS = ("mean", "min", "prod", "last")


def split_steps(answer: str, separator: str = "\n") -> list[str]:
    """Steps of a solution: its non-empty pieces between separators (by default its lines), stripped."""
    return [piece.strip() for piece in answer.split(separator) if piece.strip()]


@dataclass(frozen=True)
class StepText:
    """How a candidate data set writes a solution's steps: a property of the data set (config ``datasets.<name>.
    steps``), not of the model. Undeclared (the default): steps are lines and the ORM reads them rejoined by
    newlines. Declared, as the seed's scorers read RLHFlow's sets (math-rm/prm_evaluate.py, orm_evaluate.py):
    the PRM splits on ``separator`` (Mistral trajectories "ки\\n", Deepseek "\\n\\n") and strips each piece, the
    ORM reads the whole answer with each ``outcome_remove`` string deleted (Mistral's " ки" step tags)."""

    separator: str = "\n"
    outcome_remove: tuple[str, ...] = ()
    declared: bool = False

    @classmethod
    def of(cls, declared: dict | None) -> "StepText":
        if not declared:
            return cls()
        unknown = sorted(set(declared) - {"separator", "outcome_remove"})
        if unknown or not isinstance(declared.get("separator", "\n"), str) or not declared.get("separator", "\n"):
            raise RmflowError(f"steps takes a non-empty separator and outcome_remove strings, not {declared}",
                              field="steps")
        return cls(declared.get("separator", "\n"), tuple(declared.get("outcome_remove") or ()), True)

    def chat(self, problem: str, answer: str, outcome: bool) -> list[dict]:
        """The chat a PRM (every step labelled "+") or an ORM scores for one answer."""
        if outcome and self.declared:
            for tag in self.outcome_remove:
                answer = answer.replace(tag, "")
            return step_messages(problem, [answer], None, outcome=True)
        steps = split_steps(answer, self.separator) or [answer.strip() or "(empty)"]
        return step_messages(problem, steps, None, outcome)


def outcome_messages(messages: list[dict]) -> list[dict]:
    """A PRM chat as the ORM sees it: the user turns joined into one (the whole solution), the last label.

    For a chat built from step rows this is exactly ``step_messages(..., outcome=True)``: user turn 1 is the problem
    plus step 1 and every later user turn the next step, joined by newlines (RLHFlow's ORM data is built the same
    way from its PRM trajectories)."""
    if len(messages) == 2:
        return list(messages)
    users = [m["content"] for m in messages if m["role"] == "user"]
    return [{"role": "user", "content": "\n".join(users)}, {"role": "assistant", "content": messages[-1]["content"]}]


def problem_and_solution(row: dict) -> tuple[str, str]:
    """(question, solution) of a steps row: its own prompt and steps when the source had them, else split the
    outcome chat's user turn at the first "Step 1" (the rule of the recipe's scalar ORM, methods-detail.md §7)."""
    if row.get("prompt") is not None and row.get("steps") is not None:
        return row["prompt"], "\n".join(row["steps"])
    text = outcome_messages(row["messages"])[0]["content"]
    at = text.find("Step 1")
    if at <= 0:
        raise RmflowError("cannot tell the question from the solution: no 'Step 1' after the question (the "
                          "scalar ORM needs step rows with a prompt, or solutions that start with 'Step 1')",
                          file=row.get("__file__"), row=row.get("__row__"), field="messages")
    return text[:at].strip(), text[at:].strip()


def label_count(messages: list[dict]) -> int:
    return sum(m["role"] == "assistant" for m in messages)


def label_ids(tokenizer) -> tuple[int, int]:
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in (PLUS, MINUS)]
    for text, tokens in zip((PLUS, MINUS), ids):
        if len(tokens) != 1:
            raise RmflowError(f"label '{text}' is {len(tokens)} tokens in the tokenizer of "
                              f"'{tokenizer.name_or_path}'; step labels must be single tokens")
    return ids[0][0], ids[1][0]


def encode_conversation(tokenizer, messages: list[dict], ids_of: dict[str, int]) -> tuple[list[int], list[int]]:
    """Token ids of the chat and the index of every assistant label token in them."""
    messages = [{**m, "content": m["content"].strip()} if m["role"] == "assistant" else m for m in messages]
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

    from rmflow.methods.pairwise.pm import logits_at
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

    from rmflow.methods.pairwise.pm import logits_at

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
