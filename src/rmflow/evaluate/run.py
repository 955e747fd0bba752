"""``rmflow evaluate``: score a RewardBench-format set with a trained model; write examples and scores."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from rmflow.data.convert import from_rewardbench
from rmflow.data.loaders import read_rows
from rmflow.data.schema import check_pair
from rmflow.errors import RmflowError
from rmflow.evaluate.rewardbench import TIE_RULES, pairwise_credit, scalar_credit, score_report
from rmflow.io import atomic_path, write_json

log = logging.getLogger(__name__)

SCORES_SCHEMA = "rmflow.scores/1"
RB_FIELDS = ("id", "subset", "prompt", "chosen", "rejected")


def load_eval_rows(source: str, split: str = "filtered", revision: str | None = None) -> list[dict]:
    """RewardBench rows turned into standard pairs (with id and subset kept); any bad row is an error."""
    pairs = []
    for raw in read_rows(source, split=split, revision=revision):
        for field in RB_FIELDS:
            if field not in raw:
                raise RmflowError("is missing", file=raw.get("__file__"), row=raw.get("__row__"), field=field)
        (row,), _ = from_rewardbench(raw)
        problem = check_pair(row)
        if problem:
            raise RmflowError(problem.detail, file=raw.get("__file__"), row=raw.get("__row__"), field=problem.field)
        pairs.append({"id": str(raw["id"]), "subset": str(raw["subset"]), "chosen": row["chosen"],
                      "rejected": row["rejected"]})
    return pairs


def length_correlation(rows: list[dict], scored: dict) -> float | None:
    """Pearson(reward, response length in characters) over every scored response; None without per-response
    rewards (pairwise models) or without variance."""
    if "score_chosen" not in scored:
        return None
    rewards = list(scored["score_chosen"]) + list(scored["score_rejected"])
    lengths = [len(r[side][-1]["content"]) for side in ("chosen", "rejected") for r in rows]
    n = len(rewards)
    mean_r, mean_l = sum(rewards) / n, sum(lengths) / n
    cov = sum((a - mean_r) * (b - mean_l) for a, b in zip(rewards, lengths))
    var_r = sum((a - mean_r) ** 2 for a in rewards)
    var_l = sum((b - mean_l) ** 2 for b in lengths)
    return cov / (var_r * var_l) ** 0.5 if var_r > 0 and var_l > 0 else None


def credits_for(kind: str, scored: dict, tie_rule: str) -> list[float]:
    if kind == "scalar":
        return [scalar_credit(c, r, tie_rule) for c, r in zip(scored["score_chosen"], scored["score_rejected"])]
    if kind == "pairwise":
        return [pairwise_credit(p, tie_rule) for p in scored["p_chosen"]]
    raise TypeError(f"unknown scorer kind {kind}")


def main(model_dir: str, method: str, data: str, sections: str, out_dir: str, eval_set: str, base: str,
         split: str = "filtered", revision: str | None = None, tie_rule: str = "official",
         batch_size: int = 16) -> dict:
    import polars as pl

    from rmflow import methods

    if tie_rule not in TIE_RULES:
        raise RmflowError(f"tie rule must be one of {TIE_RULES}", field="tie_rule")
    if not os.path.isdir(model_dir):
        raise RmflowError("model directory does not exist", file=model_dir)
    module = methods.get(method)
    rows = load_eval_rows(data, split, revision)
    log.info("scoring %d rows from %s with %s", len(rows), data, model_dir)
    from rmflow.models.load import default_device

    scorer = module.load_scorer(model_dir, device=default_device(), batch_size=batch_size)
    scored = scorer.score_pairs(rows)
    credits = credits_for(module.KIND, scored, tie_rule)
    report = score_report([r["subset"] for r in rows], credits, sections)
    examples = pl.DataFrame({"id": [r["id"] for r in rows], "subset": [r["subset"] for r in rows],
                             **{k: v for k, v in scored.items()}, "correct": credits})
    out = Path(out_dir)
    with atomic_path(out / "examples.parquet") as tmp:
        examples.write_parquet(tmp)
    scores = {"schema": SCORES_SCHEMA, "eval_set": eval_set, "method": method, "base": base,
              "model_dir": model_dir, "data": data, "kind": module.KIND, "tie_rule": tie_rule,
              "n_examples": len(rows), **report, "length_correlation": length_correlation(rows, scored),
              "method_stats": scorer.summary(scored) if hasattr(scorer, "summary") else {}}
    for subset, n in report["unscored_subsets"].items():
        log.warning("subset %s (%d rows) belongs to no section of map %s: reported, not scored", subset, n, sections)
    write_json(out / "scores.json", scores)  # last: its presence marks a complete evaluation
    log.info("score %s sections %s", scores["score"], scores["sections"])
    return scores
