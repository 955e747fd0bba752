"""Rules and refusals that had no test of their own: the BT margin, the SLURM CPU and memory limits, the rank plan
checks, ArmoRM inputs that do not belong together, a missing examples file, a tokenizer with no pad token, and the
saved PRM/ORM/scalar-ORM models scored by plain transformers."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch
import yaml

from helpers import DEFAULT, REPO, run_cli, spec_for
from rmflow.errors import RmflowError

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


# ---- the BT margin (train.margin_field) ------------------------------------------------------------------------
def _margin_run(tmp_path, synthetic, tiny_base, margins):
    from rmflow.data.prepare import write_pairs
    from rmflow.methods import bt

    rows = [{**r, "margin": m} for r, m in zip(synthetic["train"][:16], margins)]
    write_pairs(rows, tmp_path / "train.parquet")
    spec = spec_for("bt", tiny_base, tmp_path / "train.parquet", lr=1e-9, max_steps=1, per_device_batch=16,
                    max_length=64, margin_field="margin")
    bt.train(spec, str(tmp_path / "model"))
    return json.loads((tmp_path / "model/metrics.json").read_text())["final_loss"]


@pytest.mark.slow
def test_margin_is_subtracted_inside_the_bt_loss(tmp_path, synthetic, tiny_base):
    # rewards of an untrained model are near 0: -log sigma(d - m) ~ m for a margin of 40, ln 2 for a margin of 0
    assert _margin_run(tmp_path / "big", synthetic, tiny_base, [40.0] * 16) == pytest.approx(40, abs=1.0)
    assert _margin_run(tmp_path / "zero", synthetic, tiny_base, [0.0] * 16) == pytest.approx(0.693, abs=0.1)


def test_a_margin_that_is_not_a_number_is_named(tmp_path, synthetic, tiny_base):
    with pytest.raises(RmflowError, match=r"train.parquet: field 'margin': margin_field 'margin' is not a number in "
                                          r"1 rows \(first: row 3\)"):
        _margin_run(tmp_path, synthetic, tiny_base, [1.0, 2.0, None] + [0.0] * 13)
    assert not (tmp_path / "model").exists()


# ---- SLURM: CPUs and memory per node -----------------------------------------------------------------------------
def test_cpu_and_memory_beyond_the_largest_node_are_named():
    from rmflow.cluster import Partition, check_rule

    partitions = {"gpu": Partition("gpu", max_cpus=16, max_gpus=4, max_mem_mb=64000)}
    problems = check_rule("train_x", {"slurm_partition": "gpu", "cpus_per_task": 32, "mem_mb": 480000},
                          partitions, "profiles/slurm/config.yaml")
    assert problems == [
        "rule train_x: cpus_per_task=32 but the largest node in partition 'gpu' has 16 CPUs; lower it in "
        "profiles/slurm/config.yaml",
        "rule train_x: mem_mb=480000 but the largest node in partition 'gpu' has 64000 MB; lower it in "
        "profiles/slurm/config.yaml"]
    assert check_rule("ok", {"slurm_partition": "gpu", "cpus_per_task": 16, "mem_mb": 64000}, partitions, "p") == []


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

    config = yaml.safe_load(DEFAULT.read_text())
    if "methods" in change:
        config["run"]["methods"] = change["methods"]
    if "pair_pm_bases" in change:
        config["methods"]["pair_pm"]["bases"] = change["pair_pm_bases"]
        config["methods"]["judge"]["bases"] = change["pair_pm_bases"]
    config["rank"].update({k: v for k, v in change.items() if k in ("method", "base")})
    with pytest.raises(RmflowError, match=message):
        Plan(validate_config(copy.deepcopy(config), SCHEMA))


# ---- ArmoRM: inputs that do not belong together ----------------------------------------------------------------
@pytest.mark.slow
def test_stage2_refuses_stage1_probes_of_other_objectives(tmp_path, synthetic, trained_bt):
    from helpers import prepared
    from rmflow.data.prepare import write_pairs
    from rmflow.methods import armo

    attributes = prepared(tmp_path / "a.parquet", synthetic["attributes"], "multi_objective")
    write_pairs(synthetic["train"][:16], tmp_path / "pairs.parquet")
    spec = spec_for("armo", max_length=64, options={"gate_steps": 5}, test_defaults=False)
    (tmp_path / "spec.json").write_text(spec.to_json())
    armo.main_stage1(str(tmp_path / "spec.json"), str(trained_bt), str(attributes), str(tmp_path / "stage1"))
    other = spec_for("armo", max_length=64, options={"objectives": ["helpfulness", "verbosity"]}, test_defaults=False)
    (tmp_path / "other.json").write_text(other.to_json())
    with pytest.raises(RmflowError, match=r"stage1.json: field 'objectives': stage 1 has objectives \['helpfulness', "
                                          r"'correctness', .*\], the config \['helpfulness', 'verbosity'\]"):
        armo.main_stage2(str(tmp_path / "other.json"), str(trained_bt), str(tmp_path / "stage1"),
                         str(tmp_path / "pairs.parquet"), str(tmp_path / "model"))
    assert not (tmp_path / "model").exists()


def test_attribute_ratings_out_of_range_are_named():
    from rmflow.methods import armo

    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    config = armo.Config(objectives=["helpfulness", "verbosity"])
    with pytest.raises(RmflowError, match=r"a.jsonl:2: field 'helpfulness': is 5, not a rating in 0..4 or null"):
        armo.attribute_matrix([{"messages": msgs, "attributes": {"helpfulness": 4, "verbosity": 1}, "__row__": 1},
                               {"messages": msgs, "attributes": {"helpfulness": 5, "verbosity": 1}, "__row__": 2}],
                              config, "a.jsonl")
    prescaled = armo.Config(objectives=["helpfulness", "verbosity"], prescaled=True)
    with pytest.raises(RmflowError, match=r"field 'verbosity': is 1.5, not a pre-scaled label in \[0, 1\]"):
        armo.attribute_matrix([{"messages": msgs, "attributes": {"helpfulness": 0.2, "verbosity": 1.5}}], prescaled,
                              "a.jsonl")
    assert armo.attribute_matrix([{"messages": msgs, "attributes": {"helpfulness": 0.2, "verbosity": 1.0}}],
                                 prescaled, "a").tolist() == [[0.2, 1.0]]


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


# ---- a tokenizer with no pad token at all ----------------------------------------------------------------------
@pytest.mark.slow
def test_a_tokenizer_without_any_pad_token_gets_one_and_padding_changes_no_score(tmp_path, trained_bt):
    from transformers import AutoTokenizer

    from rmflow.models.load import NEW_PAD_TOKEN, load_model, load_tokenizer
    from rmflow.models.scalar import ScalarScorer

    shutil.copytree(trained_bt, tmp_path / "m")
    (tmp_path / "m/rmflow_run.json").unlink()
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    tok.pad_token = None
    tok.save_pretrained(tmp_path / "m")
    assert AutoTokenizer.from_pretrained(tmp_path / "m").pad_token is None
    fixed = load_tokenizer(str(tmp_path / "m"))
    assert fixed.pad_token == NEW_PAD_TOKEN and fixed.pad_token_id not in (fixed.eos_token_id, fixed.bos_token_id)
    model = load_model(str(tmp_path / "m"), fixed, num_labels=1)
    assert model.config.pad_token_id == fixed.pad_token_id
    scorer = ScalarScorer(model, fixed, max_length=128, batch_size=8, max_batch_tokens=10 ** 6)
    convs = [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there, how are you?"}],
             [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo."}]]
    scorer.batches = lambda lengths, max_padding=0.1: [list(range(len(lengths)))]  # one padded batch
    together = scorer.score_conversations(convs, progress=False)
    alone = [scorer.score_conversations([c], progress=False)[0] for c in convs]
    assert together == pytest.approx(alone, abs=1e-5)


# ---- saved step models scored by plain transformers --------------------------------------------------------------
def _steps_data(tmp_path, synthetic):
    from helpers import prepared

    return str(prepared(tmp_path / "steps.parquet", synthetic["steps"], "step_rows", where={"split": "train"}))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["prm", "orm"])
def test_saved_step_models_reload_in_plain_transformers_with_the_same_scores(tmp_path, synthetic, tiny_base, method):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rmflow import methods

    module = methods.get(method)
    spec = spec_for(method, tiny_base, _steps_data(tmp_path, synthetic), max_steps=2, per_device_batch=4,
                    max_length=256, options={"aggregation": "min" if method == "prm" else "last"})
    module.train(spec, str(tmp_path / "model"))
    problem, steps = "Ann has 3 marbles.", ["Step 1: 3 + 4 = 7.", "The answer is 7."]
    ours = module.load_scorer(str(tmp_path / "model")).score_conversations(
        [[{"role": "user", "content": problem}, {"role": "assistant", "content": "\n".join(steps)}]], progress=False)
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    lm = AutoModelForCausalLM.from_pretrained(tmp_path / "model").eval()
    plus, minus = tok("+", add_special_tokens=False)["input_ids"][0], tok("-", add_special_tokens=False)["input_ids"][0]
    users = [f"{problem} {steps[0]}", steps[1]] if method == "prm" else [f"{problem} " + "\n".join(steps)]
    chat, probs = [], []
    for user in users:
        chat.append({"role": "user", "content": user})
        text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        with torch.no_grad():
            logits = lm(**tok(text, add_special_tokens=False, return_tensors="pt")).logits[0, -1]
        probs.append(torch.softmax(logits[[plus, minus]], -1)[0].item())
        chat.append({"role": "assistant", "content": "+"})
    assert ours[0] == pytest.approx(min(probs) if method == "prm" else probs[-1], abs=1e-5)


@pytest.mark.slow
def test_saved_scalar_orm_reloads_in_plain_transformers_with_the_same_scores(tmp_path, synthetic, tiny_base):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rmflow.methods import orm_scalar

    spec = spec_for("orm_scalar", tiny_base, _steps_data(tmp_path, synthetic), max_steps=2, per_device_batch=4,
                    max_length=256)
    orm_scalar.train(spec, str(tmp_path / "model"))
    conv = [{"role": "user", "content": "Ann has 3 marbles."}, {"role": "assistant", "content": "3 + 4 = 7."}]
    ours = orm_scalar.load_scorer(str(tmp_path / "model")).score_conversations([conv], progress=False)[0]
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model").eval()
    with torch.no_grad():
        plain = model(**tok(tok.apply_chat_template(conv, tokenize=False), add_special_tokens=False,
                            return_tensors="pt")).logits[0, 0].item()
    assert ours == pytest.approx(plain, abs=1e-5)


@pytest.mark.slow
def test_a_model_directory_with_unreadable_weights_is_refused_naming_the_file(tmp_path, trained_bt, synthetic):
    """A safetensors file cut short by a full disk, or a shard the index names but the folder lacks: refused before
    anything loads (plan time for a configured base, and at run time), with the file's name; never a traceback."""
    import json
    import shutil

    from rmflow.models.load import check_model_ref

    cut = tmp_path / "cut"
    shutil.copytree(trained_bt, cut)
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4096])
    with pytest.raises(RmflowError, match=r"cut/model.safetensors: weights file is cut short: its tensors need"):
        check_model_ref(str(cut))
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in synthetic["test"][:4]))
    proc = run_cli("evaluate", "--model-dir", str(cut), "--method", "bt", "--data", str(rows), "--sections",
                   "synthetic_v1", "--eval-set", "synthetic", "--base", "tiny", "--out-dir", str(tmp_path / "eval"))
    assert proc.returncode == 2 and "model.safetensors: weights file is cut short" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (tmp_path / "eval").exists()
    weights.write_bytes(b"\x10")
    with pytest.raises(RmflowError, match="not even a safetensors header"):
        check_model_ref(str(cut))

    sharded = tmp_path / "sharded"
    shutil.copytree(trained_bt, sharded)
    shards = {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": shards}))
    (sharded / "model.safetensors").rename(sharded / "model-00001-of-00002.safetensors")
    with pytest.raises(RmflowError, match="names model-00002-of-00002.safetensors, which the folder lacks"):
        check_model_ref(str(sharded))
    check_model_ref(str(trained_bt))  # an intact directory passes


def test_the_plan_refuses_a_configured_base_with_a_cut_short_weights_file(tmp_path, tiny_base):
    import copy
    import shutil

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
