"""One writer per checkpoint directory: a live one (same host: its pid; elsewhere: its SLURM job or a recent touch)
refuses a second; a gone one is taken over, and the temporaries of the save it was killed in are removed."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from rmflow.errors import RmflowError
from rmflow.train import writer_lock


def _lock(directory, **fields):
    directory.mkdir(parents=True, exist_ok=True)
    record = {"host": "node-a", "pid": 1, "slurm_job": None, "started": "2026-12-07 10:00:00", **fields}
    writer_lock.lock_file(directory).write_text(json.dumps(record))
    return writer_lock.lock_file(directory)


def test_a_live_writer_on_this_host_is_named_and_refused(tmp_path):
    import socket

    other = subprocess.Popen(["sleep", "60"])
    try:
        _lock(tmp_path / "ckpt", host=socket.gethostname(), pid=other.pid)
        with pytest.raises(RmflowError, match=rf"pid {other.pid} on .*kill {other.pid}.*docs/cluster.md"):
            writer_lock.claim(tmp_path / "ckpt")
    finally:
        other.kill()
        other.wait()
    writer_lock.claim(tmp_path / "ckpt")  # gone now: taken over
    assert json.loads(writer_lock.lock_file(tmp_path / "ckpt").read_text())["pid"] == os.getpid()


def test_a_gone_writer_is_taken_over_and_its_interrupted_save_removed(tmp_path, caplog):
    import socket

    dead = subprocess.Popen(["true"])
    dead.wait()
    directory = tmp_path / "ckpt"
    _lock(directory, host=socket.gethostname(), pid=dead.pid)
    (directory / ".tmp-step-00000040").mkdir()
    (directory / ".tmp-step-00000040/optimizer.bin").write_bytes(b"half")
    (directory / "step-00000020").mkdir()
    writer_lock.claim(directory)
    assert not (directory / ".tmp-step-00000040").exists() and (directory / "step-00000020").exists()
    assert "taking over checkpoints from a writer that is gone" in caplog.text


def test_another_host_counts_as_alive_while_it_touches_the_lock(tmp_path):
    lock = _lock(tmp_path / "ckpt", host="node-elsewhere", pid=4242)
    with pytest.raises(RmflowError, match="pid 4242 on node-elsewhere"):
        writer_lock.claim(tmp_path / "ckpt")
    old = time.time() - writer_lock.QUIET_S - 5
    os.utime(lock, (old, old))
    writer_lock.claim(tmp_path / "ckpt")


def test_a_requeued_slurm_job_takes_over_its_own_earlier_run(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    _lock(tmp_path / "ckpt", host="node-before-requeue", pid=99, slurm_job="777")
    writer_lock.claim(tmp_path / "ckpt")
    writer_lock.release(tmp_path / "ckpt")
    assert not writer_lock.lock_file(tmp_path / "ckpt").exists()
