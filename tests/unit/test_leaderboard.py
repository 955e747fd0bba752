"""Leaderboard gathering: columns, sorting, Prior Sets only when present, schema and placement checks."""

from __future__ import annotations

import json

import polars as pl
import pytest

from rmflow import leaderboard
from rmflow.errors import RmflowError
from rmflow.evaluate.rewardbench import score_report
from rmflow.evaluate.run import SCORES_SCHEMA


def write_scores(root, eval_set, method, base, subsets, credits, sections="synthetic_v1"):
    path = root / eval_set / method / base / "scores.json"
    path.parent.mkdir(parents=True)
    report = score_report(subsets, credits, sections)
    path.write_text(json.dumps({"schema": SCORES_SCHEMA, "eval_set": eval_set, "method": method, "base": base,
                                **report}))
    return path


SUBSETS = ["synth-casing", "synth-hard-casing", "synth-refuse", "synth-math"]


def test_gathers_sorts_and_writes(tmp_path):
    write_scores(tmp_path, "synthetic", "bt", "a", SUBSETS, [1, 0, 1, 0])
    write_scores(tmp_path, "synthetic", "bt", "b", SUBSETS, [1, 1, 1, 1])
    out = {k: tmp_path / f"lb.{k}" for k in ("csv", "md", "subsets")}
    md = leaderboard.main(leaderboard.find_scores(tmp_path), out["csv"], out["md"], out["subsets"])
    board = pl.read_csv(out["csv"])
    assert board["Model"].to_list() == ["b/bt", "a/bt"]
    assert board["Score"].to_list() == pytest.approx([100.0, 50.0])
    assert "Prior Sets" not in board.columns and "Length Corr" not in board.columns
    assert "| synthetic | b/bt | b | bt | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |" in md
    subsets = pl.read_csv(out["subsets"])
    assert subsets.height == 8 and set(subsets["subset"]) == set(SUBSETS)


def test_prior_sets_column_when_present(tmp_path):
    write_scores(tmp_path, "rb", "bt", "a", ["llmbar-natural", "anthropic_hhh"], [1, 0], "rewardbench_v1")
    board, _ = leaderboard.tables(leaderboard.read_scores(leaderboard.find_scores(tmp_path)))
    assert board["Prior Sets"].to_list() == [0.0] and board["Score"].to_list() == [None]


def test_old_schema_or_misplaced_file_is_named(tmp_path):
    path = write_scores(tmp_path, "synthetic", "bt", "a", SUBSETS, [1, 0, 1, 0])
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "schema": "rmflow.scores/0"}))
    with pytest.raises(RmflowError, match=r"synthetic/bt/a/scores.json: field 'schema'"):
        leaderboard.read_scores([path])
    path.write_text(json.dumps({**data, "base": "other"}))
    with pytest.raises(RmflowError, match="sits under synthetic/bt/a"):
        leaderboard.read_scores([path])


def test_empty_root_is_an_error(tmp_path):
    with pytest.raises(RmflowError, match="no <eval set>/<method>/<base>/scores.json"):
        leaderboard.find_scores(tmp_path)
