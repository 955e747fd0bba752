"""SSRM, semi-supervised self-training of a pair-PM (methods.md §3), one Snakemake job per step.

Iteration 0 trains on the labeled seed set. Iteration k pseudo-labels the unlabeled pool with model k (both orders
averaged, sharded: one job per shard), keeps rows whose confidence max(p, 1 − p) exceeds the threshold, and
fine-tunes model k on labeled + kept rows into model k + 1. A kept row is labeled with the model's *predicted*
preference (the paper); the recipe's script kept the pool's original orientation even for confidently reversed
pairs, available only as the ``keep_original_orientation`` ablation.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass

from rmflow.errors import RmflowError
from rmflow.methods.pairwise.model import load_pm_scorer, train_pm
from rmflow.methods.pairwise.pm import pm_row, standard_to_pm
from rmflow.options import SCORE_BATCH_SIZE, Command, Compute, opt, set_threads
from rmflow.spec import RunSpec

log = logging.getLogger(__name__)

VERSION = 1
KIND = "pairwise"
# rmflow plan: the pair-PM's shape (one sequence per row, logits at the answer token, scored in both orders)
SIZING = {"sequences_per_row": 1, "head": "lm", "score": "both_orders", "logit_positions": 2}


@dataclass(frozen=True)
class Config:
    """SSRM options (recipe defaults where it has them)."""

    labeled_fraction: float = 0.1  # share of the training set kept labeled; the rest becomes the pool
    unlabeled_dataset: str | None = None  # a configured dataset used as the pool instead (its order is ignored)
    threshold: float = 0.8  # keep pseudo-labels with confidence strictly above this, in (0.5, 1)
    iterations: int = 2  # self-training rounds after the seed model
    shards: int = 2  # pseudo-labeling jobs per round
    keep_original_orientation: bool = False  # ablation: the recipe's label-from-pool-order behaviour
    seed: int = 0

    def __post_init__(self):
        if not 0.5 < self.threshold < 1:
            raise ValueError(f"threshold must lie in (0.5, 1), got {self.threshold}")
        if not 0 < self.labeled_fraction < 1:
            raise ValueError(f"labeled_fraction must lie in (0, 1), got {self.labeled_fraction}")
        if self.iterations < 1 or self.shards < 1:
            raise ValueError("iterations and shards must be at least 1")


def dataset_options(config: Config) -> dict[str, str]:
    """Data sets named in the options, with their kind: the unlabeled pool (pairs whose labels are ignored)."""
    return {"unlabeled_dataset": "pairs"}


def final_model_dir(base: str, config: Config, results: str = "results") -> str:
    return f"{results}/ssrm/{base}/iter{config.iterations}/model"


def extra_targets(base: str, results: str = "results") -> list[str]:
    """Per-round statistics the workflow builds besides the leaderboard."""
    return [f"{results}/ssrm/{base}/report.json"]


def sizing_jobs(plan, base: str, config: Config, builders) -> list:
    """rmflow plan: the rounds of workflow/rules/ssrm.smk. Round k > 0 trains on the labeled rows and at most
    the whole pool (every pseudo-label kept): an upper bound."""
    Data, Job, data_facts, eval_batch = builders.Data, builders.Job, builders.data_facts, builders.eval_batch
    score_work, train_work = builders.score_work, builders.train_work

    labeled = data_facts(plan, "datasets", plan.dataset_of("ssrm", base))
    if config.unlabeled_dataset:
        pool, labeled_share = data_facts(plan, "datasets", config.unlabeled_dataset), 1.0
    else:
        pool, labeled_share = Data((labeled.rows or 0) * (1 - config.labeled_fraction), labeled.tokens_per_text,
                                   source=labeled.source, estimate=labeled.estimate), config.labeled_fraction
    pool_share = (pool.rows or 0) / max(labeled.rows or 1, 1)
    shard = Data((pool.rows or 0) / config.shards, pool.tokens_per_text, source=pool.source, estimate=pool.estimate)
    length = plan.train_config("ssrm", base).max_length
    jobs = [Job("ssrm_split", {"base": base}, "ssrm", base)]
    for k in range(config.iterations + 1):
        jobs.append(Job("ssrm_train", {"base": base, "k": str(k)}, "ssrm", base,
                        train_work(plan, "ssrm", base, rows_factor=labeled_share + (pool_share if k else 0))))
        if k < config.iterations:
            jobs += [Job("ssrm_label", {"base": base, "k": str(k), "shard": str(s)}, "ssrm", base,
                         score_work(plan, "ssrm", base, shard, length, eval_batch(plan))) for s in range(config.shards)]
            jobs.append(Job("ssrm_select", {"base": base, "k": str(k)}, "ssrm", base))
    report = data_facts(plan, "eval_sets", plan.eval_sets[0])
    return jobs + [Job("ssrm_report", {"base": base}, "ssrm", base, score_work(plan, "ssrm", base, report, length,
                                                                              eval_batch(plan)))]


def split(rows: list[dict], config: Config, pool_rows: list[dict] | None = None) -> tuple[list, list, dict]:
    """Labeled PM rows and the unlabeled pool ({context, response_1, response_2, truth})."""
    rng = random.Random(config.seed)
    if pool_rows is None:
        order = list(range(len(rows)))
        rng.shuffle(order)
        n_labeled = max(1, round(config.labeled_fraction * len(rows)))
        labeled, unlabeled = [rows[i] for i in order[:n_labeled]], [rows[i] for i in order[n_labeled:]]
        pool = []
        for row in unlabeled:  # the hidden truth stays only to measure pseudo-label accuracy
            good, bad = row["chosen"][-1]["content"], row["rejected"][-1]["content"]
            first_is_good = rng.random() < 0.5
            pool.append({"context": row["chosen"][:-1], "response_1": good if first_is_good else bad,
                         "response_2": bad if first_is_good else good, "truth": int(first_is_good)})
    else:
        labeled = rows
        pool = [{"context": r["chosen"][:-1], "response_1": r["chosen"][-1]["content"],
                 "response_2": r["rejected"][-1]["content"], "truth": None} for r in pool_rows]
    if not pool:
        raise RmflowError("the unlabeled pool is empty: lower labeled_fraction or give a non-empty "
                          "unlabeled_dataset", field="methods.ssrm.options")
    report = {"labeled_rows": len(labeled), "pool_rows": len(pool),
              "pool_truth_known": sum(p["truth"] is not None for p in pool), **asdict(config)}
    return standard_to_pm(labeled, config.seed), pool, report


def select(labels: list[dict], config: Config, iteration: int) -> tuple[list[dict], dict]:
    """Keep confident pseudo-labels; return PM rows for them and the round's statistics."""
    rng = random.Random(f"{config.seed}-{iteration}")
    kept, correct_kept, known_kept, correct_all, known_all = [], 0, 0, 0, 0
    for row in labels:
        p = row["p"]
        predicted_first = p >= 0.5
        if row["truth"] is not None:
            known_all += 1
            correct_all += predicted_first == bool(row["truth"])
        if max(p, 1 - p) <= config.threshold:
            continue
        first_wins = True if config.keep_original_orientation else predicted_first
        if row["truth"] is not None:
            known_kept += 1
            correct_kept += first_wins == bool(row["truth"])
        winner, loser = ((row["response_1"], row["response_2"]) if first_wins
                         else (row["response_2"], row["response_1"]))
        if rng.random() < 0.5:
            kept.append(pm_row(row["context"], winner, loser, "A"))
        else:
            kept.append(pm_row(row["context"], loser, winner, "B"))
    stats = {"iteration": iteration, "pool_rows": len(labels), "kept_rows": len(kept),
             "kept_fraction": len(kept) / max(len(labels), 1), "threshold": config.threshold,
             "kept_pseudo_label_accuracy": correct_kept / known_kept if known_kept else None,
             "pool_accuracy": correct_all / known_all if known_all else None,
             "mean_confidence": sum(max(r["p"], 1 - r["p"]) for r in labels) / max(len(labels), 1)}
    log.info("iteration %d: kept %d of %d (accuracy of kept labels %s)", iteration, len(kept), len(labels),
             stats["kept_pseudo_label_accuracy"])
    return kept, stats


