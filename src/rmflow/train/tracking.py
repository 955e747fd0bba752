"""Training curves where researchers look for them: TensorBoard or Weights & Biases through accelerate's trackers.

``train.report_to: [tensorboard]`` (or ``[wandb]``, both, or none: the default) logs loss, accuracy, learning rate
and tokens/s at every logging step under the run name ``<method>/<base>``. TensorBoard event files go to
``results/tracking/<method>/<base>/`` (the CLI's ``--tracking-dir``); W&B runs offline when no API key is set (sync
later with ``wandb sync``). ``train_log.jsonl`` beside the model keeps the same numbers either way.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)

TRACKERS = ("tensorboard", "wandb")
_run: dict = {"name": "rmflow", "directory": None}


@contextlib.contextmanager
def tracking_run(name: str, directory: str | os.PathLike | None):
    """Name and folder of the training started inside this block (the CLI sets them from the run spec)."""
    previous = dict(_run)
    _run.update(name=name, directory=Path(directory) if directory else None)
    try:
        yield
    finally:
        _run.update(previous)


def accelerator_options(report_to) -> dict:
    """``log_with``/``project_dir`` for ``Accelerator`` (empty when nothing is tracked)."""
    trackers = list(report_to or [])
    unknown = sorted(set(trackers) - set(TRACKERS))
    if unknown:
        raise RmflowError(f"unknown tracker(s) {unknown} (known: {', '.join(TRACKERS)})", field="train.report_to")
    if not trackers:
        return {}
    if "wandb" in trackers and not os.environ.get("WANDB_API_KEY") and "WANDB_MODE" not in os.environ:
        os.environ["WANDB_MODE"] = "offline"  # no key: log locally, `wandb sync` uploads later
        log.info("Weights & Biases: no WANDB_API_KEY, logging offline (wandb sync uploads the run later)")
    directory = _run["directory"] or Path("results/tracking") / _run["name"]
    Path(directory).mkdir(parents=True, exist_ok=True)
    return {"log_with": trackers, "project_dir": str(directory)}


def start(accelerator, report_to, config: dict) -> None:
    if report_to:
        # TensorBoard cannot store lists or None as hyperparameters: keep the scalar ones
        hparams = {k: v for k, v in config.items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers(_run["name"].replace("/", "_"), config=hparams,
                                  init_kwargs={"wandb": {"name": _run["name"]}})


def record(accelerator, report_to, values: dict, step: int) -> None:
    if report_to:
        accelerator.log(values, step=step)


def finish(accelerator, report_to) -> None:
    if report_to:
        accelerator.end_training()
