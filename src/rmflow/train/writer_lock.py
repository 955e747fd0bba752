"""One writer per checkpoint directory: a second training of the same run refuses to start while the first lives.

After ``snakemake`` itself is killed (SIGKILL, a closed terminal), the training job it started keeps running as an
orphan; the rerun (after ``--unlock``) would start a second process resuming and overwriting the same checkpoints.
The writer records itself in ``<directory>.writer.json`` beside the directory (host, pid, SLURM job, start time)
and touches it as it trains; a new
writer refuses while that one is alive:

- on the same host: its pid still runs;
- a SLURM job: ``squeue`` still lists it (a requeued job keeps its id, so its own earlier run never blocks it);
- otherwise: the file was touched within ``QUIET_S``.

A writer that ended (exit, preemption, error) removes the file; one killed outright leaves it, and the next writer
takes over once the rules above say it is gone, removing the temporaries of the save it interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.io import pid_alive

log = logging.getLogger(__name__)

QUIET_S = 600  # a live writer touches the file at least every TOUCH_S
TOUCH_S = 60


def _me() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job": os.environ.get("SLURM_JOB_ID"),
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def _alive(other: dict, touched: float) -> bool:
    me = _me()
    if other.get("host") == me["host"]:
        return other.get("pid") != me["pid"] and pid_alive(int(other.get("pid", 0)))
    job = other.get("slurm_job")
    if job and job == me["slurm_job"]:
        return False  # this job's earlier run (requeued): SLURM never runs two at once
    if job and shutil.which("squeue"):
        try:
            listed = subprocess.run(["squeue", "-h", "-j", str(job), "-o", "%T"], capture_output=True, text=True,
                                    timeout=30)
            return listed.returncode == 0 and bool(listed.stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            pass
    return time.time() - touched < QUIET_S


def lock_file(directory: Path) -> Path:
    """Beside the directory, not in it: moving stale checkpoints aside must not move the lock."""
    return directory.with_name(f"{directory.name}.writer.json")


def claim(directory: Path) -> None:
    """Become the directory's writer, or refuse naming the live one and how to stop it."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = lock_file(directory)
    if lock.is_file():
        try:
            other, touched = json.loads(lock.read_text()), lock.stat().st_mtime
        except (ValueError, OSError):
            other, touched = {}, 0.0
        if other and _alive(other, touched):
            stop = (f"scancel {other['slurm_job']}" if other.get("slurm_job") else
                    f"on {other.get('host')}: kill {other.get('pid')} (it checkpoints on SIGTERM, then exits)")
            raise RmflowError(
                f"another training is writing checkpoints to {directory}: pid {other.get('pid')} on "
                f"{other.get('host')}{', SLURM job ' + str(other['slurm_job']) if other.get('slurm_job') else ''}, "
                f"started {other.get('started')}, last alive {time.time() - touched:.0f} s ago (an orphan of a "
                f"killed snakemake, or the same job started twice). Stop it first: {stop}; docs/cluster.md, "
                "'Orphaned jobs'", field="checkpoint")
        if other:
            log.warning("taking over checkpoints from a writer that is gone (pid %s on %s, started %s)",
                        other.get("pid"), other.get("host"), other.get("started"))
    for leftover in directory.glob(".tmp-step-*"):  # a save the gone writer was killed in
        log.warning("removing %s, left by an interrupted checkpoint save", leftover)
        shutil.rmtree(leftover, ignore_errors=True)
    lock.write_text(json.dumps(_me()))


def touch(directory: Path, last: float) -> float:
    """Show the writer is alive (at most every TOUCH_S); returns when it last did."""
    now = time.time()
    if now - last >= TOUCH_S:
        lock_file(directory).touch(exist_ok=True)
        return now
    return last


def release(directory: Path) -> None:
    lock = lock_file(directory)
    try:
        if json.loads(lock.read_text()).get("pid") == os.getpid():
            lock.unlink()
    except (OSError, ValueError):
        pass
