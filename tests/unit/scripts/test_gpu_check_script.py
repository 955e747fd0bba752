"""scripts/gpu-check.py is run once on a lent GPU, with no time to debug it there: its GPU-paths part runs here on
the CPU (``--device cpu --sections gpu_paths``) and must report what the GPU run will be judged on."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import REPO

pytestmark = pytest.mark.slow


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not _cuda(), reason="no CUDA device: "
                                                                             "only a lent GPU machine runs it")])])
def test_the_gpu_paths_part_runs_and_reports_each_check(tmp_path, device):
    proc = subprocess.run([sys.executable, str(REPO / "scripts/gpu-check.py"), "--out", str(tmp_path), "--device",
                           device, "--sections", "gpu_paths"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu-check.json").read_text())["gpu_paths"]
    moved = report["bf16_base_without_deepspeed"]
    assert moved["exit"] == 0 and moved["tensors_moved"] == moved["tensors"] > 0
    assert (moved["parameter_dtype"], moved["optimizer_state_dtype"]) == ("float32", "float32")
    runs = report["attention_runs"]
    assert set(runs) >= {"pair_pm_eager", "pair_pm_sdpa", "prm_eager", "prm_sdpa"}
    assert all(r["exit"] == 0 and r["max_abs_logit_diff_vs_plain"] < 1e-4 for r in runs.values())
    assert report["refusal"]["exit"] == 2  # 4 GPUs asked for, fewer visible
    if device == "cpu":
        assert "refusing to run it on the CPU" in report["refusal"]["message"]
