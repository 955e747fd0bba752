"""Preemption and resume: checkpoints on SIGUSR1/SIGTERM, bit-identical resumption, corrupt-checkpoint fallback,
and 2-process (gloo) training matching 1 process with the same global batch."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import spec_for
from rmflow.data.prepare import write_pairs
from rmflow.spec import RunSpec
from rmflow.train.checkpoint import PREEMPTED_EXIT, checkpoint_directory, verify

TRAIN = {"lr": 3e-3, "per_device_batch": 2, "grad_accum": 2, "max_length": 128, "log_every": 1}


@pytest.fixture(scope="module")
def run_setup(tmp_path_factory, synthetic, tiny_base):
    work = tmp_path_factory.mktemp("ckpt")
    write_pairs(synthetic["train"], work / "train.parquet")

    def spec_file(name: str, **train) -> Path:
        spec = spec_for("bt", tiny_base, work / "train.parquet", train={**TRAIN, **train}, test_defaults=False)
        path = work / f"{name}.json"
        path.write_text(spec.to_json())
        return path

    return work, spec_file


def _train_cmd(spec: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rmflow.cli", "train", "--spec", str(spec), "--out", str(out), "--threads", "1",
            *extra]


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def _losses(model_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (model_dir / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_signal_checkpoints_and_the_rerun_resumes_bit_identically(run_setup):
    work, spec_file = run_setup
    spec = spec_file("preempt", max_steps=60, checkpoint_every=25)
    clean = subprocess.run(_train_cmd(spec, work / "clean"), capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-2000:]

    scratch, log_file = work / "scratch", work / "first.log"
    with open(log_file, "w") as log:
        proc = subprocess.Popen(_train_cmd(spec, work / "resumed", "--checkpoint-dir", str(scratch)),
                                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 240
        while "step 8/60" not in log_file.read_text() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGUSR1)
        assert proc.wait(timeout=120) == PREEMPTED_EXIT
    first = log_file.read_text()
    assert "received SIGUSR1" in first and "stopped at optimizer step" in first
    stopped_at = int(first.split("stopped at optimizer step ")[1].split()[0])
    assert 8 <= stopped_at < 60
    assert not (work / "resumed").exists()  # no half-written model
    assert verify(scratch / f"step-{stopped_at:08d}") is None

    again = subprocess.run(_train_cmd(spec, work / "resumed", "--checkpoint-dir", str(scratch)),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming from {scratch}/step-{stopped_at:08d}" in again.stderr
    assert not scratch.exists()  # cleared once the model is saved
    # bit-identical on the CPU path: same weights, same per-step losses, same final metrics
    a, b = _weights(work / "clean"), _weights(work / "resumed")
    assert all(a[k].equal(b[k]) for k in a)
    assert _losses(work / "clean") == _losses(work / "resumed")
    ma, mb = (json.loads((work / d / "metrics.json").read_text()) for d in ("clean", "resumed"))
    for key in ("final_loss", "train_accuracy", "tokens_seen", "pairs_seen", "optimizer_steps"):
        assert ma[key] == mb[key], key


@pytest.mark.slow
def test_time_based_checkpoints_and_the_recorded_step_and_save_times(run_setup):
    """checkpoint_every_minutes saves on elapsed time whatever a step costs; metrics.json records the step time and
    every save's duration, which is what a kill grace and a checkpoint interval are sized from."""
    work, spec_file = run_setup
    timed = spec_file("timed", max_steps=6, checkpoint_every=0, checkpoint_every_minutes=1e-6)
    proc = subprocess.run(_train_cmd(timed, work / "timed", "--checkpoint-dir", str(work / "timed-scratch")),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("checkpoint saved:") == 6  # one per step: every step is past the interval
    metrics = json.loads((work / "timed/metrics.json").read_text())
    assert metrics["checkpoint_save_s"]["count"] == 6 and metrics["checkpoint_save_s"]["max"] > 0
    assert 0 < metrics["step_time_s"] <= metrics["wall_time_s"]
    # and how well the run used its device (what rmflow plan calibrates its time estimates on)
    usage = metrics["utilisation"]
    assert usage["device"] == "cpu" and usage["tokens"] == metrics["tokens_seen"] > 0
    assert usage["tokens_per_s"] == pytest.approx(usage["tokens"] / usage["seconds"], rel=1e-3)
    # FLOPs are the ones really computed: a pair's shared prompt once (tokens counts it twice, as peers do)
    assert 0 < usage["computed_tokens"] < usage["tokens"]
    assert usage["achieved_flops"] == pytest.approx(usage["computed_tokens"] * usage["model_flops_per_token"]
                                                    / usage["seconds"], rel=1e-3)
    assert usage["mfu"] == pytest.approx(usage["achieved_flops"] / usage["peak_flops"], abs=1e-4)
    assert 0 < usage["mfu"] < 1.5 and usage["peak_rss_mb"] > 100
    untimed = spec_file("untimed", max_steps=6, checkpoint_every=0)
    proc = subprocess.run(_train_cmd(untimed, work / "untimed", "--checkpoint-dir", str(work / "untimed-scratch")),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "checkpoint saved:" not in proc.stderr, proc.stderr[-2000:]
    assert json.loads((work / "untimed/metrics.json").read_text())["checkpoint_save_s"]["count"] == 0


def _train_in_process(spec_path: Path, out: Path, scratch: Path):
    from rmflow.methods import bt

    with checkpoint_directory(scratch):
        bt.train(RunSpec.read(str(spec_path)), str(out))


@pytest.mark.slow
def test_truncated_checkpoint_is_never_used(run_setup, caplog):
    work, spec_file = run_setup
    spec = spec_file("corrupt", max_steps=20, checkpoint_every=5)
    scratch = work / "scratch_corrupt"
    _train_in_process(spec, work / "full", scratch)
    kept = sorted(p.name for p in scratch.iterdir())
    assert kept == ["step-00000015", "step-00000020"]  # the newest two
    newest = scratch / "step-00000020" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a save cut short
    assert "truncated" in verify(scratch / "step-00000020")

    with caplog.at_level(logging.INFO, logger="rmflow.train.checkpoint"):
        _train_in_process(spec, work / "after_fallback", scratch)
    text = caplog.text
    assert "step-00000020 is not usable" in text and "truncated" in text
    assert "resuming from step-00000015 instead of the newer corrupt step-00000020" in text
    # resuming from step 15 of the same run reproduces its end exactly
    a, b = _weights(work / "full"), _weights(work / "after_fallback")
    assert all(a[k].equal(b[k]) for k in a)


@pytest.mark.slow
def test_all_checkpoints_corrupt_starts_over_and_says_so(run_setup, caplog):
    work, spec_file = run_setup
    spec = spec_file("allbad", max_steps=6, checkpoint_every=3)
    scratch = work / "scratch_allbad"
    _train_in_process(spec, work / "allbad_a", scratch)
    for step_dir in scratch.iterdir():
        (step_dir / "manifest.json").unlink()  # as if every save died before sealing
    with caplog.at_level(logging.INFO, logger="rmflow.train.checkpoint"):
        _train_in_process(spec, work / "allbad_b", scratch)
    assert "no manifest" in caplog.text and "training from the start" in caplog.text
    a, b = _weights(work / "allbad_a"), _weights(work / "allbad_b")
    assert all(a[k].equal(b[k]) for k in a)


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(run_setup):
    work, spec_file = run_setup
    # one padded forward per micro-batch in both (DDP runs never split it), so only the parallelism differs
    one = spec_file("one_proc", max_steps=12, per_device_batch=2, grad_accum=2, split_padding=1.0)
    two = spec_file("two_proc", max_steps=12, per_device_batch=2, grad_accum=1, split_padding=1.0)
    single = subprocess.run(_train_cmd(one, work / "p1"), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    double = subprocess.run(_train_cmd(two, work / "p2", "--processes", "2"), capture_output=True, text=True,
                            timeout=600)
    assert double.returncode == 0, double.stderr[-3000:]
    assert "launching 2 process(es)" in double.stderr
    m1, m2 = (json.loads((work / d / "metrics.json").read_text()) for d in ("p1", "p2"))
    assert m1["processes"] == 1 and m2["processes"] == 2
    assert m1["pairs_seen"] == m2["pairs_seen"] == 12 * 4
    assert m2["final_loss"] == pytest.approx(m1["final_loss"], abs=1e-6)
    assert _losses(work / "p2") == pytest.approx(_losses(work / "p1"), abs=1e-6)
    a, b = _weights(work / "p1"), _weights(work / "p2")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def test_launch_command_for_one_and_several_machines():
    from rmflow.train.launch import launch_command

    single = launch_command(["--spec", "s.json", "--out", "m"], processes=4, env={})
    joined = " ".join(single)
    assert "accelerate.commands.launch --num_processes 4 --num_machines 1" in joined
    assert joined.endswith("-m rmflow.cli train --spec s.json --out m")
    multi = launch_command(["--spec", "s.json"], processes=4, machines=2, env={"SLURM_NODEID": "1"}, port=29555)
    joined = " ".join(multi)
    assert "--num_processes 8 --num_machines 2" in joined and "--machine_rank 1" in joined
    assert "--main_process_ip 127.0.0.1 --main_process_port 29555" in joined


def test_several_machines_start_one_launcher_per_node():
    from rmflow.train.launch import PER_NODE_MARK, per_node_command

    cmd = per_node_command(["--spec", "s.json"], processes=4, machines=2)
    # --overlap: the job step running this holds the allocation (tests/slurm runs the nested srun for real)
    assert cmd[:6] == ["srun", "--overlap", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert f"--export=ALL,{PER_NODE_MARK}=1" in cmd and cmd[-4:] == ["--processes", "4", "--machines", "2"]


@pytest.mark.slow
def test_an_abort_in_teardown_keeps_a_sealed_model_and_an_abort_before_sealing_resumes(run_setup, tiny_base,
                                                                                         monkeypatch):
    """A worker dying after the model is sealed (as a ZeRO-3 worker did in teardown) is a success and the model
    stays; one dying before the model is saved fails the job, keeps the checkpoints, and the rerun resumes from
    the newest and ends as an uninterrupted run does. Two gloo processes, as on a node of GPUs."""
    import os

    from rmflow import methods

    tests = str(Path(__file__).resolve().parents[2])  # tests/: the toy method module (tests/toy_teardown.py)
    monkeypatch.syspath_prepend(tests)
    # register() sets RMFLOW_METHOD_MODULES for this process and the ones below: restored after the test, or every
    # later test's subprocess would try to import the toy module
    monkeypatch.setenv(methods.MODULES_ENV, os.environ.get(methods.MODULES_ENV, ""))
    methods.register("toy_teardown", "toy_teardown")
    work, _ = run_setup
    spec = spec_for("toy_teardown", tiny_base, work / "train.parquet", test_defaults=False,
                    train={**TRAIN, "grad_accum": 1, "max_steps": 4, "checkpoint_every": 2})
    spec_file = work / "toy.json"
    spec_file.write_text(spec.to_json())

    def run(name: str, fault: str | None, scratch: Path) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
        env.pop("TOY_FAULT", None)
        return subprocess.run(_train_cmd(spec_file, work / name, "--checkpoint-dir", str(scratch), "--processes",
                                         "2"), capture_output=True, text=True, timeout=600,
                              env={**env, **({"TOY_FAULT": fault} if fault else {})})

    after = run("after_seal", "after_seal", work / "after-scratch")
    assert after.returncode == 0, after.stderr[-3000:]
    assert "before a worker exited with code" in after.stderr, after.stderr[-3000:]  # it aborted; it was judged
    assert (work / "after_seal/model.safetensors").is_file()
    assert not (work / "after-scratch").exists()  # every rank has ended: the checkpoints went

    before = run("before_seal", "before_seal", work / "before-scratch")
    assert before.returncode != 0 and "before the model was saved" in before.stderr, before.stderr[-3000:]
    assert not (work / "before_seal").exists()
    assert sorted(p.name for p in (work / "before-scratch").glob("step-*")) == ["step-00000002", "step-00000004"]
    rerun = run("before_seal", None, work / "before-scratch")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming from" in rerun.stderr and "step-00000004" in rerun.stderr
    assert not (work / "before-scratch").exists()
    a, b = _weights(work / "after_seal"), _weights(work / "before_seal")
    assert all(a[k].equal(b[k]) for k in a)  # the resumed run ends where the run that never failed ended


@pytest.mark.slow
def test_a_checkpoint_of_another_run_is_refused_and_restart_moves_it_aside(run_setup):
    """A training killed after a checkpoint, rerun after train.lr changed: the checkpoint records its run's fields,
    so the rerun refuses (naming the field), writes nothing and keeps the checkpoint; the documented restart moves
    it aside and trains the new run from the start, as a run that never had a checkpoint does."""
    import os

    from rmflow.train.checkpoint import RUN, run_fingerprint

    work, spec_file = run_setup
    old = spec_file("stale_old", max_steps=4, checkpoint_every=2, lr=1e-3)
    new = spec_file("stale_new", max_steps=4, checkpoint_every=2, lr=3e-3)
    scratch = work / "stale-scratch"
    with checkpoint_directory(scratch, run_fingerprint(RunSpec.read(str(old)))):  # killed after its checkpoints
        from rmflow.methods import bt

        bt.train(RunSpec.read(str(old)), str(work / "stale_old_model"))
    recorded = json.loads((scratch / "step-00000004" / RUN).read_text())
    assert recorded["train.lr"] == 1e-3 and len(recorded["data_sha256"]) == 64

    refused = subprocess.run(_train_cmd(new, work / "stale_new_model", "--checkpoint-dir", str(scratch)),
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    line = refused.stderr.strip().splitlines()[-1]
    assert "belong to another run" in line and "train.lr: 0.001 there, 0.003 now" in line, line
    assert "RMFLOW_STALE_CHECKPOINTS=restart" in line
    assert not (work / "stale_new_model").exists() and (scratch / "step-00000004").is_dir()

    restarted = subprocess.run(_train_cmd(new, work / "stale_new_model", "--checkpoint-dir", str(scratch)),
                               capture_output=True, text=True, timeout=300,
                               env={**os.environ, "RMFLOW_STALE_CHECKPOINTS": "restart"})
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    aside = list(work.glob("stale-scratch.stale-*"))
    assert len(aside) == 1 and (aside[0] / "step-00000004").is_dir()  # moved aside, not deleted
    clean = subprocess.run(_train_cmd(new, work / "stale_clean_model"), capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-2000:]
    a, b = _weights(work / "stale_new_model"), _weights(work / "stale_clean_model")
    assert all(a[k].equal(b[k]) for k in a)  # the new run's own weights, not the old run's


@pytest.mark.slow
def test_a_second_training_into_the_same_checkpoints_is_refused_while_the_first_lives(run_setup):
    """The orphan case: a training still running (its snakemake was killed) and the rerun's new one. The second
    refuses at once, naming the first's pid, and writes nothing; once the first has ended the rerun resumes."""
    work, spec_file = run_setup
    spec = spec_file("orphan", max_steps=100000, checkpoint_every=2)
    scratch, log_file = work / "orphan-scratch", work / "orphan.log"
    with open(log_file, "w") as log:
        first = subprocess.Popen(_train_cmd(spec, work / "orphan_model", "--checkpoint-dir", str(scratch)),
                                 stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 300
            while "step 3/100000" not in log_file.read_text() and first.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            second = subprocess.run(_train_cmd(spec, work / "orphan_model_2", "--checkpoint-dir", str(scratch)),
                                    capture_output=True, text=True, timeout=300)
            assert first.poll() is None, "the first training ended before the second started"
        finally:
            first.send_signal(signal.SIGTERM)
            code = first.wait(timeout=300)
    assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr[-2000:]
    line = second.stderr.strip().splitlines()[-1]
    assert f"another training is writing checkpoints to {scratch}: pid {first.pid}" in line, line
    assert f"kill {first.pid}" in line and not (work / "orphan_model_2").exists()
    assert code == PREEMPTED_EXIT and not (scratch.parent / "orphan-scratch.writer.json").exists()
