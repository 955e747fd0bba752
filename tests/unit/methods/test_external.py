"""External reward models: any model (hub id or directory) scored by rmflow evaluate's rules, beside trained ones."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from helpers import run_cli, spec_for, write_jsonl
from rmflow.errors import RmflowError


@pytest.fixture(scope="module")
def eval_file(tmp_path_factory, synthetic):
    path = tmp_path_factory.mktemp("eval") / "test.jsonl"
    return write_jsonl(path, synthetic["test"])


@pytest.fixture(scope="module")
def odin_model(tmp_path_factory, synthetic, tiny_base):
    from rmflow.data.prepare import write_pairs
    from rmflow.methods import odin

    work = tmp_path_factory.mktemp("odin")
    write_pairs(synthetic["train"], work / "train.parquet")
    spec = spec_for("odin", tiny_base, work / "train.parquet", max_steps=3)
    odin.train(spec, str(work / "model"))
    return work / "model"


def _evaluate(out, eval_file, *args):
    proc = run_cli("evaluate", "--data", str(eval_file), "--sections", "synthetic_v1", "--eval-set", "synthetic",
                   "--out-dir", str(out), *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "scores.json").read_text()), pl.read_parquet(out / "examples.parquet")


@pytest.mark.slow
def test_a_trained_model_copied_elsewhere_scores_exactly_as_its_trained_row(tmp_path, trained_bt, eval_file):
    copy = tmp_path / "elsewhere/my-rm"
    shutil.copytree(trained_bt, copy)
    (copy / "rmflow_run.json").unlink()  # an outside model carries no rmflow records
    (copy / "metrics.json").unlink()
    trained, trained_rows = _evaluate(tmp_path / "trained", eval_file, "--model-dir", str(trained_bt), "--method",
                                      "bt", "--base", "tiny")
    external, external_rows = _evaluate(tmp_path / "external", eval_file, "--external", str(copy), "--max-length",
                                        "128", "--base", "my-rm")
    assert external["method"] == "external" and external["kind"] == "scalar" and external["model_dir"] == str(copy)
    assert external["sections"] == trained["sections"] and external["score"] == trained["score"]
    assert external_rows["score_chosen"].to_list() == trained_rows["score_chosen"].to_list()


@pytest.mark.slow
def test_a_classifier_with_several_logits_uses_the_declared_one(tmp_path, odin_model, eval_file):
    from rmflow.methods import external, odin

    quality = odin.load_scorer(str(odin_model)).score_pairs  # ODIN's reward is its quality head, logit 1
    rows = [{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": a}],
             "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": b}]}
            for a, b in (("Hello there!", "Go away."), ("Hi.", "Hello, how can I help you today?"))]
    config = external.Config(model=str(odin_model), logit=1, max_length=128)
    declared, ours = external.scorer_for(config).score_pairs(rows), quality(rows)
    for side in ("score_chosen", "score_rejected"):
        assert declared[side] == pytest.approx(ours[side], abs=1e-6)
    length_head = external.scorer_for(external.Config(model=str(odin_model), logit=0, max_length=128))
    assert length_head.score_pairs(rows)["score_chosen"] != pytest.approx(quality(rows)["score_chosen"])
    with pytest.raises(RmflowError, match="logit 2 asked for, but .* has 2 output"):
        external.scorer_for(external.Config(model=str(odin_model), logit=2))
    scores, _ = _evaluate(tmp_path / "odin", eval_file, "--external", str(odin_model), "--logit", "1",
                          "--max-length", "128", "--base", "odin-quality")
    ours, _ = _evaluate(tmp_path / "odin-trained", eval_file, "--model-dir", str(odin_model), "--method", "odin",
                        "--base", "tiny")
    assert scores["score"] == ours["score"]


def test_external_declarations_are_checked_and_never_trained():
    import copy

    import yaml

    from helpers import DEFAULT, REPO
    from rmflow.config import validate_config
    from rmflow.plan import Plan

    schema = REPO / "workflow/schemas/config.schema.yaml"
    base = yaml.safe_load(DEFAULT.read_text())
    config = copy.deepcopy(base)
    config["reward_models"] = {"pm": {"model": "some-org/pm", "scorer": "pairwise_pm"}}
    config["run"]["reward_models"] = ["pm"]
    plan = Plan(validate_config(config, schema))
    assert "results/eval/synthetic/external/pm/scores.json" in plan.score_files()
    assert ("synthetic_v2", "pm (external)") in plan.skipped_evaluations()  # pairwise: not on RewardBench 2
    assert plan.run_spec("external", "pm")["options"]["trust_remote_code"] is False
    config["reward_models"]["pm"]["scorer"] = "judge_endpoint"
    with pytest.raises(RmflowError, match="reward_models.pm.*a judge_endpoint needs 'endpoint'"):
        Plan(validate_config(copy.deepcopy(config), schema))
    config = copy.deepcopy(base)
    config["run"]["methods"] = ["bt", "external"]
    with pytest.raises(RmflowError, match="'external' is not a training method"):
        Plan(validate_config(config, schema))
