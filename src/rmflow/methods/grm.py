"""Generalizable reward model (Yang et al., NeurIPS 2024, "Regularizing Hidden States Enables Learning Generalizable
Reward Model for LLMs"): the BT loss regularised by the language-model loss of the chosen answer, read from the same
hidden states the reward head reads, so the backbone keeps its text-generation ability.

The loss, as the authors' trainer computes it (reward_models/grm_reward_trainer.py, ``GRMRewardTrainer.compute_loss``
with its script defaults ``sft_only``, ``reference_free``, scripts/train_grm_full.sh ``weight_ratio=0.01``)::

    loss = alpha * -log sigmoid(beta * log p(chosen answer | prompt)) + (1 - alpha) * BT loss

``log p`` is the sum of the chosen answer's token log-probabilities under the base model's LM head (the prompt is
masked). The LM head is the base's own: the input embedding where the base ties them (Gemma), else the base's
``lm_head`` weight, trained with the model and left out of the saved reward model, which stays a plain
``*ForSequenceClassification``. Gemma-2's final logit soft-capping is applied as its causal LM applies it.

Where rmflow differs from the authors' default script: the reward head is the linear ``score`` head every scalar
method here uses (their script's default is a one-hidden-layer MLP value head, ``layer_type='mlp'``), so the saved
model loads in plain transformers and ``alpha: 0`` is BT bit for bit (tests/unit/methods/test_grm.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from rmflow.methods.bt import bt_loss
from rmflow.methods.scalar.train import load_scalar_scorer, train_scalar
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

VERSION = 1
KIND = "scalar"
EXPORT_HEAD = 0  # rmflow export: the reward head (the LM head is a training-time regulariser only)
# the LM head's name inside the model's training-only modules (rmflow.train.save.TRAINING_ONLY: trained and
# checkpointed, left out of the saved model)
LM_HEAD = "lm_head"
# rmflow plan: BT's shape plus the LM head's logits over the chosen answer's tokens (one text in two): planned at up
# to 2,048 answer tokens a chosen text, 1,024 a text on average (fp32 logits and their log-softmax)
SIZING = {"logit_positions": 1024}


@dataclass(frozen=True)
class Config:
    """GRM options: the authors' defaults (train_grm_full.sh; GRMRewardTrainer's beta)."""

    alpha: float = 0.01  # weight of the text-generation term (the script's weight_ratio); 0 = plain BT
    beta: float = 0.1  # the SFT term is -log sigmoid(beta * log p(chosen answer))


def reward_loss(batch):
    """The BT term: -log sigmoid(r_chosen - r_rejected [- margin]), as BT trains it."""
    return bt_loss(batch.scores[0::2, 0], batch.scores[1::2, 0], batch.margin)


def sft_term(logps, beta: float):
    """The authors' ``sft_only`` regulariser: mean over pairs of -log sigmoid(beta * log p(chosen answer))."""
    import torch.nn.functional as F

    return -F.logsigmoid(beta * logps).mean()


def answer_logps(lm_head, answers, softcap: float | None):
    """Summed log-probability of each answer's tokens under ``lm_head`` from the hidden states that predict them."""
    import torch

    sums = []
    for hidden, tokens in answers:
        logits = lm_head(hidden).float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        sums.append(torch.gather(logits.log_softmax(-1), 1, tokens[:, None]).sum())
    return torch.stack(sums)


def attach_lm_head(model, base: str, revision: str | None) -> None:
    """Give the classifier its base's LM head as a training-only module (``TRAINING_ONLY``): the input embedding's
    own parameter where the base ties them, else a linear layer holding the base's ``lm_head.weight``."""
    import torch

    from rmflow.models.load import base_tensor
    from rmflow.train.save import TRAINING_ONLY

    embedding = model.get_input_embeddings()
    vocab, hidden = embedding.weight.shape
    head = torch.nn.Linear(hidden, vocab, bias=False, device="meta")
    if getattr(model.config, "tie_word_embeddings", False):
        head.weight = embedding.weight  # one parameter, as the causal LM ties it: trained through both uses
    else:
        weight = base_tensor(base, "lm_head.weight", revision)
        head.weight = torch.nn.Parameter(weight.to(embedding.weight.dtype))
    setattr(model, TRAINING_ONLY, torch.nn.ModuleDict({LM_HEAD: head}))


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    from rmflow.train.save import TRAINING_ONLY

    options = spec.options
    if options.alpha == 0:  # no regulariser: BT's own path, with no LM head and no hidden states kept
        train_scalar(spec, out_dir, num_labels=1, pair_loss=reward_loss, data=data, init=init,
                     extra_metrics={"grm": {"alpha": 0.0, "lm_head": None}})
        return
    record = {"alpha": options.alpha, "beta": options.beta}  # metrics.json "grm"; the head is named once loaded

    def prepare(model) -> None:
        attach_lm_head(model, init or spec.base_model, spec.revision)
        tied = bool(getattr(model.config, "tie_word_embeddings", False))
        record.update(lm_head="tied input embedding" if tied else "base lm_head",
                      softcap=getattr(model.config, "final_logit_softcapping", None))

    def pair_loss(batch):
        inner = getattr(batch.model, "module", batch.model)
        reward = reward_loss(batch)
        logps = answer_logps(getattr(inner, TRAINING_ONLY)[LM_HEAD], batch.answers[0::2], record["softcap"])
        sft = sft_term(logps, options.beta)
        loss = options.alpha * sft + (1 - options.alpha) * reward
        return loss, {"reward": reward.detach(), "sft": sft.detach()}

    train_scalar(spec, out_dir, num_labels=1, pair_loss=pair_loss, data=data, init=init, prepare_model=prepare,
                 answer_states=True, extra_metrics={"grm": record})


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    """A scorer over a saved GRM: a plain sequence classifier, as BT's."""
    return load_scalar_scorer(model_dir, device, batch_size)
