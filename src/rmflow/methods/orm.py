"""Outcome reward model (methods.md §7): the whole solution in one user turn, one "+" or "-" answer.

Trained on the same step-labelled chats as the PRM, seen as one user turn with the last step's label; its score is
that single P(+). Options and code are the PRM's (``aggregation`` has one value to aggregate).
"""

from __future__ import annotations

from rmflow.methods.prm import READS, Config  # noqa: F401 - the ORM's options and data are the PRM's
from rmflow.methods.steps.model import load_step_scorer, train_steps
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

VERSION = 1
KIND = "scalar"

# rmflow plan: one (packed) sequence per row, logits over the vocabulary at every step tag
SIZING = {"sequences_per_row": 1, "head": "lm", "logit_positions": 10}
OUTCOME = True


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    train_steps(spec, out_dir, OUTCOME, spec.options, data, init)


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    return load_step_scorer(model_dir, OUTCOME, device, batch_size)
