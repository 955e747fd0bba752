"""``rmflow rehearsal-hub --out DIR``: write the rehearsal hub, a Hugging Face cache (``DIR/hub``, read with
``HF_HOME=DIR HF_HUB_OFFLINE=1``) holding a stand-in for every model and data-set id a config names, and
``DIR/rehearsal-manifest.json``.

Each repository is laid out as huggingface_hub stores a download: ``blobs/<sha256>``, ``snapshots/<commit>/<path>``
linking to them, ``refs/main`` naming the commit. The commit is the SHA-1 of the repository's (path, blob) list, so
the same build gives the same revisions and a changed stand-in a new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from rmflow import hub_facts
from rmflow.errors import RmflowError
from rmflow.rehearsal import datasets as data_standins
from rmflow.rehearsal.families import FAMILIES, build_model, build_tokenizer

log = logging.getLogger(__name__)

# model id -> (family, kind, pad token the repository adds or None, what it is in the recipe)
MODELS = {
    "google/gemma-2b-it": ("gemma", "causal", None, "base"),
    "mistralai/Mistral-7B-Instruct-v0.2": ("mistral", "causal", None, "base"),
    "meta-llama/Meta-Llama-3-8B-Instruct": ("llama3", "causal", None, "base and the judge's model"),
    "meta-llama/Llama-3.1-8B-Instruct": ("llama31", "causal", None, "base"),
    "google/gemma-2-9b-it": ("gemma2", "causal", None, "base"),
    "google/gemma-2-27b-it": ("gemma2", "causal", None, "base"),
    "sfairXC/FsfairX-LLaMA3-RM-v0.1": ("llama3", "classifier", "[PAD]", "ArmoRM's backbone; released BT model"),
    "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2": ("llama31", "classifier", "[PAD]", "tree backbone; released"),
    "Skywork/Skywork-Reward-Gemma-2-27B-v0.2": ("gemma2", "classifier", None, "tree backbone; released"),
    "RLHFlow/ArmoRM-Llama3-8B-v0.1": ("llama3", "armo_custom", "[PAD]", "released ArmoRM (its own code)"),
    "RLHFlow/pair-preference-model-LLaMA3-8B": ("llama3", "causal", None, "released pair-preference model"),
}
SIMPLIFIED_MODEL = ("2 layers, hidden 64, 4 heads (2 KV heads), head_dim 16; a ~1k-piece BPE vocabulary trained on "
                    "the rehearsal rows (token ids differ from the real ones); random weights, so scores are "
                    "meaningless: the rehearsal checks that every job runs and records, not what it learns")


def hub_ids(config: dict) -> dict[str, set[str]]:
    """Every hub id a resolved config names, by repository type ("model" / "dataset"): the references the hub
    pre-flight checks (rmflow.hub_check), so what the rehearsal stands in for is what a real run loads."""
    from rmflow.hub_check import hub_refs

    refs = hub_refs(config)
    return {kind: {r.repo_id for r in refs if r.kind == kind} for kind in ("model", "dataset")}


def _commit(files: dict[str, bytes]) -> str:
    listing = "".join(f"{path}\0{hashlib.sha256(data).hexdigest()}\n" for path, data in sorted(files.items()))
    return hashlib.sha1(listing.encode("utf-8")).hexdigest()


def write_repo(cache: Path, repo_id: str, repo_type: str, files: dict[str, bytes]) -> str:
    """``files`` (path in the repository -> bytes) as huggingface_hub's cache holds them; returns the commit."""
    repo = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    commit = _commit(files)
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    snapshot = repo / "snapshots" / commit
    for path, data in sorted(files.items()):
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / path
        link.parent.mkdir(parents=True, exist_ok=True)
        depth = len(Path(path).parts) - 1
        link.symlink_to(Path(*([".."] * (depth + 2)), "blobs", blob.name))
    return commit


def _saved(obj_savers) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        for save in obj_savers:
            save(tmp)
        return {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}


