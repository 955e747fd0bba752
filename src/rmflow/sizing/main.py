"""``rmflow plan``: every job of a run with its estimated GPU memory, time and disk, checked against the profile's
requests and the cluster, before anything is submitted. The SLURM run's ``onstart`` runs :func:`refusals` on the
jobs Snakemake schedules, so what ``rmflow plan`` refuses is never submitted either."""

from __future__ import annotations

import glob
import json
import logging
import shutil
import sys
from pathlib import Path

import yaml

from rmflow.errors import RmflowError
from rmflow.sizing.check import Estimate, disk_problems, estimate_job
from rmflow.sizing.jobs import LOCAL_RULES, Job, job_for, planned_jobs
from rmflow.sizing.shapes import facts

log = logging.getLogger(__name__)


def profile_settings(profile: str | None) -> dict:
    """A Snakemake profile directory's config.yaml ({} without a profile)."""
    if not profile:
        return {}
    path = Path(profile) / "config.yaml"
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RmflowError(f"cannot read the profile ({exc})", file=str(path)) from exc


def profile_resources(profile: str | None) -> tuple[dict, dict]:
    """(default-resources, set-resources) of a Snakemake profile directory (its config.yaml)."""
    text = profile_settings(profile)
    return dict(text.get("default-resources") or {}), dict(text.get("set-resources") or {})


def resources_for(rule: str, defaults: dict, per_rule: dict) -> dict:
    """What a job of ``rule`` asks SLURM for (nothing: a local rule runs in the snakemake process)."""
    return {} if rule in LOCAL_RULES else {**defaults, **(per_rule.get(rule) or {})}


