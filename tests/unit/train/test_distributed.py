"""Every method family trains with two processes: gloo DDP without DeepSpeed, and ZeRO-2 / ZeRO-3 on DeepSpeed's
CPU accelerator. Each family's per-step losses equal a one-process run over the same global batch, and the saved
model reloads in plain transformers with trained weights.

The one-process reference takes both micro-batches of a step in order (grad_accum 2); the two processes take one
each (rank r gets batch r). ODIN's length correlations are over the whole global batch (the seed gathers them
from every rank), so its reference is one process holding the global batch in one micro-batch (per_device_batch
4); per-rank correlations would differ from it. Batches follow the seeded shuffle (group_by_length false), so the
reference's batch of 4 is exactly the two ranks' batches of 2.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, prepared, spec_for

pytestmark = pytest.mark.slow
HAVE_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
TRAIN = {"lr": 3e-3, "max_steps": 3, "per_device_batch": 2, "max_length": 96, "log_every": 1, "seed": 5,
         "group_by_length": False, "split_padding": 1.0, "warmup_steps": 0, "checkpoint_every": 0}
FAMILIES = {  # method: (data, plain transformers class)
    "bt": ("pairs", "AutoModelForSequenceClassification"),
    "odin": ("pairs", "AutoModelForSequenceClassification"),
    "grm": ("pairs", "AutoModelForSequenceClassification"),  # its LM head (tied here) trained beside the score head
    "pair_pm": ("pm", "AutoModelForCausalLM"),
    "prm": ("steps", "AutoModelForCausalLM"),
    "orm": ("steps", "AutoModelForCausalLM"),
    "orm_scalar": ("steps", "AutoModelForSequenceClassification"),
}
MODES = {"ddp": None, "zero2": "config/deepspeed/zero2.json", "zero3": "config/deepspeed/zero3.json"}
# What each mode adds over the others, and so where CI runs it (RMFLOW_TEST_FULL=1 runs every mode on every family;
# docs/tests.md):
# - ZeRO-3 shards the parameters and gathers them at save, which is method-specific: every family.
# - DDP (gloo, accelerate's wrapper, no DeepSpeed) runs each family's own loss code exactly as ZeRO-3 does; what it
#   adds is the engine, so CI runs it on one family of each head (bt: a score head; pair_pm: the LM head), on
#   ODIN, whose length correlations are gathered across ranks, and on GRM, whose LM head runs outside the model's
#   forward on the hidden states it returned.
# - ZeRO-2 shards only optimizer state and gradients, which no method touches: bt and pair_pm.
FULL = os.environ.get("RMFLOW_TEST_FULL") == "1"
IN_CI = {"ddp": ("bt", "pair_pm", "odin", "grm"), "zero2": ("bt", "pair_pm")}
CASES = [pytest.param(method, mode, marks=pytest.mark.skipif(
             mode in IN_CI and method not in IN_CI[mode] and not FULL,
             reason=f"{mode} runs on {', '.join(IN_CI.get(mode, ()))} in CI; RMFLOW_TEST_FULL=1 runs every family"))
         for method in FAMILIES for mode in MODES]


@pytest.fixture(scope="module")
def work(tmp_path_factory, synthetic) -> Path:
    from rmflow.data.prepare import write_pairs
    from rmflow.methods import pair_pm
    from rmflow.methods._io import write_rows

    path = tmp_path_factory.mktemp("distributed")
    write_pairs(synthetic["train"][:48], path / "pairs.parquet")
    rows, _ = pair_pm.transform(synthetic["train"][:48], pair_pm.Config())
    write_rows(rows, path / "pm.parquet")
    prepared(path / "steps.parquet", synthetic["steps"], "step_rows", where={"split": "train"})
    return path


def _train(work: Path, tiny_base: Path, method: str, name: str, processes: int, **train) -> Path:

    data = FAMILIES[method][0]
    if data == "steps":  # a step conversation is never cut (it would lose labels): long enough for most of them
        train = {"max_length": 320, **train}
    spec = spec_for(method, tiny_base, work / f"{data}.parquet", train={**TRAIN, **train}, test_defaults=False)
    spec_file = work / f"{name}.json"
    spec_file.write_text(spec.to_json())
    out = work / name
    if not out.exists():
        proc = subprocess.run([sys.executable, "-m", "rmflow.cli", "train", "--spec", str(spec_file), "--out",
                               str(out), "--threads", "2", "--processes", str(processes)], capture_output=True,
                              text=True, timeout=900, env={**os.environ, "DS_ACCELERATOR": "cpu"})
        assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def _losses(model_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (model_dir / "train_log.jsonl").read_text().splitlines()]


def _reference(work: Path, tiny_base: Path, method: str) -> Path:
    if method == "odin":  # the global batch in one micro-batch: the correlations see all of it
        return _train(work, tiny_base, method, f"{method}_one", 1, per_device_batch=4, grad_accum=1)
    return _train(work, tiny_base, method, f"{method}_one", 1, grad_accum=2)


@pytest.mark.parametrize(("method", "mode"), CASES)
def test_two_processes_match_one_and_save_a_plain_model(work, tiny_base, method, mode):
    import torch
    import transformers
    from safetensors.torch import load_file

    if MODES[mode] and not HAVE_DEEPSPEED:
        pytest.skip("deepspeed is not installed (`make` installs it)")
    one = _reference(work, tiny_base, method)
    deepspeed = {"deepspeed": str(REPO / MODES[mode])} if MODES[mode] else {}
    two = _train(work, tiny_base, method, f"{method}_{mode}", 2, grad_accum=1, **deepspeed)

    metrics = json.loads((two / "metrics.json").read_text())
    assert metrics["processes"] == 2
    assert metrics["deepspeed"].startswith("used") if MODES[mode] else metrics["deepspeed"] == "not requested"
    assert len(_losses(two)) == TRAIN["max_steps"]
    assert _losses(two) == pytest.approx(_losses(one), abs=2e-5), f"{method} under {mode}"

    # a standard Hugging Face directory: plain transformers loads it, with the trained (gathered) weights
    saved = load_file(str(two / "model.safetensors"))
    base = load_file(str(tiny_base / "model.safetensors"))
    model = getattr(transformers, FAMILIES[method][1]).from_pretrained(two)
    state = model.state_dict()
    assert all(state[k].equal(saved[k]) for k in saved)
    moved = [k for k in base if k in saved and saved[k].shape == base[k].shape and not saved[k].equal(base[k])]
    assert moved, "no weight changed"
    with torch.no_grad():
        out = model(input_ids=torch.tensor([[1, 2, 3, 4]])).logits
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("mode", ["ddp", "zero3"])
def test_two_processes_sharing_each_prompt_train_the_separate_paths_losses(work, tiny_base, mode):
    """Two processes packing each pair's prompt once (train.share_prompt, on by default) train the losses of one
    process running every side on its own. max_length 512 cuts no pair: where a pair is cut, the shared path cuts
    its prompt once for both sides, which the separate path does not (tests/unit/train/test_shared_prompt.py)."""
    if MODES[mode] and not HAVE_DEEPSPEED:
        pytest.skip("deepspeed is not installed (`make` installs it)")
    separate = _train(work, tiny_base, "bt", "bt_one_separate_512", 1, grad_accum=2, share_prompt=False,
                      max_length=512)
    deepspeed = {"deepspeed": str(REPO / MODES[mode])} if MODES[mode] else {}
    two = _train(work, tiny_base, "bt", f"bt_{mode}_shared_512", 2, grad_accum=1, max_length=512, **deepspeed)
    shared = json.loads((two / "metrics.json").read_text())["share_prompt"]
    assert shared["used"] and shared["prompt_share_saved"] > 0 and shared["pairs_cut_once"] == 0
    assert not json.loads((separate / "metrics.json").read_text())["share_prompt"]["used"]
    assert _losses(two) == pytest.approx(_losses(separate), abs=2e-5)
