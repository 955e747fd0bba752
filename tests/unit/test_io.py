"""Atomic outputs follow the user's umask: a lab's shared results stay readable (0644/0755 under 0022, 0664/0775
under 0002), never the 0600/0700 that mkstemp/mkdtemp give a temporary."""

from __future__ import annotations

import contextlib
import os
import stat
import time

import pytest

from rmflow.io import atomic_dir, atomic_path, write_json, write_jsonl, write_text


@contextlib.contextmanager
def umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775),
                                                        (0o077, 0o600, 0o700)])
def test_every_atomic_helper_ends_with_the_modes_of_plain_creation(tmp_path, mask, file_mode, dir_mode):
    import numpy as np
    from safetensors.numpy import save_file

    with umask(mask):
        write_text(tmp_path / "a.txt", "x")
        write_json(tmp_path / "b.json", {"a": 1})
        write_jsonl(tmp_path / "c.jsonl", [{"a": 1}])
        with atomic_path(tmp_path / "d.parquet") as tmp:
            tmp.write_bytes(b"PAR1")
        with atomic_dir(tmp_path / "model") as tmp:
            (tmp / "sub").mkdir()
            (tmp / "sub/config.json").write_text("{}")
            save_file({"w": np.zeros(2, dtype=np.float32)}, str(tmp / "model.safetensors"))
            write_json(tmp / "metrics.json", {})  # a nested atomic write inside an atomic directory
    for name in ("a.txt", "b.json", "c.jsonl", "d.parquet", "model/sub/config.json", "model/model.safetensors",
                 "model/metrics.json"):
        assert mode(tmp_path / name) == file_mode, name
    assert mode(tmp_path / "model") == dir_mode and mode(tmp_path / "model/sub") == dir_mode
    assert not list(tmp_path.glob(".*tmp*"))


def test_checkpoints_follow_the_umask_too(tmp_path, tiny_base):
    import torch
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM

    from rmflow.train.checkpoint import Checkpointer

    with umask(0o002):
        accelerator = Accelerator(cpu=True)
        model = accelerator.prepare(AutoModelForCausalLM.from_pretrained(tiny_base))
        optimizer = accelerator.prepare(torch.optim.AdamW(model.parameters()))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        where = Checkpointer(tmp_path / "scratch", every=1).save(accelerator, scheduler, 3, {"step": 3})
    assert mode(where) == 0o775
    files = [p for p in where.rglob("*") if p.is_file()]
    assert files and all(mode(p) == 0o664 for p in files), {p.name: oct(mode(p)) for p in files}


def test_write_json_from_a_command_line_writes_what_write_json_writes(tmp_path):
    # the spec rules hand their value to `rmflow write-json` as one line of JSON; the file must be the one
    # write_json writes (a run spec changed by a byte would make every model out of date)
    import yaml

    from helpers import run_cli
    from rmflow.io import command_json

    value = {"method": "bt", "train": {"lr": 1e-5, "max_steps": -1, "deepspeed": None, "tags": ["a", "é"]},
             "base": "llama3_8b_instruct", "options": {"template": "[CONTEXT] {q} 'quoted' \"double\"\n"}}
    write_json(tmp_path / "direct.json", value)
    data = command_json(value, "a run spec")
    assert "\n" not in data
    assert run_cli("write-json", "--out", str(tmp_path / "cli.json"), f"--data={data}").returncode == 0
    assert (tmp_path / "cli.json").read_bytes() == (tmp_path / "direct.json").read_bytes()
    assert run_cli("write-json", "--yaml", "--out", str(tmp_path / "cli.yaml"), f"--data={data}").returncode == 0
    assert (tmp_path / "cli.yaml").read_text() == yaml.safe_dump(value, sort_keys=False)


def test_a_value_too_long_for_a_shell_command_is_refused_by_name():
    from rmflow.errors import RmflowError
    from rmflow.io import command_json

    with pytest.raises(RmflowError, match=r"run spec bt/big: 1\d{4} bytes of JSON, over the 10000 a rule's shell"):
        command_json({"text": "x" * 10_000}, "run spec bt/big", limit=10_000)


def test_a_killed_writers_temporary_is_removed_by_the_next_write_of_the_same_path(tmp_path):
    """A hard kill mid-save leaves .<name>.<host>.<pid>.<random>.tmp; the next write of that path removes it once
    its writer is gone, and leaves a live writer's (or another path's) alone."""
    import socket
    import subprocess

    from rmflow.io import atomic_dir

    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "60"])
    host = socket.gethostname()
    try:
        killed = tmp_path / f".model.{host}.{dead.pid}.abcd1234.tmp"
        running = tmp_path / f".model.{host}.{live.pid}.efgh5678.tmp"
        elsewhere = tmp_path / ".model.other-node.12.ijkl9012.tmp"
        unrelated = tmp_path / f".other.{host}.{dead.pid}.mnop3456.tmp"
        for leftover in (killed, running, elsewhere, unrelated):
            leftover.mkdir()
            (leftover / "model.safetensors").write_bytes(b"partial")
        with atomic_dir(tmp_path / "model") as tmp:
            (tmp / "config.json").write_text("{}")
        assert not killed.exists()
        assert running.exists() and elsewhere.exists() and unrelated.exists()
        old = time.time() - 3600  # nothing written in it for an hour: its writer elsewhere is gone too
        for p in (elsewhere, elsewhere / "model.safetensors"):
            os.utime(p, (old, old))
        with atomic_dir(tmp_path / "model") as tmp:
            (tmp / "config.json").write_text("{}")
        assert not elsewhere.exists() and running.exists()
    finally:
        live.kill()
        live.wait()
