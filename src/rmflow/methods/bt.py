"""Bradley-Terry reward model (methods.md §1): a scalar head, loss −log σ(r_chosen − r_rejected [− margin])."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from rmflow.spec import RunSpec

log = logging.getLogger(__name__)

VERSION = 1
KIND = "scalar"


@dataclass(frozen=True)
class Config:
    """Bradley-Terry options beyond the shared training options."""

    center_rewards_coefficient: float = 0.0  # TRL's optional (r_c + r_r)^2 penalty; 0 = the recipe's plain BT loss


def bt_loss(r_chosen, r_rejected, margin=None, center_coefficient: float = 0.0):
    """Mean over pairs of −log σ(r_c − r_r − margin), plus the optional centring penalty."""
    import torch.nn.functional as F

    diff = r_chosen - r_rejected
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff).mean()
    if center_coefficient:
        loss = loss + center_coefficient * ((r_chosen + r_rejected) ** 2).mean()
    return loss


def encode_pairs(rows: list[dict], tokenizer, max_length: int, truncation_side: str) -> list[tuple[list, list]]:
    from tqdm.auto import tqdm

    from rmflow.train.batching import encode

    return [(encode(tokenizer, r["chosen"], max_length, truncation_side),
             encode(tokenizer, r["rejected"], max_length, truncation_side))
            for r in tqdm(rows, desc="tokenize", unit="pair")]


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    import torch

    from rmflow.data.prepare import read_pairs
    from rmflow.errors import RmflowError
    from rmflow.models.load import load_model, load_tokenizer
    from rmflow.models.scalar import rewards
    from rmflow.train.batching import length_grouped_batches, pad, padding_fraction
    from rmflow.train.config import TrainConfig
    from rmflow.train.loop import train_loop
    from rmflow.train.save import save_run

    config, options = TrainConfig.from_dict(spec.train), Config(**spec.options)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    source, start = data or spec.train_data, init or spec.base_model
    tokenizer = load_tokenizer(start, revision=spec.revision, trust_remote_code=spec.trust_remote_code)
    model = load_model(start, tokenizer, num_labels=1, revision=spec.revision,
                       trust_remote_code=spec.trust_remote_code)
    rows = read_pairs(source)
    margins = None
    if config.margin_field:
        missing = [i for i, r in enumerate(rows, 1) if not isinstance(r.get(config.margin_field), (int, float))]
        if missing:
            raise RmflowError(f"margin_field '{config.margin_field}' is not a number in {len(missing)} rows "
                              f"(first: row {missing[0]})", file=source, field=config.margin_field)
        margins = [float(r[config.margin_field]) for r in rows]
    pairs = encode_pairs(rows, tokenizer, config.max_length, config.truncation_side)
    lengths = [max(len(c), len(r)) for c, r in pairs]

    def epoch_batches(epoch: int) -> list[list[int]]:
        return length_grouped_batches(lengths, config.per_device_batch, config.seed + epoch, config.group_by_length)

    def loss_fn(model, indices: list[int]):
        # chosen and rejected of a pair side by side in one padded batch: [c0, r0, c1, r1, ...]
        sequences = [seq for i in indices for seq in pairs[i]]
        ids, mask = pad(sequences, tokenizer.pad_token_id, side="right")
        device = next(model.parameters()).device
        scores = rewards(model, ids.to(device), mask.to(device))
        r_chosen, r_rejected = scores[0::2], scores[1::2]
        margin = torch.tensor([margins[i] for i in indices], device=device) if margins else None
        loss = bt_loss(r_chosen, r_rejected, margin, options.center_rewards_coefficient)
        return loss, {"pairs": len(indices), "correct": int((r_chosen > r_rejected).sum()),
                      "tokens": int(mask.sum())}

    first_epoch = epoch_batches(0)
    pad_frac = padding_fraction([[s for i in b for s in pairs[i]] for b in first_epoch])
    log.info("%d pairs, %d micro-batches per epoch, padding fraction %.3f", len(pairs), len(first_epoch), pad_frac)
    result = train_loop(model, epoch_batches, len(first_epoch), loss_fn, config)
    metrics = {**result["metrics"], "padding_fraction": pad_frac, "train_pairs": len(pairs), "train_data": source,
               "initialised_from": start}
    save_run(result, tokenizer, spec, out_dir, metrics)


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = 16):
    """A scorer over a saved BT model, loaded with plain transformers."""
    from rmflow.models.load import load_model, load_tokenizer
    from rmflow.models.scalar import ScalarScorer
    from rmflow.spec import RunSpec
    from rmflow.train.config import TrainConfig

    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, tokenizer, num_labels=1)
    max_length, side = 4096, "left"
    try:
        config = TrainConfig.from_dict(RunSpec.read(f"{model_dir}/rmflow_run.json").train)
        max_length, side = config.max_length, config.truncation_side
    except Exception:  # a model not trained by rmflow: recipe defaults
        log.info("no rmflow_run.json in %s; scoring with max_length %d, truncation %s", model_dir, max_length, side)
    return ScalarScorer(model, tokenizer, max_length=max_length, truncation_side=side, batch_size=batch_size,
                        device=device)
