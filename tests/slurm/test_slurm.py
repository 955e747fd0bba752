"""The workflow, rmflow submit and preemption on a real one-node SLURM cluster (slurmctld + slurmd on loopback)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from helpers import DEFAULT, QUICK, REPO, snakemake, spec_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
TWO_METHODS = "run:\n  methods: [bt, pair_pm]\n  reward_models: []\n"
# the executor comparison runs both halves, so it runs one base: a second one adds jobs, not paths (the rehearsal
# sends the whole paper DAG through sbatch)
ONE_BASE = TWO_METHODS + "  base_models: [tiny_llama]\n"


def _overlay(tmp: Path, name: str, text: str) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return path


def test_workflow_on_slurm_matches_the_local_executor(slurm_cluster, test_profile, tmp_path):
    configs = (DEFAULT, QUICK, _overlay(tmp_path, "methods", ONE_BASE))
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    proc = snakemake(on_slurm, "all", "--profile", str(test_profile), configs=configs, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    out = proc.stdout + proc.stderr
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", out)
    # every job that is not a localrule went through sbatch, and SLURM kept its log
    done = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", out)
    local_rules = set(re.findall(r"^localrule (\w+):", out, re.M))
    assert local_rules <= {"all", "run_spec", "base_spec", "bestofn_table", "leaderboard", "plots",
                           "config_used", "eval_sets_checked"}, local_rules
    assert len(submitted) == len([r for r in done if r not in local_rules]) >= 8
    assert all(Path(log.rstrip(").")).exists() for _, log in submitted)
    assert "train_cpu" in out and "evaluate" in out

    proc = snakemake(local, "all", "--cores", "1", configs=configs, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    board_slurm = pl.read_csv(on_slurm / "results/leaderboard.csv")
    board_local = pl.read_csv(local / "results/leaderboard.csv")
    # BT and pair-PM (v1), and BT alone on the RewardBench 2 set (pairwise methods are skipped there)
    assert board_slurm.height == 3 and board_slurm.filter(pl.col("Benchmark") == "rewardbench_v2").height == 1
    assert board_slurm.equals(board_local), f"{board_slurm}\n{board_local}"


def test_a_job_failing_on_the_cluster_names_its_slurm_log(slurm_cluster, test_profile, tmp_path):
    # a hub id that cannot load is refused by the onstart hub pre-flight, before any sbatch
    hub_ghost = ("base_models:\n  ghost:\n    model: nobody/no-such-base-model\n"
                 "run:\n  methods: [bt]\n  base_models: [ghost]\n  reward_models: []\n")
    proc = snakemake(tmp_path / "h", "all", "--profile", str(test_profile),
                     configs=(DEFAULT, QUICK, _overlay(tmp_path, "hub-ghost", hub_ghost)), timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "nothing submitted" in out and "submitted with SLURM" not in out, out[-3000:]
    assert "base_models.ghost.model: nobody/no-such-base-model@main is not in the Hugging Face cache" in out
    # a base that passes every pre-flight (a directory, no weights to be cut short) but cannot load fails on the
    # cluster, and the error names the job's SLURM log
    broken = tmp_path / "broken-base"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    # (one eval set, no best-of-N, no ranking: only what the training waits for runs before it fails)
    ghost = (f"base_models:\n  ghost:\n    model: {broken}\n"
             "run:\n  methods: [bt]\n  base_models: [ghost]\n  reward_models: []\n  eval_sets: [synthetic]\n"
             "bestofn:\n  sets: []\nrank:\n  data: null\n")
    proc = snakemake(tmp_path / "w", "all", "--profile", str(test_profile),
                     configs=(DEFAULT, QUICK, _overlay(tmp_path, "ghost", ghost)), timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    failed = re.search(r"Error in rule train_cpu:.*?SLURM-job '(\d+)' failed", out, re.S)
    assert failed, out[-4000:]
    log = re.search(rf"jobid {failed.group(1)} \(log: (\S+?)\)", out).group(1)
    assert "slurm_logs/rule_train_cpu" in log and Path(log).exists()
    assert log in out.split("Error in rule train_cpu:")[1]  # the error itself points at the SLURM log
    assert not (tmp_path / "w/results/models/bt/ghost").exists()


def test_bad_partition_and_too_many_gpus_stop_before_any_submission(slurm_cluster, test_profile, tmp_path):
    before = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True).stdout
    configs = (DEFAULT, QUICK, _overlay(tmp_path, "methods", TWO_METHODS))
    proc = snakemake(tmp_path / "a", "all", "--profile", str(REPO / "profiles/slurm"), configs=configs, timeout=300)
    assert proc.returncode != 0
    assert "rule train_cpu: slurm_partition 'cpu' does not exist on this cluster (partitions: debug)" in proc.stderr
    proc = snakemake(tmp_path / "b", "all", "--profile", str(test_profile), "--set-resources",
                     "evaluate:gres=gpu:8", configs=configs, timeout=300)
    assert proc.returncode != 0
    assert "rule evaluate: asks for 8 GPU(s) per node (gres='gpu:8') but the largest node in partition " \
           "'debug' has 4" in proc.stderr
    # a job whose estimated memory is over its GPUs' (rmflow plan's check, run by onstart on the scheduled jobs):
    # an 8B-shaped base (config.json alone) trained without DeepSpeed on one 16 GB GPU
    big = tmp_path / "llama3-8b-shape"
    big.mkdir()
    (big / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096,
        "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
        "tie_word_embeddings": False}))
    layer = _overlay(tmp_path, "big", f"base_models:\n  big:\n    model: {big}\n    gpu_preset: cpu\n"
                     "run:\n  methods: [bt]\n  base_models: [big]\n  reward_models: []\n")
    proc = snakemake(tmp_path / "c", "all", "--profile", str(test_profile), "--set-resources", "train_cpu:gres=gpu:1",
                     "train_cpu:gpu_memory_gb=16", configs=(DEFAULT, QUICK, layer), timeout=300)
    assert proc.returncode != 0
    assert re.search(r"job train_cpu\[method=bt, base=big\]: needs ~\d+ GB per GPU, over 16 GB; would fit with: ",
                     proc.stderr), proc.stderr[-3000:]
    after = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True).stdout
    # nothing reached sbatch: no job id that was not there before (finished jobs may age out of squeue meanwhile:
    # MinJobAge, 300 s; CI once saw five leave during this test)
    assert set(after.split()) <= set(before.split()), sorted(set(after.split()) - set(before.split()))
    assert not any((tmp_path / d / "results/data").exists() for d in "abc")


def _spec(tmp_path: Path, tiny_base, synthetic, name: str, **train) -> Path:
    from rmflow.data.prepare import write_pairs

    data = tmp_path / "train.parquet"
    if not data.exists():
        write_pairs(synthetic["train"], data)
    spec = spec_for("bt", tiny_base, data, lr=3e-3, per_device_batch=2, grad_accum=1, max_length=128, log_every=1,
                    train=train, test_defaults=False)
    path = tmp_path / f"{name}.json"
    path.write_text(spec.to_json())
    return path


def _rmflow(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rmflow.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_submitit_sweep_with_the_profiles_resources(slurm_cluster, test_profile, tmp_path, tiny_base, synthetic):
    a = _spec(tmp_path, tiny_base, synthetic, "a", max_steps=4)
    b = _spec(tmp_path, tiny_base, synthetic, "b", max_steps=6)
    proc = _rmflow("submit", "--profile", str(test_profile), "--rule", "train_cpu", "--folder",
                   str(tmp_path / "submitit"), "--job", f"train --spec {a} --out {tmp_path / 'ma'}",
                   "--job", f"train --spec {b} --out {tmp_path / 'mb'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["state"] for r in rows] == ["COMPLETED", "COMPLETED"]
    assert [r["optimizer_steps"] for r in rows] == [4, 6]
    assert rows[0]["job_id"].endswith("_0") and rows[1]["job_id"].endswith("_1")  # one array job
    assert (tmp_path / "mb/model.safetensors").exists()
    job = rows[0]["job_id"]
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert "Partition=debug" in shown and "MinMemoryNode=2G" in shown  # the profile's 1500 MB, rounded up to GB

    failing = _rmflow("submit", "--profile", str(test_profile), "--rule", "train_cpu", "--folder",
                      str(tmp_path / "submitit"), "--job", f"train --spec {tmp_path / 'missing.json'} --out x")
    assert failing.returncode == 2
    assert "1 of 1 job(s) failed" in failing.stderr and "_log.err" in failing.stderr


def test_preemption_signal_on_slurm_then_the_rerun_resumes(slurm_cluster, tmp_path, tiny_base, synthetic):
    spec = _spec(tmp_path, tiny_base, synthetic, "long", max_steps=150, checkpoint_every=50)
    scratch, out, log = tmp_path / "scratch", tmp_path / "model", tmp_path / "job.log"
    train = f"{sys.executable} -m rmflow.cli train --spec {spec} --out {out} --threads 1 --checkpoint-dir {scratch}"

    def sbatch() -> str:
        return subprocess.run(["sbatch", "--parsable", "-p", "debug", "-c", "1", "--mem", "1500", "--open-mode",
                               "append", "-o", str(log), "--wrap", f"srun {train}"], capture_output=True, text=True,
                              check=True).stdout.strip()

    job = sbatch()
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and "step 10/150" in log.read_text()):
        time.sleep(0.1)
    # what slurmctld sends on preemption or at the time limit: SIGTERM to every process of the job's steps
    subprocess.run(["scancel", "--signal=TERM", job], check=True)
    while time.time() < deadline and "PENDING" != _state(job) and _state(job) not in ("FAILED", "COMPLETED"):
        time.sleep(0.2)
    text = log.read_text()
    assert "received SIGTERM" in text and "stopped at optimizer step" in text
    assert _state(job) == "FAILED" and "ExitCode=75:0" in _show(job)
    assert not out.exists() and any(scratch.glob("step-*"))
    # the rerun (Snakemake's retry; SLURM's --requeue reruns the same script, only after a 120 s hold) resumes
    job = sbatch()
    while time.time() < deadline + 300 and _state(job) != "COMPLETED":
        assert _state(job) != "FAILED", log.read_text()[-3000:]
        time.sleep(0.5)
    assert "resuming from" in log.read_text()
    clean = _rmflow("train", "--spec", str(spec), "--out", str(tmp_path / "clean"), "--threads", "1")
    assert clean.returncode == 0, clean.stderr[-2000:]
    from safetensors.torch import load_file

    a, b = load_file(str(out / "model.safetensors")), load_file(str(tmp_path / "clean/model.safetensors"))
    assert all(a[k].equal(b[k]) for k in a)


def _show(job: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout


def _state(job: str) -> str:
    match = re.search(r"JobState=(\w+)", _show(job))
    return match.group(1) if match else "UNKNOWN"


def _wait(job: str, seconds: float) -> str:
    deadline = time.time() + seconds
    while time.time() < deadline and _state(job) not in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
        time.sleep(0.5)
    return _state(job)


def test_a_node_launcher_started_from_inside_the_job_step_runs(slurm_cluster, tmp_path, tiny_base, synthetic):
    """`rmflow train --machines M` starts one launcher per node with srun from inside the job step Snakemake's
    srun runs. That step holds the allocation's CPUs (here its one CPU): the inner step must overlap it, or it
    waits for them forever. The one-node cluster runs the same command line with one node; two nodes are not
    tested here (README, Multi-GPU, multi-node, preemption)."""
    from rmflow.train.launch import per_node_command

    spec = _spec(tmp_path, tiny_base, synthetic, "nested", max_steps=2)
    out, log = tmp_path / "model", tmp_path / "job.log"
    inner = per_node_command(["--spec", str(spec), "--out", str(out), "--threads", "1"], processes=1, machines=1)
    assert inner[:2] == ["srun", "--overlap"]
    job = subprocess.run(["sbatch", "--parsable", "-p", "debug", "-c", "1", "--mem", "1500", "-o", str(log),
                          "--wrap", "srun " + " ".join(inner)], capture_output=True, text=True,
                         check=True).stdout.strip()
    state = _wait(job, 240)
    if state != "COMPLETED":
        subprocess.run(["scancel", job], check=False)
    assert state == "COMPLETED", log.read_text()[-3000:] if log.exists() else state
    assert (out / "model.safetensors").exists()


def test_a_gpu_job_whose_gpus_cuda_cannot_see_stops_at_once(slurm_cluster, tmp_path):
    """The local node's gres are files, not GPUs: SLURM allocates one and sets CUDA_VISIBLE_DEVICES, and a torch
    that sees no CUDA device must refuse the job instead of running it on the CPU."""
    log = tmp_path / "gpu.log"
    command = f"{sys.executable} -m rmflow.cli --rule evaluate --gpus 1 methods"
    job = subprocess.run(["sbatch", "--parsable", "-p", "debug", "-c", "1", "--mem", "1500", "--gres", "gpu:1",
                          "-o", str(log), "--wrap", f"srun {command}"], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert _wait(job, 180) == "FAILED" and "ExitCode=2:0" in _show(job)
    text = log.read_text()
    assert "rule evaluate asked for 1 GPU(s) but 0 CUDA device(s) are visible (CUDA_VISIBLE_DEVICES=0" in text
    assert "Traceback" not in text and not any(line.strip() == "bt" for line in text.splitlines())  # never ran
