"""Cluster commands: the rehearsal hub and profile, the hub check, the job plan, submitit sweeps."""

from __future__ import annotations

from dataclasses import dataclass

from rmflow.errors import RmflowError
from rmflow.options import Command, opt


@dataclass(kw_only=True)
class RehearsalHub:
    out: str = opt(writes="dir")
    config: list[str] = opt(factory=lambda: ["config/config.yaml", "config/paper.yaml"], nargs="+")
    seed: int = opt(0)
    local_root: str | None = opt(None, "also write the stand-ins of eval sets read from a local folder (RMB's "
                                       "GitHub folder) here, at their configured relative paths: the run's "
                                       "working directory")


def rehearsal_hub(a: RehearsalHub) -> None:
    from rmflow.rehearsal import writer

    writer.main(a.out, a.config, a.seed, local_root=a.local_root)


@dataclass(kw_only=True)
class RehearsalProfile:
    source: str = opt("profiles/slurm")
    out: str = opt(writes="dir")
    partition: str = opt("debug")
    jobs: int = opt(4)


def rehearsal_profile(a: RehearsalProfile) -> None:
    from rmflow.rehearsal import profile

    profile.main(a.source, a.out, a.partition, a.jobs)


@dataclass(kw_only=True)
class HubCheck:
    configfile: list[str] = opt(help="the config layers, in Snakemake's order")


def hub_check(a: HubCheck) -> None:
    from rmflow import hub_check

    hub_check.main(a.configfile)


@dataclass(kw_only=True)
class Plan:
    configfile: list[str] = opt(help="config layers after config/config.yaml", factory=list)
    profile: str | None = opt(None, "a Snakemake profile directory (its set-resources)")
    json: str | None = opt(None, "write one object per job here", writes="file")
    sinfo: str = opt("sinfo", "the cluster's sinfo ('' to compare with the profile only)")
    directory: str = opt(".", "the workflow's directory (holds config/ and workflow/)")


def plan(a: Plan) -> None:
    from rmflow.sizing import main as sizing

    sizing.main(a.configfile, a.profile, a.json, a.sinfo or None, a.directory)


@dataclass(kw_only=True)
class Submit:
    profile: str = opt("profiles/slurm", "SLURM profile whose resources the jobs get")
    rule: str = opt(help="its set-resources entry: train_a100_80g, train_cpu, evaluate, ...")
    job: list[str] = opt(help="one rmflow command line, e.g. 'train --spec s.json --out m'; repeat for a sweep",
                         repeat=True)
    folder: str = opt("results/scratch/submitit", "submitit's logs and pickles")
    no_wait: bool = opt(False, "print the job ids and return")


def submit(a: Submit) -> None:
    import json

    from rmflow.slurm import submit

    report = submit.main(a.profile, a.rule, a.job, a.folder, wait=not a.no_wait)
    for row in report:
        print(json.dumps(row))
    failed = [row for row in report if row["state"] == "FAILED"]
    if failed:
        raise RmflowError(f"{len(failed)} of {len(report)} job(s) failed; first: SLURM job {failed[0]['job_id']}, "
                          f"{failed[0]['error']} (log: {failed[0]['log']})")


COMMANDS = [
    Command("rehearsal-hub", "a Hugging Face cache of layout-true stand-ins for every hub id the configs name "
                             "(HF_HOME=OUT HF_HUB_OFFLINE=1 loads them by id)", RehearsalHub, rehearsal_hub),
    Command("rehearsal-profile", "the SLURM profile, CPU-sized and without GPUs, for a rehearsal", RehearsalProfile,
            rehearsal_profile),
    Command("hub-check", "every hub reference of the configs loadable where the jobs run (exists, licence accepted, "
                         "revision, split, data_dir; offline: cached)", HubCheck, hub_check),
    Command("plan", "every job's estimated GPU memory, time and disk against its request and the cluster; refuses "
                    "what cannot finish (the SLURM run's onstart runs the same check)", Plan, plan),
    Command("submit", "submit rmflow train/evaluate jobs (a sweep: several --job) with submitit", Submit, submit),
]
