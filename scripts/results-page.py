#!/usr/bin/env python
"""Write a documentation page of a run's results from the run's own outputs, stamped with commit and machine.

    python scripts/results-page.py --results results --title "The default run" --command "make run" \
        --out docs/runs/default-run.md --readme README.md

It reads what the workflow wrote (``leaderboard.md``, ``plots/run_metrics.csv``, ``bestofn.csv``,
``config_used.yaml``, the figures) and copies the figures beside the page; nothing on the page is typed by hand, so
a rerun of the same results gives the same page (but for the stamp). The commit is the checkout's ``HEAD`` (and
whether it had uncommitted changes), the machine the one this script runs on: run it where the run ran, right
after it. A missing output is an error naming the file, never a page with a hole in it.

``--readme`` also rewrites the RewardBench table on the front page (between its ``README_START``/``README_END``
markers) from the same leaderboard, with the same commit and machine stamp, so the front page shows what the code
makes today.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIGURES = {"plots/sections_ci.png": "scores per model with 95 % bootstrap intervals",
           "plots/train_loss.png": "training loss of every trained model",
           "bestofn.png": "best-of-N accuracy against N for every scalar model"}
METRIC_COLUMNS = [("model", "Model"), ("eval_set", "Eval Set"), ("score", "Score"), ("final_loss", "Final loss"),
                  ("train_accuracy", "Train acc."), ("optimizer_steps", "Steps"), ("wall_time_s", "Train s"),
                  ("train_tokens_per_s", "Train tok/s"), ("train_padding", "Padding"),
                  ("score_tokens_per_s", "Score tok/s")]


def fail(message: str) -> None:
    print(f"results-page: error: {message}", file=sys.stderr)
    sys.exit(2)


def read(path: Path) -> str:
    if not path.is_file():
        fail(f"{path}: missing (run the workflow to the end first)")
    return path.read_text(encoding="utf-8")


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head, dirty = git("rev-parse", "--short=12", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head}" + (" with uncommitted changes" if dirty else "")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU") \
        if Path("/proc/cpuinfo").exists() else platform.processor() or "unknown CPU"
    memory = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2 ** 30:.0f} GiB"
    try:
        gpus = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20).stdout.strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        gpus = []
    return f"{cpu}, {os.cpu_count()} cores{memory}, " + (", ".join(gpus) if gpus else "no GPU") + \
        f"; {platform.system()} {platform.release()}"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = [f"python {platform.python_version()}"]
    for name in ("torch", "transformers", "snakemake", "polars"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} not installed")
    return ", ".join(out)


def run_span(results: Path) -> str:
    times = [p.stat().st_mtime for p in results.rglob("*") if p.is_file() and "scratch" not in p.parts]
    start, end = (datetime.fromtimestamp(t, timezone.utc) for t in (min(times), max(times)))
    minutes, seconds = divmod(round((end - start).total_seconds()), 60)
    return f"{start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC (outputs written over {minutes} min {seconds} s)"


README_START = "<!-- results-page.py --readme writes the table below from a make run; do not edit it -->"
README_END = "<!-- end of the generated table -->"
# the front page's columns of the leaderboard's RewardBench v1 rows
README_COLUMNS = ("Model", "Score", "Chat", "Chat Hard", "Safety", "Reasoning", "Length Corr")


def readme_table(leaderboard: str, stamp: str) -> str:
    """The leaderboard's RewardBench v1 rows (the default run's synthetic set) in the front page's columns."""
    lines = leaderboard.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.startswith("| Benchmark | Eval Set | Model |")), None)
    if header_at is None:
        fail("leaderboard.md: no table with the columns Benchmark, Eval Set, Model")
    header = [c.strip() for c in lines[header_at].strip("|").split("|")]
    missing = [c for c in README_COLUMNS if c not in header]
    if missing:
        fail(f"leaderboard.md: no column(s) {missing}")
    rows = []
    for line in lines[header_at + 2:]:
        if not line.startswith("|"):
            break
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
        if cells["Benchmark"] == "rewardbench_v1":
            rows.append("| " + " | ".join(cells[c] for c in README_COLUMNS) + " |")
    if not rows:
        fail("leaderboard.md: no rewardbench_v1 rows")
    return "\n".join([README_START, stamp, "", "| " + " | ".join(README_COLUMNS) + " |",
                      "|" + "---|" * len(README_COLUMNS), *rows, README_END])


