"""``rmflow leaderboard``: gather every ``eval/<set>/<method>/<base>/scores.json`` (and its ``examples.parquet``)
into the leaderboard: CSV with bootstrap intervals, Markdown, LaTeX, per-subset CSV and paired significance tests.

Rebuilt from the per-run files alone, so deleting the tables and rerunning regenerates them byte for byte (the
bootstrap has a fixed seed). RewardBench v1 and v2 rows carry a ``Benchmark`` column and are ranked, tested and
typeset separately: they never share a ranking.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.evaluate import benchmarks
from rmflow.evaluate.rewardbench import SECTION_NAMES
from rmflow.evaluate.rewardbench2 import V2_SUBSETS
from rmflow.evaluate.run import SCORES_SCHEMA
from rmflow.io import atomic_path, write_text

log = logging.getLogger(__name__)

KEYS = ["Benchmark", "Eval Set", "Model", "Base Model", "Method"]
SCORE_COLUMNS = list(dict.fromkeys(["Score", *SECTION_NAMES, *V2_SUBSETS, "Prior Sets",
                                   *[c for name in benchmarks.NAMES for c in benchmarks.columns_of(name)]]))
# every run gathered under one eval set name must have scored the same rows by the same rules
SAME_WITHIN_EVAL_SET = ("benchmark", "section_map", "n_examples", "example_ids_sha256")


@dataclass(frozen=True)
class Options:
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    ci_style: str = "pm"  # "pm": 83.4 ± 2.1 (half the interval's width); "brackets": 83.4 [81.2, 85.5]


def find_scores(root: str | Path) -> list[Path]:
    files = sorted(Path(root).glob("*/*/*/scores.json"))
    if not files:
        raise RmflowError("no <eval set>/<method>/<base>/scores.json files found", file=str(root))
    return files


def read_scores(files: list[str | Path]) -> list[dict]:
    records, first_of_set = [], {}
    for path in map(Path, files):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RmflowError(f"malformed JSON ({exc.msg})", file=str(path), row=exc.lineno) from exc
        if data.get("schema") != SCORES_SCHEMA:
            raise RmflowError(f"scores schema is {data.get('schema')!r}, expected {SCORES_SCHEMA!r} (written by an "
                              "older rmflow); re-run its evaluation", file=str(path), field="schema")
        eval_set, method, base = path.parts[-4:-1]
        if (data.get("eval_set"), data.get("method"), data.get("base")) != (eval_set, method, base):
            raise RmflowError(f"file says eval set/method/base {data.get('eval_set')}/{data.get('method')}/"
                              f"{data.get('base')} but sits under {eval_set}/{method}/{base}", file=str(path))
        first = first_of_set.setdefault(eval_set, (path, data))
        for key in SAME_WITHIN_EVAL_SET:
            if data.get(key) != first[1].get(key):
                raise RmflowError(f"eval set '{eval_set}' mixes different evaluations: {key} is "
                                  f"{data.get(key)!r} here but {first[1].get(key)!r} in {first[0]}; re-run one of "
                                  "them on the same data", file=str(path), field=key)
        records.append({**data, "_path": str(path)})
    return records


def is_released(record: dict) -> bool:
    """Whether a scores.json record is a released reward model's; one written before scores.json said so is
    decided by its scoring module's own EXTERNAL flag."""
    if "released" in record:
        return bool(record["released"])
    from rmflow import methods

    method = record.get("method")
    return method in methods.available() and bool(methods.hook(methods.get(method), "EXTERNAL", False))


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _examples(record: dict):
    import polars as pl

    path = Path(record["_path"]).with_name("examples.parquet")
    if not path.exists():
        raise RmflowError("examples.parquet is missing beside scores.json (needed for confidence intervals)",
                          file=str(path))
    return pl.read_parquet(path)


def bootstrap_units(record: dict, examples) -> tuple[list[str], list[str], list[float]]:
    """(unit ids, subsets, credits) the bootstrap resamples: rows, except RewardBench 2's Ties, whose unit is the
    (ref, tied) prompt pair."""
    if record["benchmark"] != "rewardbench_v2":
        return examples["id"].to_list(), examples["subset"].to_list(), examples["correct"].to_list()
    from rmflow.evaluate import rewardbench2

    plain = examples.filter(examples["subset"] != "Ties")
    ties = examples.filter(examples["subset"] == "Ties")
    pairs = rewardbench2.ties_pairs({r["id"]: {"accurate": r["correct"], "gap": r["gap"], "spread": r["spread"]}
                                     for r in ties.iter_rows(named=True)})
    return (plain["id"].to_list() + [f"ties-pair:{p['pair']}" for p in pairs],
            plain["subset"].to_list() + ["Ties"] * len(pairs),
            plain["correct"].to_list() + [rewardbench2.pair_credit(p) for p in pairs])


def score_function(record: dict):
    """The function from per-subset accuracies to every leaderboard number (percent) for this record's rules."""
    from rmflow.evaluate import rewardbench, rewardbench2

    if benchmarks.is_extra(record["benchmark"]):
        rule = benchmarks.get(record["benchmark"]).score_fn

        def extra(per_subset):
            return {k: _pct(v) for k, v in rule(per_subset).items()}
        return extra
    if record["benchmark"] == "rewardbench_v2":
        def v2(per_subset):
            sections = {s: per_subset[s][0] if s in per_subset else None for s in V2_SUBSETS}
            return {"Score": _pct(rewardbench2.overall(sections)), **{s: _pct(v) for s, v in sections.items()}}
        return v2

    section_map = rewardbench.get_section_map(record["section_map"])

    def v1(per_subset):
        subsets = {s: {"accuracy": acc, "n": n} for s, (acc, n) in per_subset.items()}
        sections = rewardbench.section_scores(subsets, section_map)
        prior = rewardbench.prior_sets_score(subsets, section_map)
        score, _ = rewardbench.overall_score(sections, prior)
        return {"Score": _pct(score), **{s: _pct(v) for s, v in sections.items()}, "Prior Sets": _pct(prior)}
    return v1


