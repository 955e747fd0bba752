"""The parts of a checkpoint rmflow writes itself, so that nothing a resume reads can run code.

accelerate's ``save_state`` writes the model (safetensors), the optimizer (``torch.save``; read back with
``weights_only=True``), every process's RNG states (``random_states_<rank>.pkl``) and each object registered for
checkpointing (``custom_checkpoint_<n>.pkl``, read back with ``weights_only=False``: a planted one runs its payload
on the next resume). So rmflow registers nothing, deletes the RNG pickles right after ``save_state``, and writes
instead:

- ``scheduler.json``: the LR scheduler's ``state_dict`` (numbers and lists only);
- ``rng-<rank>.json`` (Python's and NumPy's generators) and ``rng-<rank>.safetensors`` (torch's CPU and CUDA ones).

A checkpoint that holds any pickle file is refused, never opened (``pickles_in``). DeepSpeed's own loader reads its
``.pt`` files with ``weights_only=False``; ``weights_only_deepspeed`` makes it read them with ``weights_only=True``,
allowing only the DeepSpeed classes its state really holds (seen in a ZeRO-3 checkpoint: ZeroStageEnum, LossScaler).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from rmflow.errors import RmflowError

SCHEDULER = "scheduler.json"
PICKLE_SUFFIXES = (".pkl", ".pickle")


def _rng_files(directory: Path, rank: int) -> tuple[Path, Path]:
    return directory / f"rng-{rank}.json", directory / f"rng-{rank}.safetensors"


def write_scheduler(scheduler, directory: Path) -> None:
    state = scheduler.state_dict()
    try:
        text = json.dumps(state, allow_nan=True)
    except TypeError as exc:  # a scheduler whose state is not plain numbers: never fall back to pickle
        raise RmflowError(f"the LR scheduler's state cannot be written as JSON ({exc})", field="train.lr_schedule")
    (directory / SCHEDULER).write_text(text)


def read_scheduler(scheduler, directory: Path) -> None:
    scheduler.load_state_dict(json.loads((directory / SCHEDULER).read_text()))


def write_rng(directory: Path, rank: int) -> None:
    """This process's generators; accelerate's pickle of the same states is removed."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, python_state, gauss = random.getstate()
    plain, tensors = _rng_files(directory, rank)
    plain.write_text(json.dumps({"python": [version, list(python_state), gauss],
                                 "numpy": [kind, keys.tolist(), position, has_gauss, cached]}))
    tensors_state = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors_state[f"torch_cuda_{index}"] = state
    save_file(tensors_state, str(tensors))
    (directory / f"random_states_{rank}.pkl").unlink(missing_ok=True)


def read_rng(directory: Path, rank: int) -> None:
    import numpy as np
    import torch
    from safetensors.torch import load_file

    plain, tensors = _rng_files(directory, rank)
    state = json.loads(plain.read_text())
    version, python_state, gauss = state["python"]
    random.setstate((version, tuple(python_state), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    loaded = load_file(str(tensors))
    torch.set_rng_state(loaded["torch_cpu"])
    cuda = [loaded[f"torch_cuda_{i}"] for i in range(len(loaded) - 1) if f"torch_cuda_{i}" in loaded]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[:torch.cuda.device_count()])


def pickles_in(directory: Path) -> list[str]:
    """Pickle files in a checkpoint: rmflow never writes one, so one there was planted or is from an old version."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if p.is_file() and p.suffix in PICKLE_SUFFIXES)


def _deepspeed_state_classes() -> list:
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [ZeroStageEnum, LossScaler, DynamicLossScaler, fragment_address]


def weights_only_deepspeed(engine) -> None:
    """Make a DeepSpeed engine read checkpoints with ``weights_only=True`` (its engine passes
    ``weights_only=False``). DeepSpeed offers no option for this; its loader is a per-engine object, so the load
    method of that one object is replaced."""
    import torch

    checkpoint_engine = getattr(engine, "checkpoint_engine", None)
    if checkpoint_engine is None:
        return
    allowed = _deepspeed_state_classes()

    def load(path: str, map_location=None):
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location=map_location, weights_only=True)

    checkpoint_engine.load = load
