"""DeepSpeed: never silently dropped, and its ZeRO path run for real on CPU.

Without a GPU, DeepSpeed runs on its CPU accelerator and two processes form a true ZeRO group (gloo): each rank sees
world size 2 and, under ZeRO-3, holds half of every parameter. The tests train BT on a tiny base that way and check:
the losses equal the one-process run with the same global batch (no DeepSpeed, grad_accum 2) within 1e-5; the saved
model holds full, gathered weights and scores in plain transformers as rmflow does; and a SIGUSR1 checkpoint under
ZeRO resumes to the clean run's final weights. Where DeepSpeed cannot be imported, training stops, or with
deepspeed_fallback trains without it and says so; the SLURM plan check says the same before any submission.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import REPO, spec_for
from rmflow.slurm.resources import deepspeed_problems

HAVE_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
TRAIN = {"lr": 3e-3, "per_device_batch": 2, "max_length": 96, "log_every": 1, "seed": 5}


@pytest.fixture(scope="module")
def work(tmp_path_factory, synthetic):
    from rmflow.data.prepare import write_pairs

    path = tmp_path_factory.mktemp("ds")
    write_pairs(synthetic["train"][:64], path / "train.parquet")
    return path


def _spec(work, tiny_base, name, **train):

    spec = spec_for("bt", tiny_base, work / "train.parquet", train={**TRAIN, **train}, test_defaults=False)
    (work / f"{name}.json").write_text(spec.to_json())
    return work / f"{name}.json"


def _train(work, tiny_base, name, *args, **train) -> subprocess.CompletedProcess:
    spec = _spec(work, tiny_base, name, **train)
    return subprocess.run([sys.executable, "-m", "rmflow.cli", "train", "--spec", str(spec), "--out",
                           str(work / name), "--threads", "2", *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "DS_ACCELERATOR": "cpu"})


def _losses(model_dir) -> list[float]:
    return [json.loads(line)["loss"] for line in (model_dir / "train_log.jsonl").read_text().splitlines()]


# ---- no silent drop ------------------------------------------------------------------------------------------
@pytest.fixture()
def no_deepspeed(tmp_path):
    """An environment where deepspeed is not installed, as far as the trainer can tell (a sitecustomize that
    blocks the import in the training process)."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['deepspeed'] = None  # planted by the test\n")
    return {**os.environ, "PYTHONPATH": f"{hide}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@pytest.mark.slow
def test_deepspeed_that_cannot_run_stops_training(work, tiny_base, no_deepspeed):
    spec = _spec(work, tiny_base, "refused", max_steps=1, deepspeed=str(REPO / "config/deepspeed/zero3.json"))
    proc = subprocess.run([sys.executable, "-m", "rmflow.cli", "train", "--spec", str(spec), "--out",
                           str(work / "refused")], capture_output=True, text=True, timeout=300, env=no_deepspeed)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert "field 'train.deepspeed': train.deepspeed asks for" in line and "zero3.json" in line
    assert "DeepSpeed cannot be imported" in line and "deepspeed_fallback: true" in line
    assert not (work / "refused").exists()


@pytest.mark.slow
def test_fallback_trains_without_deepspeed_and_records_why(work, tiny_base, no_deepspeed):
    spec = _spec(work, tiny_base, "fallback", max_steps=1, deepspeed=str(REPO / "config/deepspeed/zero3.json"),
                 deepspeed_fallback=True)
    proc = subprocess.run([sys.executable, "-m", "rmflow.cli", "train", "--spec", str(spec), "--out",
                           str(work / "fallback")], capture_output=True, text=True, timeout=300, env=no_deepspeed)
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stderr.splitlines() if "not used" in line and "DeepSpeed" in line]
    assert len(warnings) == 1 and "deepspeed_fallback" in warnings[0]
    metrics = json.loads((work / "fallback/metrics.json").read_text())
    assert metrics["deepspeed"].startswith("not used (DeepSpeed cannot be imported")


def test_slurm_plan_check_names_jobs_that_cannot_run_deepspeed(monkeypatch):
    zero3 = "config/deepspeed/zero3.json"
    jobs = [("train_a100_80g", "bt/llama", {"gres": "gpu:a100:4"}, zero3, False),
            ("train_cpu", "odin/tiny", {"slurm_partition": "cpu"}, zero3, True),  # allowed to fall back
            ("train_a40_48g", "bt/gemma", {"gres": "gpu:a40:4"}, None, False)]  # asks for none
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else object())
    assert deepspeed_problems(jobs) == [
        "rule train_a100_80g: bt/llama asks for DeepSpeed (config/deepspeed/zero3.json) but it is not installed in "
        "this environment (pip install 'rmflow[gpu]', or set train.deepspeed_fallback: true)"]


# ---- a real ZeRO group on CPU --------------------------------------------------------------------------------
pytestmark_zero = pytest.mark.skipif(not HAVE_DEEPSPEED, reason="deepspeed is not installed (`make` installs it)")


