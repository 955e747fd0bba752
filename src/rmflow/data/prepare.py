"""``rmflow prepare-data``: load, convert and validate rows of any supported layout into a canonical parquet file.

The format decides the converter and the kind of rows written (``formats.py``). A row that does not fit the format
stops the run naming the data set, the format, the row and the columns it saw; a row that fits but is invalid
(empty content, roles out of order, identical answers) stops it too, or with ``on_invalid: skip`` is dropped and
counted by reason. Rows a ``where`` filter leaves out and pairs a converter does not emit are counted as well.
"""

from __future__ import annotations

import collections
import logging
from pathlib import Path

from rmflow.data.convert import LayoutError, RowOffTemplate
from rmflow.data.formats import VALIDATORS, get_format, read_prepared, write_rows
from rmflow.data.loaders import read_rows, strip_position
from rmflow.errors import RmflowError
from rmflow.io import write_json

log = logging.getLogger(__name__)

ON_INVALID = ("error", "skip")


def _matches(row: dict, where: dict) -> bool:
    return all(str(row.get(column)) == str(value) for column, value in where.items())


def prepare_rows(rows: list[dict], fmt: str, on_invalid: str = "error", name: str | None = None,
                 where: dict | None = None) -> tuple[list[dict], dict]:
    """Convert and validate rows; return the valid canonical rows and a report of everything counted."""
    if on_invalid not in ON_INVALID:
        raise RmflowError(f"--on-invalid must be one of {ON_INVALID}, not '{on_invalid}'")
    spec = get_format(fmt)
    validate = VALIDATORS[spec.kind]
    label = f"data set '{name}' (format '{fmt}')" if name else f"format '{fmt}'"
    kept: list[dict] = []
    invalid: collections.Counter[str] = collections.Counter()
    events: collections.Counter[str] = collections.Counter()
    first_seen: dict[str, str] = {}
    filtered = 0
    for raw in rows:
        if where and not _matches(raw, where):
            filtered += 1
            continue
        try:
            converted, noted = spec.converter(raw)
        except RowOffTemplate as exc:
            if on_invalid == "error":
                seen = ", ".join(sorted(k for k in raw if not k.startswith("__")))
                raise RmflowError(f"{exc} ({label} expects rows {spec.layout}; columns seen: {seen}; the row is off "
                                  "the template: use on_invalid: skip to drop such rows and count them)",
                                  file=raw.get("__file__"), row=raw.get("__row__"), field=exc.field) from exc
            invalid[exc.reason] += 1
            first_seen.setdefault(exc.reason, f"{raw.get('__file__')}:{raw.get('__row__')} {exc.field}")
            continue
        except LayoutError as exc:
            seen = ", ".join(sorted(k for k in raw if not k.startswith("__")))
            raise RmflowError(f"{exc} ({label} expects rows {spec.layout}; columns seen: {seen})",
                              file=raw.get("__file__"), row=raw.get("__row__"), field=exc.field) from exc
        events.update(noted)
        for row in converted:
            row = {"__row__": raw.get("__row__"), "__file__": raw.get("__file__"), **row}
            problem = validate(row)
            if problem is None:
                kept.append(strip_position(row))
                continue
            if on_invalid == "error":
                seen = ", ".join(sorted(k for k in raw if not k.startswith("__")))
                raise RmflowError(
                    f"{problem.detail} ({label}; columns seen: {seen}; use on_invalid: skip to drop such rows and "
                    "count them)", file=row.get("__file__"), row=row.get("__row__"), field=problem.field,
                )
            invalid[problem.reason] += 1
            first_seen.setdefault(problem.reason, f"{row.get('__file__')}:{row.get('__row__')} {problem.field}")
    for reason, count in sorted(invalid.items()):
        log.warning("dropped %d invalid rows: %s (first at %s)", count, reason, first_seen[reason])
    for reason, count in sorted(events.items()):
        log.info("converter: %d x %s", count, reason)
    if filtered:
        log.info("left out %d rows that do not match where %s", filtered, where)
    if not kept:
        raise RmflowError(f"{label}: no valid rows left out of {len(rows)} (dropped: {dict(invalid)}, filtered out: "
                          f"{filtered}, converter: {dict(events)})")
    report = {
        "rows_read": len(rows),
        "rows_kept": len(kept),
        "rows_dropped_invalid": sum(invalid.values()),
        "dropped_by_reason": dict(invalid),
        "converter_counts": dict(events),
        "rows_filtered_out": filtered,
        "where": where or {},
        "format": fmt,
        "kind": spec.kind,
        "on_invalid": on_invalid,
    }
    log.info("kept %d of %d rows", len(kept), len(rows))
    return kept, report


def write_pairs(rows: list[dict], out: str | Path) -> None:
    write_rows(rows, "pairs", out)


def read_pairs(path: str | Path) -> list[dict]:
    return read_prepared(path)


def main(source: str, out: str, report: str, fmt: str, split: str, revision: str | None, on_invalid: str,
         name: str | None = None, where: dict | None = None, data_dir: str | None = None) -> None:
    rows = read_rows(source, split=split, revision=revision, data_dir=data_dir)
    kept, summary = prepare_rows(rows, fmt, on_invalid, name, where)
    summary["source"] = source
    from rmflow.hub import hub_record

    # the hub commit of every hub source (a mixture has several), so the models trained on it can cite it
    records = [hub_record(s, revision, "dataset") for s in (source if isinstance(source, list) else [source])]
    summary["hub"] = [r for r in records if r] or None
    write_rows(kept, summary["kind"], out)
    write_json(report, summary)
