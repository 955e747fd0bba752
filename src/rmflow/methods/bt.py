"""Bradley-Terry reward model (methods.md §1): a scalar head, loss −log σ(r_chosen − r_rejected [− margin])."""

from __future__ import annotations

from dataclasses import dataclass

from rmflow.methods.scalar.train import load_scalar_scorer, train_scalar
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

VERSION = 1
KIND = "scalar"
EXPORT_HEAD = 0  # rmflow export: the only output


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


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    options = spec.options

    def pair_loss(batch):
        return bt_loss(batch.scores[0::2, 0], batch.scores[1::2, 0], batch.margin, options.center_rewards_coefficient)

    train_scalar(spec, out_dir, num_labels=1, pair_loss=pair_loss, data=data, init=init)


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    """A scorer over a saved BT model, loaded with plain transformers."""
    return load_scalar_scorer(model_dir, device, batch_size)
