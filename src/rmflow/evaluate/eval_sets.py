"""Eval sets prepared like data sets: ``rmflow prepare-eval`` loads, converts and validates every row once, on a CPU
node, before anything is trained or scored (the workflow's ``prepare_eval`` rule); ``rmflow evaluate --prepared``
reads what it wrote, so a bad row stops the run on a CPU node instead of failing one GPU job per model.

An eval set's ``benchmark`` decides the rows and the rules: ``rewardbench_v1`` (prompt, chosen, rejected, one
pair a row; sections from a section map), ``rewardbench_v2`` (a prompt, a list of chosen and a list of rejected
completions; RewardBench 2's best-of-4 and Ties rules) or one of ``rmflow.evaluate.benchmarks`` (RM-Bench,
JudgeBench, RMB, PPE, ProcessBench: their rows become items of one shape). ``sections`` picks a
``rewardbench_v1`` set's section map. A set may read several sources (PPE Correctness: five hub ids) or splits
(ProcessBench: four), concatenated; each row keeps where it came from.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
from pathlib import Path

from rmflow.data.convert import LayoutError, from_rewardbench
from rmflow.data.layouts import from_rewardbench2
from rmflow.data.loaders import read_rows
from rmflow.data.schema import check_pair
from rmflow.errors import RmflowError
from rmflow.evaluate import benchmarks
from rmflow.io import atomic_path, write_json

log = logging.getLogger(__name__)

BENCHMARKS = benchmarks.ALL
CHAT_TEMPLATES = ("model", "tulu")  # the model's own template, or the official RM-Bench/RMB runners' default
SECTION_MAPS = ("rewardbench_v1", "synthetic_v1")  # rewardbench_v1's: the official map, the synthetic suite's
PREPARED_SCHEMA = "rmflow.eval_rows/1"
RB_FIELDS = ("id", "subset", "prompt", "chosen", "rejected")


def check_choice(benchmark: str, sections: str | None) -> str | None:
    """The section map a set is scored with (None for rewardbench_v2); a wrong pairing is an error."""
    if benchmark not in BENCHMARKS:
        raise RmflowError(f"benchmark must be one of {', '.join(BENCHMARKS)}, not '{benchmark}'", field="benchmark")
    if benchmark != "rewardbench_v1":
        if sections:
            raise RmflowError(f"sections picks a rewardbench_v1 section map; a {benchmark} set has its own "
                              "subsets (leave sections out)", field="sections")
        return None
    if (sections or "rewardbench_v1") not in SECTION_MAPS:
        raise RmflowError(f"sections must be one of {', '.join(SECTION_MAPS)}, not '{sections}' (RewardBench 2 "
                          "rows: benchmark: rewardbench_v2)", field="sections")
    return sections or "rewardbench_v1"


def _converted(converter, raw: dict, layout: str) -> dict:
    try:
        (row,), _ = converter(raw)
    except LayoutError as exc:
        seen = ", ".join(sorted(k for k in raw if not k.startswith("__")))
        raise RmflowError(f"{exc} ({layout} rows need {', '.join(RB_FIELDS)}; columns seen: {seen})",
                          file=raw.get("__file__"), row=raw.get("__row__"), field=exc.field) from exc
    return row


def load_eval_rows(source: str, split: str = "filtered", revision: str | None = None) -> list[dict]:
    """RewardBench rows turned into standard pairs (with id and subset kept); any bad row is an error."""
    pairs = []
    for raw in read_rows(source, split=split, revision=revision):
        for field in RB_FIELDS:
            if field not in raw:
                seen = ", ".join(sorted(k for k in raw if not k.startswith("__")))
                raise RmflowError(f"is missing (RewardBench rows need {', '.join(RB_FIELDS)}; columns seen: {seen})",
                                  file=raw.get("__file__"), row=raw.get("__row__"), field=field)
        row = _converted(from_rewardbench, raw, "RewardBench")
        problem = check_pair(row)
        if problem:
            raise RmflowError(problem.detail, file=raw.get("__file__"), row=raw.get("__row__"), field=problem.field)
        pairs.append({"id": str(raw["id"]), "subset": str(raw["subset"]), "chosen": row["chosen"],
                      "rejected": row["rejected"]})
    return pairs


def load_v2_rows(source: str, split: str = "test", revision: str | None = None) -> list[dict]:
    """RewardBench 2 rows: a prompt string and lists of chosen and rejected completions."""
    return [_converted(from_rewardbench2, raw, "RewardBench 2")
            for raw in read_rows(source, split=split, revision=revision)]


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def from_options(data: list[str], split: list[str], revision: list[str] | None) -> tuple:
    """(source, split, revision) from the command line's lists: one value stays a string, as a config entry's
    would (the report and scores.json read as before); several stay a list; an empty revision is none."""
    def one_or_all(values):
        return values[0] if len(values) == 1 else values

    revisions = [r or None for r in revision or []]
    return one_or_all(data), one_or_all(split), one_or_all(revisions) if any(revisions) else None


def parts(source, split, revision) -> tuple[list[str], list[str], list[str | None]]:
    """(sources, splits, one revision per source): a list of sources reads each; a list of splits reads each
    split of every source; a revision list must match the sources."""
    sources, splits = as_list(source), as_list(split)
    revisions = as_list(revision) if isinstance(revision, (list, tuple)) else [revision] * len(sources)
    if len(revisions) != len(sources):
        raise RmflowError(f"{len(revisions)} revisions for {len(sources)} sources (give one per source, or one "
                          "for all)", field="revision")
    return sources, splits, revisions


def load_counted(source, benchmark: str, split, revision=None) -> tuple[list[dict], dict[str, int]]:
    """The rows (items, for this package's benchmarks) and the rows the benchmark's rule leaves out by reason."""
    sources, splits, revisions = parts(source, split, revision)
    if benchmarks.is_extra(benchmark):
        from rmflow.evaluate.benchmarks.scoring import load_items

        rows, skipped = load_items(benchmark, sources, splits, revisions)
    else:
        reader = load_v2_rows if benchmark == "rewardbench_v2" else load_eval_rows
        rows = [r for s, rev in zip(sources, revisions) for sp in splits for r in reader(s, sp, rev)]
        skipped = {}
    where = ", ".join(sources)
    if not rows:
        raise RmflowError(f"has no rows to score in split(s) {', '.join(splits)}"
                          + (f" ({sum(skipped.values())} left out: {skipped})" if skipped else ""), file=where)
    check_unique_ids(rows, where)
    return rows, skipped


def load(source, benchmark: str, split, revision=None) -> list[dict]:
    return load_counted(source, benchmark, split, revision)[0]


def check_unique_ids(rows: list[dict], source: str) -> None:
    """Rows are joined, compared across runs and (RewardBench 2 Ties) paired by id: a repeated id would silently
    collapse rows, so it is refused with the rows that share it."""
    positions: dict[str, list[int]] = {}
    for number, row in enumerate(rows, start=1):
        positions.setdefault(row["id"], []).append(number)
    repeated = {i: p for i, p in positions.items() if len(p) > 1}
    if repeated:
        first, where = next(iter(repeated.items()))
        raise RmflowError(f"id {first!r} is used by rows {', '.join(map(str, where[:5]))} (ids must be unique; "
                          f"{len(repeated)} id(s) repeated)", file=source, field="id")


def check_scorable(rows: list[dict], benchmark: str, sections: str | None, source: str) -> None:
    """Refuse a set none of whose rows falls in a section of the benchmark: it would score nothing and still
    write a complete-looking scores.json with score null."""
    from rmflow.evaluate.rewardbench import get_section_map, scored_subsets
    from rmflow.evaluate.rewardbench2 import V2_SUBSETS

    if benchmarks.is_extra(benchmark):
        return  # every item of these is scored: its subset is the rule's own grouping
    if benchmark == "rewardbench_v2":
        known, named = set(V2_SUBSETS), "rewardbench_v2"
    else:
        known = scored_subsets(get_section_map(sections or "rewardbench_v1"))
        named = f"section map {sections or 'rewardbench_v1'}"
    seen = collections.Counter(r["subset"] for r in rows)
    if not set(seen) & known:
        listed = ", ".join(f"{s} ({n})" for s, n in seen.most_common(6))
        raise RmflowError(f"no row falls in any section of {named}: nothing would be scored (subsets seen: {listed}; "
                          "is benchmark or sections wrong?)", file=source, field="subset")


def ids_digest(ids: list[str]) -> str:
    """Which rows were scored: the leaderboard refuses to compare runs whose digests differ."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def prepare(source: str, benchmark: str, split: str, revision: str | None, out: str, report_path: str,
            name: str | None = None) -> dict:
    """Validate every row of an eval set and write them (JSON lines) with a report; the report is written last."""
    from rmflow.hub import hub_record

    check_choice(benchmark, None)
    rows, skipped = load_counted(source, benchmark, split, revision)
    sources, _, revisions = parts(source, split, revision)
    hub = [hub_record(s, r, "dataset") for s, r in zip(sources, revisions)]
    report = {"schema": PREPARED_SCHEMA, "name": name, "benchmark": benchmark, "source": source, "split": split,
              "revision": revision, "rows": len(rows), "subsets": dict(collections.Counter(r["subset"] for r in rows)),
              "left_out": skipped, "example_ids_sha256": ids_digest([r["id"] for r in rows]),
              "hub": hub[0] if len(hub) == 1 else hub}
    with atomic_path(out) as tmp:
        Path(tmp).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    write_json(report_path, report)
    log.info("eval set %s: %d %s rows from %s, all valid%s", name or source, len(rows), benchmark, source,
             "".join(f"; {n} left out: {reason}" for reason, n in skipped.items()))
    return report


def read_prepared(path: str, benchmark: str) -> tuple[list[dict], dict]:
    """The rows ``prepare`` wrote and its report (beside them: ``<name>.report.json``)."""
    rows_file = Path(path)
    report_file = rows_file.with_name(rows_file.name.removesuffix(".jsonl") + ".report.json")
    if not report_file.is_file():
        raise RmflowError("has no report beside it (write eval rows with rmflow prepare-eval)", file=str(rows_file))
    report = json.loads(report_file.read_text(encoding="utf-8"))
    if report.get("schema") != PREPARED_SCHEMA:
        raise RmflowError(f"is not {PREPARED_SCHEMA} (rerun rmflow prepare-eval)", file=str(report_file),
                          field="schema")
    if report["benchmark"] != benchmark:
        raise RmflowError(f"holds {report['benchmark']} rows, not {benchmark}", file=str(report_file),
                          field="benchmark")
    rows = [json.loads(line) for line in rows_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(rows) != report["rows"]:
        raise RmflowError(f"has {len(rows)} rows, its report {report['rows']} (a partial file)", file=str(rows_file))
    check_unique_ids(rows, str(rows_file))
    return rows, report
