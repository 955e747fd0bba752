"""Config validation and the run plan: unknown keys, unknown methods and missing paths fail before any job."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import yaml

from helpers import REPO
from rmflow.config import load_config, validate_config
from rmflow.errors import RmflowError
from rmflow.plan import Plan

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
    assert plan.methods == DEFAULT["run"]["methods"] and plan.bases == ["tiny_llama", "tiny_gemma"]
    assert plan.model_dir("ssrm", "tiny_llama") == "results/ssrm/tiny_llama/iter2/model"
    assert plan.train_data("rrm", "tiny_gemma") == "results/data/transformed/rrm/tiny_gemma.parquet"
    paper = Plan(load_config(REPO / "config/config.yaml", REPO / "config/paper.yaml", schema_path=SCHEMA))
    assert paper.bases_with_preset("a40_48g") == ["gemma_2b_it"]
    spec = paper.run_spec("bt", "gemma_2b_it")
    assert spec["train"]["lr"] == 1e-5 and spec["train"]["deepspeed"] == "config/deepspeed/zero3.json"
    assert spec["train"]["precision"] == "bf16-mixed" and spec["train"]["max_length"] == 4096
    assert spec["trust_remote_code"] is False


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
    from rmflow.methods.steps.model import StepScorer
    from rmflow.models.scalar import ScalarScorer

    for cls in (ScalarScorer, StepScorer, armo.ArmoScorer):
        assert callable(getattr(cls, "score_conversations", None)), cls.__name__


def _paper_plan() -> Plan:
    return Plan(load_config(REPO / "config/config.yaml", REPO / "config/paper.yaml", schema_path=SCHEMA))


def _readme_recipe() -> dict[str, list[str]]:
    """method -> bases from the README's paper-recipe table."""
    text = (REPO / "README.md").read_text()
    table = text.split("<!-- paper-recipe-table -->")[1].split("<!-- /paper-recipe-table -->")[0]
    rows = [line.split("|")[1:-1] for line in table.strip().splitlines()[2:]]
    return {cells[0].strip(" `"): [b.strip(" `") for b in cells[1].split(",")] for cells in rows}


def test_paper_recipe_plans_exactly_the_readme_tables_method_base_pairs():
    plan = _paper_plan()
    readme = _readme_recipe()
    assert sorted(readme) == sorted(plan.methods)  # all nine seed methods (prm/orm/orm_scalar) + the judge
    assert sorted(plan.pairs) == sorted((m, b) for m, bases in readme.items() for b in bases)
    assert len(plan.pairs) < len(plan.methods) * len(plan.bases), "not the full cross product"


def test_paper_recipe_uses_the_seed_hyperparameters_per_pair():
    plan = _paper_plan()
    assert plan.run_spec("bt", "llama3_8b_instruct")["train"]["lr"] == 2e-6
    assert plan.run_spec("bt", "mistral_7b_instruct")["train"]["lr"] == 5e-6
    pm = plan.run_spec("pair_pm", "gemma2_9b_it")
    assert pm["train"]["warmup_steps"] == 100
    assert pm["train_data"] == "results/data/transformed/pair_pm/gemma2_9b_it.parquet"
    assert plan.dataset_of("pair_pm", "gemma_2b_it") == "pair_pm_mix1"
    assert plan.dataset_of("pair_pm", "llama3_8b_instruct") == "pair_pm_llama3"
    assert plan.method_options("tree", "gemma2_27b_it").backbone == "Skywork/Skywork-Reward-Gemma-2-27B-v0.2"
    assert len(plan.method_options("armo", "llama3_8b_instruct").objectives) == 19
    # the seed's ZeRO-2 at 16 pairs a GPU plans at ~104 GB (rmflow plan): ZeRO-3, 4 x 16 keeps its global batch
    assert plan.run_spec("odin", "gemma2_9b_it")["train"]["deepspeed"] == "config/deepspeed/zero3.json"
    assert plan.run_spec("prm", "llama31_8b_instruct")["options"]["packed_length"] == 8192
    assert not any("synthetic" in d for d in plan.datasets())


