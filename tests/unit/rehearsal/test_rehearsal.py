"""The rehearsal: config/rehearsal.yaml changes sizes only, and the rehearsal hub holds a layout-true stand-in for
every hub id config/paper.yaml names, loadable by that id offline through rmflow's own hub code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO
from rmflow.config import load_config
from rmflow.errors import RmflowError
from rmflow.plan import Plan

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
LAYERS = [REPO / "config/config.yaml", REPO / "config/paper.yaml"]
# the only leaf keys a rehearsal may change: how long, how big, how many - never what is loaded or how it is read
SIZE_KEYS = {"max_steps", "per_device_batch", "grad_accum", "warmup_steps", "warmup_ratio", "max_length",
             "checkpoint_every", "log_every", "shards", "gate_hidden", "gate_steps", "gate_batch", "packed_length",
             "ns", "subsets", "batch_size"}
SIZE_SECTIONS = ("threads.",)


def leaves(node, prefix=""):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(leaves(value, f"{prefix}{key}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): node}


def non_size_changes(before: dict, after: dict) -> list[str]:
    a, b = leaves(before), leaves(after)
    changed = [k for k in sorted(set(a) | set(b)) if a.get(k, "<absent>") != b.get(k, "<absent>")]
    return [k for k in changed if k.rsplit(".", 1)[-1] not in SIZE_KEYS and not k.startswith(SIZE_SECTIONS)]


def specs(config: dict) -> dict:
    plan = Plan(config, [str(p) for p in LAYERS])
    pairs = [(m, b) for m in plan.methods for b in plan.bases_of(m)] + plan.released_models()
    return {"targets": plan.score_files(), "bestofn": plan.bestofn_files(),
            **{f"{m}/{b}": plan.run_spec(m, b) for m, b in pairs}}


def test_the_rehearsal_layer_changes_sizes_only_in_the_config_and_in_every_run_spec():
    paper = load_config(*LAYERS, schema_path=SCHEMA)
    rehearsal = load_config(*LAYERS, REPO / "config/rehearsal.yaml", schema_path=SCHEMA)
    assert non_size_changes(paper, rehearsal) == []
    paper_specs, rehearsal_specs = specs(paper), specs(rehearsal)
    assert paper_specs.keys() == rehearsal_specs.keys() and len(paper_specs) > 20
    assert paper_specs["targets"] == rehearsal_specs["targets"]  # the same jobs, the same leaderboard rows
    assert non_size_changes(paper_specs, rehearsal_specs) == []
    # and the check itself bites: a layer that swaps a split, a backbone or a chat template is caught
    swapped = load_config(*LAYERS, REPO / "config/rehearsal.yaml", schema_path=SCHEMA)
    swapped["datasets"]["mistral_gsm8k_test"]["split"] = "test"
    swapped["methods"]["armo"]["options"]["backbone"] = "/tmp/local-bt"
    swapped["base_models"]["gemma_2b_it"]["chat_template"] = "gemma"
    assert non_size_changes(paper, swapped) == ["base_models.gemma_2b_it.chat_template",
                                                "datasets.mistral_gsm8k_test.split", "methods.armo.options.backbone"]


@pytest.fixture(scope="module")
def rehearsal_hub(tmp_path_factory) -> Path:
    from rmflow.rehearsal import writer

    out = tmp_path_factory.mktemp("rehearsal") / "hub"
    writer.main(str(out), [str(p) for p in LAYERS])
    return out


def test_every_hub_id_of_the_paper_has_a_pinned_deterministic_stand_in(rehearsal_hub, tmp_path):
    from rmflow.config import merge_layers
    from rmflow.rehearsal import writer

    wanted = writer.hub_ids(merge_layers([load_config(*LAYERS, schema_path=SCHEMA)]))
    manifest = json.loads((rehearsal_hub / "rehearsal-manifest.json").read_text())
    assert set(manifest["models"]) == wanted["model"] and len(wanted["model"]) == 11
    # 16 training and RewardBench sets, RM-Bench, JudgeBench, ProcessBench, PPE's human preference and five
    # correctness sets (RMB is a GitHub folder, written beside the run: rehearsal.writer.local_standins)
    assert set(manifest["datasets"]) == wanted["dataset"] and len(wanted["dataset"]) == 25
    for entry in [*manifest["models"].values(), *manifest["datasets"].values()]:
        assert len(entry["revision"]) == 40 and entry["simplified"]
    assert all(e["dtype"] == "bfloat16" for e in manifest["models"].values())
    again = writer.build(tmp_path / "again", merge_layers([load_config(*LAYERS, schema_path=SCHEMA)]))
    assert {k: v["revision"] for k, v in again["models"].items()} == \
        {k: v["revision"] for k, v in manifest["models"].items()}
    assert {k: v["revision"] for k, v in again["datasets"].items()} == \
        {k: v["revision"] for k, v in manifest["datasets"].items()}
    with pytest.raises(RmflowError, match="no stand-in for acme/unknown-model"):
        writer.build(tmp_path / "x", {"base_models": {"b": {"model": "acme/unknown-model"}}})


OFFLINE_CHECK = r'''
import json, sys
import torch
from safetensors import safe_open
from huggingface_hub import hf_hub_download
from transformers import AutoConfig, AutoTokenizer
from rmflow.data.loaders import read_rows
from rmflow.errors import RmflowError

out = {"models": {}, "data": {}}
for repo in json.loads(sys.argv[1]):
    config = AutoConfig.from_pretrained(repo, trust_remote_code=repo.startswith("RLHFlow/ArmoRM"))
    weights = hf_hub_download(repo, "model.safetensors")
    with safe_open(weights, "pt") as f:
        dtypes = sorted({str(f.get_slice(k).get_dtype()) for k in f.keys()})
    tok = AutoTokenizer.from_pretrained(repo)
    conv = [{"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "5"}]
    try:
        tok.apply_chat_template([{"role": "system", "content": "Be brief."}] + conv, tokenize=False)
        system = "accepted"
    except Exception as exc:
        system = type(exc).__name__
    out["models"][repo] = {"architecture": config.architectures[0], "dtypes": dtypes,
                           "rope_scaling": (getattr(config, "rope_scaling", None) or {}).get("rope_type"),
                           "softcap": [getattr(config, "attn_logit_softcapping", None),
                                       getattr(config, "final_logit_softcapping", None)],
                           "pad": tok.pad_token, "bos": tok.bos_token,
                           "template": tok.apply_chat_template(conv, tokenize=False),
                           "first_id_is_bos": tok("Hi")["input_ids"][0] == tok.bos_token_id, "system": system}
for name, (path, split, data_dir) in json.loads(sys.argv[2]).items():
    rows = read_rows(path, split=split, data_dir=data_dir)
    out["data"][name] = {"n": len(rows), "columns": sorted(k for k in rows[0] if not k.startswith("__")),
                         "splits": sorted({r.get("split") for r in rows if "split" in r}),
                         "first": {k: v for k, v in rows[0].items() if k in ("answers", "subset", "id")}}
try:
    read_rows("RLHFlow/Mistral-GSM8K-Test", split="test")
    out["wrong_split"] = "loaded"
except RmflowError as exc:
    out["wrong_split"] = str(exc)
print(json.dumps(out))
'''


@pytest.mark.slow
def test_transformers_and_rmflow_load_every_stand_in_by_its_hub_id_offline(rehearsal_hub):
    import yaml

    manifest = json.loads((rehearsal_hub / "rehearsal-manifest.json").read_text())
    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    sets = {name: (d["path"], d.get("split", "train"), d.get("data_dir"))
            for name, d in {**paper["datasets"], **paper["eval_sets"]}.items()
            if isinstance(d["path"], str) and isinstance(d.get("split", "train"), str)
            and d["path"] in manifest["datasets"]}  # hub ids read one split (not RMB's folder, PPE's five ids)
    env = {**os.environ, "HF_HOME": str(rehearsal_hub), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", OFFLINE_CHECK, json.dumps(sorted(manifest["models"])),
                           json.dumps(sets)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    models = got["models"]
    assert all(m["dtypes"] == ["BF16"] for m in models.values())
    assert all(m["first_id_is_bos"] for m in models.values())
    assert models["meta-llama/Llama-3.1-8B-Instruct"]["rope_scaling"] == "llama3"
    assert models["google/gemma-2-27b-it"]["softcap"] == [50.0, 30.0]
    assert models["Skywork/Skywork-Reward-Gemma-2-27B-v0.2"]["architecture"] == "Gemma2ForSequenceClassification"
    assert models["sfairXC/FsfairX-LLaMA3-RM-v0.1"]["architecture"] == "LlamaForSequenceClassification"
    assert models["RLHFlow/ArmoRM-Llama3-8B-v0.1"]["architecture"] == "LlamaForRewardModelWithGating"
    assert models["meta-llama/Meta-Llama-3-8B-Instruct"]["pad"] is None  # no pad token: rmflow adds [PAD]
    assert models["meta-llama/Meta-Llama-3-8B-Instruct"]["template"] == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nAdd 2 and 3.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n5<|eot_id|>")
    assert "Cutting Knowledge Date: December 2023" in models["meta-llama/Llama-3.1-8B-Instruct"]["template"]
    assert models["mistralai/Mistral-7B-Instruct-v0.2"]["template"] == "<s> [INST] Add 2 and 3. [/INST] 5</s>"
    assert models["google/gemma-2b-it"]["template"] == (
        "<bos><start_of_turn>user\nAdd 2 and 3.<end_of_turn>\n<start_of_turn>model\n5<end_of_turn>\n")
    assert models["google/gemma-2-9b-it"]["system"] != "accepted"  # Gemma's template rejects a system turn
    data = got["data"]
    assert data["helpsteer2_preference"]["splits"] == ["train", "val"]
    assert "preference_strength" in data["helpsteer2_preference"]["columns"]
    assert data["helpsteer2_attributes"]["columns"] == ["coherence", "complexity", "correctness", "helpfulness",
                                                        "prompt", "response", "verbosity"]
    assert " ки\n" in data["mistral_gsm8k_test"]["first"]["answers"][0]
    assert "ки" not in data["deepseek_gsm8k_test"]["first"]["answers"][0]
    assert "\n\n" in data["deepseek_gsm8k_test"]["first"]["answers"][0]
    assert len(data["armo_multi_objective"]["columns"]) == 20  # messages + the 19 attribute columns
    assert data["rewardbench"]["n"] == 46 and data["rewardbench2"]["columns"][:3] == ["chosen", "id", "models"]
    assert "could not read split 'test'" in got["wrong_split"] and "train" in got["wrong_split"]


def test_hub_check_offline_finds_every_paper_reference_cached_and_names_a_missing_split(rehearsal_hub, tmp_path):
    env = {**os.environ, "HF_HOME": str(rehearsal_hub), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    run = [sys.executable, "-m", "rmflow.cli", "hub-check", "--configfile", *map(str, LAYERS)]
    proc = subprocess.run(run, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and "all 40 hub references can be loaded" in proc.stdout, proc.stderr[-2000:]
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("datasets:\n  mistral_gsm8k_test: {split: test}\n"
                     "base_models:\n  gemma_2b_it: {revision: v9}\n")
    proc = subprocess.run([*run, str(wrong)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "2 of 40 hub references cannot be loaded" in proc.stderr
    assert "datasets.mistral_gsm8k_test.split: RLHFlow/Mistral-GSM8K-Test has no split 'test' (it has: train)" \
        in proc.stderr
    assert "base_models.gemma_2b_it.model: google/gemma-2b-it@v9 is not in the Hugging Face cache" in proc.stderr
    assert "`hf download google/gemma-2b-it --revision v9`" in proc.stderr


def _expected_rope(behaviour: dict) -> dict | None:
    """transformers 5 writes rope_theta and rope_scaling into one rope_parameters entry."""
    if "rope_theta" not in behaviour:
        return None
    scaling = behaviour.get("rope_scaling") or {"rope_type": "default"}
    return {**scaling, "rope_theta": behaviour["rope_theta"]}


def test_every_stand_in_matches_its_recorded_facts(rehearsal_hub):
    """rmflow/hub_facts holds, per hub id of the paper recipe, the facts of the real repository with their sources;
    the rehearsal hub is generated from them, and this compares every stand-in with them: architecture, model type,
    every behaviour key (but those tied to the real size, said in SIZE_TIED), custom code (auto_map, classes, the
    real imports), weight format; a data set's files, splits and columns."""
    import fnmatch
    import gzip

    import polars as pl

    from rmflow import hub_facts
    from rmflow.rehearsal.families import SIZE_TIED

    cache = rehearsal_hub / "hub"
    manifest = json.loads((rehearsal_hub / "rehearsal-manifest.json").read_text())
    assert set(manifest["models"]) | set(manifest["datasets"]) == set(hub_facts.all_facts())
    mismatches = []
    for repo_id in manifest["models"]:
        facts = hub_facts.facts(repo_id)
        snapshot = cache / f"models--{repo_id.replace('/', '--')}/snapshots" / manifest["models"][repo_id]["revision"]
        config = json.loads((snapshot / "config.json").read_text())
        if config["architectures"] != [facts["architecture"]["value"]]:
            mismatches.append((repo_id, "architecture", config["architectures"]))
        if config["model_type"] != facts["model_type"]["value"]:
            mismatches.append((repo_id, "model_type", config["model_type"]))
        behaviour = facts["behaviour"]["value"]
        for key, value in behaviour.items():
            if key in SIZE_TIED or key in ("rope_theta", "rope_scaling"):
                continue
            if config.get(key) != value:
                mismatches.append((repo_id, key, config.get(key), value))
        if _expected_rope(behaviour) is not None and config.get("rope_parameters") != _expected_rope(behaviour):
            mismatches.append((repo_id, "rope", config.get("rope_parameters"), _expected_rope(behaviour)))
        code = (facts.get("custom_code") or {}).get("value")
        if code:
            source = (snapshot / code["file"]).read_text()
            if config.get("auto_map") != code["auto_map"]:
                mismatches.append((repo_id, "auto_map", config.get("auto_map")))
            mismatches += [(repo_id, "import", line) for line in code["imports"] if line not in source]
            mismatches += [(repo_id, "class", name) for name in code["classes"] if f"class {name}(" not in source]
        weights = (facts.get("weights") or {}).get("value")
        if weights and weights["format"] == "safetensors" and not list(snapshot.glob("*.safetensors")):
            mismatches.append((repo_id, "weights", sorted(p.name for p in snapshot.iterdir())))
    for repo_id in manifest["datasets"]:
        facts = hub_facts.facts(repo_id)
        snapshot = cache / f"datasets--{repo_id.replace('/', '--')}/snapshots" / manifest["datasets"][repo_id][
            "revision"]
        files = sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file() and p.name !=
                       "README.md")
        patterns = facts["files"]["value"]
        mismatches += [(repo_id, "no file for", g) for g in patterns if not fnmatch.filter(files, g)]
        mismatches += [(repo_id, "file not in the facts", f) for f in files
                       if not any(fnmatch.fnmatch(f, g) for g in patterns)]
        lone = len(patterns) == 1 and facts["splits"]["value"] == ["train"]  # one file: datasets calls it train
        for split in facts["splits"]["value"]:  # each split has its file
            if not lone and not any(split in f for f in files):
                mismatches.append((repo_id, "split", split))
        data_dirs = facts.get("data_dirs") or {}
        for entry, data_dir in [(facts, None)] + [(entry, name) for name, entry in data_dirs.items()]:
            if "columns" not in entry:
                continue
            wanted = set(entry["columns"]["value"])
            for f in files:
                in_layout = f.startswith(f"{data_dir}/") if data_dir else \
                    not any(f.startswith(f"{d}/") for d in data_dirs)
                if not in_layout:
                    continue
                if f.endswith(".parquet"):
                    columns = set(pl.read_parquet(snapshot / f).columns)
                elif f.endswith(".jsonl.gz"):
                    columns = set(json.loads(gzip.open(snapshot / f).readline()))
                else:
                    continue
                if columns != wanted:
                    mismatches.append((repo_id, f, "columns", sorted(columns ^ wanted)))
    assert not mismatches, mismatches
