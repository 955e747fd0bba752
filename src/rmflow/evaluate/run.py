"""``rmflow evaluate``: score an eval set (RewardBench v1/v2 or a benchmark of ``rmflow.evaluate.benchmarks``) with a
trained or released model; write examples.parquet and scores.json."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.evaluate.eval_sets import check_choice, check_scorable, ids_digest, load, read_prepared
from rmflow.evaluate.rewardbench import TIE_RULES, pairwise_credit, scalar_credit, score_report
from rmflow.io import atomic_path, write_json
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.sizing import utilisation

log = logging.getLogger(__name__)

SCORES_SCHEMA = "rmflow.scores/2"  # /2: benchmark, example_ids_sha256, response lengths in examples.parquet
V2 = "rewardbench_v2"


# the official RM-Bench and RMB runners' default rendering (fastchat's "tulu" conversation: "<|user|>\n...\n"
# "<|assistant|>\n...\n"), with the EOS they append when the template is fastchat's (scripts/run_rm.py)
TULU_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>\n{% else %}{{ eos_token }}{% endif %}")


def apply_template_policy(scorer, policy: str) -> None:
    """``model``: each model's own chat template (the default); ``tulu``: the official runners' rendering, to
    compare with their published tables. Only a scorer that renders with a tokenizer can take another one."""
    from rmflow.evaluate.eval_sets import CHAT_TEMPLATES

    if policy not in CHAT_TEMPLATES:
        raise RmflowError(f"must be one of {', '.join(CHAT_TEMPLATES)}, not {policy!r}", field="chat_template")
    if policy == "model":
        return
    tokenizer = getattr(scorer, "tokenizer", None)
    if tokenizer is None or not hasattr(scorer, "score_conversations"):
        raise RmflowError("chat_template tulu re-renders a scalar model's input; this model renders its own "
                          "prompt (a pairwise model or an endpoint)", field="chat_template")
    tokenizer.chat_template = TULU_TEMPLATE


def _score_extra(scorer, benchmark: str, rows: list[dict]) -> tuple[dict, dict, dict]:
    """(the report, examples.parquet's columns, the scorer's own pairwise output for its summary)."""
    from rmflow.evaluate.benchmarks import scoring

    credits, scored = scoring.score_items(scorer, benchmark, rows)
    return scoring.report(benchmark, rows, credits), scoring.examples_columns(rows, credits), scored


def _score_v2(scorer, rows: list[dict], credit_rule: str = "first_chosen",
              ties_formula: str = "2025-06") -> tuple[dict, dict]:
    from rmflow.evaluate import rewardbench2

    if not hasattr(scorer, "score_conversations"):
        raise RmflowError("RewardBench 2 scores every completion on its own: it needs a scalar reward model, "
                          f"not a {getattr(scorer, 'kind', 'pairwise')} one", field="method")

    def chat(prompt: str, answer: str) -> list[dict]:
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]

    flat = [chat(r["prompt"], a) for r in rows for side in ("chosen", "rejected") for a in r[side]]
    scores = iter(scorer.score_conversations(flat))
    chosen, rejected = [], []
    for r in rows:
        chosen.append([next(scores) for _ in r["chosen"]])
        rejected.append([next(scores) for _ in r["rejected"]])
    report = rewardbench2.score_report(rows, chosen, rejected, credit_rule, ties_formula)
    ties = report.pop("ties")
    columns = {"scores_chosen": chosen, "scores_rejected": rejected,
               "gap": [ties.get(r["id"], {}).get("gap") for r in rows],
               "spread": [ties.get(r["id"], {}).get("spread") for r in rows],
               "len_chosen": [len(r["chosen"][0]) for r in rows],
               "len_rejected": [sum(map(len, r["rejected"])) / len(r["rejected"]) for r in rows]}
    return report, columns


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


def _model_record(scorer) -> dict:
    """The attention implementation and weight dtype the scoring model ran with (none for an endpoint)."""
    from rmflow.models.load import attention_of

    model = getattr(scorer, "model", None)
    if model is None or not hasattr(model, "config"):
        return {"attention": None, "dtype": None}
    return {"attention": attention_of(model), "dtype": str(next(model.parameters()).dtype).removeprefix("torch.")}


def _hub_sources(model_dir: str | None, external, scorer, data: str, revision: str | None,
                 eval_record: dict | None = None) -> dict:
    """Where the scores come from on the hub: the scored model (a released one's commit), the hub inputs a
    trained model recorded at save time, and the eval set's commit."""
    from rmflow.hub import hub_record

    model = None
    declaration = Path(model_dir or "", "external.json")
    if external is None and declaration.is_file():  # a declared released model (rmflow setup wrote it)
        from rmflow.methods.external import Config

        external = Config(**json.loads(declaration.read_text(encoding="utf-8")))
    if external is not None and external.model:
        loaded = getattr(getattr(getattr(scorer, "model", None), "config", None), "_commit_hash", None)
        model = hub_record(external.model, external.revision, commit=loaded)
    run = Path(model_dir or "", "rmflow_run.json")
    trained_from = json.loads(run.read_text(encoding="utf-8")).get("hub") if external is None and run.is_file() \
        else None
    if eval_record is not None:
        eval_data = eval_record["hub"]
    else:
        from rmflow.evaluate.eval_sets import parts

        sources, _, revisions = parts(data, None, revision)
        records = [hub_record(s, r, "dataset") for s, r in zip(sources, revisions)]
        eval_data = records[0] if len(records) == 1 else records
    return {"model": model, "trained_from": trained_from or None, "eval_data": eval_data}


def main(model_dir: str | None, method: str, data: str, benchmark: str, out_dir: str, eval_set: str, base: str,
         split: str = "filtered", revision: str | None = None, tie_rule: str = "official",
         batch_size: int = SCORE_BATCH_SIZE, external=None, sections: str | None = None,
         prepared: str | None = None, chat_template: str = "model", credit_rule: str = "first_chosen",
         ties_formula: str = "2025-06") -> dict:
    """Score ``data`` with a trained model (``model_dir`` of ``method``) or, with ``external`` (an
    ``rmflow.methods.external.Config``), any existing reward model; write examples.parquet and scores.json.
    ``prepared``: the rows ``rmflow prepare-eval`` validated (the workflow's); ``data`` then only names the source."""
    import polars as pl

    from rmflow import methods

    if tie_rule not in TIE_RULES:
        raise RmflowError(f"tie rule must be one of {TIE_RULES}", field="tie_rule")
    if external is None and not os.path.isdir(model_dir or ""):
        raise RmflowError("model directory does not exist", file=model_dir)
    from rmflow.evaluate import benchmarks
    from rmflow.evaluate.rewardbench2 import check_rules

    module = methods.get(method)
    sections, v2, extra = check_choice(benchmark, sections), benchmark == V2, benchmarks.is_extra(benchmark)
    check_rules(credit_rule, ties_formula)
    eval_record = None
    if prepared:
        rows, eval_record = read_prepared(prepared, benchmark)
    else:
        rows = load(data, benchmark, split, revision)
    check_scorable(rows, benchmark, sections, prepared or data)
    log.info("scoring %d rows from %s with %s", len(rows), data, model_dir)
    from rmflow.models.load import default_device

    if external is not None:
        scorer = module.scorer_for(external, device=default_device(), batch_size=batch_size)
        model_dir = external.model or external.endpoint
    else:
        scorer = module.load_scorer(model_dir, device=default_device(), batch_size=batch_size)
    apply_template_policy(scorer, chat_template)
    kind = scorer.kind  # an external model's declared scorer decides; for a trained one it is the method's KIND
    ids = {"id": [r["id"] for r in rows], "subset": [r["subset"] for r in rows]}
    model = getattr(scorer, "model", None)
    with utilisation.counted_forwards(model) as counts:
        if extra:
            report, columns, scored = _score_extra(scorer, benchmark, rows)
        elif v2:
            report, columns = _score_v2(scorer, rows, credit_rule, ties_formula)
        else:
            scored = scorer.score_pairs(rows)
    if extra:
        examples = pl.DataFrame(columns, strict=False)
    elif v2:
        credits, scored = report.pop("credits"), {}
        examples = pl.DataFrame({**ids, **columns, "correct": credits}, strict=False)
    else:
        credits = credits_for(kind, scored, tie_rule)
        report = score_report([r["subset"] for r in rows], credits, sections)
        lengths = {f"len_{side}": [len(r[side][-1]["content"]) for r in rows] for side in ("chosen", "rejected")}
        examples = pl.DataFrame({**ids, **{k: v for k, v in scored.items()}, **lengths, "correct": credits})
    out = Path(out_dir)
    with atomic_path(out / "examples.parquet") as tmp:
        examples.write_parquet(tmp)
    scores = {"schema": SCORES_SCHEMA, "benchmark": benchmark, "eval_set": eval_set,
              "method": method, "base": base, "model_dir": model_dir, "data": data, "kind": kind,
              # a released reward model scored as its authors score it, not one this run trained
              "released": bool(methods.hook(module, "EXTERNAL", False)),
              "tie_rule": tie_rule, "chat_template": chat_template,
              "n_examples": len(rows), "example_ids_sha256": ids_digest(ids["id"]), **report,
              "length_correlation": None if v2 or extra else length_correlation(rows, scored),
              "method_stats": scorer.summary(scored) if hasattr(scorer, "summary") else {},
              **_model_record(scorer), "hub": _hub_sources(model_dir, external, scorer, data, revision, eval_record),
              # tokens/s, model FLOPs, MFU and peak memory of the scoring forwards (none for an endpoint)
              "utilisation": utilisation.scoring_record(model, counts, default_device())}
    for subset, n in report["unscored_subsets"].items():
        log.warning("subset %s (%d rows) belongs to no section of map %s: reported, not scored", subset, n, sections)
    write_json(out / "scores.json", scores)  # last: its presence marks a complete evaluation
    log.info("score %s sections %s", scores["score"], scores["sections"])
    return scores