def test_a_methods_bases_meet_the_runs_and_an_undefined_or_disjoint_list_is_refused(caplog):
    data = config()
    data["methods"]["pair_pm"]["bases"] = ["tiny_llama", "tiny_mistral"]
    with pytest.raises(RmflowError, match=r"methods.pair_pm.bases.*method 'pair_pm' lists base 'tiny_mistral', which "
                                          r"is not a defined base model \(base_models: tiny_llama, tiny_gemma\)"):
        Plan(validate_config(data, SCHEMA))
    # defined, but this run narrows run.base_models: the pair is dropped (logged), the rest planned
    data = config(run__base_models=["tiny_gemma"])
    data["methods"]["pair_pm"]["bases"] = ["tiny_llama", "tiny_gemma"]
    with caplog.at_level("INFO"):
        plan = Plan(validate_config(data, SCHEMA))
    assert plan.bases_of("pair_pm") == ["tiny_gemma"] and "bases tiny_llama are not in run.base_models" in caplog.text
    data["methods"]["pair_pm"]["bases"] = ["tiny_llama"]
    with pytest.raises(RmflowError, match="method 'pair_pm' lists bases tiny_llama, none of which this run trains"):
        Plan(validate_config(data, SCHEMA))


def test_per_method_bases_fan_out_and_dependencies_need_the_same_base():
    data = config()
    data["methods"]["pair_pm"]["bases"] = {"tiny_gemma": {"train": {"lr": 0.5}}}
    # the judge reads the pair-PM of its own base: judge on tiny_llama now has none
    with pytest.raises(RmflowError, match="method 'judge' on base 'tiny_llama' reads the outputs of 'pair_pm' on that"):
        Plan(validate_config(copy.deepcopy(data), SCHEMA))
    data["methods"]["judge"]["bases"] = ["tiny_gemma"]
    plan = Plan(validate_config(data, SCHEMA))
    assert [b for m, b in plan.pairs if m == "pair_pm"] == ["tiny_gemma"]
    assert plan.run_spec("pair_pm", "tiny_gemma")["train"]["lr"] == 0.5
    assert plan.run_spec("pair_pm", "tiny_gemma")["train"]["epochs"] == 2  # the rest comes from train:
    assert "results/eval/synthetic/pair_pm/tiny_llama/scores.json" not in plan.score_files()
    assert "results/eval/synthetic/pair_pm/tiny_gemma/scores.json" in plan.score_files()


def test_a_data_set_of_the_wrong_kind_is_refused_at_plan_time():
    data = config()
    data["methods"]["prm"]["dataset"] = "synthetic"  # preference pairs, not step-labelled chats
    with pytest.raises(RmflowError, match=r"datasets.synthetic.format.*method 'prm' reads step-labelled "
                                          r"conversations \(kind 'steps'\) from data set 'synthetic', whose format "
                                          r"'standard' gives preference pairs"):
        Plan(validate_config(data, SCHEMA))


# The splits each hub data set of the paper recipe really has, read off its data-set card / file listing
# (huggingface.co/datasets/<id>/tree/main): RLHFlow's Mistral best-of-N sets hold only data/train-*.parquet, the
# Deepseek ones a "test" split; RewardBench's are filtered/raw, RewardBench 2's test. A split the hub lacks stops
# prepare_data in the first wave, before anything trains.
HUB_SPLITS = {
    "RLHFlow/Mistral-GSM8K-Test": {"train"}, "RLHFlow/Mistral-MATH500-Test": {"train"},
    "RLHFlow/Deepseek-GSM8K-Test": {"test"}, "RLHFlow/Deepseek-MATH500-Test": {"test"},
    "allenai/reward-bench": {"filtered", "raw"}, "allenai/reward-bench-2": {"test"},
    # the splits of the other benchmarks (their hub_facts files, with the listings they come from)
    "THU-KEG/RM-Bench": {"train"}, "ScalerLab/JudgeBench": {"gpt", "claude"},
    "lmarena-ai/PPE-Human-Preference-V1": {"test"}, "lmarena-ai/PPE-MATH-Best-of-K": {"train"},
    "Qwen/ProcessBench": {"gsm8k", "math", "olympiadbench", "omnimath"},
}


