"""Scalar-head ORM (methods.md §7, the recipe's scalar_orm_train.py): a one-label sequence classifier, as for BT,
trained pointwise with BCE on each solution's outcome (y = 1 when its last step is "+").

It reads the PRM's step-labelled solutions and scores like any scalar RM (``logits[:, 0]`` in plain transformers).
"""

from __future__ import annotations

from rmflow.methods.prm import READS, Config  # noqa: F401 - same data and options as the PRM
from rmflow.methods.scalar.train import load_scalar_scorer
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

VERSION = 1
KIND = "scalar"
EXPORT_HEAD = 0  # rmflow export: the only output

# rmflow plan: pointwise, one solution per row
SIZING = {"sequences_per_row": 1}


def outcome_rows(rows: list[dict]) -> list[tuple[list[dict], float]]:
    """(conversation, label): the problem as the user turn, the solution as the answer, y = 1 for a final "+"."""
    from rmflow.methods.steps.chats import PLUS, problem_and_solution

    out = []
    for r in rows:
        question, solution = problem_and_solution(r)
        out.append(([{"role": "user", "content": question}, {"role": "assistant", "content": solution}],
                    1.0 if r["messages"][-1]["content"].strip() == PLUS else 0.0))
    return out


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    import torch
    import torch.nn.functional as F

    from rmflow.methods.steps.model import read_step_rows
    from rmflow.models.scalar import rewards
    from rmflow.train.batching import length_grouped_batches, pad, padding_fraction
    from rmflow.train.loop import train_loop
    from rmflow.train.save import save_run
    from rmflow.train.start import start_run
    from rmflow.train.token_cache import encode_all

    config, source, _, conversations, tokenizer, model = start_run(
        spec, lambda source: outcome_rows(read_step_rows(source)), data, init, num_labels=1)
    ids = encode_all(tokenizer, [conv for conv, _ in conversations], config.max_length, config.truncation_side)
    examples = [(seq, label) for seq, (_, label) in zip(ids, conversations)]
    lengths = [len(ids) for ids, _ in examples]

    def epoch_batches(epoch: int) -> list[list[int]]:
        return length_grouped_batches(lengths, config.per_device_batch, config.seed + epoch, config.group_by_length)

    def loss_fn(model, indices: list[int]):
        ids, mask = pad([examples[i][0] for i in indices], tokenizer.pad_token_id)
        device = next(model.parameters()).device
        logits = rewards(model, ids.to(device), mask.to(device))
        labels = torch.tensor([examples[i][1] for i in indices], device=device)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        return loss, {"pairs": len(indices), "correct": int(((logits > 0).float() == labels).sum()),
                      "tokens": int(mask.sum())}

    first_epoch = epoch_batches(0)
    pad_frac = padding_fraction([[examples[i][0] for i in b] for b in first_epoch])
    result = train_loop(model, epoch_batches, len(first_epoch), loss_fn, config)
    # "pairs"/"correct" count solutions here: train_accuracy is the outcome accuracy at logit 0
    save_run(result, tokenizer, spec, out_dir, {**result["metrics"], "padding_fraction": pad_frac,
                                                 "train_solutions": len(examples), "train_data": source,
                                                 "positive_share": sum(y for _, y in examples) / len(examples)})


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    return load_scalar_scorer(model_dir, device, batch_size)
