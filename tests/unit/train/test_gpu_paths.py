"""The GPU paths' contract, checked on the CPU: fp32 master weights from bf16 checkpoints, no silent CPU run of a
job that asked for GPUs, Gemma-2's logits as plain transformers computes them, attention chosen and recorded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import pair, run_cli, spec_for

LOW_LR = {"lr": 1e-6, "max_steps": 3, "per_device_batch": 4, "grad_accum": 1, "max_length": 96, "log_every": 1,
          "warmup_steps": 0, "lr_schedule": "constant", "seed": 3, "checkpoint_every": 0}


@pytest.fixture(scope="module")
def bf16_and_fp32_bases(tmp_path_factory, tiny_base) -> tuple[Path, Path]:
    """The tiny base stored as bf16 safetensors (as hub checkpoints are), and its exact fp32 upcast."""
    import torch
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("precision")
    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    out = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        folder = root / name
        shutil.copytree(tiny_base, folder, ignore=shutil.ignore_patterns("*.safetensors"))
        model.to(torch.bfloat16).to(dtype).save_pretrained(folder)  # fp32: the bf16 values, upcast exactly
        out[name] = folder
    return out["bf16"], out["fp32"]


def _train_bt(tmp: Path, base: Path, name: str, synthetic, **train) -> Path:
    from rmflow.data.prepare import write_pairs

    write_pairs(synthetic["train"][:12], tmp / "pairs.parquet")
    spec = tmp / f"{name}.json"
    spec.write_text(spec_for("bt", base, tmp / "pairs.parquet", train={**LOW_LR, **train},
                             test_defaults=False).to_json())
    proc = run_cli("train", "--spec", str(spec), "--out", str(tmp / name), "--threads", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / name


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}


@pytest.mark.slow
def test_a_bf16_checkpoint_trains_with_fp32_master_weights(tmp_path, bf16_and_fp32_bases, synthetic):
    """At lr 1e-6 every update is below bf16's resolution: on bf16 parameters AdamW's steps would round away."""
    bf16_base, fp32_base = bf16_and_fp32_bases
    start = _weights(bf16_base)
    ours, reference = _train_bt(tmp_path, bf16_base, "from_bf16", synthetic), \
        _train_bt(tmp_path, fp32_base, "from_fp32", synthetic)
    trained, expected = _weights(ours), _weights(reference)
    shared = [k for k in start if k in trained and trained[k].shape == start[k].shape]
    assert len(shared) >= 8
    unchanged = [k for k in shared if trained[k].equal(start[k])]
    assert not unchanged, f"never updated: {unchanged}"
    for k in shared:  # the update equals the fp32 reference's
        assert (trained[k] - start[k]).sub(expected[k] - start[k]).abs().max() <= 1e-9 + 1e-5 * (
            expected[k] - start[k]).abs().max(), k
    metrics = json.loads((ours / "metrics.json").read_text())
    assert (metrics["precision"], metrics["parameter_dtype"], metrics["compute_dtype"],
            metrics["optimizer_state_dtype"]) == ("fp32", "float32", "float32", "float32")


@pytest.mark.slow
def test_bf16_mixed_keeps_fp32_master_weights_and_computes_in_bf16(tmp_path, bf16_and_fp32_bases, synthetic):
    import torch

    bf16_base, fp32_base = bf16_and_fp32_bases
    start = _weights(bf16_base)
    mixed = _train_bt(tmp_path, bf16_base, "mixed", synthetic, precision="bf16-mixed")
    reference = _train_bt(tmp_path, fp32_base, "fp32", synthetic)
    trained, expected = _weights(mixed), _weights(reference)
    shared = [k for k in start if k in trained and trained[k].shape == start[k].shape]
    assert not [k for k in shared if trained[k].equal(start[k])], "some tensor never moved"
    ours = torch.cat([(trained[k] - start[k]).flatten() for k in shared])
    fp32 = torch.cat([(expected[k] - start[k]).flatten() for k in shared])
    assert torch.nn.functional.cosine_similarity(ours, fp32, dim=0) > 0.9  # the same updates, bf16 gradients
    metrics = json.loads((mixed / "metrics.json").read_text())
    assert (metrics["precision"], metrics["parameter_dtype"], metrics["compute_dtype"],
            metrics["optimizer_state_dtype"]) == ("bf16-mixed", "float32", "bfloat16", "float32")
    losses = [json.loads(line)["loss"] for line in (mixed / "train_log.jsonl").read_text().splitlines()]
    plain = [json.loads(line)["loss"] for line in (reference / "train_log.jsonl").read_text().splitlines()]
    assert losses != plain and losses == pytest.approx(plain, abs=2e-2)  # bf16 compute really ran


def test_a_job_that_asked_for_gpus_refuses_to_run_on_the_cpu(tmp_path):
    """Before loading anything (the spec does not even exist): message, exit 2, nothing written."""
    out = tmp_path / "model"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-m", "rmflow.cli", "--rule", "train_a100_80g", "--gpus", "4", "train",
                           "--spec", str(tmp_path / "absent.json"), "--out", str(out)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("rmflow train: error: rule train_a100_80g asked for 4 GPU(s) but 0 CUDA device(s) are "
                           "visible (CUDA_VISIBLE_DEVICES=, torch ")
    assert "built for CUDA none (a CPU-only torch build)" in line and "refusing to run it on the CPU" in line
    assert "Traceback" not in proc.stderr and not out.exists()


@pytest.mark.parametrize("gres, gpu, expected", [("gpu:a100:4", None, 4), ("gpu:1", None, 1), ("gpu", None, 1),
                                                  (None, None, 0), ("", 2, 2), ("gpu:a40:4,shard:8", None, 4),
                                                  ("gpu:h100:8(S:0-1)", None, 8)])
def test_gpus_in_a_slurm_request(gres, gpu, expected):
    from rmflow.devices import gpus_in_request

    assert gpus_in_request(gres, gpu) == expected


def test_the_slurm_rules_pass_the_gpus_they_ask_for(tmp_path):
    from helpers import DEFAULT, REPO, snakemake

    proc = snakemake(tmp_path, "all", "-n", "-p", "--profile", str(REPO / "profiles/slurm"),
                     configs=(DEFAULT, REPO / "config/paper.yaml"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    commands = [line for line in proc.stdout.splitlines() if "python -m rmflow" in line]
    assert any("--rule train_a100_80g --gpus 4 train " in c for c in commands)
    assert any("--rule evaluate --gpus 1 evaluate " in c for c in commands)
    assert any("--rule ssrm_label --gpus 1 ssrm label " in c for c in commands)
    assert all("--gpus 0" not in c for c in commands if "--rule train_" in c)


@pytest.fixture(scope="module")
def tiny_gemma2(tmp_path_factory, tiny_base) -> Path:
    """A tiny Gemma-2 causal LM with both soft-cappings, and logits large enough for the final cap to bite."""
    import torch
    from transformers import AutoTokenizer, Gemma2Config, Gemma2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    config = Gemma2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
                          final_logit_softcapping=5.0, attn_logit_softcapping=50.0, sliding_window=16,
                          pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(config)
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(40)  # tied head: logits well beyond the cap of 5
    out = tmp_path_factory.mktemp("gemma2")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_gemma2_answer_logits_equal_plain_transformers(tiny_gemma2):
    import torch
    from transformers import AutoModelForCausalLM

    from rmflow.methods.pairwise.pm import logits_at
    from rmflow.train.batching import pad

    model = AutoModelForCausalLM.from_pretrained(tiny_gemma2, dtype=torch.float32).eval()
    assert model.config._attn_implementation == "eager"  # transformers 5: Gemma-2 has no SDPA
    ids, mask = pad([list(range(5, 25)), list(range(30, 42))], 0, side="right")
    positions = torch.tensor([[19, 3], [11, 0]])
    with torch.no_grad():
        ours = logits_at(model, ids, mask, positions)
        full = model(input_ids=ids, attention_mask=mask).logits
    plain = full[torch.arange(2).unsqueeze(-1), positions]
    assert plain.abs().max() > 4.5 and plain.abs().max() <= 5.0  # the cap is in force
    torch.testing.assert_close(ours, plain, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_attention_is_chosen_per_base_and_recorded(tmp_path, tiny_base, tiny_gemma2, synthetic):
    from rmflow.data.prepare import write_pairs
    from rmflow.errors import RmflowError
    from rmflow.methods import bt
    from rmflow.models.load import load_model, load_tokenizer

    write_pairs(synthetic["train"][:8], tmp_path / "pairs.parquet")
    train = {"lr": 1e-3, "max_steps": 1, "per_device_batch": 4, "grad_accum": 1, "max_length": 64}
    recorded = {}
    for name, asked in (("default", None), ("eager", "eager"), ("flash", "flash_attention_2")):
        spec = spec_for("bt", tiny_base, tmp_path / "pairs.parquet", train=train, attn_implementation=asked,
                        test_defaults=False)
        bt.train(spec, str(tmp_path / name))
        recorded[name] = json.loads((tmp_path / name / "metrics.json").read_text())["attention"]
    assert recorded["default"] == "sdpa" and recorded["eager"] == "eager"
    assert recorded["flash"] == "sdpa (flash_attention_2 asked for, flash-attn is not installed)"
    scorer = bt.load_scorer(str(tmp_path / "eager"))  # scoring runs what training ran
    assert scorer.model.config._attn_implementation == "eager"
    assert scorer.score_conversations([pair()["chosen"]], progress=False)
    with pytest.raises(RmflowError, match="cannot run attn_implementation sdpa") as refused:
        load_model(str(tiny_gemma2), load_tokenizer(str(tiny_gemma2)), auto_class="AutoModelForCausalLM",
                   attn_implementation="sdpa")
    assert refused.value.field == "attn_implementation"