def test_paper_recipe_reads_splits_the_hub_data_sets_have():
    raw = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    entries = {**raw["datasets"], **raw["eval_sets"]}
    checked = {(name, path): e.get("split", "train") for name, e in entries.items()
               for path in (e["path"] if isinstance(e["path"], list) else [e["path"]]) if path in HUB_SPLITS}
    assert {path for _, path in checked} == set(HUB_SPLITS), "a data set of the table is no longer in paper.yaml"
    wrong = {name: f"{path} has no split '{split}'" for (name, path), splits in checked.items()
             for split in (splits if isinstance(splits, list) else [splits]) if split not in HUB_SPLITS[path]}
    assert not wrong, wrong


def _documented_hyperparameters() -> dict[tuple[str, str], dict]:
    text = (REPO / "docs/paper-recipe.md").read_text()
    table = text.split("<!-- paper-recipe-hyperparameters -->")[1].split("<!-- /paper-recipe-hyperparameters -->")[0]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        method, base, lr, batch, length, max_length, warmup, schedule, precision = \
            [c.strip(" `") for c in line.split("|")[1:-1]]
        per_device, accum, gpus = (int(x) for x in batch.split("=")[1].split("×"))
        rows[(method, base)] = {"lr": float(lr), "global": int(batch.split("=")[0]), "per_device_batch": per_device,
                                "grad_accum": accum, "gpus": gpus, "length": length, "max_length": int(max_length),
                                "warmup": warmup, "lr_schedule": schedule, "precision": precision}
    return rows


def test_every_paper_training_resolves_to_the_documented_hyperparameters():
    """The paper recipe's resolved specs, pair by pair, are docs/paper-recipe.md's table; none inherits the laptop
    default's method blocks (8-epoch PRM/ORM, a fifth of an RRM epoch, 200-step SSRM rounds, lr 1e-3)."""
    plan, readme = _paper_plan(), _documented_hyperparameters()
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())["set-resources"]
    trained = {(m, b) for m, b in plan.pairs if m not in ("armo", "tree", "judge")}
    assert set(readme) == trained
    for (method, base), row in readme.items():
        train = plan.run_spec(method, base)["train"]
        rule = "ssrm_train" if method == "ssrm" else f"train_{plan.base_entry(base)['gpu_preset']}"
        length = f"{train['max_steps']} steps" if train["max_steps"] else f"{train['epochs']:g} epoch"
        warmup = (f"{train['warmup_steps']} steps" if train["warmup_steps"] is not None
                  else f"ratio {train['warmup_ratio']:g}")
        resolved = {"lr": train["lr"], "per_device_batch": train["per_device_batch"],
                    "grad_accum": train["grad_accum"], "gpus": profile[rule]["processes"], "length": length,
                    "max_length": train["max_length"], "warmup": warmup, "lr_schedule": train["lr_schedule"],
                    "precision": train["precision"]}
        assert resolved == {k: v for k, v in row.items() if k != "global"}, (method, base)
        assert row["global"] == row["per_device_batch"] * row["grad_accum"] * row["gpus"]


def test_a_recipe_layer_replaces_the_laptop_recipe_sections_instead_of_merging(tmp_path):
    from rmflow.config import merge_layers

    laptop = {"methods": {"prm": {"train": {"epochs": 8}}}, "train": {"lr": 1e-3}, "threads": {"train": 2}}
    recipe = {"layer": "recipe", "methods": {"prm": {"options": {"aggregation": "mean"}}}, "train": {"epochs": 1}}
    smoke = {"train": {"max_length": 64}}
    assert merge_layers([laptop, recipe, smoke]) == {
        "layer": "recipe", "methods": {"prm": {"options": {"aggregation": "mean"}}},
        "train": {"epochs": 1, "max_length": 64}, "threads": {"train": 2}}
    assert merge_layers([laptop, smoke])["methods"] == {"prm": {"train": {"epochs": 8}}}  # no recipe: merged


