"""``rmflow plots``: the figures a paper needs, each as PNG and SVG, from the per-run files alone.

matplotlib, not altair: static PNG/SVG that drop into LaTeX and the Snakemake report without a browser, a
JavaScript runtime or a network connection, and a backend (Agg) that works on headless cluster nodes.

- ``sections_ci``: every leaderboard column per model, point and bootstrap interval, one panel per column;
- ``length_bias``: reward vs. response length for each scalar method (what ODIN and ArmoRM debias);
- ``train_loss``: training-loss curves from each model's ``train_log.jsonl``;
- ``run_metrics.csv``: per run, the training metrics next to the score (the report's per-run table).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.io import atomic_path

log = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "rmflow"  # stable SVG ids: rerunning rewrites identical files
    return plt


def save(fig, out_png: str | Path, out_svg: str | Path) -> None:
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    with atomic_path(out_svg) as tmp:
        fig.savefig(tmp, format="svg", metadata={"Date": None})


def _panels(plt, count: int, width: float, height: float):
    """A figure with ``count`` panels, four to a row; unused cells are hidden."""
    cols = min(4, max(1, count))
    rows = max(1, -(-count // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    cells = [axes[i // cols][i % cols] for i in range(rows * cols)]
    for ax in cells[count:]:
        ax.axis("off")
    return fig, cells


def _chance(benchmark: str, column: str) -> float | None:
    """Random guessing: 50 % on a pair; 25 % on RewardBench 2's best-of-4 rows; none for its Ties formula."""
    if benchmark == "rewardbench_v2":
        return None if column in ("Ties", "Score") else 25.0
    return 50.0


def sections_ci(board, out_png, out_svg) -> None:
    """One block per benchmark and eval set, with the columns that block has; the best model on top."""
    from rmflow.leaderboard.render import value_columns

    plt = _pyplot()
    columns = [c for c in value_columns(board) if c != "Length Corr"]
    groups = [(key, group, [c for c in columns if group[c].is_not_null().any()])
              for key, group in board.group_by(["Benchmark", "Eval Set"], maintain_order=True)]
    widest = max(len(present) for _, _, present in groups)
    heights = [0.26 * group.height + 1.3 for _, group, _ in groups]
    fig = plt.figure(figsize=(2.4 * widest + 1.8, sum(heights) + 0.5), layout="constrained")
    subfigs = fig.subfigures(len(groups), 1, height_ratios=heights, squeeze=False)[:, 0]
    for sub, ((benchmark, eval_set), group, present) in zip(subfigs, groups):
        models = group["Model"].to_list()[::-1]  # best at the top
        axes = sub.subplots(1, len(present), sharey=True, squeeze=False)[0]
        for ax, column in zip(axes, present):
            values, lows, highs = (group[k].to_list()[::-1] if k in group.columns else [None] * group.height
                                   for k in (column, f"{column}_lo", f"{column}_hi"))
            # a number without an interval (RM-Bench's Hard/Normal/Easy) is drawn as a point alone
            ys = [i for i, v in enumerate(values) if v is not None]
            err = [[values[i] - lows[i] if lows[i] is not None else 0.0 for i in ys],
                   [highs[i] - values[i] if highs[i] is not None else 0.0 for i in ys]]
            ax.errorbar([values[i] for i in ys], ys, xerr=err, fmt="o", ms=3, capsize=2, color="tab:blue")
            chance = _chance(benchmark, column)
            if chance is not None:
                ax.axvline(chance, color="grey", lw=0.6, ls=":")
            ax.set_yticks(range(len(models)), models, fontsize=7)
            ax.set_ylim(-0.5, len(models) - 0.5)
            ax.set_title(column, fontsize=9)
            ax.set_xlabel("accuracy (%)", fontsize=8)
            ax.grid(axis="x", alpha=0.3)
        sub.suptitle(f"{benchmark}, eval set {eval_set}: 95% bootstrap intervals (dotted: chance)", fontsize=10)
    save(fig, out_png, out_svg)
    plt.close(fig)


def length_bias(records: list[dict], out_png, out_svg) -> int:
    """One panel per scalar method: every scored response's reward against its length; returns the panel count."""
    import polars as pl

    plt = _pyplot()
    per_method: dict[str, list] = {}
    for r in records:
        examples = pl.read_parquet(Path(r["_path"]).with_name("examples.parquet"))
        if "score_chosen" not in examples.columns or "len_chosen" not in examples.columns:
            continue
        per_method.setdefault(r["method"], []).append((r, examples))
    methods = sorted(per_method)
    fig, cells = _panels(plt, len(methods), 3.2, 2.8)
    for ax, method in zip(cells, methods):
        for j, (r, ex) in enumerate(per_method[method]):
            lengths = ex["len_chosen"].to_list() + ex["len_rejected"].to_list()
            rewards = ex["score_chosen"].to_list() + ex["score_rejected"].to_list()
            corr = r.get("length_correlation")
            label = f"{r['base']} (r={corr:+.2f})" if corr is not None else r["base"]
            ax.scatter(lengths, rewards, s=4, alpha=0.4, color=plt.get_cmap("tab10")(j % 10), label=label)
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("response length (characters)", fontsize=8)
        ax.set_ylabel("reward", fontsize=8)
        ax.legend(fontsize=6, markerscale=2)
    if not methods:
        cells[0].axis("on")
        cells[0].text(0.5, 0.5, "no scalar method in this run", ha="center", va="center")
    fig.suptitle("Length bias: reward vs. response length (r = Pearson)", fontsize=10)
    fig.tight_layout()
    save(fig, out_png, out_svg)
    plt.close(fig)
    return len(methods)


