"""The summary table: a row per model, a column per eval set holding its benchmark's headline number with its
bootstrap interval, so a paper's one-table overview (RewardBench, RewardBench 2, RM-Bench, JudgeBench, RMB, PPE,
ProcessBench) comes out of one run; the per-benchmark detail tables follow it in leaderboard.md and .tex."""

from __future__ import annotations

from rmflow.evaluate.benchmarks import TITLES
from rmflow.leaderboard import render

MODEL_KEYS = ["Model", "Base Model", "Method"]


def column_name(benchmark: str, eval_set: str) -> str:
    """The benchmark's title, with the eval set's name where that is not just the title spelt otherwise."""
    title = TITLES.get(benchmark, benchmark)

    def plain(text):
        return "".join(ch for ch in text.lower() if ch.isalnum())

    return title if plain(eval_set) in (plain(benchmark), plain(title)) else f"{title}: {eval_set}"


def table(board):
    """Model, Base Model, Method, then per eval set (in the board's order) its Score, _lo and _hi."""
    import polars as pl

    sets = list(dict.fromkeys(zip(board["Benchmark"].to_list(), board["Eval Set"].to_list())))
    names = {pair: column_name(*pair) for pair in sets}
    rows: dict[str, dict] = {}
    for row in board.iter_rows(named=True):
        out = rows.setdefault(row["Model"], {k: row[k] for k in MODEL_KEYS})
        name = names[row["Benchmark"], row["Eval Set"]]
        for suffix in ("", "_lo", "_hi"):
            out[name + suffix] = row.get("Score" + suffix)
    columns = MODEL_KEYS + [n + s for n in names.values() for s in ("", "_lo", "_hi")]
    schema = {c: (pl.String if c in MODEL_KEYS else pl.Float64) for c in columns}
    return pl.DataFrame([{c: r.get(c) for c in columns} for r in rows.values()], schema=schema).sort("Model")


def _headline_columns(summary) -> list[str]:
    return [c for c in summary.columns if c not in MODEL_KEYS and not c.endswith(("_lo", "_hi"))]


def markdown(summary, ci_style: str = "pm") -> str:
    columns = _headline_columns(summary)
    lines = ["## Summary", "", "Each benchmark's headline number (%) by its official rule, with its bootstrap "
             "interval; – where a model was not scored on it (docs/evaluation.md).", "",
             "| Model | " + " | ".join(columns) + " |", "|---|" + "|".join("---" for _ in columns) + "|"]
    for row in summary.iter_rows(named=True):
        lines.append(f"| {row['Model']} | " + " | ".join(render.cell(row, c, ci_style) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def latex(summary, ci_style: str = "pm", level: float = 0.95, released=()) -> str:
    columns = _headline_columns(summary)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", f"\\begin{{tabular}}{{l{'r' * len(columns)}}}",
             r"\toprule", " & ".join(["Model", *[render.escape(c) for c in columns]]) + r" \\", r"\midrule"]
    for row in summary.iter_rows(named=True):
        cells = [render.escape(render.cell(row, c, ci_style, pm="PLUSMINUS")).replace("PLUSMINUS", "$\\pm$")
                 .replace("–", "--") for c in columns]
        mark = "$^\\dagger$" if row["Model"] in released else ""
        lines.append(" & ".join([render.escape(row["Model"]) + mark, *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              f"\\caption{{Each benchmark's headline accuracy (\\%) by its official rule, with "
              f"{round(level * 100)}\\% bootstrap intervals"
              + (r"; $^\dagger$: a released reward model." if set(released) & set(summary["Model"]) else ".")
              + "}", r"\label{tab:rmflow-summary}", r"\end{table}"]
    return "\n".join(lines) + "\n"
