"""Markdown and LaTeX (booktabs) renderings of the leaderboard, with bootstrap intervals.

Each cell shows the point estimate and its interval: ``83.4 ± 2.1`` (half the percentile interval's width; the
interval itself may be asymmetric, the CSV has both ends) or ``83.4 [81.2, 85.5]``, chosen by
``leaderboard.ci_style``. In LaTeX the best value of each column within a benchmark and eval set is bold.
"""

from __future__ import annotations

from collections.abc import Collection

from rmflow.evaluate.benchmarks import TITLES

KEY_COLUMNS = ["Benchmark", "Eval Set", "Model"]
LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def value_columns(board) -> list[str]:
    keys = {"Benchmark", "Eval Set", "Model", "Base Model", "Method"}
    return [c for c in board.columns if c not in keys and not c.endswith(("_lo", "_hi"))]


def cell(row: dict, column: str, ci_style: str, pm: str = "±") -> str:
    value = row.get(column)
    if value is None:
        return "–"
    if column == "Length Corr":
        return f"{value:+.2f}"
    low, high = row.get(f"{column}_lo"), row.get(f"{column}_hi")
    if low is None or high is None:
        return f"{value:.1f}"
    if ci_style == "brackets":
        return f"{value:.1f} [{low:.1f}, {high:.1f}]"
    return f"{value:.1f} {pm} {(high - low) / 2:.1f}"


def to_markdown(board, ci_style: str = "pm") -> str:
    """One table per benchmark, each with the columns its rule reports (RM-Bench's domains, JudgeBench's sources)."""
    out = []
    for (benchmark,), group in board.group_by(["Benchmark"], maintain_order=True):
        columns = KEY_COLUMNS + [c for c in value_columns(group) if c == "Score" or not group[c].is_null().all()]
        lines = [f"## {TITLES.get(benchmark, benchmark)}", "",
                 "| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        for row in group.iter_rows(named=True):
            lines.append("| " + " | ".join(str(row[c]) if c in KEY_COLUMNS else cell(row, c, ci_style)
                                           for c in columns) + " |")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def _best(board, column: str) -> set[tuple[str, str, str]]:
    """(benchmark, eval set, model) holding the column's best value in its group (largest; for Length Corr the one
    closest to 0, since a reward should not track length)."""
    best = set()
    for (benchmark, eval_set), group in board.group_by(["Benchmark", "Eval Set"], maintain_order=True):
        values = [(m, v) for m, v in zip(group["Model"], group[column]) if v is not None]
        if not values:
            continue
        key = (lambda mv: -abs(mv[1])) if column == "Length Corr" else (lambda mv: mv[1])
        top = max(key(mv) for mv in values)
        best |= {(benchmark, eval_set, m) for m, v in values if key((m, v)) == top}
    return best


def to_latex(board, ci_style: str = "pm", level: float = 0.95, released: Collection[str] = ()) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``); one block per benchmark and eval set. ``released``:
    the Model names of released reward models (marked; their published numbers are elsewhere)."""
    columns = value_columns(board)
    best = {c: _best(board, c) for c in columns}
    spec = "ll" + "r" * len(columns)
    header = " & ".join(["Eval set", "Model", *[escape(c) for c in columns]]) + r" \\"
    ci = "$\\pm$ half the" if ci_style == "pm" else "brackets:"
    released_note = (r" $^\dagger$: a released reward model scored here as its authors score it (its published "
                     r"numbers beside ours: leaderboard\_published.md)."
                     if set(released) & set(board["Model"]) else "")
    lines = [r"\begin{table}[t]", r"\centering", r"\small", f"\\begin{{tabular}}{{{spec}}}", r"\toprule", header]
    for (benchmark, eval_set), group in board.group_by(["Benchmark", "Eval Set"], maintain_order=True):
        lines += [r"\midrule", f"\\multicolumn{{{len(columns) + 2}}}{{l}}{{\\textit{{{escape(benchmark)}}}}} \\\\"]
        for row in group.iter_rows(named=True):
            cells = [escape(eval_set), escape(row["Model"]) + ("$^\\dagger$" if row["Model"] in released else "")]
            for c in columns:
                # "--": an en dash in any LaTeX setup, with or without a UTF-8 input encoding
                text = escape(cell(row, c, ci_style, pm="PLUSMINUS")).replace("PLUSMINUS", "$\\pm$").replace("–", "--")
                if row[c] is not None and (benchmark, eval_set, row["Model"]) in best[c]:
                    text = f"\\textbf{{{text}}}"
                cells.append(text)
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              f"\\caption{{Reward-model accuracy (\\%) with {round(level * 100)}\\% bootstrap intervals ({ci} "
              r"percentile interval); best per column in bold." + released_note + "}",
              r"\label{tab:rmflow-leaderboard}",
              r"\end{table}"]
    return "\n".join(lines) + "\n"