def model_name(record: dict) -> str:
    """base/method for a trained model; an external reward model by its declared name, marked as such."""
    if is_released(record):
        return f"{record['base']} (external)"
    return f"{record['base']}/{record['method']}"


def _row(record: dict) -> dict:
    row = {"Benchmark": record["benchmark"], "Eval Set": record["eval_set"],
           "Model": model_name(record), "Base Model": record["base"], "Method": record["method"],
           "Score": _pct(record["score"]), **{s: _pct(v) for s, v in record["sections"].items()},
           "Prior Sets": _pct(record.get("prior_sets")),
           # Pearson(reward, response length): a correlation, not a percentage
           "Length Corr": record.get("length_correlation")}
    return row


def tables(records: list[dict], options: Options = Options()):
    """(leaderboard with _lo/_hi columns, per-subset table, pairwise significance table)."""
    import polars as pl

    from rmflow.leaderboard import stats

    rows, subset_rows, units = [], [], {}
    for r in records:
        row = _row(r)
        units[row["Model"], r["eval_set"]] = bootstrap_units(r, _examples(r))
        ids, subsets, credits = units[row["Model"], r["eval_set"]]
        intervals = stats.bootstrap(subsets, credits, score_function(r), options.n_boot, options.seed, options.level)
        for column, (low, high) in intervals.items():
            row[f"{column}_lo"], row[f"{column}_hi"] = low, high
        rows.append(row)
        for subset, v in r["subsets"].items():
            subset_rows.append({"benchmark": r["benchmark"], "eval_set": r["eval_set"], "model": row["Model"],
                                "base": r["base"], "method": r["method"], "subset": subset, "n": v["n"],
                                "accuracy": _pct(v["accuracy"])})
    columns = KEYS + [c for s in SCORE_COLUMNS for c in (s, f"{s}_lo", f"{s}_hi")] + ["Length Corr"]
    schema = {c: (pl.String if c in KEYS else pl.Float64) for c in columns}
    board = pl.DataFrame([{c: row.get(c) for c in columns} for row in rows], schema=schema)
    board = board.drop([c for c in board.columns if c not in (*KEYS, "Score") and board[c].is_null().all()])
    board = board.sort(["Benchmark", "Eval Set", "Score", "Model"], descending=[False, False, True, False],
                       nulls_last=True)
    subsets = pl.DataFrame(subset_rows).sort(["benchmark", "eval_set", "model", "subset"])
    return board, subsets, significance(board, records, units, options)


def significance(board, records: list[dict], units: dict, options: Options):
    """Each model against the best (top Score) of its benchmark and eval set, on the same examples."""
    import polars as pl

    from rmflow.leaderboard import stats

    by_model = {(model_name(r), r["eval_set"]): r for r in records}
    out = []
    for (benchmark, eval_set), group in board.group_by(["Benchmark", "Eval Set"], maintain_order=True):
        ranked = group.filter(group["Score"].is_not_null())
        if ranked.is_empty():
            continue
        best = ranked["Model"][0]
        best_ids, _, best_credits = units[best, eval_set]
        best_by_id = dict(zip(best_ids, best_credits))
        for model in ranked["Model"].to_list()[1:]:
            ids, subsets, credits = units[model, eval_set]
            result = stats.paired_test(subsets, [best_by_id[i] for i in ids], credits,
                                       score_function(by_model[model, eval_set]), options.n_boot, options.seed,
                                       options.level)
            out.append({"benchmark": benchmark, "eval_set": eval_set, "best": best, "model": model, **result})
    schema = {"benchmark": pl.String, "eval_set": pl.String, "best": pl.String, "model": pl.String,
              "difference": pl.Float64, "diff_lo": pl.Float64, "diff_hi": pl.Float64, "p_value": pl.Float64,
              "significant": pl.Boolean}
    return pl.DataFrame(out, schema=schema)


def main(files: list[str | Path], out_csv: str, out_md: str, out_subsets: str, out_tex: str | None = None,
         out_significance: str | None = None, options: Options = Options(), out_summary: str | None = None) -> str:
    from rmflow.leaderboard import render, summary

    records = read_scores(files)
    board, subsets, pairwise = tables(records, options)
    with atomic_path(out_csv) as tmp:
        board.write_csv(tmp)
    with atomic_path(out_subsets) as tmp:
        subsets.write_csv(tmp)
    if out_significance:
        with atomic_path(out_significance) as tmp:
            pairwise.write_csv(tmp)
    overview = summary.table(board)
    if out_summary:
        with atomic_path(out_summary) as tmp:
            overview.write_csv(tmp)
    markdown = summary.markdown(overview, options.ci_style) + "\n" + render.to_markdown(board, options.ci_style)
    write_text(out_md, markdown)
    if out_tex:
        released = {model_name(r) for r in records if is_released(r)}
        write_text(out_tex, summary.latex(overview, options.ci_style, options.level, released) + "\n"
                   + render.to_latex(board, options.ci_style, options.level, released))
    log.info("leaderboard of %d runs written to %s (bootstrap B=%d, seed %d)", len(records), out_csv,
             options.n_boot, options.seed)
    return markdown
