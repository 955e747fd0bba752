"""What a run planned but has no score for: ``leaderboard_missing.csv``, a row per planned (benchmark, eval set,
method, base) whose output does not exist, with the job that failed upstream of it, that job's log and the log's
last error line; and the one line ``leaderboard.md`` gains when rows are missing.

A multi-day run with ``keep-going`` still ends in tables (the workflow's ``onerror`` handler gathers what exists,
rmflow.plan.failures); this file is where its gaps are listed. A complete run writes it with its header alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from rmflow.io import atomic_path

COLUMNS = ("benchmark", "eval_set", "method", "base", "output", "failed_rule", "failed_job", "log", "error")
# what a failing job's log says last that is worth a reader's eye: rmflow's own one-line errors, Python's exception
# line, the kernel's and SLURM's kills, a CUDA or NCCL failure
_ERROR = re.compile(r"(^rmflow: |error|exception|killed|oom|out of memory|cancelled|terminate|abort|traceback|"
                    r"time limit)", re.IGNORECASE)


def last_error_line(log: str | Path | None, tail_bytes: int = 64_000) -> str:
    """The last line of ``log`` that reads as an error (else its last line); '' when there is no log."""
    if not log or not Path(log).is_file():
        return ""
    with open(log, "rb") as handle:
        handle.seek(max(0, Path(log).stat().st_size - tail_bytes))
        lines = [line.strip() for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()]
    flagged = [line for line in lines if _ERROR.search(line)]
    return ((flagged or lines or [""])[-1])[:500]


def missing_rows(planned: list[dict], failures: dict[str, dict]) -> list[dict]:
    """The planned rows (each with benchmark, eval_set, method, base, output) whose output does not exist, each
    with the failure found upstream of it (rule, job, log; the log's last error line read here)."""
    rows = []
    for entry in planned:
        if Path(entry["output"]).exists():
            continue
        failure = failures.get(entry["output"]) or {}
        rows.append({**{k: entry[k] for k in COLUMNS[:5]}, "failed_rule": failure.get("rule", ""),
                     "failed_job": failure.get("job", ""), "log": failure.get("log", ""),
                     "error": failure.get("error") or last_error_line(failure.get("log"))})
    return rows


def from_manifest(manifest: str) -> tuple[list[str], list[dict], int]:
    """From a gather manifest (rmflow.plan.failures): the planned score files that exist, the rows of every planned
    output that does not (scores and best-of-N files), and how many outputs were planned."""
    import json

    content = json.loads(Path(manifest).read_text(encoding="utf-8"))
    absent = missing_rows(content["planned"], content["failures"])
    gone = {row["output"] for row in absent}
    files = [p["output"] for p in content["planned"] if p["benchmark"] != "bestofn" and p["output"] not in gone]
    return files, absent, len(content["planned"])


def write_missing(rows: list[dict], out_csv: str) -> None:
    import polars as pl

    frame = pl.DataFrame(rows, schema={c: pl.String for c in COLUMNS})
    with atomic_path(out_csv) as tmp:
        frame.write_csv(tmp)


def note(missing: int, planned: int, out_csv: str) -> str:
    """The line leaderboard.md starts with when planned rows have no score."""
    return (f"**{missing} of {planned} planned rows have no score** (a job failed or did not run): they are listed, "
            f"with the failed job and its log, in `{out_csv}`; rerunning the workflow after a fix fills them in.\n")
