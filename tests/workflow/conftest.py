"""The quick workflow, run once per session for every test that reads a finished run (tests/workflow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REPO, snakemake


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wf")
    # umask 0002, a group-shared project directory: what the run writes must come out 0664/0775
    # 40 min: under make test it shares the cores with the other lane (alone it takes about 7)
    proc = snakemake(work, "all", "--profile", str(REPO / "profiles/local"), umask=0o002, timeout=2400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work
