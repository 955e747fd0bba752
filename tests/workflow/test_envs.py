"""Each conda env file is enough for the rules that declare it.

No conda channel is reachable here, so each env's Python dependency set is built in a fresh virtual environment
from the env file's own pip list (parsed, not copied; torch from the local CPU wheel first so that no CUDA build is
pulled), and the shell command of every rule that declares that env is run in it on the quick workflow's real
inputs, with the environment's interpreter first on PATH, exactly as Snakemake runs it under --sdm conda (rules
import rmflow from the workflow's own src/ through PYTHONPATH, so the env needs no rmflow install and no
post-deploy step). A package a rule imports that its env file lacks fails the rule's command, and this test.

The environments are cached per env-file hash under $RMFLOW_ENV_CACHE (default ~/.cache/rmflow/envs).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import DEFAULT, QUICK, REPO, SNAKEMAKE

CACHE = Path(os.environ.get("RMFLOW_ENV_CACHE", Path.home() / ".cache/rmflow/envs"))
TORCH = "torch==2.13.0"  # the CPU wheel this machine carries; every env's torch range admits it


def pip_requirements(env_file: Path) -> list[str]:
    """The env file's pip list, as written."""
    spec = yaml.safe_load(env_file.read_text())
    for item in spec.get("dependencies", []):
        if isinstance(item, dict) and "pip" in item:
            return list(item["pip"])
    return []


def build_env(env_file: Path) -> Path:
    """A virtual environment holding exactly the env file's pip packages (and their dependencies)."""
    requirements = pip_requirements(env_file)
    digest = hashlib.sha256((env_file.read_text() + TORCH).encode()).hexdigest()[:16]
    prefix = CACHE / f"{env_file.stem}-{digest}"
    if (prefix / ".complete").exists():
        return prefix
    shutil.rmtree(prefix, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(prefix)], check=True)
    # --no-compile: no byte-compiling of every installed module (torch alone has thousands); the rules compile what
    # they import
    pip = [str(prefix / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    if any(re.match(r"torch\b", r) for r in requirements):
        subprocess.run([*pip, TORCH], check=True)
    # --no-build-isolation: a package built from source (deepspeed) sees the CPU torch installed above instead of
    # pulling a CUDA build into an isolated build environment
    subprocess.run([*pip, "--no-build-isolation", *requirements], check=True, timeout=1800)
    (prefix / ".complete").touch()
    return prefix


def rule_envs() -> dict[str, str]:
    """rule name -> env file stem, from the conda: directives of workflow/rules/*.smk."""
    envs = {}
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        text = smk.read_text()
        for block in re.split(r"\n(?=\s*rule[ :])", text):
            env = re.search(r'conda:\s*\n\s*"\.\./\.\./envs/(\w+)\.yaml"', block)
            if not env:
                continue
            name = re.search(r"rule (\w+):", block)
            generated = re.search(r'name:\s*\n\s*f"(\w+_)\{\w+\}"', block)
            if name:
                envs[name.group(1)] = env.group(1)
            elif generated:  # rules made in a loop: train_<preset>, stage_<name>
                envs[generated.group(1)] = env.group(1)
    return envs


def env_of(envs: dict[str, str], rule: str) -> str | None:
    """A rule's env: its own entry, or the entry of the loop that made it (train_, stage_)."""
    return envs.get(rule) or next((env for prefix, env in envs.items() if prefix.endswith("_")
                                   and rule.startswith(prefix)), None)


def shell_commands(workdir: Path) -> dict[str, str]:
    """One shell command per rule, as the workflow would run it on this finished run's files."""
    proc = subprocess.run([*SNAKEMAKE, "all", "-n", "-p", "--forceall", "--snakefile", str(REPO / "Snakefile"),
                           "--directory", str(workdir), "--configfile", str(DEFAULT), str(QUICK)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    commands = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout + proc.stderr):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        command = re.search(r"^Shell command: (.+)$", block, re.M)
        if rule and command and command.group(1) != "None":
            commands.setdefault(rule.group(1), command.group(1))
    return commands


@pytest.mark.slow
def test_every_env_file_is_enough_for_its_rules(finished_run, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(finished_run, work, symlinks=True, ignore=shutil.ignore_patterns(".snakemake"))
    envs, commands = rule_envs(), shell_commands(work)
    missing = sorted(rule for rule in commands if env_of(envs, rule) is None)
    assert not missing, f"rules without a conda env: {missing}"
    failures = []
    for env_name in sorted(set(envs.values())):
        prefix = build_env(REPO / "envs" / f"{env_name}.yaml")
        environment = {**os.environ, "PATH": f"{prefix / 'bin'}{os.pathsep}{os.environ['PATH']}",
                       "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        for rule, command in sorted(commands.items()):
            if env_of(envs, rule) != env_name:
                continue
            proc = subprocess.run(["bash", "-c", command], cwd=work, env=environment, capture_output=True, text=True,
                                  timeout=900)
            log = re.search(r"> (\S+) 2>&1", command)
            if proc.returncode != 0:
                text = (work / log.group(1)).read_text()[-1500:] if log and (work / log.group(1)).exists() else ""
                failures.append(f"{rule} in envs/{env_name}.yaml: exit {proc.returncode}\n{text}{proc.stderr[-500:]}")
    assert not failures, "\n\n".join(failures)
    assert {"train.yaml", "eval.yaml", "data.yaml", "table.yaml"} == {f"{e}.yaml" for e in set(envs.values())}
