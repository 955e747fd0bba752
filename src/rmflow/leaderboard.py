"""``rmflow leaderboard``: gather every ``eval/<set>/<method>/<base>/scores.json`` into CSV and Markdown tables.

Rebuilt from the per-run files alone, so deleting the tables and rerunning regenerates them byte for byte.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.evaluate.rewardbench import SECTION_NAMES
from rmflow.evaluate.run import SCORES_SCHEMA
from rmflow.io import atomic_path, write_text

log = logging.getLogger(__name__)

COLUMNS = ["Eval Set", "Model", "Base Model", "Method", "Score", *SECTION_NAMES, "Prior Sets", "Length Corr"]


def find_scores(root: str | Path) -> list[Path]:
    files = sorted(Path(root).glob("*/*/*/scores.json"))
    if not files:
        raise RmflowError("no <eval set>/<method>/<base>/scores.json files found", file=str(root))
    return files


def read_scores(files: list[str | Path]) -> list[dict]:
    records = []
    for path in map(Path, files):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RmflowError(f"malformed JSON ({exc.msg})", file=str(path), row=exc.lineno) from exc
        if data.get("schema") != SCORES_SCHEMA:
            raise RmflowError(f"scores schema is {data.get('schema')!r}, expected {SCORES_SCHEMA!r}; re-run its "
                              "evaluation", file=str(path), field="schema")
        eval_set, method, base = path.parts[-4:-1]
        if (data.get("eval_set"), data.get("method"), data.get("base")) != (eval_set, method, base):
            raise RmflowError(f"file says eval set/method/base {data.get('eval_set')}/{data.get('method')}/"
                              f"{data.get('base')} but sits under {eval_set}/{method}/{base}", file=str(path))
        records.append(data)
    return records


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def tables(records: list[dict]):
    import polars as pl

    rows, subset_rows = [], []
    for r in records:
        rows.append({"Eval Set": r["eval_set"], "Model": f"{r['base']}/{r['method']}", "Base Model": r["base"],
                     "Method": r["method"], "Score": _pct(r["score"]),
                     **{s: _pct(r["sections"].get(s)) for s in SECTION_NAMES}, "Prior Sets": _pct(r["prior_sets"]),
                     # Pearson(reward, response length): a correlation, not a percentage
                     "Length Corr": r.get("length_correlation")})
        for subset, v in r["subsets"].items():
            subset_rows.append({"eval_set": r["eval_set"], "model": f"{r['base']}/{r['method']}", "base": r["base"],
                                "method": r["method"], "subset": subset, "n": v["n"],
                                "accuracy": _pct(v["accuracy"])})
    board = pl.DataFrame(rows, schema={c: (pl.String if i < 4 else pl.Float64) for i, c in enumerate(COLUMNS)})
    board = board.drop([c for c in ("Prior Sets", "Length Corr") if board[c].is_null().all()])
    board = board.sort(["Eval Set", "Score", "Model"], descending=[False, True, False], nulls_last=True)
    subsets = pl.DataFrame(subset_rows).sort(["eval_set", "model", "subset"])
    return board, subsets


def _cell(column: str, value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:+.2f}" if column == "Length Corr" else f"{value:.1f}"
    return str(value)


def to_markdown(board) -> str:
    header = "| " + " | ".join(board.columns) + " |\n|" + "|".join("---" for _ in board.columns) + "|\n"
    lines = []
    for row in board.iter_rows():
        cells = [_cell(name, v) for name, v in zip(board.columns, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return header + "\n".join(lines) + "\n"


def main(files: list[str | Path], out_csv: str, out_md: str, out_subsets: str) -> str:
    records = read_scores(files)
    board, subsets = tables(records)
    with atomic_path(out_csv) as tmp:
        board.write_csv(tmp)
    with atomic_path(out_subsets) as tmp:
        subsets.write_csv(tmp)
    markdown = to_markdown(board)
    write_text(out_md, markdown)
    log.info("leaderboard of %d runs written to %s", len(records), out_csv)
    return markdown
