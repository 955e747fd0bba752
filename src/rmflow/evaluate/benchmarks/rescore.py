"""``rmflow rescore``: a benchmark's official rule applied to per-item rewards that already exist, without a model.

Three kinds of file are read:
- rmflow's own ``examples.parquet`` of a benchmark of this package (candidate rewards, both-order verdicts or step
  probabilities per item, with each item's comparisons);
- JudgeBench's published outputs (``outputs/dataset=judgebench,...,judge_name=reward_model,judge_model=<M>.jsonl``):
  the rows with ``judgments``, the reward of A and B in ``judgments[0].judgment.scores`` (the first game, as
  ``--single_game`` scores it);
- RMB's published results (``eval/result/<model>_result.json``): ``pair_uid, category_path, chosen_reward,
  reject_reward`` per pair.
It writes the same ``scores.json`` and ``examples.parquet`` as ``rmflow evaluate``.
"""

from __future__ import annotations

import json
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.evaluate import benchmarks
from rmflow.evaluate.benchmarks import scoring


def _json_rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise RmflowError(f"malformed JSON ({exc.msg})", file=str(path), row=exc.lineno) from exc
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise RmflowError("holds no rows (a JSON list or JSON lines of objects)", file=str(path))
    return rows


def _judgebench(path: Path, rows: list[dict]) -> tuple[list[dict], list[dict]]:
    outputs = []
    for number, row in enumerate(rows, start=1):
        try:
            scores = row["judgments"][0]["judgment"]["scores"]
            outputs.append({"rewards": [float(scores[0]), float(scores[1])]})
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise RmflowError("has no reward-model scores in judgments[0].judgment.scores (only a reward-model "
                              "judge's outputs can be rescored)", file=str(path), row=number,
                              field="judgments") from exc
    tagged = [{**row, "__file__": str(path), "__row__": number} for number, row in enumerate(rows, start=1)]
    return scoring.convert_rows("judgebench", tagged)[0], outputs


def _rmb(path: Path, rows: list[dict]) -> tuple[list[dict], list[dict]]:
    from rmflow.data.convert import LayoutError
    from rmflow.evaluate.benchmarks import rmb

    items, outputs = [], []
    for number, row in enumerate(rows, start=1):
        for field in ("pair_uid", "category_path", "chosen_reward", "reject_reward"):
            if row.get(field) is None:
                raise RmflowError("is missing (RMB result rows: pair_uid, category_path, chosen_reward, "
                                  "reject_reward)", file=str(path), row=number, field=field)
        try:
            goal = rmb.goal_of(row)
        except LayoutError as exc:
            raise RmflowError(str(exc), file=str(path), row=number, field=exc.field) from exc
        items.append({"id": f"pair:{row['pair_uid']}", "subset": f"{goal}/pairwise",
                      "category": row["category_path"], "comparisons": [[0, 1]]})
        outputs.append({"rewards": [float(row["chosen_reward"]), float(row["reject_reward"])]})
    return items, outputs


def read(benchmark: str, examples: str) -> tuple[list[dict], list[dict], str]:
    """(items, raw outputs, what the file was) from any of the three layouts."""
    path = Path(examples)
    if not path.is_file():
        raise RmflowError("no such file", file=examples)
    if path.suffix == ".parquet":
        import polars as pl

        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # polars raises its own error types for a file that is not parquet
            raise RmflowError(f"is not a readable parquet file ({type(exc).__name__})", file=examples) from exc
        try:
            items, outputs = scoring.items_from_examples(frame)
        except RmflowError as exc:
            raise RmflowError(str(exc), file=examples) from exc
        return items, outputs, "rmflow examples.parquet"
    rows = _json_rows(path)
    if benchmark == "judgebench" and "judgments" in rows[0]:
        return (*_judgebench(path, rows), "JudgeBench published outputs (judgments[0] scores)")
    if benchmark == "rmb" and "chosen_reward" in rows[0]:
        return (*_rmb(path, rows), "RMB published result (chosen_reward, reject_reward)")
    raise RmflowError(f"is neither an rmflow examples.parquet nor a published per-item file rmflow reads for "
                      f"{benchmark} (JudgeBench outputs with judgments, RMB <model>_result.json)", file=examples)


def main(benchmark: str, examples: str, out_dir: str, model: str | None = None, eval_set: str | None = None) -> dict:
    import polars as pl

    from rmflow.evaluate.eval_sets import check_unique_ids, ids_digest
    from rmflow.evaluate.run import SCORES_SCHEMA
    from rmflow.io import atomic_path, write_json

    module = benchmarks.get(benchmark)
    items, outputs, kind = read(benchmark, examples)
    check_unique_ids(items, examples)
    rows = [scoring.credit_row(module, item, output) for item, output in zip(items, outputs)]
    report = scoring.report(benchmark, items, rows)
    out = Path(out_dir)
    with atomic_path(out / "examples.parquet") as tmp:
        pl.DataFrame(scoring.examples_columns(items, rows), strict=False).write_parquet(tmp)
    name = model or Path(examples).stem
    scores = {"schema": SCORES_SCHEMA, "benchmark": benchmark, "eval_set": eval_set or benchmark,
              "method": "rescored", "base": name, "model_dir": None, "data": examples,
              "kind": "pairwise" if outputs and "orders" in outputs[0] else "scalar",
              "released": True, "rescored_from": kind, "chat_template": None, "n_examples": len(items),
              "example_ids_sha256": ids_digest([i["id"] for i in items]), **report, "length_correlation": None,
              "method_stats": {}, "attention": None, "dtype": None, "hub": None, "utilisation": None}
    write_json(out / "scores.json", scores)
    return scores
