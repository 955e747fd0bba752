"""The SLURM profile a rehearsal submits through: ``profiles/slurm`` with the same structure (every rule's
set-resources entry, the same sbatch path), its GPU requests dropped and CPU-sized resources on one partition, plus
the settings a cluster without accounting needs (README, SLURM section). ``rmflow rehearsal-profile`` writes it;
tests/slurm uses the same overlay."""

from __future__ import annotations

from pathlib import Path


def cpu_overlay(profile: dict, partition: str = "debug", jobs: int = 4, mem_mb: int = 1500) -> dict:
    """``jobs`` in SLURM's queue at once (the node runs as many as its CPUs allow, the rest wait there, so no CPU
    idles between two submissions); status every 2 s, since rehearsal jobs take seconds, not hours."""
    def cpu(resources: dict) -> dict:
        resources = {k: v for k, v in resources.items() if k not in ("gres", "gpus")}
        return {**resources, "slurm_partition": partition, "cpus_per_task": 1, "mem_mb": mem_mb, "runtime": 20,
                **({"processes": 1} if "processes" in resources else {})}

    overlay = dict(profile)
    overlay["default-resources"] = cpu(profile["default-resources"])
    overlay["set-resources"] = {rule: cpu(res) for rule, res in profile["set-resources"].items()}
    overlay["set-threads"] = {rule: 1 for rule in profile["set-threads"]}
    overlay.update({"jobs": jobs, "latency-wait": 5, "retries": 0, "seconds-between-status-checks": 2,
                    "slurm-status-command": "squeue",
                    "slurm-no-account": True, "slurm-init-seconds-before-status-checks": 2,
                    "slurm-keep-successful-logs": True})
    return overlay


def main(source: str, out: str, partition: str, jobs: int) -> None:
    import yaml

    profile = yaml.safe_load((Path(source) / "config.yaml").read_text(encoding="utf-8"))
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "config.yaml").write_text(
        "# written by rmflow rehearsal-profile from " + source + ": CPU-sized, no GPUs, no accounting\n"
        + yaml.safe_dump(cpu_overlay(profile, partition, jobs), sort_keys=False), encoding="utf-8")
    print(f"profile {out}/config.yaml (from {source}, partition {partition}, {jobs} jobs at a time)")
