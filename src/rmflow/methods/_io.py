"""Parquet rows for method-specific intermediate files (PM rows, SSRM pools and labels), written atomically."""

from __future__ import annotations

from pathlib import Path

from rmflow.errors import RmflowError


def write_rows(rows: list[dict], out: str | Path) -> None:
    import polars as pl

    from rmflow.io import atomic_path

    if not rows:
        raise RmflowError("no rows to write", file=str(out))
    with atomic_path(out) as tmp:
        # every row decides the schema: keys that only later rows carry (RRM's "augmentation") are kept
        pl.DataFrame(rows, infer_schema_length=None).write_parquet(tmp)
