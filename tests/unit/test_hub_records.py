"""Every output made from the hub records the commit it came from: a base named only by its hub id, loaded offline
from a local Hugging Face cache through rmflow's normal loading code, trains, is evaluated and gathered; its
rmflow_run.json, metrics.json, scores.json and leaderboard_sources.csv cite the commit."""

from __future__ import annotations

import csv
import json
import os

import pytest

from helpers import hub_cache, run_cli, spec_for

BASE_ID = "rehearsal/tiny-llama-instruct"


@pytest.mark.slow
def test_the_hub_commit_of_a_base_is_recorded_from_training_to_the_leaderboard(tmp_path, tiny_base, synthetic):
    from rmflow.data.prepare import write_pairs

    commit = hub_cache(tmp_path / "hub", BASE_ID, tiny_base)
    write_pairs(synthetic["train"][:16], tmp_path / "pairs.parquet")
    data_commit = "c" * 40  # a prepared hub data set's report names its commit (prepare-data writes it)
    (tmp_path / "pairs.report.json").write_text(json.dumps(
        {"source": "org/prefs", "hub": [{"id": "org/prefs", "revision": "main", "commit": data_commit}]}))
    spec = tmp_path / "spec.json"
    spec.write_text(spec_for("bt", BASE_ID, tmp_path / "pairs.parquet", max_steps=1, per_device_batch=4, grad_accum=1,
                             max_length=64, test_defaults=False).to_json())
    os.environ["HF_HUB_CACHE"] = str(tmp_path / "hub")  # run_cli's subprocesses inherit it (offline: conftest)
    try:
        proc = run_cli("train", "--spec", str(spec), "--out", str(tmp_path / "model"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        expected = {"base": {"id": BASE_ID, "revision": "main", "commit": commit},
                    "train_data": [{"id": "org/prefs", "revision": "main", "commit": data_commit}]}
        assert json.loads((tmp_path / "model/rmflow_run.json").read_text())["hub"] == expected
        assert json.loads((tmp_path / "model/metrics.json").read_text())["hub"] == expected
        eval_rows = tmp_path / "eval.jsonl"
        eval_rows.write_text("".join(json.dumps(r) + "\n" for r in synthetic["test"][:8]))
        proc = run_cli("evaluate", "--model-dir", str(tmp_path / "model"), "--method", "bt", "--data", str(eval_rows),
                       "--sections", "synthetic_v1", "--eval-set", "synthetic", "--base", "tiny", "--out-dir",
                       str(tmp_path / "eval/synthetic/bt/tiny"))
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        del os.environ["HF_HUB_CACHE"]
    scores = json.loads((tmp_path / "eval/synthetic/bt/tiny/scores.json").read_text())
    assert scores["hub"] == {"model": None, "trained_from": expected, "eval_data": None}  # local eval rows
    proc = run_cli("leaderboard", "--scores", str(tmp_path / "eval/synthetic/bt/tiny/scores.json"),
                   "--csv", str(tmp_path / "b.csv"),
                   "--md", str(tmp_path / "b.md"), "--subsets", str(tmp_path / "s.csv"), "--sources",
                   str(tmp_path / "sources.csv"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [row] = list(csv.DictReader((tmp_path / "sources.csv").open()))
    assert (row["base_model"], row["base_commit"]) == (f"{BASE_ID}@main", commit)
    assert (row["train_data"], row["train_data_commits"], row["model"]) == ("org/prefs@main", data_commit, "")


def test_resolved_commit_reads_a_full_hash_the_cache_or_nothing(tmp_path, monkeypatch, tiny_base):
    import huggingface_hub

    from rmflow.hub import hub_record, resolved_commit

    commit = hub_cache(tmp_path / "hub", "org/data", tiny_base, repo_type="dataset")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolved_commit("org/data", None, "dataset") == commit
    assert resolved_commit("org/data", "a" * 40, "dataset") == "a" * 40
    assert resolved_commit("org/absent", "v1.0", "dataset") is None  # offline (conftest), not in the cache
    assert resolved_commit(str(tmp_path), None) is None and hub_record(str(tmp_path)) is None


def test_a_run_continuing_a_trained_model_keeps_its_hub_base(tmp_path):
    """SSRM's round k starts from round k - 1's directory: the base commit round 0 recorded carries over."""
    from rmflow.train.save import hub_inputs

    previous = tmp_path / "iter0"
    previous.mkdir()
    base = {"id": BASE_ID, "revision": "main", "commit": "b" * 40}
    (previous / "rmflow_run.json").write_text(json.dumps({"hub": {"base": base}}))
    spec = spec_for("ssrm", BASE_ID, tmp_path / "absent.parquet", test_defaults=False)
    assert hub_inputs(spec, {"initialised_from": str(previous)}) == {"base": base}
    assert hub_inputs(spec, {"initialised_from": str(tmp_path)}) == {}  # a local directory rmflow did not train


@pytest.mark.slow
def test_a_declared_released_model_records_its_hub_commit_in_its_run_and_its_scores(tmp_path, tiny_base, synthetic):
    """Found by the rehearsal: a released model's declaration (setup_untrained) and its scores.json recorded no hub
    model, so the leaderboard could not cite which weights a published row scored."""

    repo = "rehearsal/tiny-released-rm"
    commit = hub_cache(tmp_path / "hub", repo, tiny_base)
    options = {"model": repo, "scorer": "classifier"}
    spec = tmp_path / "spec.json"
    spec.write_text(spec_for("external", repo, "", base="released", options=options, test_defaults=False).to_json())
    eval_rows = tmp_path / "eval.jsonl"
    eval_rows.write_text("".join(json.dumps(r) + "\n" for r in synthetic["test"][:6]))
    os.environ["HF_HUB_CACHE"] = str(tmp_path / "hub")
    try:
        proc = run_cli("train", "--spec", str(spec), "--out", str(tmp_path / "declared"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        proc = run_cli("evaluate", "--model-dir", str(tmp_path / "declared"), "--method", "external", "--data",
                       str(eval_rows), "--sections", "synthetic_v1", "--eval-set", "synthetic", "--base", "released",
                       "--out-dir", str(tmp_path / "eval"))
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        del os.environ["HF_HUB_CACHE"]
    record = {"id": repo, "revision": "main", "commit": commit}
    assert json.loads((tmp_path / "declared/rmflow_run.json").read_text())["hub"] == {"model": record}
    assert json.loads((tmp_path / "eval/scores.json").read_text())["hub"]["model"] == record
