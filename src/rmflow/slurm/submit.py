"""``rmflow submit``: one rmflow job, or a small sweep of them, on SLURM through submitit, outside Snakemake.

Resources come from the same SLURM profile the workflow uses (``--rule`` picks the entry under ``set-resources``,
merged over ``default-resources``), so a job submitted by hand asks for exactly what the workflow's job would.
Each job runs one ``rmflow`` command line in its own process (training keeps its preemption handling and its
resumable checkpoints); a sweep of several command lines goes out as one array job. The command waits, then prints
one line per job with its state and its headline number, and exits non-zero when any job failed.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)


def profile_resources(profile_dir: str, rule: str) -> dict:
    """``default-resources`` overlaid with ``set-resources[rule]`` from ``<profile_dir>/config.yaml``."""
    path = Path(profile_dir) / "config.yaml"
    if not path.exists():
        raise RmflowError("no SLURM profile here", file=str(path))
    profile = yaml.safe_load(path.read_text()) or {}
    rules = profile.get("set-resources") or {}
    if rule not in rules:
        raise RmflowError(f"no set-resources entry '{rule}' (entries: {', '.join(sorted(rules))})", file=str(path))
    return {**(profile.get("default-resources") or {}), **rules.get(rule, {})}


def executor_parameters(resources: dict) -> dict:
    """submitit's AutoExecutor parameters for the profile's resources."""
    params: dict = {"timeout_min": int(resources.get("runtime", 60)), "nodes": int(resources.get("nodes", 1)),
                    "tasks_per_node": 1, "cpus_per_task": int(resources.get("cpus_per_task", 1))}
    if resources.get("slurm_partition"):
        params["slurm_partition"] = resources["slurm_partition"]
    if resources.get("mem_mb"):
        params["mem_gb"] = max(1, math.ceil(int(resources["mem_mb"]) / 1024))
    if resources.get("gres"):
        params["slurm_gres"] = str(resources["gres"])
    if resources.get("slurm_extra"):
        params["slurm_additional_parameters"] = dict(
            item.lstrip("-").split("=", 1) for item in shlex.split(str(resources["slurm_extra"])) if "=" in item)
    return params


class RmflowCommand:
    """A picklable job: run ``rmflow <argv>`` and return what it produced (metrics.json or scores.json)."""

    def __init__(self, argv: list[str]):
        self.argv = list(argv)

    def __call__(self) -> dict:
        proc = subprocess.run([sys.executable, "-m", "rmflow.cli", *self.argv], check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"rmflow {shlex.join(self.argv)} exited with {proc.returncode}")
        return summary(self.argv)

    def checkpoint(self, *args, **kwargs):
        """submitit calls this before a time-limit requeue: rerun the same command (training resumes)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self)


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def summary(argv: list[str]) -> dict:
    if argv[0] == "train":
        metrics = json.loads((Path(_option(argv, "--out")) / "metrics.json").read_text())
        return {"final_loss": metrics["final_loss"], "train_accuracy": metrics["train_accuracy"],
                "optimizer_steps": metrics["optimizer_steps"]}
    if argv[0] == "evaluate":
        scores = json.loads((Path(_option(argv, "--out-dir")) / "scores.json").read_text())
        return {"score": scores["score"], **{k: v for k, v in scores["sections"].items()}}
    return {}


def prepare_commands(commands: list[str], resources: dict, folder: Path) -> list[list[str]]:
    """Split each command line; training gets the rule's process count and a checkpoint directory."""
    prepared = []
    for line in commands:
        argv = shlex.split(line)
        if not argv or argv[0] not in ("train", "evaluate"):
            raise RmflowError(f"--job must be an rmflow train or evaluate command line, got {line!r}")
        if argv[0] == "train":
            if not _option(argv, "--out"):
                raise RmflowError(f"--job {line!r} has no --out")
            if not _option(argv, "--checkpoint-dir"):
                argv += ["--checkpoint-dir", str(folder / "checkpoints" / Path(_option(argv, "--out")).name)]
            if not _option(argv, "--processes"):
                argv += ["--processes", str(resources.get("processes", 1))]
        prepared.append(argv)
    return prepared


def _failure_line(message: str) -> str:
    """The informative line of submitit's FailedJobError text (it embeds the job's whole traceback)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error:" in line or "exited with" in line:
            return line
    return lines[-1] if lines else "unknown failure"


def _quiet_sacct_warnings() -> None:
    # Without slurmdbd every status poll warns that sacct failed; completion is still seen through the result
    # pickle, so one explanation is enough.
    import shutil

    if shutil.which("sacct") and subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True,
                                                check=False).returncode != 0:
        log.info("no SLURM accounting (sacct fails): job completion is read from submitit's result files")
        logging.getLogger("submitit").setLevel(logging.ERROR)


def main(profile: str, rule: str, commands: list[str], folder: str, wait: bool = True,
         check_cluster: bool = True) -> list[dict]:
    import submitit

    from rmflow.slurm.resources import check_against_cluster

    resources = profile_resources(profile, rule)
    if check_cluster:
        check_against_cluster({rule: resources}, where=f"{profile}/config.yaml")
    base = Path(folder).resolve()
    argvs = prepare_commands(commands, resources, base)
    _quiet_sacct_warnings()
    executor = submitit.AutoExecutor(folder=str(base / "%j"), cluster="slurm")
    executor.update_parameters(name=f"rmflow-{rule}", **executor_parameters(resources))
    with executor.batch():
        jobs = [executor.submit(RmflowCommand(argv)) for argv in argvs]
    for job, argv in zip(jobs, argvs):
        log.info("submitted SLURM job %s: rmflow %s", job.job_id, shlex.join(argv))
    if not wait:
        return [{"job_id": job.job_id, "command": shlex.join(a), "state": "SUBMITTED"} for job, a in zip(jobs, argvs)]
    report = []
    for job, argv in zip(jobs, argvs):
        row = {"job_id": job.job_id, "command": shlex.join(argv)}
        try:
            row.update(state="COMPLETED", **job.result())
        except Exception as exc:  # noqa: BLE001 - a failed job is reported, not raised, so the others are seen
            row.update(state="FAILED", error=_failure_line(str(exc)), log=str(job.paths.stderr))
        report.append(row)
    return report