def measured_mfu(results: str = "results") -> tuple[dict, str]:
    """The MFU the time estimates divide by: the median over finished runs' metrics.json where they record one
    (``mfu`` on a GPU), else the fact sheet's assumption."""
    assumed = dict(facts()["assumed_mfu"])
    found = {"train": [], "score": []}
    for path in glob.glob(f"{results}/**/metrics.json", recursive=True) + \
            glob.glob(f"{results}/**/scores.json", recursive=True):
        try:
            record = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        usage = record.get("utilisation") or {}
        if usage.get("device") == "cuda" and isinstance(usage.get("mfu"), (int, float)) and usage["mfu"] > 0:
            found["train" if path.endswith("metrics.json") else "score"].append(float(usage["mfu"]))
    source = []
    for kind, values in found.items():
        if values:
            assumed[kind] = sorted(values)[len(values) // 2]
            source.append(f"{kind} MFU {assumed[kind]:.2f}: median of {len(values)} measured GPU runs")
        else:
            source.append(f"{kind} MFU {assumed[kind]:.2f}: assumed (no measured GPU run under {results}/)")
    return assumed, "; ".join(source)


def cluster(sinfo: str | None):
    """The cluster's partitions, or None (and why) where no SLURM answers here."""
    from rmflow.slurm.resources import cluster_partitions

    if not sinfo or shutil.which(sinfo) is None:
        return None, "no sinfo here: compared with the profile's requests only"
    try:
        return cluster_partitions(sinfo), f"partitions from {sinfo}"
    except RmflowError as exc:
        return None, f"{exc}; compared with the profile's requests only"


def estimate_all(jobs: list[Job], resources_of, partitions, mfu: dict, attempts: int = 1) -> list[Estimate]:
    return [estimate_job(job, resources_of(job.rule), partitions, mfu, attempts) for job in jobs]


def warnings_of(estimates: list[Estimate]) -> list[str]:
    """Each job's warnings; one about a rule's request ("rule X: ...") said once for all its jobs."""
    out = [w if w.startswith("rule ") else f"{e.job}: {w}" for e in estimates for w in e.warnings]
    return list(dict.fromkeys(out))


def problems_of(estimates: list[Estimate]) -> list[str]:
    return [f"{e.job}: " + "; ".join(e.advice) for e in estimates if not e.fits]


def refusals(plan, scheduled: list[tuple[str, dict, dict]], partitions, attempts: int = 1) -> list[str]:
    """The ``onstart`` check: ``(rule, wildcards, resources)`` of each job Snakemake will submit; ``attempts``: the
    run's retries + 1."""
    by_name = {job.name: job for job in planned_jobs(plan)}
    jobs = [job_for(plan, rule, wildcards, by_name) for rule, wildcards, _ in scheduled]
    resources = {job.name: res for job, (_, _, res) in zip(jobs, scheduled)}
    mfu, _ = measured_mfu()
    estimates = [estimate_job(job, resources[job.name], partitions, mfu, attempts) for job in jobs]
    disk, _ = disk_problems(estimates, jobs)
    for warning in warnings_of(estimates):
        log.warning("%s", warning)
    return [f"job {p}" for p in problems_of(estimates)] + disk


def request_problems(jobs: list[Job], resources_of, partitions, where) -> list[str]:
    """The onstart check of each rule's request (partition, GPUs, CPUs, memory per node; rmflow.slurm.resources)."""
    from rmflow.slurm.resources import check_rule

    if partitions is None:
        return []
    rules = sorted({job.rule for job in jobs if job.rule not in LOCAL_RULES})
    return [p for rule in rules for p in check_rule(rule, resources_of(rule), partitions, f"{where}/config.yaml")]


def _fmt(value, digits=0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _group_name(group: list[Estimate]) -> str:
    """rule[key=a|b, ...] for jobs that differ only in some wildcards (x N where too many to list)."""
    parts = []
    for key in group[0].wildcards:
        values = list(dict.fromkeys(str(e.wildcards.get(key)) for e in group))
        parts.append(f"{key}={values[0]}" if len(values) == 1 else
                     f"{key}={'|'.join(values)}" if len(values) <= 3 else f"{key} x {len(values)}")
    return f"{group[0].rule}[{', '.join(parts)}]"


def _attempts(e: Estimate) -> str:
    return f" ({e.attempts} attempts, resumable)" if e.attempts > 1 else ""


def table(estimates: list[Estimate]) -> str:
    """The GPU jobs as a Markdown table, jobs with the same rule, model and estimates on one row (x N)."""
    rows: dict[tuple, list[Estimate]] = {}
    for e in estimates:
        if e.gpus:
            own = [w for w in e.warnings if not w.startswith("rule ")]
            key = (e.rule, e.method, e.base, e.gpus, e.gpu_type, e.est_gpu_mem_gb, e.gpu_mem_gb, e.est_hours,
                   e.time_limit_hours, e.est_disk_gb, e.fits, bool(own))
            rows.setdefault(key, []).append(e)
    lines = ["| job | GPUs | type | est. GB/GPU | GPU GB | est. h | limit h | disk GB | fits |",
             "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for key, group in rows.items():
        e, warned = group[0], key[-1]
        name = e.job if len(group) == 1 else _group_name(group)
        lines.append(f"| {name} | {e.gpus} | {e.gpu_type or '-'} | {_fmt(e.est_gpu_mem_gb)} | "
                     f"{_fmt(e.gpu_mem_gb)} | {_fmt(e.est_hours, 1)} | {_fmt(e.time_limit_hours)} | "
                     f"{_fmt(e.est_disk_gb or None)} | {'yes' if e.fits else 'NO'}{_attempts(e)}"
                     f"{' (warned)' if warned else ''} |")
    cpu = [e for e in estimates if not e.gpus]
    lines.append(f"\n{len(cpu)} CPU jobs ({', '.join(sorted({e.rule for e in cpu}))}): no GPU estimate; "
                 f"{sum(not e.fits for e in cpu)} refused")
    return "\n".join(lines)


def main(config_files: list[str], profile: str | None, json_out: str | None, sinfo: str | None = "sinfo",
         workflow_dir: str = ".") -> None:
    from rmflow.config import load_config, resolve_shipped_files
    from rmflow.plan import Plan

    base = Path(workflow_dir)
    layers = [str(base / "config/config.yaml"), *config_files]  # the Snakefile's configfile, then --configfile
    config = load_config(*layers, schema_path=base / "workflow/schemas/config.schema.yaml")
    resolve_shipped_files(config, str(base))
    plan = Plan(config, layers)
    jobs = planned_jobs(plan)
    defaults, per_rule = profile_resources(profile)
    attempts = int(profile_settings(profile).get("retries") or 0) + 1
    partitions, where = cluster(sinfo)
    mfu, mfu_source = measured_mfu()
    estimates = estimate_all(jobs, lambda rule: resources_for(rule, defaults, per_rule), partitions, mfu, attempts)
    disk, disk_warnings = disk_problems(estimates, jobs)
    disk += request_problems(jobs, lambda rule: resources_for(rule, defaults, per_rule), partitions, profile)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps({"jobs": [e.as_json() for e in estimates], "disk": disk + disk_warnings,
                                              "cluster": where, "mfu": mfu_source}, indent=1) + "\n",
                                  encoding="utf-8")
    print(table(estimates))
    print(f"cluster: {where}\ntime: {mfu_source}")
    buckets = dict.fromkeys(a.removeprefix("data: ") for e in estimates for a in e.assumptions if "size bucket" in a)
    for note in buckets:  # rows read off a card's size bucket: said, with the card
        print(f"rows: {note}")
    for warning in warnings_of(estimates):
        print(f"warning: {warning}", file=sys.stderr)
    for warning in disk_warnings:
        print(f"warning: {warning}", file=sys.stderr)
    refused, other = problems_of(estimates), disk
    if refused or other:
        raise RmflowError(f"the run cannot finish as planned: {len(refused)} of {len(jobs)} jobs refused, "
                          f"{len(other)} problem(s) of the cluster or disk:\n  " + "\n  ".join(refused + other))
    print(f"plan: all {len(jobs)} jobs fit")