def parse_model_dirs(items: list[str]) -> dict[tuple[str, str], Path]:
    """``METHOD/BASE=DIR`` items (the plan's model_dir_args) -> {(method, base): directory}."""
    dirs = {}
    for item in items:
        key, sep, directory = item.partition("=")
        method, slash, base = key.partition("/")
        if not (sep and slash and method and base and directory):
            raise RmflowError(f"--models takes METHOD/BASE=DIR items, not '{item}'", field="models")
        dirs[(method, base)] = Path(directory)
    return dirs


def train_loss(model_dirs: dict[tuple[str, str], Path], out_png, out_svg) -> list[str]:
    """One panel per method, a curve per base model; returns the curves drawn (``method/base``)."""
    plt = _pyplot()
    by_method: dict[str, list[tuple[str, Path]]] = {}
    for (method, base), directory in sorted(model_dirs.items()):
        if (directory / "train_log.jsonl").is_file():  # the judge and the tree fit no loss curve
            by_method.setdefault(method, []).append((base, directory / "train_log.jsonl"))
    methods = sorted(by_method)
    fig, cells = _panels(plt, len(methods), 3.2, 2.6)
    for ax, method in zip(cells, methods):
        for base, path in by_method[method]:
            history = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            ax.plot([h["step"] for h in history], [h["loss"] for h in history], label=base, lw=1)
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.set_ylabel("training loss", fontsize=8)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    fig.suptitle("Training loss (mean over each logging window)", fontsize=10)
    fig.tight_layout()
    save(fig, out_png, out_svg)
    plt.close(fig)
    return [f"{method}/{base}" for method in methods for base, _ in by_method[method]]


def run_metrics(records: list[dict], model_dirs: dict[tuple[str, str], Path], out_csv) -> None:
    """Training metrics beside each score (an external reward model has none: its training columns stay empty)."""
    import polars as pl

    from rmflow.leaderboard.gather import model_name

    rows = []
    for r in records:
        directory = model_dirs.get((r["method"], r["base"]))
        metrics_file = directory / "metrics.json" if directory else None
        m = json.loads(metrics_file.read_text()) if metrics_file and metrics_file.exists() else {}
        trained, scoring = m.get("utilisation") or {}, r.get("utilisation") or {}
        rows.append({"benchmark": r["benchmark"], "eval_set": r["eval_set"], "model": model_name(r),
                     "score": None if r["score"] is None else 100 * r["score"], "n_examples": r["n_examples"],
                     "final_loss": m.get("final_loss"), "train_accuracy": m.get("train_accuracy"),
                     "optimizer_steps": m.get("optimizer_steps"), "train_pairs": m.get("train_pairs"),
                     "wall_time_s": m.get("wall_time_s"),
                     # how well each job used its hardware (metrics.json / scores.json ``utilisation``)
                     "train_tokens_per_s": trained.get("tokens_per_s"), "train_mfu": trained.get("mfu"),
                     "train_padding": trained.get("padding_fraction"),
                     "train_prompt_share_saved": trained.get("prompt_share_saved"),
                     "score_tokens_per_s": scoring.get("tokens_per_s"), "score_mfu": scoring.get("mfu")})
    frame = pl.DataFrame(rows, infer_schema_length=None).sort(["benchmark", "eval_set", "model"])
    with atomic_path(out_csv) as tmp:
        frame.write_csv(tmp)


def main(board_csv: str, score_files: list[str], models: list[str], out_dir: str) -> None:
    """Figures from the gathered leaderboard (its intervals) and the per-run files it was built from."""
    import polars as pl

    from rmflow import leaderboard

    records = leaderboard.read_scores(score_files)
    # every row decides a column's type: a column most benchmarks leave empty is still a number column
    board = pl.read_csv(board_csv, infer_schema_length=None)
    out = Path(out_dir)
    sections_ci(board, out / "sections_ci.png", out / "sections_ci.svg")
    panels = length_bias(records, out / "length_bias.png", out / "length_bias.svg")
    model_dirs = parse_model_dirs(models)
    curves = train_loss(model_dirs, out / "train_loss.png", out / "train_loss.svg")
    run_metrics(records, model_dirs, out / "run_metrics.csv")
    log.info("plots in %s: %d length-bias panels, %d loss curves (%s)", out, panels, len(curves), ", ".join(curves))
