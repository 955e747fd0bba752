"""leaderboard_missing.csv's rows (rmflow.leaderboard.missing): a planned output without its file gets a row with
the failed job, its log and the log's last error line; an existing one gets none."""

from __future__ import annotations

import json

import polars as pl

from rmflow.leaderboard import missing


def test_the_last_error_line_of_a_log_is_the_one_that_reads_as_an_error(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("loading\nrmflow evaluate: error: field 'model': cut short\nwrote nothing\n\n")
    assert missing.last_error_line(log) == "rmflow evaluate: error: field 'model': cut short"
    log.write_text("step 1\nslurmstepd: error: *** JOB 7 CANCELLED DUE TO TIME LIMIT ***\n")
    assert "TIME LIMIT" in missing.last_error_line(log)
    log.write_text("step 1\nstep 2\n")  # nothing flagged: the log's last line
    assert missing.last_error_line(log) == "step 2"
    assert missing.last_error_line(tmp_path / "absent.log") == "" and missing.last_error_line(None) == ""


def test_missing_rows_name_the_failed_job_and_the_manifest_splits_what_exists(tmp_path):
    present, absent = tmp_path / "a/scores.json", tmp_path / "b/scores.json"
    present.parent.mkdir()
    present.write_text("{}")
    log = tmp_path / "b.log"
    log.write_text("Traceback (most recent call last):\nOSError: [Errno 28] No space left on device\n")
    planned = [{"benchmark": "rewardbench_v1", "eval_set": "rb", "method": "bt", "base": "x", "output": str(present)},
               {"benchmark": "rewardbench_v1", "eval_set": "rb", "method": "bt", "base": "y", "output": str(absent)},
               {"benchmark": "bestofn", "eval_set": "gsm8k", "method": "prm", "base": "y",
                "output": str(tmp_path / "bon.json")}]
    failures = {str(absent): {"rule": "evaluate", "job": "evaluate[base=y]", "log": str(log)},
                str(tmp_path / "bon.json"): {"rule": "train_cpu", "job": "train_cpu[method=prm]", "log": "",
                                             "error": "did not run: the run ended first"}}
    manifest = tmp_path / "planned.json"
    manifest.write_text(json.dumps({"planned": planned, "failures": failures}))
    files, rows, count = missing.from_manifest(str(manifest))
    assert files == [str(present)] and count == 3
    assert [(r["base"], r["failed_rule"]) for r in rows] == [("y", "evaluate"), ("y", "train_cpu")]
    assert rows[0]["error"] == "OSError: [Errno 28] No space left on device"
    assert rows[1]["error"] == "did not run: the run ended first"
    out = tmp_path / "missing.csv"
    missing.write_missing(rows, str(out))
    assert pl.read_csv(out).columns == list(missing.COLUMNS) and pl.read_csv(out).height == 2
    missing.write_missing([], str(out))  # a complete run: the header alone
    assert pl.read_csv(out).height == 0 and pl.read_csv(out).columns == list(missing.COLUMNS)
    assert missing.note(2, 3, "results/leaderboard_missing.csv").startswith("**2 of 3 planned rows have no score**")
