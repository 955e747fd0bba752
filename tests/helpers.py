"""Helpers the test folders share (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "tests/workflow/quick.yaml"
DEFAULT = REPO / "config/config.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(workdir: Path, *args: str, configs=(DEFAULT, QUICK), timeout=900) -> subprocess.CompletedProcess:
    """The real snakemake on the real Snakefile in ``workdir``; targets first (--configfile takes every following
    word as a config file)."""
    cmd = [*SNAKEMAKE, *args, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", *map(str, configs)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
