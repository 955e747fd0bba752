"""Every job of a run's DAG with the work it does: which model, how many texts of what length, in what batches.

:func:`planned_jobs` lists the jobs from the plan alone (no Snakemake, no files), one per job the workflow's dry run
shows (tests/unit/sizing/test_sizing.py compares the two per rule), so ``rmflow plan`` answers in seconds. The SLURM
run's ``onstart`` estimates the jobs Snakemake actually schedules through :func:`job_for` instead. What a method's
training and scoring look like (sequences per row, head, extra rows) is the method's ``SIZING``; methods with rules
of their own list those jobs in ``sizing_jobs``. Nothing here branches on a method's name.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rmflow import methods
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.plan import RESULTS, paths
from rmflow.sizing.shapes import facts
from rmflow.train.config import TrainConfig

# what a method's module may say in SIZING (defaults: a pairwise-loss sequence classifier such as BT)
DEFAULT_SIZING = {
    "sequences_per_row": 2,  # sequences one training row puts through the model (a pair: chosen and rejected)
    "head": "classifier",  # lm: logits over the vocabulary at every position (pair-PM, PRM, the judge)
    "rows_factor": 1.0,  # training rows per prepared row (RRM: 14 augmented + the original)
    "score": "each_answer",  # each_answer: one text per answer; both_orders: the pair text, twice (A/B, B/A)
    "logit_positions": 0,  # an LM head's logits kept per text (rmflow computes them only where the loss reads)
}
# rules that run inside the snakemake process (localrule: True), never submitted
LOCAL_RULES = ("all", "run_spec", "setup_untrained", "leaderboard", "plots", "config_used", "bestofn_table",
               "base_spec", "eval_sets_checked")
DEFAULT_EMBED_TOKENS = 8192  # padded tokens per embedding batch (methods.frozen.backbone.embed_ids)
DEFAULT_SCORE_TOKENS = 8192  # padded tokens per scoring batch (models.scalar.ScalarScorer.max_batch_tokens)


@dataclass(frozen=True)
class Data:
    rows: int | None
    tokens_per_text: float | None
    texts_per_row: float = 1.0
    source: str = ""
    estimate: bool = False


@dataclass
class Work:
    """What one job computes on its GPUs."""

    kind: str  # train | embed | score
    model: str  # the model it loads (a hub id or a directory; a model this run trains is read as its base)
    revision: str | None
    head: str  # lm | classifier
    texts: float  # sequences put through the model, all epochs together
    tokens_per_text: float
    max_length: int  # the longest sequence (packed length where rows are packed)
    batch_texts: int  # sequences per forward on one GPU (training: per_device_batch x sequences per row)
    batch_tokens: int | None = None  # or a padded-token budget per forward (scoring, embedding)
    logit_positions: float = 0  # LM-head logits per text
    per_process: bool = False  # texts counts one process's share (a max_steps run): all GPUs do as many
    # its work is kept chunk by chunk under results/scratch and a rerun resumes (embedding, best-of-N scoring): a
    # job longer than its runtime still finishes over the profile's retries
    resumable: bool = False
    train: TrainConfig | None = None
    data: list[Data] = field(default_factory=list)


@dataclass
class Job:
    rule: str
    wildcards: dict
    method: str | None = None
    base: str | None = None
    work: Work | None = None

    @property
    def name(self) -> str:
        return f"{self.rule}[{', '.join(f'{k}={v}' for k, v in self.wildcards.items())}]" if self.wildcards \
            else self.rule


def sizing_of(plan, method: str, base: str) -> dict:
    module = plan.module(method)
    hook = methods.hook(module, "sizing", None)
    declared = hook(plan.method_options(method, base)) if hook else methods.hook(module, "SIZING", {})
    unknown = sorted(set(declared) - set(DEFAULT_SIZING))
    if unknown:  # a misspelt key would silently size the job as BT
        from rmflow.errors import RmflowError

        raise RmflowError(f"method '{method}' declares SIZING key(s) {', '.join(unknown)}, which nothing reads "
                          f"(known: {', '.join(DEFAULT_SIZING)})", field=f"methods.{method}.SIZING")
    return {**DEFAULT_SIZING, **declared}


def _sheet_rows(entry: dict | None) -> tuple[int, bool, str] | None:
    """Rows the length sheet records for a data set outside the hub (RMB's GitHub folder), as hub_facts.rows
    gives them."""
    if not entry or "rows" not in entry:
        return None
    return int(entry["rows"]), True, entry["rows_source"]


def data_facts(plan, section: str, name: str) -> Data:
    """Rows and text length of a configured data set: its prepare report's row count where the run already
    prepared it, else the recorded rows of its hub id (rmflow.hub_facts: a count, or a card's size bucket planned at
    its upper end), with rmflow's estimate of the text length (sizing/facts.yaml); else unknown."""
    from rmflow import hub_facts

    entry = plan.config[section][name]
    path = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
    lengths = facts()["datasets"]
    key = [f"{p}/{entry['data_dir']}" if entry.get("data_dir") else p for p in path]
    recorded = [hub_facts.rows(p, entry.get("data_dir")) or _sheet_rows(lengths.get(p)) for p in path]
    report = Path(paths.path("prepared_report", dataset=name))
    rows = None
    if report.is_file():
        try:
            rows = json.loads(report.read_text(encoding="utf-8"))["rows_kept"]
        except (OSError, ValueError, KeyError):
            rows = None
    if not all(recorded) or not all(k in lengths for k in key):
        return Data(rows, None, source=f"{name}: no facts (not in rmflow.hub_facts or the length sheet)")
    fact_rows = sum(r[0] for r in recorded)
    tokens = sum(lengths[k]["tokens_per_text"] * r[0] for k, r in zip(key, recorded)) / max(fact_rows, 1)
    source = f"{report} (rows)" if rows is not None else "; ".join(f"{p}: {r[2]}" for p, r in zip(path, recorded))
    return Data(rows if rows is not None else fact_rows, tokens, lengths[key[0]].get("texts_per_row", 1.0), source,
                estimate=True)


def _model_of(plan, method: str, base: str) -> tuple[str, str | None]:
    """The model a job of (method, base) loads: an external model's own, a frozen backbone, or the base."""
    options = plan.method_options(method, base)
    if plan.is_released(method):
        return options.model, options.revision
    if getattr(options, "backbone", None):
        return options.backbone, getattr(options, "backbone_revision", None)
    entry = plan.base_entry(base)
    return plan.base_model_ref(base), entry.get("revision")


def train_work(plan, method: str, base: str, dataset: str | None = None, rows_factor: float | None = None,
               model: tuple[str, str | None] | None = None) -> Work:
    sizing, train = sizing_of(plan, method, base), plan.train_config(method, base)
    data = data_facts(plan, "datasets", dataset or plan.dataset_of(method, base))
    options = plan.method_options(method, base)
    packed = getattr(options, "packing", False) and getattr(options, "packed_length", None)
    length = packed or train.max_length
    factor = sizing["rows_factor"] if rows_factor is None else rows_factor
    texts = (data.rows or 0) * factor * sizing["sequences_per_row"] * train.epochs
    if train.max_steps:  # a fixed number of optimizer steps, whatever the data; each process does this many
        texts = train.max_steps * train.grad_accum * train.per_device_batch * sizing["sequences_per_row"]
    ref, revision = model or _model_of(plan, method, base)
    tokens = min(data.tokens_per_text or length, length)
    rows_per_text = length / tokens if packed else 1  # a packed sequence holds several rows
    return Work("train", ref, revision, sizing["head"], texts, tokens, length,
                1 if packed else train.per_device_batch * sizing["sequences_per_row"], train=train, data=[data],
                logit_positions=sizing["logit_positions"] * rows_per_text, per_process=bool(train.max_steps))


def score_work(plan, method: str, base: str, data: Data, max_length: int, batch: int, pairs: bool = True) -> Work:
    """Scoring ``data`` with the model of (method, base): one text per answer, or a pairwise model's pair text in
    both orders."""
    sizing = sizing_of(plan, method, base)
    ref, revision = _model_of(plan, method, base)
    per_row = data.texts_per_row if not pairs else 2
    tokens = min(data.tokens_per_text or max_length, max_length)
    if sizing["score"] == "both_orders" and pairs:
        tokens = min(2 * (data.tokens_per_text or max_length), max_length)
    return Work("score", ref, revision, sizing["head"], (data.rows or 0) * per_row, tokens, max_length, batch,
                batch_tokens=max(DEFAULT_SCORE_TOKENS, max_length), data=[data],
                logit_positions=sizing["logit_positions"])


def embed_work(plan, method: str, base: str, data: Data, texts_per_row: float) -> Work:
    train = plan.train_config(method, base)
    ref, revision = _model_of(plan, method, base)
    return Work("embed", ref, revision, "classifier", (data.rows or 0) * texts_per_row,
                min(data.tokens_per_text or train.max_length, train.max_length), train.max_length, 16,
                batch_tokens=max(DEFAULT_EMBED_TOKENS, train.max_length), data=[data], resumable=True)


def scoring_length(plan, method: str, base: str) -> int:
    """The length a model scores at: its training max_length (an external model: the scorer's default)."""
    if plan.is_released(method):
        return plan.method_options(method, base).max_length
    return plan.train_config(method, base).max_length


def eval_batch(plan) -> int:
    return plan.config.get("evaluate", {}).get("batch_size", SCORE_BATCH_SIZE)


def planned_jobs(plan) -> list[Job]:
    """Every job the workflow schedules for this plan, in the order of the dry run's rule list."""
    batch = eval_batch(plan)
    read = [p for name in plan.datasets() for p in plan.local_inputs("datasets", name)]
    read += [p for name in plan.eval_sets for p in plan.local_inputs("eval_sets", name)]
    read += [plan.config["rank"]["data"]] if plan.ranks() else []
    jobs = [Job(rule, {}) for rule, folder in (("synthetic_data", "synthetic"), ("samples", "samples"))
            if any(str(p).startswith(f"{RESULTS}/data/{folder}/") for p in read)]
    jobs += [Job(rule, {"built": name}) for name in plan.built_names() for rule in ("base_spec", "build_base")]
    jobs += [Job("prepare_eval", {"eval_set": name}) for name in plan.eval_sets] + [Job("eval_sets_checked", {})]
    jobs += [Job("prepare_data", {"dataset": name}) for name in plan.datasets()]
    everything = plan.scored_models()
    jobs += [Job("run_spec", {"method": m, "base": b}, m, b) for m, b in everything]
    jobs += [Job("setup_untrained", {"method": m, "base": b}, m, b) for m, b in everything
             if m in plan.setup_methods()]
    jobs += [Job("transform_data", {"method": m, "base": b}, m, b) for m, b in plan.pairs
             if not plan.has_own_workflow(m) and methods.has_hook(plan.module(m), "transform")]
    for method, base in plan.pairs:
        if method in plan.generic_methods() and method not in plan.setup_methods():
            rule = f"train_{plan.base_entry(base).get('gpu_preset', 'cpu')}"
            jobs.append(Job(rule, {"method": method, "base": base}, method, base, train_work(plan, method, base)))
        hook = methods.hook(plan.module(method), "sizing_jobs", None)
        if hook:  # handed this module, so a method describes its jobs without importing the planner
            jobs += hook(plan, base, plan.method_options(method, base), sys.modules[__name__])
        else:  # a staged method that describes no work: its stage jobs are listed, with nothing to estimate
            jobs += [Job(f"stage_{stage}", {"method": method, "base": base}, method, base)
                     for stage in plan.stages_of(method, base)]
    for eval_set, method, base in plan.evaluations():
        data = data_facts(plan, "eval_sets", eval_set)
        pairs = plan.benchmark_of(eval_set) != "rewardbench_v2"
        jobs.append(Job("evaluate", {"eval_set": eval_set, "method": method, "base": base}, method, base,
                        score_work(plan, method, base, data, scoring_length(plan, method, base), batch, pairs)))
    for name in plan.config.get("bestofn", {}).get("sets") or []:
        data = data_facts(plan, "datasets", name)
        for method, base in plan.bestofn_pairs():
            jobs.append(Job("bestofn", {"set": name, "method": method, "base": base}, method, base,
                            score_work(plan, method, base, data, scoring_length(plan, method, base), batch,
                                       pairs=False)))
    jobs += [Job("bestofn_table", {})] if plan.bestofn_files() else []
    if plan.ranks():  # scoring n responses a prompt with the ranked model (CPU-sized)
        jobs.append(Job("rank", {"method": plan.rank_method(), "base": plan.rank_base()},
                        plan.rank_method(), plan.rank_base()))
    jobs += [Job(rule, {}) for rule in ("leaderboard", "plots", "config_used", "all")]
    return jobs


def job_for(plan, rule: str, wildcards: dict, by_name: dict[str, Job]) -> Job:
    """The planned job a scheduled DAG job is (its work included), or a job with no work (CPU rules)."""
    job = Job(rule, dict(wildcards), wildcards.get("method"), wildcards.get("base"))
    return by_name.get(job.name, job)


def embed_job(plan, rule: str, method: str, base: str, dataset: str, texts_per_row: float) -> Job:
    """A frozen-backbone stage that embeds ``texts_per_row`` texts of each row of ``dataset``."""
    data = data_facts(plan, "datasets", dataset)
    return Job(rule, {"method": method, "base": base}, method, base, embed_work(plan, method, base, data,
                                                                               texts_per_row))
