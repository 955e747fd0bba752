"""``rmflow evaluate`` end to end on a trained tiny model: synthetic suite and real RewardBench rows."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from safetensors.torch import load_file, save_file

from helpers import SHARED_DATA, run_cli, spec_for, write_jsonl


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


# ---- the leaderboard without an examples file ------------------------------------------------------------------
@pytest.mark.slow
def test_leaderboard_refuses_a_missing_examples_file(tmp_path, trained_bt, synthetic):
    from helpers import write_jsonl

    data = write_jsonl(tmp_path / "t.jsonl", synthetic["test"])
    out = tmp_path / "eval/t/bt/tiny"
    proc = run_cli("evaluate", "--model-dir", str(trained_bt), "--method", "bt", "--data", str(data), "--sections",
                   "synthetic_v1", "--eval-set", "t", "--base", "tiny", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-1000:]
    (out / "examples.parquet").unlink()
    board = tmp_path / "board.csv"
    proc = run_cli("leaderboard", "--root", str(tmp_path / "eval"), "--csv", str(board), "--md", str(tmp_path / "b.md"),
                   "--subsets", str(tmp_path / "s.csv"))
    assert proc.returncode == 2 and "examples.parquet: examples.parquet is missing beside scores.json" in proc.stderr
    assert not board.exists()


# ---- 1. evaluate's credits follow the scores: a separable model beats chance, its inverted copy does not ----------
@pytest.fixture(scope="module")
def separable(tmp_path_factory, synthetic, tiny_base):
    """BT trained on pairs a tiny model can separate (a polite full answer vs a curt refusal), and held-out rows."""
    from rmflow.data.prepare import write_pairs
    from rmflow.methods import bt

    work = tmp_path_factory.mktemp("separable")
    prompts = [r["chosen"][0]["content"] for r in synthetic["train"]]
    good, bad = "Sure, here is a complete and careful answer.", "No."

    def rows(ps):
        return [{"chosen": [{"role": "user", "content": p}, {"role": "assistant", "content": good}],
                 "rejected": [{"role": "user", "content": p}, {"role": "assistant", "content": bad}]} for p in ps]

    write_pairs(rows(prompts[:96]), work / "train.parquet")
    spec = spec_for("bt", tiny_base, work / "train.parquet", lr=1e-2, max_steps=12, per_device_batch=16, max_length=96)
    bt.train(spec, str(work / "model"))
    test = [{"id": str(i), "subset": "synth-refuse", "prompt": p, "chosen": good, "rejected": bad}
            for i, p in enumerate(prompts[96:136])]
    write_jsonl(work / "test.jsonl", test)
    inverted = work / "inverted"
    shutil.copytree(work / "model", inverted)
    weights = load_file(str(inverted / "model.safetensors"))
    weights["score.weight"] = -weights["score.weight"]  # every reward negated
    save_file(weights, str(inverted / "model.safetensors"), metadata={"format": "pt"})
    return work


def _scores(model, data, out):
    proc = run_cli("evaluate", "--model-dir", str(model), "--method", "bt", "--data", str(data), "--sections",
                   "synthetic_v1", "--eval-set", "t", "--base", "tiny", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "scores.json").read_text()), pl.read_parquet(out / "examples.parquet")


@pytest.mark.slow
def test_credit_is_one_exactly_where_chosen_outscores_rejected(separable, tmp_path):
    _, examples = _scores(separable / "model", separable / "test.jsonl", tmp_path / "a")
    by_hand = [1.0 if c > r else 0.0 for c, r in zip(examples["score_chosen"], examples["score_rejected"])]
    assert examples["correct"].to_list() == by_hand


@pytest.mark.slow
def test_separable_pairs_score_far_above_chance_and_the_inverted_model_far_below(separable, tmp_path):
    good, _ = _scores(separable / "model", separable / "test.jsonl", tmp_path / "good")
    flipped, _ = _scores(separable / "inverted", separable / "test.jsonl", tmp_path / "flipped")
    assert good["subsets"]["synth-refuse"]["accuracy"] >= 0.9
    assert flipped["subsets"]["synth-refuse"]["accuracy"] <= 0.1
