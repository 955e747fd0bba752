"""DeepSpeed is never dropped without a word: no usable DeepSpeed stops `rmflow train`, or with
train.deepspeed_fallback trains without it and says so (log, metrics.json); the SLURM plan-time check says the same."""

from __future__ import annotations

import json

import pytest

from helpers import REPO, run_cli
from rmflow.cluster import deepspeed_problems
from rmflow.train.loop import deepspeed_unavailable

pytestmark = pytest.mark.skipif(deepspeed_unavailable() is None, reason="DeepSpeed can run here (a GPU is visible)")


def _spec(tmp_path, synthetic, tiny_base, **train):
    from rmflow.data.prepare import write_pairs
    from rmflow.spec import RunSpec

    write_pairs(synthetic["train"][:16], tmp_path / "train.parquet")
    spec = RunSpec(method="bt", base="tiny", base_model=str(tiny_base), train_data=str(tmp_path / "train.parquet"),
                   train={"max_steps": 1, "per_device_batch": 4, "grad_accum": 1, "max_length": 64,
                          "deepspeed": str(REPO / "config/deepspeed/zero3.json"), **train})
    (tmp_path / "spec.json").write_text(spec.to_json())
    return tmp_path / "spec.json"


def test_deepspeed_that_cannot_run_stops_training(tmp_path, synthetic, tiny_base):
    proc = run_cli("train", "--spec", str(_spec(tmp_path, synthetic, tiny_base)), "--out", str(tmp_path / "model"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert "field 'train.deepspeed': train.deepspeed asks for" in line and "zero3.json" in line
    assert deepspeed_unavailable() in line and "deepspeed_fallback: true" in line
    assert not (tmp_path / "model").exists()


def test_fallback_trains_without_deepspeed_and_records_why(tmp_path, synthetic, tiny_base):
    spec = _spec(tmp_path, synthetic, tiny_base, deepspeed_fallback=True)
    proc = run_cli("train", "--spec", str(spec), "--out", str(tmp_path / "model"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stderr.splitlines() if "not used" in line and "DeepSpeed" in line]
    assert len(warnings) == 1 and "deepspeed_fallback" in warnings[0]
    metrics = json.loads((tmp_path / "model/metrics.json").read_text())
    assert metrics["deepspeed"] == f"not used ({deepspeed_unavailable()})"


def test_slurm_plan_check_names_rules_that_cannot_run_deepspeed():
    zero3 = "config/deepspeed/zero3.json"
    jobs = [("train_cpu", "bt/tiny", {"slurm_partition": "cpu"}, zero3, False),
            ("train_cpu", "odin/tiny", {"slurm_partition": "cpu"}, zero3, True),  # allowed to fall back
            ("train_a100_80g", "bt/llama", {"gres": "gpu:a100:4"}, None, False)]  # asks for none
    problems = deepspeed_problems(jobs)
    assert problems[0] == ("rule train_cpu: bt/tiny asks for DeepSpeed (config/deepspeed/zero3.json) but the rule "
                           "requests no GPU; give it a GPU preset or set train.deepspeed_fallback: true")
    installed = __import__("importlib.util").util.find_spec("deepspeed") is not None
    gpu_job = deepspeed_problems([("train_a100_80g", "bt/llama", {"gres": "gpu:a100:4"}, zero3, False)])
    assert len(problems) == 1 and (gpu_job == [] if installed else "not installed" in gpu_job[0])
