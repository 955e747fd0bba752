"""``rmflow prepare-data``: load, convert and validate preference rows into a standard-row parquet file."""

from __future__ import annotations

import collections
import logging
from pathlib import Path

from rmflow.data.convert import get_converter
from rmflow.data.loaders import read_rows, strip_position
from rmflow.data.schema import check_pair
from rmflow.errors import RmflowError
from rmflow.io import atomic_path, write_json

log = logging.getLogger(__name__)

ON_INVALID = ("error", "skip")


def prepare_rows(rows: list[dict], fmt: str, on_invalid: str = "error") -> tuple[list[dict], dict]:
    """Convert and validate rows; return the valid standard rows and a report of everything dropped."""
    if on_invalid not in ON_INVALID:
        raise RmflowError(f"--on-invalid must be one of {ON_INVALID}, not '{on_invalid}'")
    convert = get_converter(fmt)
    kept: list[dict] = []
    invalid: collections.Counter[str] = collections.Counter()
    not_paired: collections.Counter[str] = collections.Counter()
    first_seen: dict[str, str] = {}
    for raw in rows:
        converted, dropped = convert(raw)
        not_paired.update(dropped)
        for row in converted:
            problem = check_pair(row)
            if problem is None:
                kept.append({"chosen": row["chosen"], "rejected": row["rejected"],
                             **{k: v for k, v in strip_position(row).items() if k not in ("chosen", "rejected")}})
                continue
            if on_invalid == "error":
                raise RmflowError(
                    f"{problem.detail} (use --on-invalid skip to drop such rows and count them)",
                    file=row.get("__file__"), row=row.get("__row__"), field=problem.field,
                )
            invalid[problem.reason] += 1
            first_seen.setdefault(problem.reason, f"{row.get('__file__')}:{row.get('__row__')} {problem.field}")
    for reason, count in sorted(invalid.items()):
        log.warning("dropped %d invalid rows: %s (first at %s)", count, reason, first_seen[reason])
    for reason, count in sorted(not_paired.items()):
        log.info("converter emitted no pair for %d responses: %s", count, reason)
    if not kept:
        raise RmflowError(f"no valid rows left out of {len(rows)} (dropped: {dict(invalid)})")
    report = {
        "rows_read": len(rows),
        "rows_kept": len(kept),
        "rows_dropped_invalid": sum(invalid.values()),
        "dropped_by_reason": dict(invalid),
        "responses_not_paired": dict(not_paired),
        "format": fmt,
        "on_invalid": on_invalid,
    }
    log.info("kept %d of %d rows", len(kept), len(rows))
    return kept, report


def write_pairs(rows: list[dict], out: str | Path) -> None:
    import polars as pl

    frame = pl.DataFrame(
        {"chosen": [r["chosen"] for r in rows], "rejected": [r["rejected"] for r in rows]},
        schema={m: pl.List(pl.Struct({"role": pl.String, "content": pl.String})) for m in ("chosen", "rejected")},
    )
    extras = sorted({k for r in rows for k in r} - {"chosen", "rejected"})
    for key in extras:
        if all(isinstance(r.get(key), (str, int, float, bool, type(None))) for r in rows):
            frame = frame.with_columns(pl.Series(key, [r.get(key) for r in rows]))
    with atomic_path(out) as tmp:
        frame.write_parquet(tmp)


def read_pairs(path: str | Path) -> list[dict]:
    import polars as pl

    return pl.read_parquet(path).to_dicts()


def main(source: str, out: str, report: str, fmt: str, split: str, revision: str | None, on_invalid: str) -> None:
    rows = read_rows(source, split=split, revision=revision)
    kept, summary = prepare_rows(rows, fmt, on_invalid)
    summary["source"] = source
    write_pairs(kept, out)
    write_json(report, summary)
