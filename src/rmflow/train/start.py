"""The opening every trainer shares (BT/ODIN, the outcome classifier, pair-PM, PRM/ORM): one function, so a seed, a
revision or a load option is handled the same way by all of them."""

from __future__ import annotations

import random
from typing import Any, Callable, NamedTuple

from rmflow.spec import RunSpec
from rmflow.train.config import TrainConfig


class RunStart(NamedTuple):
    """What a trainer starts from, in the order a trainer unpacks it."""

    config: TrainConfig  # the spec's training options
    source: str  # the rows it trains on: ``data`` or the spec's train_data
    start: str  # the weights it starts from: ``init`` (an SSRM round's previous model) or the spec's base
    rows: Any  # what ``read(source)`` returned
    tokenizer: Any
    model: Any  # fp32, loaded with the base's revision, remote-code rule and attention


def start_run(spec: RunSpec, read: Callable[[str], Any], data: str | None = None, init: str | None = None,
              **load_options) -> RunStart:
    """Seed Python's and torch's generators from ``train.seed``, read the training rows, then load the tokenizer and
    the model (``load_options``: num_labels, auto_class). The rows are read first so that a bad row stops the job in
    seconds rather than after a model load; reading draws no random numbers, so the head's initialisation is the
    same either way."""
    import torch

    from rmflow.models.load import load_for_run

    config = spec.train
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    source, start = data or spec.train_data, init or spec.base_model
    rows = read(source)
    tokenizer, model = load_for_run(spec, start, **load_options)
    return RunStart(config, source, start, rows, tokenizer, model)
