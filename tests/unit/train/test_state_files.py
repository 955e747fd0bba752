"""No pickle in a resume: a payload planted in each file a resume reads (the manifest rewritten to match, as a
group member with write access to shared results could) is never executed; the scheduler and RNG states come back
from JSON and safetensors exactly."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import random
from pathlib import Path

import pytest

from rmflow.errors import RmflowError
from rmflow.train import state_files
from rmflow.train.checkpoint import MANIFEST, Checkpointer


class Payload:
    """Unpickling this runs a shell command that creates ``marker``: the proof a file was opened as a pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def _trainer(seed: int = 0):
    import torch
    from accelerate import Accelerator
    from transformers import get_scheduler

    torch.manual_seed(seed)
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model, optimizer = accelerator.prepare(model, optimizer)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=2, num_training_steps=10)
    return accelerator, model, optimizer, scheduler


def _step(model, optimizer, scheduler):
    import torch

    model(torch.ones(4, 8)).sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    scheduler.step()


def _reseal(path: Path) -> None:
    """Rewrite the manifest so the planted file passes the integrity check (it authenticates nothing)."""
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["files"] = {str(p.relative_to(path)): {"bytes": p.stat().st_size,
                                                    "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                         for p in sorted(path.rglob("*")) if p.is_file() and p.name != MANIFEST}
    (path / MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture()
def saved(tmp_path):
    accelerator, model, optimizer, scheduler = _trainer()
    checkpointer = Checkpointer(tmp_path / "scratch", every=1, keep=3)
    for step in (1, 2):
        _step(model, optimizer, scheduler)
        checkpointer.save(accelerator, scheduler, step, {"step": step, "epoch": 0, "batch": step})
    return tmp_path, checkpointer


def test_a_checkpoint_holds_no_pickle(saved):
    _, checkpointer = saved
    newest = checkpointer.directory / "step-00000002"
    names = sorted(str(p.relative_to(newest)) for p in newest.rglob("*") if p.is_file())
    assert names == ["loop_state.json", "manifest.json", "model.safetensors", "optimizer.bin", "rng-0.json",
                     "rng-0.safetensors", "scheduler.json"]
    assert not state_files.pickles_in(newest)


def test_scheduler_and_random_states_come_back_exactly(saved):
    import numpy as np
    import torch

    _, checkpointer = saved
    # what the saved run's generators give next, taken from the checkpoint itself
    accelerator, model, optimizer, scheduler = _trainer(seed=1)
    state = checkpointer.restore(accelerator, scheduler)
    assert state["step"] == 2
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    lr = scheduler.get_last_lr()
    # a second, differently seeded restore lands on the same generators and schedule
    accelerator, model, optimizer, scheduler = _trainer(seed=7)
    random.seed(99)
    np.random.seed(99)
    checkpointer.restore(accelerator, scheduler)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert scheduler.get_last_lr() == lr and scheduler.last_epoch == 2


READ_ON_RESUME = ["model.safetensors", "optimizer.bin", "scheduler.json", "rng-0.json", "rng-0.safetensors",
                  "loop_state.json", "random_states_0.pkl", "custom_checkpoint_0.pkl"]


@pytest.mark.parametrize("name", READ_ON_RESUME)
def test_a_planted_payload_is_never_executed(saved, name, caplog):
    import torch

    tmp_path, checkpointer = saved
    marker = tmp_path / f"PWNED-{name}"
    newest = checkpointer.directory / "step-00000002"
    # torch.save's zip format for the files torch reads, a bare pickle for the others (accelerate's .pkl names)
    if name.endswith((".bin", ".pkl")):
        torch.save({"state": Payload(marker)}, newest / name)
    else:
        (newest / name).write_bytes(pickle.dumps(Payload(marker)))
    _reseal(newest)
    accelerator, model, optimizer, scheduler = _trainer(seed=3)
    with caplog.at_level(logging.WARNING):
        state = checkpointer.restore(accelerator, scheduler)
    assert not marker.exists(), f"the payload planted in {name} ran"
    assert state["step"] == 1, "the planted checkpoint must be skipped for the older good one"
    assert "step-00000002 is not usable" in caplog.text
    if name in ("optimizer.bin",):
        assert "torch refused to unpickle more than tensors" in caplog.text
    if name.endswith(".pkl"):
        assert "a pickle, which rmflow never writes and never opens" in caplog.text


def test_a_payload_in_every_checkpoint_stops_with_an_error_never_runs(saved):
    import torch

    tmp_path, checkpointer = saved
    marker = tmp_path / "PWNED"
    for path in checkpointer.directory.glob("step-*"):
        torch.save({"state": Payload(marker)}, path / "optimizer.bin")
        _reseal(path)
    accelerator, model, optimizer, scheduler = _trainer(seed=3)
    with pytest.raises(RmflowError, match="could be loaded.*failed part-way.*RMFLOW_STALE_CHECKPOINTS=restart"):
        checkpointer.restore(accelerator, scheduler)
    assert not marker.exists()


def test_no_torch_load_in_rmflow_reads_a_full_pickle():
    # every torch.load in the package passes weights_only=True (the DeepSpeed one included)
    import re

    package = Path(state_files.__file__).parents[1]
    calls = [(p.name, line.strip()) for p in package.rglob("*.py") for line in p.read_text().splitlines()
             if re.search(r"\btorch\.load\(", line)]
    assert calls and all("weights_only=True" in line for _, line in calls), calls
    assert not [p for p in package.rglob("*.py") if re.search(r"^\s*import pickle|pickle\.loads?\(",
                                                               p.read_text(), re.M)]
