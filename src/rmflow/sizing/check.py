"""Each job's estimate against what it asked for and what the cluster has: fits, refused or warned, with advice.

A job is refused when its estimated peak GPU memory exceeds its GPUs' memory, its estimated time its ``runtime``,
its ``runtime`` the partition's ``MaxTime``, or its GPU type is not in the partition; it is warned when an estimate
comes within 10 % of the limit. Disk is judged for the whole run: every training's checkpoints (two kept plus
the one being written) and saved model under ``results/``, and the hub models in the Hugging Face cache.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from dataclasses import dataclass, field

from rmflow.devices import gpus_in_request
from rmflow.sizing import estimate as est
from rmflow.sizing.jobs import Job, Work
from rmflow.sizing.shapes import cached_config, facts, shape_of

WARN_WITHIN = 0.10
GPU_MEMORY_GB = {"a40": 48, "a6000": 48, "l40s": 48, "l40": 48, "h100": 80, "h200": 141, "a10": 24,
                 "a100": 40, "v100": 16}  # the smallest of each type; gpu_memory_gb in the profile says which
AMBIGUOUS_MEMORY = {"a100": "40 or 80", "v100": "16 or 32", "h100": "80 or 94"}
LOAD_HOURS = 0.1  # start-up: imports, loading and sharding the weights


@dataclass
class Estimate:
    rule: str
    method: str | None
    base: str | None
    gpus: int
    gpu_type: str | None
    est_gpu_mem_gb: float | None
    gpu_mem_gb: float | None
    est_hours: float | None
    time_limit_hours: float | None
    est_disk_gb: float
    fits: bool = True
    est_checkpoints_gb: float = 0.0  # of est_disk_gb: resumable checkpoints, deleted when the training ends
    attempts: int = 1  # submissions a resumable job needs to finish within its runtime
    advice: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    job: str = ""
    wildcards: dict = field(default_factory=dict)
    memory_parts_gb: dict = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items()}


def gpu_type_of(gres: str | None) -> str | None:
    from rmflow.slurm.resources import gpu_types

    return next(iter(sorted(gpu_types(str(gres or "")))), None)


def setup_for(work: Work, shape, gpus: int, nodes: int, attention: str | None) -> est.Setup:
    """How the job holds its model: the DeepSpeed JSON's stage and offload, precision, checkpointing."""
    import json

    stage, offload_opt, offload_params = 0, False, False
    train = work.train
    if train is not None and train.deepspeed and os.path.isfile(train.deepspeed):
        with open(train.deepspeed, encoding="utf-8") as fh:
            zero = json.load(fh).get("zero_optimization", {})
        stage = int(zero.get("stage", 0))
        offload_opt = (zero.get("offload_optimizer") or {}).get("device", "none") not in ("none", None)
        offload_params = (zero.get("offload_param") or {}).get("device", "none") not in ("none", None)
    default_attention = "eager" if shape.family == "gemma2" else "sdpa"  # transformers: Gemma-2 has no SDPA path
    return est.Setup(gpus=max(gpus, 1), nodes=max(nodes, 1), zero_stage=stage, offload_optimizer=offload_opt,
                     offload_params=offload_params, bf16=train.bf16 if train is not None else True,
                     gradient_checkpointing=bool(train and train.gradient_checkpointing),
                     attention=attention or default_attention)


def memory_of(work: Work, shape, setup: est.Setup) -> dict:
    if work.kind == "train":
        return est.train_memory(shape, work.head, setup, work.batch_texts, work.max_length, work.logit_positions)
    tokens = min(work.batch_texts * work.max_length, work.batch_tokens or work.batch_texts * work.max_length)
    return est.inference_memory(shape, work.head, max(tokens, work.max_length), work.max_length, setup.attention,
                                logit_positions=work.logit_positions)


