"""``rmflow evaluate`` end to end on a trained tiny model: synthetic suite and real RewardBench rows."""

from __future__ import annotations

import json

import polars as pl
import pytest

from helpers import SHARED_DATA, run_cli, write_jsonl


def evaluate(model, data, out, sections="synthetic_v1", *extra):
    return run_cli("evaluate", "--model-dir", str(model), "--method", "bt", "--data", str(data), "--sections",
                   sections, "--eval-set", "test", "--base", "tiny", "--out-dir", str(out), *extra)


@pytest.mark.slow
def test_evaluate_synthetic(tmp_path, trained_bt, synthetic):
    data = write_jsonl(tmp_path / "test.jsonl", synthetic["test"])
    proc = evaluate(trained_bt, data, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    scores = json.loads((tmp_path / "out/scores.json").read_text())
    examples = pl.read_parquet(tmp_path / "out/examples.parquet")
    assert examples.columns == ["id", "subset", "score_chosen", "score_rejected", "len_chosen", "len_rejected",
                                "correct"]
    assert examples.height == len(synthetic["test"]) == scores["n_examples"]
    assert set(scores["sections"]) == {"Chat", "Chat Hard", "Safety", "Reasoning"}
    assert scores["tie_rule"] == "official" and "mean of" in scores["formula"]
    # the file's accuracy is exactly the mean credit of its examples
    by_subset = examples.group_by("subset").agg(pl.col("correct").mean()).rows()
    for subset, acc in by_subset:
        assert scores["subsets"][subset]["accuracy"] == pytest.approx(acc)


@pytest.mark.slow
def test_evaluate_bad_row_names_row_and_writes_nothing(tmp_path, trained_bt):
    data = write_jsonl(tmp_path / "rb.jsonl", [{"id": 1, "subset": "x", "prompt": "p", "chosen": "a",
                                                "rejected": "b"}, {"id": 2, "subset": "x", "prompt": "p",
                                                                   "chosen": "a"}])
    proc = evaluate(trained_bt, data, tmp_path / "out")
    assert proc.returncode == 2 and "rb.jsonl:2: field 'rejected': is missing" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED_DATA / "rewardbench-partial").is_dir(),
                    reason="../shared/data/rewardbench-partial is absent (point RMFLOW_SHARED_DATA at shared/data)")
@pytest.mark.slow
def test_evaluate_real_rewardbench_rows(tmp_path, trained_bt):
    """Real LLMBar, HumanEvalPack and HHH rows: Chat Hard, Reasoning and Prior Sets present, no overall Score."""
    src = SHARED_DATA / "rewardbench-partial"
    sample = tmp_path / "rb"
    sample.mkdir()
    for f in sorted(src.glob("*.jsonl")):  # 6 rows per subset keep the test quick
        (sample / f.name).write_text("".join(f.read_text().splitlines(keepends=True)[:6]))
    proc = evaluate(trained_bt, sample, tmp_path / "out", "rewardbench_v1", "--batch-size", "4")
    assert proc.returncode == 0, proc.stderr
    scores = json.loads((tmp_path / "out/scores.json").read_text())
    assert scores["sections"]["Chat"] is None and scores["sections"]["Safety"] is None
    assert scores["sections"]["Chat Hard"] is not None and scores["sections"]["Reasoning"] is not None
    assert scores["prior_sets"] == scores["subsets"]["anthropic_hhh"]["accuracy"]
    assert scores["score"] is None and "no overall score" in scores["formula"]
    assert scores["n_examples"] == 6 * 12
