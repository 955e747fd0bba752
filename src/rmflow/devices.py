"""What a job asked SLURM for, and the refusal to run a GPU job on the CPU.

A job whose rule asked for GPUs but that sees no CUDA device (a driver older than the wheel's CUDA, a ``gres`` that
allocated nothing, a CPU torch first on ``PATH``) would otherwise train on DeepSpeed's CPU accelerator or score on
the CPU until its time limit, and the profile's retries would repeat it. The rule passes the GPU count it asked
for (``rmflow --rule R --gpus N <command>``), so the check does not guess from the environment.
"""

from __future__ import annotations

import os
import re

from rmflow.errors import RmflowError


def gpus_in_request(gres: str | None = None, gpu: int | str | None = None) -> int:
    """GPUs per node in a SLURM request: ``gres`` such as ``gpu:a100:4``, ``gpu:1`` or ``gpu`` (one), or the
    executor's ``gpu`` count. 0 when neither asks for any (the laptop profile, CPU rules)."""
    if gpu not in (None, "", 0, "0"):
        return int(gpu)
    total = 0
    for item in str(gres or "").split(","):
        fields = re.sub(r"\(.*?\)", "", item).strip().split(":")  # gpu:h100:8(S:0-1): the socket list goes
        if fields[0] != "gpu":
            continue
        count = re.match(r"\d+", fields[-1]) if len(fields) > 1 else None
        total += int(count.group()) if count else 1
    return total


def require_gpus(rule: str | None, gpus: int) -> None:
    """Stop before anything is loaded when ``gpus`` were asked for and fewer CUDA devices are visible."""
    if not gpus:
        return
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible >= gpus:
        return
    cuda_build = torch.version.cuda or "none (a CPU-only torch build)"
    raise RmflowError(
        f"rule {rule or '(not named)'} asked for {gpus} GPU(s) but {visible} CUDA device(s) are visible "
        f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}, torch {torch.__version__} "
        f"built for CUDA {cuda_build}); refusing to run it on the CPU. Check the job's gres, the node's driver "
        "(nvidia-smi) and which python the job runs")