def hours_of(work: Work, shape, gpus: int, gpu_type: str | None, mfu: dict) -> float | None:
    peak = facts()["gpu_peak_flops"].get(gpu_type or "")
    if not peak or not gpus or any(d.rows is None for d in work.data):
        return None  # no peak for the GPU type, or a data set of unknown size: no time estimate
    train = work.kind == "train"
    texts = work.texts * (gpus if work.per_process else 1)
    flops = texts * work.tokens_per_text * est.flops_per_token(shape, work.head, work.tokens_per_text, train)
    if not train:
        flops *= 1.1  # length-sorted batches still pad up to 10 % (ScalarScorer.batches)
    share = mfu["train" if train else "score"]
    return flops / (peak * gpus * share) / 3600 + LOAD_HOURS


def advice_for_memory(work: Work, shape, setup: est.Setup, limit_gb: float) -> list[str]:
    """Changes that would make a job fit, each with its estimate; the first fitting one of each kind."""
    out = []

    def fits(work_, setup_) -> float | None:
        total = memory_of(work_, shape, setup_)["total"] / est.GB
        return total if total <= limit_gb else None

    if work.kind != "train":
        for tokens in (4096, 2048, 1024):
            smaller = dataclasses.replace(work, batch_texts=1, batch_tokens=tokens)
            if tokens < (work.batch_tokens or 0) and (got := fits(smaller, setup)):
                out.append(f"a token budget of {tokens} padded tokens per batch ({got:.0f} GB)")
                break
        return out + [f"a GPU with at least {memory_of(work, shape, setup)['total'] / est.GB * 1.1:.0f} GB"]
    if setup.zero_stage < 3 and (got := fits(work, dataclasses.replace(setup, zero_stage=3))):
        out.append(f"ZeRO-3 (train.deepspeed: config/deepspeed/zero3.json): {got:.0f} GB")
    checkpointed = dataclasses.replace(setup, gradient_checkpointing=True)
    if not setup.gradient_checkpointing and (got := fits(work, checkpointed)):
        out.append(f"train.gradient_checkpointing: true: {got:.0f} GB")
    batch = work.train.per_device_batch
    while batch > 1:
        batch //= 2
        smaller = dataclasses.replace(work, batch_texts=work.batch_texts * batch // work.train.per_device_batch)
        if got := fits(smaller, setup):
            factor = work.train.per_device_batch // batch
            out.append(f"per_device_batch {batch} with grad_accum {work.train.grad_accum * factor} (same global "
                       f"batch): {got:.0f} GB")
            break
    if setup.zero_stage and (got := fits(work, dataclasses.replace(setup, zero_stage=3, offload_optimizer=True))):
        out.append(f"ZeRO-3 with the optimizer offloaded to the CPU (offload_optimizer: cpu): {got:.0f} GB")
    if setup.zero_stage and (got := fits(work, dataclasses.replace(setup, nodes=setup.nodes * 2))):
        out.append(f"twice the GPUs ({setup.gpus * setup.nodes * 2}, nodes: {setup.nodes * 2}): {got:.0f} GB")
    return out or [_combined_advice(work, setup, fits)]


def _combined_advice(work: Work, setup: est.Setup, fits) -> str:
    """The first combination, built up one change at a time, that fits (none of them alone does)."""
    steps = [("ZeRO-3", lambda w, s: (w, dataclasses.replace(s, zero_stage=3))),
             ("gradient checkpointing", lambda w, s: (w, dataclasses.replace(s, gradient_checkpointing=True))),
             ("per_device_batch 1 (grad_accum x the same factor)",
              lambda w, s: (dataclasses.replace(w, batch_texts=w.batch_texts // w.train.per_device_batch), s)),
             ("the optimizer offloaded to the CPU", lambda w, s: (w, dataclasses.replace(s, offload_optimizer=True))),
             ("twice the nodes", lambda w, s: (w, dataclasses.replace(s, nodes=s.nodes * 2)))]
    taken = []
    for name, change in steps:
        work, setup = change(work, setup)
        taken.append(name)
        if got := fits(work, setup):
            return f"no single change fits; together: {' + '.join(taken)}: {got:.0f} GB"
    return "nothing here fits: " + " + ".join(taken) + " is still over; a GPU with more memory"


def estimate_job(job: Job, resources: dict, partitions: dict | None, mfu: dict, attempts: int = 1) -> Estimate:
    """One job's estimate, checked against its request and (when known) its partition. ``attempts``: how often a
    failed job is submitted (the profile's retries + 1): a resumable job may take that many runtimes."""
    gpus = gpus_in_request(resources.get("gres"), resources.get("gpu") or resources.get("gpus"))
    nodes = int(resources.get("nodes") or 1)
    gpu_type = gpu_type_of(resources.get("gres")) or (str(resources.get("gpu_model") or "").lower() or None)
    runtime = resources.get("runtime")
    limit_h = float(runtime) / 60 if runtime not in (None, "") else None
    gpu_mem = resources.get("gpu_memory_gb")
    gpu_mem = float(gpu_mem) if gpu_mem not in (None, "") else (GPU_MEMORY_GB.get(gpu_type) if gpu_type else None)
    out = Estimate(job.rule, job.method, job.base, gpus, gpu_type, None, gpu_mem if gpus else None, None, limit_h,
                   0.0, job=job.name, wildcards=dict(job.wildcards))
    partition = (partitions or {}).get(resources.get("slurm_partition") or "")
    if partition is not None and limit_h is not None and partition.max_time_min is not None \
            and limit_h * 60 > partition.max_time_min:
        out.fits = False
        out.advice.append(f"runtime {limit_h:.0f} h is over partition '{partition.name}' MaxTime "
                          f"{partition.max_time_min / 60:.0f} h: lower runtime or use a partition that allows it")
    if gpus and gpu_type and partition is not None and partition.gpu_types and gpu_type not in partition.gpu_types:
        out.fits = False
        out.advice.append(f"GPU type '{gpu_type}' (gres {resources.get('gres')!r}) is not in partition "
                          f"'{partition.name}' (it has: {', '.join(sorted(partition.gpu_types))})")
    work = job.work
    if work is None or not gpus:
        return out
    shape = shape_of(work.model, work.revision)
    if shape is None:
        out.warnings.append(f"no shape known for {work.model} (no config.json readable and not in rmflow's fact "
                            "sheet): memory and time not estimated")
        return out
    out.assumptions.append(f"shape: {shape.source}")
    out.assumptions += [f"data: {d.source}" + (" (estimate)" if d.estimate else "") for d in work.data]
    setup = setup_for(work, shape, gpus if work.kind == "train" else 1, nodes, resources.get("attn_implementation"))
    memory = memory_of(work, shape, setup)
    out.memory_parts_gb = {k: round(v / est.GB, 1) for k, v in memory.items()}
    out.est_gpu_mem_gb = round(memory["total"] / est.GB, 1)
    hours = hours_of(work, shape, gpus * nodes if work.kind == "train" else 1, gpu_type, mfu)
    out.est_hours = round(hours, 2) if hours is not None else None
    unknown = [d.source for d in work.data if d.rows is None]
    if unknown:
        out.warnings.append(f"rows unknown ({'; '.join(unknown)}): time not estimated")
    if work.kind == "train":
        keep = 3  # two kept, a third being written
        out.est_checkpoints_gb = round(keep * est.checkpoint_bytes(shape, work.head, setup.zero_stage) / est.GB, 1)
        out.est_disk_gb = round(out.est_checkpoints_gb + est.model_bytes(shape, work.head) / est.GB, 1)
    if gpu_mem is not None:
        if gpu_type in AMBIGUOUS_MEMORY and resources.get("gpu_memory_gb") in (None, ""):
            out.warnings.append(f"rule {job.rule}: gres type '{gpu_type}' comes with {AMBIGUOUS_MEMORY[gpu_type]} GB: "
                                f"assumed {gpu_mem:.0f}; set gpu_memory_gb (and constraint) for it")
        elif gpu_type in AMBIGUOUS_MEMORY and not resources.get("constraint"):
            out.warnings.append(f"rule {job.rule}: gpu_memory_gb {gpu_mem:.0f} for gres type '{gpu_type}' "
                                f"({AMBIGUOUS_MEMORY[gpu_type]} GB) without a constraint: SLURM may place it on the "
                                "smaller kind")
        if out.est_gpu_mem_gb > gpu_mem:
            out.fits = False
            out.advice += [f"needs ~{out.est_gpu_mem_gb:.0f} GB per GPU, over {gpu_mem:.0f} GB; would fit with: "
                           + "; ".join(advice_for_memory(work, shape, setup, gpu_mem))]
        elif out.est_gpu_mem_gb > (1 - WARN_WITHIN) * gpu_mem:
            out.warnings.append(f"~{out.est_gpu_mem_gb:.0f} GB per GPU is within 10 % of {gpu_mem:.0f} GB")
    if hours is not None and limit_h is not None:
        needed = math.ceil(hours / ((1 - WARN_WITHIN) * limit_h))
        if hours > limit_h and work.resumable and needed <= attempts:
            out.attempts = needed
            out.assumptions.append(f"resumable: ~{hours:.1f} h in {needed} attempts of its {limit_h:.0f} h runtime "
                                   f"(its work is kept chunk by chunk under results/scratch; {attempts} allowed)")
        elif hours > limit_h:
            out.fits = False
            more = f"runtime: {int(hours * 1.2 * 60)} (minutes, 20 % spare)"
            if partition is not None and partition.max_time_min is not None \
                    and hours * 60 > partition.max_time_min:
                more = (f"more GPUs or a partition with a longer MaxTime (partition '{partition.name}' allows "
                        f"{partition.max_time_min / 60:.0f} h)")
            if work.resumable:
                more += f" (resumable: {needed} attempts of {limit_h:.0f} h would do; {attempts} allowed)"
            out.advice.append(f"needs ~{hours:.1f} h, over its runtime of {limit_h:.0f} h: {more}")
        elif hours > (1 - WARN_WITHIN) * limit_h:
            out.warnings.append(f"~{hours:.1f} h is within 10 % of its runtime of {limit_h:.0f} h")
    return out


def hub_cache_gb(jobs: list[Job]) -> float:
    """The 16-bit checkpoints of every distinct hub model the jobs load that the Hugging Face cache does not hold
    yet (a model pre-downloaded with `hf download` takes no more room)."""
    from rmflow.hub_check import is_hub_id

    seen = {}
    for job in jobs:
        if job.work and is_hub_id(job.work.model) and not os.path.exists(job.work.model) \
                and cached_config(job.work.model, job.work.revision) is None:
            shape = shape_of(job.work.model, job.work.revision)
            if shape is not None:
                seen[job.work.model] = est.model_bytes(shape, shape.head, element=2)
    return sum(seen.values()) / est.GB


def disk_problems(estimates: list[Estimate], jobs: list[Job], results_dir: str = ".",
                  cache_dir: str | None = None) -> tuple[list[str], list[str]]:
    """(refusals, warnings) for the run's disk. Refused: the saved models plus the largest training's checkpoints
    (the run cannot finish even one job at a time), or the cache's hub models. Warned: every training's
    checkpoints at once (the profile's `jobs` lets them all run together)."""
    from huggingface_hub import constants

    cache_dir = cache_dir or constants.HF_HUB_CACHE
    models = sum(e.est_disk_gb - e.est_checkpoints_gb for e in estimates)
    largest = max([e.est_checkpoints_gb for e in estimates] or [0.0])
    together = models + sum(e.est_checkpoints_gb for e in estimates)
    where = "results/ (saved models, checkpoints in results/scratch/)"
    needs = [(where, results_dir, models + largest, together),
             (f"the Hugging Face cache ({cache_dir})", cache_dir, hub_cache_gb(jobs), None)]
    refusals, warnings = [], []
    for what, path, gb, peak in needs:
        probe = path
        while probe and not os.path.exists(probe):
            probe = os.path.dirname(probe)
        free = shutil.disk_usage(probe or ".").free / est.GB
        if gb > free:
            refusals.append(f"disk: {what} needs ~{gb:.0f} GB, {free:.0f} GB free: free space, or point it "
                            "elsewhere (HF_HOME on a shared filesystem; the run's directory on scratch)")
        elif gb > (1 - WARN_WITHIN) * free:
            warnings.append(f"disk: {what} needs ~{gb:.0f} GB of the {free:.0f} GB free")
        elif peak is not None and peak > free:
            warnings.append(f"disk: {what} needs ~{peak:.0f} GB if every training runs at once ({free:.0f} GB free): "
                            "lower the profile's `jobs` or run the trainings in turn")
    return refusals, warnings