def model_files(repo_id: str, tokenizers: dict, seed: int) -> dict[str, bytes]:
    """config.json, generation_config.json, model.safetensors (bf16) and the tokenizer files of one stand-in."""
    family_name, kind, pad, _ = MODELS[repo_id]
    family = FAMILIES[family_name]
    tokenizer = tokenizers[(family_name, pad)]
    seed = seed + int(hashlib.sha1(repo_id.encode()).hexdigest()[:6], 16)
    architecture, behaviour = hub_facts.value(repo_id, "architecture"), hub_facts.value(repo_id, "behaviour")
    if architecture is None or behaviour is None:
        raise RmflowError(f"no recorded facts for {repo_id} (rmflow/hub_facts/{hub_facts.file_of(repo_id).name})",
                          field="rehearsal-hub")
    if kind == "armo_custom":
        model = _armo_model(family, tokenizer, seed, behaviour)
    else:
        model = build_model(family, tokenizer, architecture=architecture, behaviour=behaviour, seed=seed)
    files = _saved([model.save_pretrained, tokenizer.save_pretrained])
    if kind == "armo_custom":  # saved by rmflow's class: the released class name and auto_map written over it
        from rmflow.rehearsal.armo_code import modeling_file

        files["modeling_custom.py"] = modeling_file(model.rmflow_gate_pattern).encode("utf-8")
        config_json = json.loads(files["config.json"])
        config_json.update(architectures=[architecture],
                           auto_map=dict(hub_facts.value(repo_id, "custom_code")["auto_map"]))
        files["config.json"] = (json.dumps(config_json, indent=2, sort_keys=True) + "\n").encode("utf-8")
    config = json.loads(files["tokenizer_config.json"])
    config["tokenizer_class"] = family.tokenizer_class
    # these repositories keep the template inside tokenizer_config.json (transformers 5 writes a separate file)
    template = files.pop("chat_template.jinja", None)
    if template is not None:
        config["chat_template"] = template.decode("utf-8")
    files["tokenizer_config.json"] = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8")
    files["README.md"] = (f"# {repo_id} (rmflow rehearsal stand-in)\n\nFamily: {family.source}. "
                          f"Simplified: {SIMPLIFIED_MODEL}.\n").encode("utf-8")
    return files


def _armo_model(family, tokenizer, seed: int, behaviour: dict):
    """The ArmoRM stand-in: its recorded config keys (the gate's width scaled down) on a Llama backbone, built with
    rmflow's implementation of the released architecture (the same module names, so the same safetensors keys) and
    saved under the released class name and auto_map."""
    import torch

    from rmflow.models.armo import ArmoRewardModel, gate_pattern

    base = build_model(family, tokenizer, architecture="LlamaForCausalLM", behaviour=behaviour, seed=seed)
    config = base.config
    pattern = gate_pattern(tokenizer)
    turns = [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}]
    sample = tokenizer.apply_chat_template(turns, tokenize=True)
    sample = sample["input_ids"] if hasattr(sample, "keys") else sample
    if not any(sample[j:j + len(pattern)] == pattern for j in range(len(sample))):
        raise RmflowError("the ArmoRM stand-in's gating pattern does not occur in a templated conversation")
    config.gating_hidden_dim = 32  # SIZE_TIED: the released 1024 scaled with the hidden size
    torch.manual_seed(seed)
    model = ArmoRewardModel(config, gate_pattern=pattern)
    with torch.no_grad():  # the released matrix and scale are learned; zeros would make every score 0
        model.reward_transform_matrix.copy_(torch.eye(config.num_objectives)
                                            + 0.1 * torch.randn(config.num_objectives, config.num_objectives))
        model.gating.logit_scale.fill_(1.5)
    model.rmflow_gate_pattern = pattern
    return model.to(torch.bfloat16)