def label_shard(scorer, pool: list[dict], shard: int, shards: int) -> list[dict]:
    """P(response_1 ≻ response_2) for every ``shards``-th pool row starting at ``shard``."""
    part = pool[shard::shards]
    probs = scorer.compare([(r["context"], r["response_1"], r["response_2"]) for r in part])["p_chosen"]
    return [{**r, "p": p} for r, p in zip(part, probs)]


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    train_pm(spec, out_dir, {"ssrm": asdict(spec.options)}, data, init)


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    return load_pm_scorer(model_dir, device, batch_size)


# ---- the workflow's steps (rmflow ssrm <step>) -----------------------------------------------------------------
def main_split(spec_path: str, data: str, pool_data: str | None, out_labeled: str, out_pool: str,
               out_report: str) -> None:
    from rmflow.data.prepare import read_pairs
    from rmflow.io import write_json
    from rmflow.methods._io import write_rows

    config = RunSpec.read(spec_path).options
    pool_rows = read_pairs(pool_data) if pool_data else None
    if pool_data and not pool_rows:
        raise RmflowError("the unlabeled pool file holds no rows", file=pool_data)
    labeled, pool, report = split(read_pairs(data), config, pool_rows)
    write_rows(labeled, out_labeled)
    write_rows(pool, out_pool)
    write_json(out_report, report)