@pytest.mark.slow
def test_the_workflow_writes_the_paper_specs_without_the_laptop_layer(tmp_path):
    """What the jobs read: the run_spec rule's JSON, written by Snakemake from the layered config."""

    from helpers import DEFAULT, snakemake

    target = "results/specs/runs/prm/llama31_8b_instruct.json"
    proc = snakemake(tmp_path, target, "--cores", "1", configs=(DEFAULT, REPO / "config/paper.yaml"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    train = json.loads((tmp_path / target).read_text())["train"]
    assert (train["epochs"], train["lr"], train["grad_accum"], train["max_length"]) == (1, 2e-6, 8, 8192)


def test_shipped_deepspeed_configs_resolve_from_any_working_directory(tmp_path, monkeypatch):
    """Found by the rehearsal: `train.deepspeed: config/deepspeed/zero3.json` was read from the working directory,
    so a run with --directory elsewhere failed every training job; a user's own file there still wins."""
    from rmflow.config import resolve_shipped_files

    monkeypatch.chdir(tmp_path)
    config = {"train": {"deepspeed": "config/deepspeed/zero3.json"},
              "methods": {"odin": {"train": {"deepspeed": "config/deepspeed/zero2.json"}},
                          "bt": {"bases": {"b": {"train": {"deepspeed": "mine.json"}}}}}}
    (tmp_path / "mine.json").write_text("{}")
    resolved = resolve_shipped_files(copy.deepcopy(config), REPO)
    assert resolved["train"]["deepspeed"] == str(REPO / "config/deepspeed/zero3.json")
    assert resolved["methods"]["odin"]["train"]["deepspeed"] == str(REPO / "config/deepspeed/zero2.json")
    assert resolved["methods"]["bt"]["bases"]["b"]["train"]["deepspeed"] == "mine.json"
    (tmp_path / "config/deepspeed").mkdir(parents=True)
    (tmp_path / "config/deepspeed/zero3.json").write_text("{}")  # the user's own copy of the path
    assert resolve_shipped_files(copy.deepcopy(config), REPO)["train"]["deepspeed"] == "config/deepspeed/zero3.json"


def test_an_input_another_rule_writes_under_results_is_local_before_it_exists(tmp_path, monkeypatch):
    """Found by CI: the smoke layer's RewardBench is a folder the samples rule writes. Spelled without a suffix and
    absent at DAG time, it read as a hub id, so prepare_eval ran before samples and stopped."""
    monkeypatch.chdir(tmp_path)
    layers = (REPO / "config/config.yaml", REPO / "config/paper.yaml", REPO / "tests/configs/paper-smoke.yaml")
    plan = Plan(load_config(*layers, schema_path=SCHEMA))
    assert plan.local_inputs("eval_sets", "rewardbench") == ["results/data/samples/rewardbench"]
    assert plan.local_inputs("eval_sets", "rewardbench2") == ["results/data/samples/rewardbench2.jsonl"]
    # found by CI too: every eval set the smoke layer plans must be local (paper.yaml's hub sets stop prepare_eval)
    assert all(plan.local_inputs("eval_sets", name) for name in plan.eval_sets), plan.eval_sets
    assert Plan(load_config(REPO / "config/config.yaml", REPO / "config/paper.yaml",
                            schema_path=SCHEMA)).local_inputs("eval_sets", "rewardbench") == []



# ---- rank: method and base must be planned ---------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"method": "odin", "methods": ["bt"]}, "ranks with method 'odin', which is not in run.methods"),
    ({"base": "tiny_mistral"}, "ranks with base 'tiny_mistral', which is not in run.base_models"),
    ({"method": "pair_pm", "base": "tiny_gemma", "pair_pm_bases": ["tiny_llama"]},
     "ranks with 'pair_pm' on base 'tiny_gemma', a pair this run does not plan"),
])
def test_rank_plan_checks(change, message):
    from rmflow.config import validate_config
    from rmflow.plan import Plan

    config = copy.deepcopy(DEFAULT)
    if "methods" in change:
        config["run"]["methods"] = change["methods"]
    if "pair_pm_bases" in change:
        config["methods"]["pair_pm"]["bases"] = change["pair_pm_bases"]
        config["methods"]["judge"]["bases"] = change["pair_pm_bases"]
    config["rank"].update({k: v for k, v in change.items() if k in ("method", "base")})
    with pytest.raises(RmflowError, match=message):
        Plan(validate_config(copy.deepcopy(config), SCHEMA))


