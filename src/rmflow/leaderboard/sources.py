"""``leaderboard_sources.csv``: which hub commits every leaderboard row comes from, so a paper's table can cite the
weights and data behind each number. One row per scores.json: the scored model (a released one's commit), the base
and training data a trained model recorded when it was saved, and the eval set. Empty cells are local inputs
(nothing on the hub to cite); "unresolved" is a hub reference whose commit nothing could tell (offline, no cache).
"""

from __future__ import annotations

import json
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.io import atomic_path

COLUMNS = ["eval_set", "method", "base", "model", "model_commit", "base_model", "base_commit", "train_data",
           "train_data_commits", "eval_data", "eval_data_commit"]


def _cite(record: dict | list | None) -> tuple[str, str]:
    """``id@revision`` and the commit; an eval set read from several repositories (PPE Correctness) lists each."""
    if not record:
        return "", ""
    if isinstance(record, list):
        cited = [_cite(r) for r in record]
        return "; ".join(c[0] for c in cited), "; ".join(c[1] for c in cited)
    return f"{record['id']}@{record['revision']}", record.get("commit") or "unresolved"


def source_rows(files: list[str | Path]) -> list[dict]:
    rows = []
    for path in files:
        try:
            scores = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RmflowError(f"unreadable scores file ({exc})", file=str(path)) from exc
        hub = scores.get("hub") or {}
        trained = hub.get("trained_from") or {}
        data = trained.get("train_data") or []
        model, model_commit = _cite(hub.get("model"))
        base, base_commit = _cite(trained.get("base"))
        eval_data, eval_commit = _cite(hub.get("eval_data"))
        rows.append({"eval_set": scores.get("eval_set"), "method": scores.get("method"), "base": scores.get("base"),
                     "model": model, "model_commit": model_commit, "base_model": base, "base_commit": base_commit,
                     "train_data": "; ".join(_cite(d)[0] for d in data),
                     "train_data_commits": "; ".join(_cite(d)[1] for d in data),
                     "eval_data": eval_data, "eval_data_commit": eval_commit})
    return sorted(rows, key=lambda r: (str(r["eval_set"]), str(r["method"]), str(r["base"])))


def write_sources(files: list[str | Path], out: str | Path) -> None:
    import polars as pl

    frame = pl.DataFrame(source_rows(files), schema={c: pl.Utf8 for c in COLUMNS}, orient="row")
    with atomic_path(out) as tmp:
        frame.write_csv(tmp)