def main_label(model_dir: str, pool_path: str, shard: int, shards: int, out: str,
               batch_size: int = SCORE_BATCH_SIZE) -> None:
    import polars as pl

    from rmflow.methods._io import write_rows
    from rmflow.models.load import default_device

    pool = pl.read_parquet(pool_path).to_dicts()
    scorer = load_scorer(model_dir, device=default_device(), batch_size=batch_size)
    write_rows(label_shard(scorer, pool, shard, shards), out)


def main_select(spec_path: str, shard_paths: list[str], labeled_path: str, iteration: int, out_train: str,
                out_stats: str) -> None:
    import polars as pl

    from rmflow.io import write_json
    from rmflow.methods._io import write_rows

    config = RunSpec.read(spec_path).options
    labels = [row for path in shard_paths for row in pl.read_parquet(path).to_dicts()]
    kept, stats = select(labels, config, iteration)
    labeled = pl.read_parquet(labeled_path).to_dicts()
    stats["labeled_rows"] = len(labeled)
    write_rows(labeled + kept, out_train)
    write_json(out_stats, stats)


def main_report(stats_paths: list[str], model_dirs: list[str], eval_data: str, eval_split: str, out: str,
                batch_size: int = SCORE_BATCH_SIZE) -> None:
    """One row per iteration: rows kept, their pseudo-label accuracy, and the model's accuracy on an eval set."""
    import json

    from rmflow.evaluate.eval_sets import load_eval_rows
    from rmflow.evaluate.rewardbench import pairwise_credit
    from rmflow.io import write_json
    from rmflow.models.load import default_device

    rows = load_eval_rows(eval_data, eval_split)
    rounds = [json.loads(open(p, encoding="utf-8").read()) for p in stats_paths]
    stats = {r["iteration"]: r for r in rounds}
    iterations = []
    for k, model_dir in enumerate(model_dirs):
        scorer = load_scorer(model_dir, device=default_device(), batch_size=batch_size)
        p_chosen = scorer.score_pairs(rows)["p_chosen"]
        accuracy = sum(pairwise_credit(p) for p in p_chosen) / len(rows)
        iterations.append({"iteration": k, "model": model_dir, "eval_accuracy": accuracy, **stats.get(k, {})})
        log.info("iteration %d: eval accuracy %.3f", k, accuracy)
    write_json(out, {"eval_data": eval_data, "iterations": iterations})



@dataclass(kw_only=True)
class StepOptions(Compute):
    """``rmflow ssrm <step>``: the command workflow/rules/ssrm.smk calls, one step per job."""

    step: str = opt(choices=["split", "label", "select", "report"], positional=True)
    spec: str | None = opt(None)
    data: str | None = opt(None, "split: prepared training pairs; report: eval set")
    split: str = opt("filtered", "report: split of a hub eval set")
    pool: str = opt("", "split: optional unlabeled dataset; label: the pool parquet")
    out_labeled: str | None = opt(None)
    out_pool: str | None = opt(None)
    report: str | None = opt(None)
    model_dir: str | None = opt(None)
    shard: int = opt(0)
    shards: int = opt(1)
    shard_files: list[str] | None = opt(None, nargs="+")
    labeled: str | None = opt(None)
    iteration: int = opt(0)
    out_train: str | None = opt(None)
    stats: str | None = opt(None)
    stats_files: list[str] = opt(factory=list)
    model_dirs: list[str] | None = opt(None, nargs="+")
    out: str | None = opt(None)


def run_step(a: StepOptions) -> None:
    set_threads(a.threads)
    if a.step == "split":
        main_split(a.spec, a.data, a.pool or None, a.out_labeled, a.out_pool, a.report)
    elif a.step == "label":
        main_label(a.model_dir, a.pool, a.shard, a.shards, a.out, a.batch_size)
    elif a.step == "select":
        main_select(a.spec, a.shard_files, a.labeled, a.iteration, a.out_train, a.stats)
    else:
        main_report(a.stats_files, a.model_dirs, a.data, a.split, a.out, a.batch_size)


COMMAND = Command("ssrm", "one SSRM step: split | label | select | report", StepOptions, run_step)
