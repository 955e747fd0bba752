"""The real Snakefile, run by the real snakemake in a temp working directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from helpers import DEFAULT, QUICK, REPO, SNAKEMAKE, snakemake


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wf")
    proc = snakemake(work, "all", "--profile", str(REPO / "profiles/local"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


@pytest.mark.slow
def test_embedded_workflow_end_to_end(finished_run):
    results = finished_run / "results"
    board = pl.read_csv(results / "leaderboard.csv")
    assert sorted(board["Model"]) == sorted(f"{b}/{m}" for b in ("tiny_llama", "tiny_gemma")
                                            for m in ("bt", "pair_pm", "ssrm", "rrm", "odin", "armo", "tree", "prm",
                                                      "orm", "orm_scalar", "judge"))
    assert board.columns == ["Eval Set", "Model", "Base Model", "Method", "Score", "Chat", "Chat Hard", "Safety",
                             "Reasoning", "Length Corr"]
    corr = dict(zip(board["Model"], board["Length Corr"]))
    assert corr["tiny_llama/pair_pm"] is None and -1 <= corr["tiny_llama/odin"] <= 1
    assert board["Score"].to_list() == sorted(board["Score"].to_list(), reverse=True)
    for row in board.iter_rows(named=True):
        scores = json.loads((results / f"eval/synthetic/{row['Method']}/{row['Base Model']}/scores.json").read_text())
        assert row["Score"] == pytest.approx(100 * scores["score"])
        assert row["Chat Hard"] == pytest.approx(100 * scores["sections"]["Chat Hard"])
    md = (results / "leaderboard.md").read_text()
    assert md.startswith("| Eval Set | Model |") and "tiny_llama/bt" in md
    # every rule logged and benchmarked; models in HF layout
    assert (results / "logs/train/bt/tiny_llama.log").read_text().count("step ") >= 1
    assert (results / "benchmarks/train/bt/tiny_gemma.tsv").exists()
    assert (results / "models/bt/tiny_gemma/model.safetensors").exists()
    report = json.loads((results / "data/prepared/synthetic.report.json").read_text())
    assert report["rows_kept"] == 24 * 12 and report["rows_dropped_invalid"] == 0


@pytest.mark.slow
def test_pairwise_methods_in_the_workflow(finished_run):
    results = finished_run / "results"
    for method in ("pair_pm", "ssrm", "rrm"):
        scores = json.loads((results / f"eval/synthetic/{method}/tiny_llama/scores.json").read_text())
        assert scores["kind"] == "pairwise" and 0 <= scores["method_stats"]["position_bias"] <= 1
        examples = pl.read_parquet(results / f"eval/synthetic/{method}/tiny_llama/examples.parquet")
        assert {"p_chosen", "p_order1", "p_order2"} <= set(examples.columns)
    assert "mean_tie_mass" in json.loads((results / "eval/synthetic/rrm/tiny_gemma/scores.json").read_text())[
        "method_stats"]
    rrm = json.loads((results / "data/transformed/rrm/tiny_llama.report.json").read_text())
    assert rrm["non_neutral_rows"] == 8 * 288 and rrm["neutral_rows"] == 6 * 288 and rrm["original_rows"] == 288
    report = json.loads((results / "ssrm/tiny_llama/report.json").read_text())
    assert [it["iteration"] for it in report["iterations"]] == [0, 1, 2]
    for it in report["iterations"][:2]:
        assert it["kept_rows"] <= it["pool_rows"] and "kept_pseudo_label_accuracy" in it
        assert 0 <= it["eval_accuracy"] <= 1
    # the shards really are separate jobs
    assert len(list((results / "ssrm/tiny_llama/iter1/labels").glob("shard*.parquet"))) == 2


@pytest.mark.slow
def test_armo_tree_and_odin_in_the_workflow(finished_run):
    results = finished_run / "results"
    stage1 = json.loads((results / "armo/tiny_llama/stage1/stage1.json").read_text())
    assert stage1["backbone"] == "results/models/bt/tiny_llama"
    assert (results / "armo/tiny_llama/model/armo_head.safetensors").exists()
    assert (results / "tree/tiny_gemma/model/tree_rules.txt").read_text().strip()
    odin = json.loads((results / "eval/synthetic/odin/tiny_llama/scores.json").read_text())
    assert odin["kind"] == "scalar" and odin["length_correlation"] is not None
    conversation = finished_run / "conversation.json"
    conversation.write_text(json.dumps([{"role": "user", "content": "Say hi."},
                                        {"role": "assistant", "content": "Hi!"}]))
    proc = subprocess.run([sys.executable, "-m", "rmflow.cli", "explain", "--model-dir",
                           str(results / "armo/tiny_llama/model"), "--conversation", str(conversation),
                           "--top-k", "3"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("score ") and len(proc.stdout.strip().splitlines()) == 5


@pytest.mark.slow
def test_best_of_n_table_and_plot(finished_run):
    results = finished_run / "results"
    table = pl.read_csv(results / "bestofn.csv")
    scalar = {"bt", "odin", "armo", "prm", "orm", "orm_scalar"}
    assert set(table["method"]) == scalar and sorted(set(table["n"])) == [1, 2, 4, 8]
    assert table.height == len(scalar) * 2 * 4
    assert (results / "bestofn.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    prm = json.loads((results / "bestofn/prm/tiny_llama.json").read_text())
    assert prm["step_accuracy"] is not None and prm["method_stats"]["aggregation"] == "mean"
    assert json.loads((results / "bestofn/orm/tiny_llama.json").read_text())["step_accuracy"] is None
    scores = json.loads((results / "eval/synthetic/prm/tiny_gemma/scores.json").read_text())
    assert scores["method_stats"] == {"aggregation": "mean"}


@pytest.mark.slow
def test_rank_rule_writes_dpo_pairs(finished_run):
    rank = finished_run / "results/rank/bt/tiny_llama"
    stats = json.loads((rank / "stats.json").read_text())
    assert stats["prompts"] == 6 and stats["dpo_pairs"] + stats["no_pair"] == 6
    assert stats["forwards"] == 6 * 8  # a scalar RM scores every response once
    pairs = [json.loads(line) for line in (rank / "dpo_pairs.jsonl").read_text().splitlines()]
    assert all(p["chosen"][0] == p["rejected"][0] for p in pairs)


@pytest.mark.slow
def test_leaderboard_regenerates_from_per_run_files(finished_run):
    results = finished_run / "results"
    before = (results / "leaderboard.csv").read_bytes()
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard_subsets.csv"):
        (results / name).unlink()
    proc = snakemake(finished_run, "all", "--cores", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "leaderboard" in proc.stderr and "train_cpu" not in proc.stderr
    assert (results / "leaderboard.csv").read_bytes() == before
    again = snakemake(finished_run, "all", "--cores", "1")
    assert "Nothing to be done" in again.stdout + again.stderr


def overlay(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BAD_CONFIGS = {
    "unknown_key": ({"train": {"learning_rate": 0.1}}, "unknown config key 'train.learning_rate'"),
    "unknown_method": ({"run": {"methods": ["bt", "magic_rm"]}}, "unknown method 'magic_rm'"),
    "tree_without_armo": ({"run": {"methods": ["bt", "tree"]}},
                          "method 'tree' reads the outputs of 'armo', which is not in run.methods"),
    "missing_base_path": ({"base_models": {"mine": {"model": "./models/missing"}},
                           "run": {"base_models": ["mine"]}},
                          "base_models.mine.model': base model path './models/missing' does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_stops_before_any_job(tmp_path, case):
    data, expected = BAD_CONFIGS[case]
    work = tmp_path / "work"
    work.mkdir()
    proc = snakemake(work, "all", "--cores", "1", configs=(DEFAULT, QUICK, overlay(tmp_path, data)), timeout=120)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "bad.yaml" in proc.stderr
    if case == "unknown_key":  # names the file that holds the key, not every layered config
        assert "config/config.yaml" not in proc.stderr.split("unknown config key")[0].splitlines()[-1]
    assert not (work / "results").exists()


def test_paper_config_dry_runs_on_slurm_profile_with_resources(tmp_path):
    proc = snakemake(tmp_path, "all", "-n", "--profile", str(REPO / "profiles/slurm"),
                     configs=(DEFAULT, REPO / "config/paper.yaml"), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "train_a100_80g" in out and "train_a40_48g" in out
    assert "gres=gpu:a100:4" in out and "gres=gpu:a40:4" in out and "gres=gpu:1" in out
    assert "slurm_partition=gpu-a100" in out


def test_lint_is_clean():
    proc = subprocess.run([*SNAKEMAKE, "--lint", "--snakefile", str(REPO / "Snakefile")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