def write_readme(path: Path, leaderboard: str, stamp: str) -> None:
    text = read(path)
    if README_START not in text or README_END not in text:
        fail(f"{path}: no generated-table markers ({README_START} ... {README_END})")
    before, rest = text.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    partial = path.with_name(path.name + ".partial")
    partial.write_text(before + readme_table(leaderboard, stamp) + after, encoding="utf-8")
    partial.replace(path)


def cell(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value or "–"
    return f"{number:.4g}" if abs(number) < 1e5 else f"{number:,.0f}"


def csv_table(path: Path, columns: list[tuple[str, str]] | None = None) -> str:
    rows = list(csv.DictReader(read(path).splitlines()))
    if not rows:
        fail(f"{path}: no rows")
    columns = columns or [(c, c) for c in rows[0]]
    missing = [c for c, _ in columns if c not in rows[0]]
    if missing:
        fail(f"{path}: no column(s) {missing}")
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c, _ in columns) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="the run's results folder")
    parser.add_argument("--title", required=True)
    parser.add_argument("--command", required=True, help="the command that made the run (shown on the page)")
    parser.add_argument("--out", required=True, help="the page to write (figures go beside it, in <name>/)")
    parser.add_argument("--readme", help="also rewrite this front page's generated RewardBench table")
    a = parser.parse_args()
    results, out = Path(a.results), Path(a.out)
    leaderboard = read(results / "leaderboard.md").strip()
    config = read(results / "config_used.yaml")
    metrics = csv_table(results / "plots/run_metrics.csv", METRIC_COLUMNS)
    bestofn = csv_table(results / "bestofn.csv") if (results / "bestofn.csv").exists() else None
    figures = {name: caption for name, caption in FIGURES.items() if (results / name).exists()}

    assets = out.parent / out.stem
    assets.mkdir(parents=True, exist_ok=True)
    for name in figures:
        shutil.copyfile(results / name, assets / Path(name).name)
    lines = [
        f"# {a.title}",
        "",
        f"Generated by `scripts/results-page.py` from the outputs of `{a.command}` in `{a.results}/`; "
        "regenerate it rather than edit it.",
        "",
        "| | |",
        "|---|---|",
        f"| commit | {commit()} |",
        f"| machine | {machine()} |",
        f"| software | {versions()} |",
        f"| run | {run_span(results)} |",
        f"| configuration | `{a.results}/config_used.yaml`, {len(config.splitlines())} lines |",
        "",
        "## Leaderboard",
        "",
        f"`{a.results}/leaderboard.md`: each cell the score with half the width of its 95 % bootstrap interval.",
        "",
        leaderboard,
        "",
        "## Training and scoring",
        "",
        f"`{a.results}/plots/run_metrics.csv`, one row per score (a released model has no training columns).",
        "",
        metrics,
    ]
    if bestofn:
        lines += ["", "## Best-of-N", "", f"`{a.results}/bestofn.csv`.", "", bestofn]
    for name, caption in figures.items():
        lines += ["", f"![{caption}]({out.stem}/{Path(name).name})"]
    partial = out.with_name(out.name + ".partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.replace(out)
    print(f"wrote {out} and {len(figures)} figure(s) in {assets}")
    if a.readme:
        stamp = (f"Generated by `scripts/results-page.py --readme` from `{a.command}` at commit {commit()} on "
                 f"{machine()} ({versions()}).")
        write_readme(Path(a.readme), leaderboard, stamp)
        print(f"rewrote the generated table in {a.readme}")


if __name__ == "__main__":
    main()