def test_the_plan_refuses_a_configured_base_with_a_cut_short_weights_file(tmp_path, tiny_base):
    import copy

    import yaml

    from rmflow.config import validate_config
    from rmflow.plan import Plan

    base = tmp_path / "base"
    shutil.copytree(tiny_base, base)
    (base / "model.safetensors").write_bytes((base / "model.safetensors").read_bytes()[:1000])
    config = copy.deepcopy(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    name = next(iter(config["base_models"]))
    config["base_models"][name] = {"model": str(base)}
    with pytest.raises(RmflowError, match=rf"base_models.{name}.model.*base/model.safetensors: weights file is cut"):
        Plan(validate_config(config, REPO / "workflow/schemas/config.schema.yaml"), ["config/x.yaml"])


def test_a_run_without_bt_ranks_with_its_own_method_and_an_explicit_choice_is_kept():
    data = validate_config(config(run__methods=["odin"]), SCHEMA)
    plan = Plan(data)
    if data["rank"].get("data"):
        assert plan.rank_method() == "odin" and plan.rank_stats() == f"results/rank/odin/{plan.bases[0]}/stats.json"
    assert Plan(validate_config(config(run__methods=["pair_pm", "bt"]), SCHEMA)).rank_method() == "bt"
    chosen = config(run__methods=["bt", "odin"])
    chosen.setdefault("rank", {})["method"] = "odin"
    assert Plan(validate_config(chosen, SCHEMA)).rank_method() == "odin"
    refused = config(run__methods=["odin"])
    refused.setdefault("rank", {}).update(method="bt", data="results/data/rank.jsonl")
    with pytest.raises(RmflowError, match="ranks with method 'bt', which is not in run.methods"):
        Plan(validate_config(refused, SCHEMA))


def test_only_runs_just_the_listed_pairs_and_reward_models():
    plan = Plan(validate_config(config(only="odin:tiny_gemma,pair_pm:tiny_llama"), SCHEMA))
    assert plan.pairs == [("pair_pm", "tiny_llama"), ("odin", "tiny_gemma")]
    assert plan.methods == ["pair_pm", "odin"] and plan.bases_of("odin") == ["tiny_gemma"]
    assert not any("/bt/" in path for path in plan.score_files())
    assert plan.ranks() and plan.rank_method() == "pair_pm"  # no bt planned: rank follows the first listed method
    pinned = config(only="odin:tiny_gemma")
    pinned["rank"]["method"] = "bt"
    assert Plan(validate_config(pinned, SCHEMA)).ranks() is False  # its ranked pair is not listed: left out
    alone = Plan(validate_config(config(only="bt:tiny_llama"), SCHEMA))
    assert alone.pairs == [("bt", "tiny_llama")] and alone.ranks() and alone.rank_method() == "bt"
    with pytest.raises(RmflowError, match="field 'only': 'bt:tiny_mistral' is not a run this config plans"):
        Plan(validate_config(config(only="bt:tiny_llama,bt:tiny_mistral"), SCHEMA))
    with pytest.raises(RmflowError, match="method 'armo' reads the outputs of 'bt'"):
        Plan(validate_config(config(only="armo:tiny_llama"), SCHEMA))
    with pytest.raises(RmflowError, match="only"):
        validate_config(config(only="bt:tiny_llama; touch PWNED"), SCHEMA)
