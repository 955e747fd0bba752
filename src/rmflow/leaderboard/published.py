"""The leaderboard's ``published`` block: released reward models' published numbers (RewardBench and the other
benchmarks of rmflow.evaluate.benchmarks) beside ours.

``config/published.yaml`` holds the published numbers (cited); a leaderboard row of an external reward model
matches an entry by the model's hub id (its ``scores.json`` names it) and benchmark. For every number both sides
have, ``leaderboard_published.csv`` / ``.md`` give ours with its bootstrap interval, the published one, the
difference (ours − published) and whether the published number lies inside our interval: a reproduction gap outside
it is real, not noise. Published numbers are 1-decimal displays, so "inside" is judged with ±0.05 slack.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from rmflow.errors import RmflowError
from rmflow.evaluate.benchmarks import ALL as BENCHMARKS
from rmflow.io import atomic_path

COLUMNS = ["Benchmark", "Eval Set", "Model", "Id", "Number", "Ours", "Ours_lo", "Ours_hi", "Published",
           "Difference", "Inside Interval", "Source"]
DISPLAY_SLACK = 0.05  # published numbers are rounded to one decimal


def load_published(path: str | Path) -> list[dict]:
    """The published table, checked: every entry needs model, benchmark, numbers and source."""
    try:
        entries = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as exc:
        raise RmflowError(f"unreadable published table ({exc})", file=str(path)) from exc
    if not isinstance(entries, list):
        raise RmflowError("must be a list of {model, benchmark, numbers, source} entries", file=str(path))
    for i, entry in enumerate(entries, start=1):
        missing = [k for k in ("model", "benchmark", "numbers", "source") if not (entry or {}).get(k)]
        if missing:
            raise RmflowError(f"entry {i} lacks {', '.join(missing)}", file=str(path), row=i, field=missing[0])
        if entry["benchmark"] not in BENCHMARKS:
            raise RmflowError(f"benchmark must be one of {', '.join(BENCHMARKS)}", file=str(path), row=i,
                              field="benchmark")
    return entries


def model_ids(score_files: list[str | Path]) -> dict[str, str]:
    """Leaderboard row name of each external reward model -> the hub id (or directory) it was loaded from: the hub
    record scores.json carries, else the declaration's ``model`` (external.json in its model directory)."""
    from rmflow.leaderboard.gather import is_released, model_name

    ids = {}
    for path in score_files:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if not is_released(record) or not record.get("model_dir"):
            continue
        hub_model = (record.get("hub") or {}).get("model") or {}
        declaration = Path(record["model_dir"], "external.json")
        declared = json.loads(declaration.read_text(encoding="utf-8")).get("model") if declaration.is_file() else None
        ids[model_name(record)] = hub_model.get("id") or declared or record["model_dir"]
    return ids


def published_rows(board: list[dict], ids: dict[str, str], published: list[dict]) -> list[dict]:
    """One row per (external model, eval set, number) that both our leaderboard and the published table have."""
    rows = []
    for row in board:
        model_id = ids.get(row["Model"])
        for entry in published:
            if entry["model"] != model_id or entry["benchmark"] != row["Benchmark"]:
                continue
            for number, value in entry["numbers"].items():
                ours = row.get(number)
                if value is None or ours is None:
                    continue
                low, high = row.get(f"{number}_lo"), row.get(f"{number}_hi")
                inside = None if low is None or high is None else \
                    low - DISPLAY_SLACK <= value <= high + DISPLAY_SLACK
                rows.append({"Benchmark": row["Benchmark"], "Eval Set": row["Eval Set"], "Model": row["Model"],
                             "Id": model_id, "Number": number, "Ours": ours, "Ours_lo": low, "Ours_hi": high,
                             "Published": float(value), "Difference": round(ours - float(value), 2),
                             "Inside Interval": inside, "Source": entry["source"]})
    return rows


def markdown(rows: list[dict]) -> str:
    if not rows:
        return ("No external reward model of this run has published numbers in the table "
                "(config/published.yaml).\n")
    head = "| Model | Eval Set | Number | Ours [interval] | Published | Ours − published | Inside |\n" \
           "|---|---|---|---|---|---|---|\n"
    body = "".join(
        f"| {r['Model']} | {r['Eval Set']} | {r['Number']} | {r['Ours']:.1f}"
        + (f" [{r['Ours_lo']:.1f}, {r['Ours_hi']:.1f}]" if r["Ours_lo"] is not None else "")
        + f" | {r['Published']:.1f} | {r['Difference']:+.1f} | "
        + {True: "yes", False: "**no**", None: "–"}[r["Inside Interval"]] + " |\n" for r in rows)
    return head + body


def main(board_csv: str, score_files: list[str | Path], published_path: str, out_csv: str, out_md: str) -> list[dict]:
    import polars as pl

    board = pl.read_csv(board_csv, infer_schema_length=None).to_dicts()
    rows = published_rows(board, model_ids(score_files), load_published(published_path))
    schema = {c: (pl.Float64 if c.startswith(("Ours", "Published", "Difference")) else
                  pl.Boolean if c == "Inside Interval" else pl.Utf8) for c in COLUMNS}
    with atomic_path(out_csv) as tmp:
        pl.DataFrame(rows, schema=schema, orient="row").write_csv(tmp)
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text(markdown(rows), encoding="utf-8")
    return rows
