"""Config validation and the run plan: unknown keys, unknown methods and missing paths fail before any job."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from rmflow.config import load_config, validate_config
from rmflow.errors import RmflowError
from rmflow.plan import Plan

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
DEFAULT = yaml.safe_load((REPO / "config/config.yaml").read_text())


def config(**changes):
    data = copy.deepcopy(DEFAULT)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return data


def test_default_and_paper_configs_validate_and_plan():
    plan = Plan(load_config(REPO / "config/config.yaml", schema_path=SCHEMA))
    assert plan.methods == ["bt", "pair_pm", "ssrm", "rrm", "odin", "armo", "tree", "prm", "orm", "orm_scalar",
                            "judge"] and plan.bases == ["tiny_llama", "tiny_gemma"]
    assert plan.model_dir("ssrm", "tiny_llama") == "results/ssrm/tiny_llama/iter2/model"
    assert plan.train_data("rrm", "tiny_gemma") == "results/data/transformed/rrm/tiny_gemma.parquet"
    paper = Plan(load_config(REPO / "config/config.yaml", REPO / "config/paper.yaml", schema_path=SCHEMA))
    assert paper.bases_with_preset("a40_48g") == ["gemma_2b_it"]
    spec = paper.run_spec("bt", "gemma_2b_it")
    assert spec["train"]["lr"] == 1e-5 and spec["train"]["deepspeed"] == "config/deepspeed/zero3.json"
    assert spec["train"]["bf16"] and spec["train"]["max_length"] == 4096 and spec["trust_remote_code"] is False


def test_defaults_are_filled():
    data = config()
    del data["evaluate"]
    validate_config(data, SCHEMA)
    assert data["evaluate"] == {"tie_rule": "official", "batch_size": 16}


def test_unknown_key_named_with_its_path_and_file():
    with pytest.raises(RmflowError) as err:
        validate_config(config(train__learning_rate=1e-3), SCHEMA, ["config/mine.yaml"])
    message = str(err.value)
    assert "config/mine.yaml" in message and "unknown config key 'train.learning_rate'" in message


def test_wrong_type_named():
    with pytest.raises(RmflowError, match="config key 'train.epochs'"):
        validate_config(config(train__epochs="two"), SCHEMA)


def test_unknown_method_lists_the_available_ones():
    data = validate_config(config(run__methods=["bt", "magic_rm"]), SCHEMA)
    with pytest.raises(RmflowError, match=r"run.methods\[1\].*unknown method 'magic_rm' \(available: .*bt"):
        Plan(data, ["config/x.yaml"])


def test_unknown_method_option_is_named():
    data = validate_config(config(methods={"bt": {"options": {"temperature": 2}}}), SCHEMA)
    with pytest.raises(RmflowError, match=r"unknown option\(s\) \['temperature'\] for method 'bt'"):
        Plan(data)


def test_base_model_path_that_does_not_exist():
    data = config()
    data["base_models"]["mine"] = {"model": "./models/not-here"}
    data["run"]["base_models"] = ["mine"]
    with pytest.raises(RmflowError, match=r"base_models.mine.model.*'./models/not-here' does not exist"):
        Plan(validate_config(data, SCHEMA), ["config/x.yaml"])


def test_base_needs_exactly_one_source_and_must_be_defined():
    data = config()
    data["base_models"]["both"] = {"model": "org/id", "tiny": {"family": "llama"}}
    data["run"]["base_models"] = ["both"]
    with pytest.raises(RmflowError, match="exactly one of 'model'"):
        Plan(validate_config(data, SCHEMA))
    with pytest.raises(RmflowError, match="'ghost' is not defined"):
        Plan(validate_config(config(run__base_models=["ghost"]), SCHEMA))


def test_every_scalar_scorer_scores_single_conversations():
    """Best-of-N and rank score responses one by one: each scalar scorer class must offer that."""
    from rmflow.methods import armo
    from rmflow.methods._steps_model import StepScorer
    from rmflow.models.scalar import ScalarScorer

    for cls in (ScalarScorer, StepScorer, armo.ArmoScorer):
        assert callable(getattr(cls, "score_conversations", None)), cls.__name__
