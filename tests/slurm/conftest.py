"""The local SLURM cluster (scripts/local-slurm.sh) for the tests in this folder, up once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from rmflow.rehearsal.profile import cpu_overlay

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts/local-slurm.sh"


def _missing() -> str | None:
    if shutil.which("slurmctld") is None or shutil.which("munged") is None:
        return "SLURM is not installed (scripts/local-slurm.sh install; .ci/run does it)"
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (slurm.conf must be /etc/slurm/slurm.conf)"
    return None


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    # munged insists that every directory above its socket is world-executable: not pytest's 0700 temp dirs
    base = Path(tempfile.mkdtemp(prefix="rmflow-slurm-"))
    base.chmod(0o755)
    up = subprocess.run([str(SCRIPT), "up", str(base)], capture_output=True, text=True, timeout=180)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield base
    finally:
        subprocess.run([str(SCRIPT), "down", str(base)], capture_output=True, text=True, timeout=180)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def test_profile(tmp_path_factory) -> Path:
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    folder = tmp_path_factory.mktemp("profile") / "slurm-local"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(cpu_overlay(profile), sort_keys=False))
    return folder
