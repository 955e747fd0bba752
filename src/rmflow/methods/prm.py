"""Process reward model (methods.md §7): a causal LM answers "+" or "-" after every solution step.

Trained on Math-Shepherd-style step labels: the method's data set is of kind ``steps`` (formats step_rows,
prm_conversations or orm_conversations; on the embedded default the synthetic arithmetic solutions, a step being "-"
from the first wrong one on). A response's score is an aggregation of its steps' P(+): mean (the recipe),
min, prod or last; the choice is recorded in ``scores.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rmflow.methods.steps.chats import AGGREGATIONS
from rmflow.methods.steps.model import load_step_scorer, train_steps
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

VERSION = 1
KIND = "scalar"
STEP_LEVEL = True  # P(+) at every step: ProcessBench scores it (rmflow.evaluate.benchmarks.processbench)

# rmflow plan: one (packed) sequence per row, logits over the vocabulary at every step tag
SIZING = {"sequences_per_row": 1, "head": "lm", "logit_positions": 10}
READS = "steps"  # step-labelled chats, not preference pairs
OUTCOME = False


@dataclass(frozen=True)
class Config:
    """Step-label model options."""

    aggregation: str = "mean"  # mean | min | prod | last over the steps' P(+)
    packing: bool = False  # pack several conversations per training row (block-diagonal attention, own positions)
    packed_length: int = 1024  # tokens per packed row

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, not '{self.aggregation}'")


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    train_steps(spec, out_dir, OUTCOME, spec.options, data, init)


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    return load_step_scorer(model_dir, OUTCOME, device, batch_size)