def build(out: str | Path, config: dict, seed: int = 0) -> dict:
    """Write the hub for every id ``config`` names into ``out`` (atomically); return the manifest."""
    from rmflow.io import atomic_dir, write_json

    wanted = hub_ids(config)
    repos = {r.repo_id: r for r in data_standins.build_all(seed)}
    missing = sorted((wanted["model"] - set(MODELS)) | (wanted["dataset"] - set(repos)))
    if missing:
        raise RmflowError(f"the rehearsal hub has no stand-in for {', '.join(missing)} (add one to "
                          "rmflow/rehearsal: MODELS in writer.py, or datasets.py)", field="rehearsal-hub")
    corpus = data_standins.corpus(list(repos.values()))
    tokenizers = {}
    for repo_id in sorted(wanted["model"]):
        family_name, _, pad, _ = MODELS[repo_id]
        if (family_name, pad) not in tokenizers:
            tokenizers[(family_name, pad)] = build_tokenizer(FAMILIES[family_name], corpus, pad=pad)
    manifest = {"built_by": "rmflow rehearsal-hub", "seed": seed, "use": "HF_HOME=<this folder> HF_HUB_OFFLINE=1",
                "models": {}, "datasets": {}}
    with atomic_dir(out) as tmp:
        cache = Path(tmp) / "hub"
        for repo_id in sorted(wanted["model"]):
            family_name, kind, pad, role = MODELS[repo_id]
            files = model_files(repo_id, tokenizers, seed)
            commit = write_repo(cache, repo_id, "model", files)
            config_json = json.loads(files["config.json"])
            manifest["models"][repo_id] = {
                "revision": commit, "role": role, "architecture": config_json["architectures"][0],
                "dtype": config_json.get("dtype") or config_json.get("torch_dtype"),
                "mirrors": f"rmflow/hub_facts/{hub_facts.file_of(repo_id).name} (architecture class, "
                           "behaviour-changing config keys, custom code) and "
                           f"{FAMILIES[family_name].source} (special tokens, chat template)"
                           + (f", pad token {pad}" if pad else ""),
                "simplified": SIMPLIFIED_MODEL + (f"; the pad token {pad} is the one the seed's scripts add, not "
                                                  "checked against this repository" if pad else ""),
                "files": sorted(files)}
            log.info("model %s (%s) at %s", repo_id, config_json["architectures"][0], commit[:10])
        for repo_id in sorted(wanted["dataset"]):
            repo = repos[repo_id]
            commit = write_repo(cache, repo_id, "dataset", repo.files)
            facts, simplified = data_standins.layout(repo_id), data_standins.SIMPLIFIED[repo_id]
            manifest["datasets"][repo_id] = {"revision": commit, "layout": facts, "simplified": simplified,
                                             "rows": repo.rows}
            log.info("dataset %s at %s", repo_id, commit[:10])
        write_json(Path(tmp) / "rehearsal-manifest.json", manifest)
    return manifest


def local_standins(config: dict, root: str | Path, seed: int = 0) -> list[str]:
    """Eval sets the config reads from a local folder that stands for a repository outside the hub (RMB's GitHub
    folder): their stand-ins, written under ``root`` (the run's working directory) at the configured path."""
    from rmflow.rehearsal import benchmark_sets

    written = []
    for name, entry in (config.get("eval_sets") or {}).items():
        if (entry or {}).get("benchmark") == "rmb" and not os.path.isabs(str(entry.get("path"))):
            if entry["path"] != benchmark_sets.RMB_FOLDER:
                raise RmflowError(f"the rehearsal writes RMB's folder at {benchmark_sets.RMB_FOLDER}, not "
                                  f"{entry['path']}", field=f"eval_sets.{name}.path")
            written.append(str(benchmark_sets.write_rmb(root, seed)))
    return written


def main(out: str, config_files: list[str], seed: int = 0, local_root: str | None = None) -> None:
    from rmflow.config import _read, merge_layers

    config = merge_layers([_read(p) for p in config_files])
    manifest = build(out, config, seed)
    for folder in local_standins(config, local_root, seed) if local_root else []:
        print(f"rehearsal stand-in folder: {folder}")
    print(f"rehearsal hub: {len(manifest['models'])} models, {len(manifest['datasets'])} data sets in "
          f"{os.path.abspath(out)}; use HF_HOME={os.path.abspath(out)} HF_HUB_OFFLINE=1")
