"""ODIN, length-disentangled reward (methods.md §6): two linear heads on the last-token state.

Head 0 learns length, head 1 quality; training reward = their sum. Losses, per pair (the recipe summed rewards over
the batch before the log-sigmoid; §6 pitfall): BT ranking on the summed reward, (1 − Pearson(length, r_length)),
|Pearson(length, r_quality)| over the batch's responses, and |ŵ_length · ŵ_quality| on the centred, normalised
head weights. Inference reads the quality head only (``logits[:, 1]`` in plain transformers).
"""

from __future__ import annotations

from dataclasses import dataclass

from rmflow.methods.scalar.train import load_scalar_scorer, train_scalar
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

VERSION = 1
KIND = "scalar"
LENGTH_HEAD, QUALITY_HEAD = 0, 1
EXPORT_HEAD = QUALITY_HEAD  # rmflow export: the quality head, not the length head


@dataclass(frozen=True)
class Config:
    """ODIN loss weights (the recipe's correlation_with_length and ortho_reg)."""

    length_weight: float = 1.0  # weight of (1 − ρ(len, r_L)) + |ρ(len, r_Q)|
    ortho_weight: float = 1.0  # weight of |ŵ_L · ŵ_Q|


def pearson(x, y, eps: float = 1e-8):
    xc, yc = x - x.mean(), y - y.mean()
    return (xc * yc).sum() / (xc.norm() * yc.norm() + eps)


def orthogonality(weight):
    """|cos| between the two heads' centred weight rows."""
    import torch.nn.functional as F

    centred = weight - weight.mean(dim=1, keepdim=True)
    unit = F.normalize(centred, dim=1, eps=1e-8)
    return (unit[0] * unit[1]).sum().abs()


def gather_ranks(tensor):
    """``tensor`` (n, ...) of every process concatenated in rank order, with gradients flowing back to each rank's
    own rows; the tensor itself when there is one process. Ranks may hold different n (a short last batch)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    most = int(max(sizes).item())
    padded = torch.cat([tensor, tensor.new_zeros((most - tensor.shape[0], *tensor.shape[1:]))])
    return torch.cat([part[:int(n.item())] for part, n in zip(all_gather(padded), sizes)])


def odin_losses(scores, lengths, weight, config: Config, ortho=None) -> dict:
    """All ODIN terms for one batch. ``scores``: (2B, 2) rows [c0, r0, c1, r1, …]; ``lengths``: (2B,).

    The length correlations are computed over the global batch, gathered from every process as the seed does
    (per-rank Pearson is noisier and changes with the process count): each rank's loss holds the same correlation
    terms, and after DDP's (or ZeRO's) gradient averaging the update equals one process's on the whole batch."""
    import torch.nn.functional as F

    total = scores[:, LENGTH_HEAD] + scores[:, QUALITY_HEAD]
    rank = -F.logsigmoid(total[0::2] - total[1::2]).mean()
    every_score, every_length = gather_ranks(scores), gather_ranks(lengths)
    length_fit = 1 - pearson(every_length, every_score[:, LENGTH_HEAD])
    quality_free = pearson(every_length, every_score[:, QUALITY_HEAD]).abs()
    ortho = orthogonality(weight) if ortho is None else ortho
    loss = rank + config.length_weight * (length_fit + quality_free) + config.ortho_weight * ortho
    return {"loss": loss, "rank": rank, "length_fit": length_fit, "quality_free": quality_free, "ortho": ortho}


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    import torch

    from rmflow.data.prepare import read_pairs
    from rmflow.models.load import load_tokenizer

    options = spec.options
    tokenizer = load_tokenizer(init or spec.base_model, revision=spec.revision,
                               trust_remote_code=spec.trust_remote_code)
    # response length in tokens of the base tokenizer: the last assistant turn of each side
    length_of = [[len(tokenizer(r[side][-1]["content"], add_special_tokens=False)["input_ids"])
                  for side in ("chosen", "rejected")] for r in read_pairs(data or spec.train_data)]

    # The head-orthogonality term is computed while the score head runs: under ZeRO-3 its weight is whole only
    # inside its own forward (outside it each rank holds a shard). prepend=True runs the hook before DeepSpeed's
    # own post-forward hook releases the gathered weight.
    latest = {}

    def keep_orthogonality(model) -> None:
        model.score.register_forward_hook(lambda module, args, out: latest.update(ortho=orthogonality(module.weight)),
                                          prepend=True)

    def pair_loss(batch):
        lengths = torch.tensor([n for i in batch.indices for n in length_of[i]], dtype=batch.scores.dtype,
                               device=batch.scores.device)
        losses = odin_losses(batch.scores, lengths, None, options, ortho=latest.pop("ortho"))
        # its four terms logged beside the loss (train_log.jsonl "terms", train/<term> in the trackers)
        return losses["loss"], {name: losses[name] for name in ("rank", "length_fit", "quality_free", "ortho")}

    train_scalar(spec, out_dir, num_labels=2, pair_loss=pair_loss, reward_head=QUALITY_HEAD, data=data, init=init,
                 extra_metrics={"reward_head": QUALITY_HEAD, "length_head": LENGTH_HEAD},
                 prepare_model=keep_orthogonality)


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    return load_scalar_scorer(model_dir, device, batch_size, num_labels=2, head=QUALITY_HEAD)
