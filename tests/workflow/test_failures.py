"""A run in which a job fails still ends in a leaderboard (workflow/rules/leaderboard.smk's onerror handler,
rmflow.plan.failures): the tables, figures and best-of-N table from every file that exists, and
leaderboard_missing.csv naming the failed job, its log and its last error line. The next run, after the fix, makes
the missing score and rebuilds the tables through the normal rules."""

from __future__ import annotations

import os
import shutil

import polars as pl
import pytest
import yaml

from helpers import DEFAULT, QUICK, snakemake

pytestmark = pytest.mark.slow


def test_a_failed_evaluation_leaves_the_other_rows_and_the_missing_list_and_the_rerun_fills_it(tmp_path):
    broken = tmp_path / "broken"
    layer = tmp_path / "layer.yaml"
    # one trained model, and a released model whose weights file is cut short (an interrupted download)
    layer.write_text(yaml.safe_dump({
        "run": {"methods": ["bt"], "base_models": ["tiny_llama"], "eval_sets": ["synthetic"],
                "reward_models": ["broken"]},
        "reward_models": {"broken": {"model": str(broken), "max_length": 128}}, "rank": {"data": None}}))
    work = tmp_path / "work"
    work.mkdir()

    def run():
        return snakemake(work, "all", "--cores", "2", "--keep-going", configs=(DEFAULT, QUICK, layer), timeout=900)

    # the first run trains bt; the broken model is a truncated copy of it, so its scores are known once fixed
    work_results = work / "results"
    first = snakemake(work, "results/models/bt/tiny_llama", "--cores", "2", configs=(DEFAULT, QUICK, layer),
                      timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    shutil.copytree(work_results / "models/bt/tiny_llama", broken)
    weights = broken / "model.safetensors"
    whole = weights.read_bytes()
    weights.write_bytes(whole[: len(whole) // 2])

    failed = run()
    assert failed.returncode != 0
    assert "the leaderboard was gathered from the scores that exist" in failed.stderr, failed.stderr[-3000:]
    board = pl.read_csv(work_results / "leaderboard.csv")
    assert board["Model"].to_list() == ["tiny_llama/bt"]
    missing = pl.read_csv(work_results / "leaderboard_missing.csv").to_dicts()
    assert len(missing) == 1, missing
    row = missing[0]
    assert (row["benchmark"], row["eval_set"], row["method"], row["base"]) == \
        ("rewardbench_v1", "synthetic", "external", "broken")
    assert row["failed_rule"] == "evaluate" and "base=broken" in row["failed_job"]
    assert row["log"] == "results/logs/evaluate/synthetic/external/broken.log" and (work / row["log"]).is_file()
    assert "model.safetensors" in row["error"] and "cut short" in row["error"], row["error"]
    markdown = (work_results / "leaderboard.md").read_text()
    assert markdown.startswith("**1 of 3 planned rows have no score**") and "leaderboard_missing.csv" in markdown
    for name in ("leaderboard.tex", "leaderboard_subsets.csv", "pairwise_significance.csv",
                 "leaderboard_published.csv", "plots/sections_ci.png", "plots/train_loss.png", "bestofn.csv"):
        assert (work_results / name).is_file(), name

    weights.write_bytes(whole)  # the fix
    fixed = run()
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert "localrule leaderboard:" in fixed.stdout + fixed.stderr  # rebuilt by the rule, not the handler
    assert pl.read_csv(work_results / "leaderboard_missing.csv").height == 0
    board = pl.read_csv(work_results / "leaderboard.csv")
    assert sorted(board["Model"].to_list()) == ["broken (external)", "tiny_llama/bt"]
    # the fixed copy is the same model: the same score, so both rows come from the same weights
    assert board["Score"][0] == board["Score"][1]
    assert not (work_results / "leaderboard.md").read_text().startswith("**")
    assert os.path.exists(work_results / "bestofn.csv")