@pytestmark_zero
@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_two_process_zero_matches_one_process_and_saves_full_weights(work, tiny_base, stage, synthetic):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rmflow.methods import bt

    one = work / "one_process"
    if not one.exists():  # the same global batch: 2 pairs x 2 micro-steps, no DeepSpeed
        proc = _train(work, tiny_base, "one_process", max_steps=6, grad_accum=2)
        assert proc.returncode == 0, proc.stderr[-3000:]
    name = f"zero{stage}"
    proc = _train(work, tiny_base, name, "--processes", "2", max_steps=6, grad_accum=1,
                  deepspeed=str(REPO / f"config/deepspeed/zero{stage}.json"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((work / name / "metrics.json").read_text())
    assert metrics["deepspeed"].startswith(f"used ({REPO}/config/deepspeed/zero{stage}.json, ZeRO stage {stage}")
    assert metrics["processes"] == 2, "each rank saw a world of two"
    assert _losses(work / name) == pytest.approx(_losses(one), abs=1e-5)
    # full, gathered weights of the base's shapes, scoring in plain transformers as in rmflow
    weights, base = load_file(str(work / name / "model.safetensors")), load_file(str(tiny_base / "model.safetensors"))
    assert all(weights[k].shape == base[k].shape for k in base if k in weights)
    ours = bt.load_scorer(str(work / name)).score_conversations([synthetic["train"][0]["chosen"]], progress=False)[0]
    tok = AutoTokenizer.from_pretrained(work / name)
    model = AutoModelForSequenceClassification.from_pretrained(work / name).eval()
    with torch.no_grad():
        plain = model(**tok(tok.apply_chat_template(synthetic["train"][0]["chosen"], tokenize=False),
                            add_special_tokens=False, return_tensors="pt")).logits[0, 0].item()
    assert plain == pytest.approx(ours, abs=1e-5)


@pytestmark_zero
@pytest.mark.slow
def test_zero3_parameters_are_really_partitioned(tmp_path, tiny_base):
    """Inside the ZeRO-3 group each of the two ranks sees a world of two and holds half of a parameter."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import torch\n"
        "from transformers import AutoModelForSequenceClassification\n"
        "from rmflow.train.config import TrainConfig\n"
        "from rmflow.train.loop import make_accelerator\n"
        f"acc, status = make_accelerator(TrainConfig(per_device_batch=2, grad_accum=1, "
        f"deepspeed={str(REPO / 'config/deepspeed/zero3.json')!r}))\n"
        f"model = AutoModelForSequenceClassification.from_pretrained({str(tiny_base)!r}, num_labels=1)\n"
        "model, opt = acc.prepare(model, torch.optim.AdamW(model.parameters()))\n"
        "w = dict(model.module.named_parameters())['model.layers.0.self_attn.q_proj.weight']\n"
        # each rank writes its own file: two ranks printing to one pipe can run their lines together (CI saw one
        # rank's line lost that way)
        "import json, pathlib\n"
        f"pathlib.Path({str(tmp_path)!r}, f'probe-{{acc.process_index}}.json').write_text(json.dumps("
        "[acc.process_index, acc.num_processes, w.ds_tensor.numel(), w.ds_numel]))\n")
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--multi_gpu",
                           "--main_process_port", "29547", str(script)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "DS_ACCELERATOR": "cpu"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    probes = sorted(json.loads(f.read_text()) for f in tmp_path.glob("probe-*.json"))
    assert [p[:2] for p in probes] == [[0, 2], [1, 2]], proc.stdout[-2000:]
    assert all(2 * local == full for _, _, local, full in probes), probes


@pytestmark_zero
@pytest.mark.slow
def test_a_sigusr1_checkpoint_under_zero3_resumes_to_the_same_weights(work, tiny_base):
    from safetensors.torch import load_file

    zero3 = str(REPO / "config/deepspeed/zero3.json")
    clean = _train(work, tiny_base, "zero3_clean", max_steps=40, grad_accum=1, deepspeed=zero3)
    assert clean.returncode == 0, clean.stderr[-3000:]
    spec = _spec(work, tiny_base, "zero3_resumed", max_steps=40, grad_accum=1, deepspeed=zero3)
    scratch, log_file = work / "scratch3", work / "zero3_first.log"
    cmd = [sys.executable, "-m", "rmflow.cli", "train", "--spec", str(spec), "--out", str(work / "zero3_resumed"),
           "--threads", "2", "--checkpoint-dir", str(scratch)]
    with open(log_file, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "DS_ACCELERATOR": "cpu"})
        deadline = time.time() + 300
        while "step 5/40" not in log_file.read_text() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGUSR1)
        assert proc.wait(timeout=300) == 75, log_file.read_text()[-3000:]
    assert not (work / "zero3_resumed").exists()
    _a_planted_payload_never_runs(work, cmd, scratch)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "DS_ACCELERATOR": "cpu"})
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from" in again.stderr
    a = load_file(str(work / "zero3_clean/model.safetensors"))
    b = load_file(str(work / "zero3_resumed/model.safetensors"))
    assert all(a[k].equal(b[k]) for k in a)


def _a_planted_payload_never_runs(work, cmd, scratch):
    """DeepSpeed's loader passes weights_only=False; rmflow's engine reads with weights_only=True: a payload in its
    model states file (manifest resealed) stops the resume with an error line and never runs."""
    import shutil

    import torch
    from test_state_files import Payload, _reseal

    planted, marker = work / "planted", work / "PWNED"
    shutil.copytree(scratch, planted)
    (step,) = planted.glob("step-*")
    (states,) = step.rglob("*model_states.pt")
    torch.save({"module": Payload(marker)}, states)
    _reseal(step)
    run = subprocess.run([*cmd[:cmd.index("--checkpoint-dir") + 1], str(planted)], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "DS_ACCELERATOR": "cpu"})
    assert not marker.exists(), "the payload in DeepSpeed's model states ran"
    assert run.returncode != 0 and "torch refused to unpickle more than tensors" in run.stderr, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
