"""Multi-process and multi-node training: ``rmflow train --processes N --machines M`` re-runs itself under
``accelerate launch``, so a Snakemake rule stays one ``rmflow train`` call whatever its resources are.

Each machine runs one launcher that starts N processes (one per GPU; gloo processes on CPU). On SLURM the machine
rank and the rendezvous host come from the job's environment (``SLURM_NODEID``, the first host of
``SLURM_JOB_NODELIST``); DeepSpeed is switched on by the run's own ``train.deepspeed`` config, not here.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)

LAUNCHED_MARK = "LOCAL_RANK"  # set by accelerate in every worker: never launch twice
PER_NODE_MARK = "RMFLOW_NODE_LAUNCHER"  # set on the srun task that runs one machine's launcher


def inside_launcher() -> bool:
    return LAUNCHED_MARK in os.environ


def first_slurm_host(env: dict) -> str:
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodelist:
        return "127.0.0.1"
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                             check=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError) as exc:
        raise RmflowError(f"cannot expand SLURM_JOB_NODELIST={nodelist!r} with scontrol: {exc}") from exc
    return out[0]


def launch_command(train_args: list[str], processes: int, machines: int = 1, *, env: dict | None = None,
                   port: int = 29500) -> list[str]:
    """The ``accelerate launch`` command line that runs ``rmflow train <train_args>`` on this machine."""
    env = dict(os.environ if env is None else env)
    if processes < 1 or machines < 1:
        raise RmflowError(f"--processes ({processes}) and --machines ({machines}) must be at least 1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes * machines),
           "--num_machines", str(machines), "--mixed_precision", "no", "--dynamo_backend", "no",
           # --multi_gpu picks accelerate's torchrun launcher; on a machine without CUDA the workers form a gloo
           # group (make_accelerator passes cpu=True there). --cpu would start a single process instead.
           "--multi_gpu"]
    if machines > 1:
        cmd += ["--machine_rank", env.get("SLURM_NODEID", "0"), "--main_process_ip", first_slurm_host(env),
                "--main_process_port", str(port), "--rdzv_backend", "static"]
    else:
        cmd += ["--main_process_port", str(port)]
    return cmd + ["-m", "rmflow.cli", "train", *train_args]


def per_node_command(train_args: list[str], processes: int, machines: int) -> list[str]:
    """Several machines: one srun task per node, each starting that node's ``accelerate launch``."""
    # --overlap: the job step that runs this (snakemake's srun) holds every CPU and GPU of the allocation; without
    # it the inner step waits for resources that step never releases, forever
    return ["srun", "--overlap", f"--nodes={machines}", f"--ntasks={machines}", "--ntasks-per-node=1",
            "--kill-on-bad-exit=1",
            f"--export=ALL,{PER_NODE_MARK}=1", sys.executable, "-m", "rmflow.cli", "train", *train_args,
            "--processes", str(processes), "--machines", str(machines)]


def relaunch(train_args: list[str], processes: int, machines: int) -> int:
    """Run the training under ``accelerate launch`` and return its exit code."""
    import torch

    if machines > 1 and PER_NODE_MARK not in os.environ:
        if "SLURM_JOB_ID" not in os.environ:
            raise RmflowError(f"--machines {machines} needs a SLURM allocation with {machines} nodes")
        cmd = per_node_command(train_args, processes, machines)
        log.info("starting one launcher per node: %s", " ".join(cmd))
        return subprocess.run(cmd, check=False).returncode

    if torch.cuda.is_available() and torch.cuda.device_count() < processes:
        raise RmflowError(f"--processes {processes} but only {torch.cuda.device_count()} GPU(s) are visible "
                          f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
    port = 29500 + int(os.environ.get("SLURM_JOB_ID", "0")) % 1000  # two jobs on one node must not share a port
    cmd = launch_command(train_args, processes, machines, port=port)
    log.info("launching %d process(es) on %d machine(s): %s", processes * machines, machines, " ".join(cmd))
    return subprocess.run(cmd, check=False).returncode


def per_node_launcher() -> bool:
    """This process is one node's launcher under the outer ``srun`` (the outer one decides the job's fate)."""
    return PER_NODE_MARK in os.environ


def model_stamp(out_dir: str) -> tuple[int, int] | None:
    """The model directory's identity before training (None: absent). ``atomic_dir`` renames a new directory into
    place, so a sealed model has a new inode whatever the clocks of a shared file system say."""
    try:
        stat = os.stat(out_dir)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def judge_exit(code: int, out_dir: str, before: tuple[int, int] | None) -> int:
    """The launch's exit code as the job's: a model this launch sealed is a success even when a worker aborted
    afterwards, in teardown (a ZeRO-3 worker has been seen to abort there: "terminate called without an active
    exception"). Failing the job then would make Snakemake delete the finished model and the retry start over."""
    if code == 0:
        return 0
    after = model_stamp(out_dir)
    if after is not None and after != before:
        log.warning("the model was saved (%s) before a worker exited with code %d (an abort in teardown): the "
                    "training is done and kept", out_dir, code)
        return 0
    log.error("training exited with code %d before the model was saved; its checkpoints are kept, so a rerun "
              "resumes from the newest one", code)
    return code
