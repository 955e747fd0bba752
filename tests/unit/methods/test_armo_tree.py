"""ArmoRM and the decision tree: planted maps and rules recovered, gate algebra, reloads without rmflow, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import run_cli, spec_for
from rmflow.errors import RmflowError
from rmflow.methods import armo, tree
from rmflow.methods.frozen import armo_math as am


def test_ridge_recovers_a_planted_linear_map_ignoring_missing_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    w_true = rng.normal(size=8)
    y = x @ w_true + rng.normal(scale=0.01, size=400)
    y[::7] = np.nan  # missing labels are ignored, not zeros
    w, alpha, mse = am.fit_objective(x, y, np.random.default_rng(1), validation_fraction=0.2)
    assert np.allclose(w, w_true, atol=0.01) and alpha <= 1.0 and mse < 1e-3


def test_verbosity_penalty_search_on_a_constructed_case():
    rng = np.random.default_rng(0)
    verbosity = rng.normal(size=500)
    independent = rng.normal(size=500)
    # r_1 = 0.3 * r_v + independent noise: subtracting ~0.3 r_v removes the correlation
    leaning = 0.3 * verbosity + rng.normal(scale=0.5, size=500)
    rewards = np.stack([independent, leaning, verbosity], axis=1)
    lambdas = am.verbosity_penalties(rewards, verbosity=2, threshold=0.028)
    assert lambdas[2] == 1 and lambdas[0] <= 0.05
    assert 0.2 <= lambdas[1] <= 0.4
    # it is the first grid value that meets the threshold
    earlier = [lam for lam in am.LAMBDA_GRID if lam < lambdas[1]]
    assert all(am.spearman(leaning - lam * verbosity, verbosity) > 0.028 for lam in earlier)
    t = am.transform_matrix(lambdas, 2)
    transformed = rewards @ t.T
    assert np.allclose(transformed[:, 2], 0) and np.allclose(transformed[:, 1], leaning - lambdas[1] * verbosity)


def test_spearman_matches_hand_ranks_with_ties():
    assert am.spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 40.0])) == pytest.approx(1)
    assert am.spearman(np.array([1, 2, 2, 3.0]), np.array([3, 2, 2, 1.0])) == pytest.approx(-1)


def test_gate_weights_sum_to_one_and_score_is_their_weighted_sum():
    torch.manual_seed(0)
    gate = am.make_gate(5, 3, hidden=8, layers=2, dropout=0.0)
    prompts, rewards = torch.randn(4, 5), torch.randn(4, 3)
    transform, beta = torch.tensor(am.transform_matrix(np.array([0.2, 0.5, 1.0]), 2), dtype=torch.float32), \
        torch.tensor(1.7)
    score, g = am.gated_score(gate(prompts), rewards, transform, beta, temperature=10.0)
    assert torch.allclose(g.sum(-1), torch.ones(4))
    expected = beta * (g * (rewards @ transform.T)).sum(-1)
    assert torch.allclose(score, expected)


def test_tree_reproduces_a_planted_rule():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(600, 3))
    y = (x[:, 1] > 0.3).astype(int)
    fitted, rules, report = tree.fit_tree(x, y, tree.Config(max_depth=3, min_samples_leaf=1), ["a", "b", "c"])
    root = fitted["nodes"][0]
    assert root["feature"] == 1 and root["threshold"] == pytest.approx(0.3, abs=0.02)
    assert report["depth"] == 1 and report["validation_accuracy"] == 1.0
    probe = rng.uniform(-1, 1, size=(200, 3))
    assert [p > 0.5 for p in tree.predict(fitted, probe)] == list(probe[:, 1] > 0.3)
    assert re.search(r"b <= 0\.(29|30)", rules)


def test_attribute_rows_with_unknown_name_or_all_missing(tmp_path):
    config = armo.Config(objectives=["helpfulness", "verbosity"])
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    rows = [{"messages": msgs, "attributes": {"helpfulness": 3, "verbosity": 1}},
            {"messages": msgs, "attributes": {"helpfulness": 2, "honesty": 4}}]
    with pytest.raises(RmflowError, match=r"attrs.jsonl:2: field 'honesty': unknown attribute 'honesty'"):
        armo.attribute_matrix([{**r, "__row__": i} for i, r in enumerate(rows, 1)], config, "attrs.jsonl")
    with pytest.raises(RmflowError, match="attrs.jsonl: field 'verbosity': objective 'verbosity' has no label"):
        armo.attribute_matrix([{"messages": msgs, "attributes": {"helpfulness": 3, "verbosity": None}}], config,
                              "attrs.jsonl")
    labels = armo.attribute_matrix([{"messages": msgs, "attributes": {"helpfulness": 4, "verbosity": 0}}], config, "a")
    assert labels.tolist() == [[0.9, 0.1]]  # (x + 0.5) / 5


@pytest.fixture(scope="module")
def armo_run(tmp_path_factory, synthetic, trained_bt):
    from helpers import prepared
    from rmflow.data.prepare import write_pairs

    work = tmp_path_factory.mktemp("armo")
    attributes = prepared(work / "attributes.parquet", synthetic["attributes"], "multi_objective")
    write_pairs(synthetic["train"], work / "pairs.parquet")
    spec = spec_for("armo", "unused", work / "pairs.parquet", max_length=128,
                    options={"gate_steps": 60, "gate_hidden": 16, "gate_batch": 64}, test_defaults=False)
    (work / "spec.json").write_text(spec.to_json())
    armo.main_stage1(str(work / "spec.json"), str(trained_bt), str(attributes), str(work / "stage1"))
    armo.main_stage2(str(work / "spec.json"), str(trained_bt), str(work / "stage1"), str(work / "pairs.parquet"),
                     str(work / "model"))
    tree_spec = spec_for("tree", "unused", work / "pairs.parquet", max_length=128, options={"max_depth": 3},
                         test_defaults=False)
    (work / "tree.json").write_text(tree_spec.to_json())
    tree.main_fit(str(work / "tree.json"), str(trained_bt), str(work / "stage1"), str(work / "pairs.parquet"),
                  str(work / "tree"))
    return work


@pytest.mark.slow
def test_stage1_report_and_armo_outputs(armo_run):
    stage1 = json.loads((armo_run / "stage1/stage1.json").read_text())
    assert stage1["objectives"][4] == "verbosity" and set(stage1["per_objective"]) == set(stage1["objectives"])
    meta = json.loads((armo_run / "model/armo_config.json").read_text())
    assert meta["verbosity_penalties"]["verbosity"] == 1.0
    assert not list(armo_run.rglob("*.pkl")) and not list(armo_run.rglob("*.bin"))
    details = armo.ArmoScorer(str(armo_run / "model")).details([[{"role": "user", "content": "Say hi."},
                                                                  {"role": "assistant", "content": "Hi!"}]])
    assert sum(details["gates"][0]) == pytest.approx(1, abs=1e-5)
    # every scalar scorer offers score_conversations (best-of-N and rank rely on it)
    scorer = armo.load_scorer(str(armo_run / "model"))
    assert scorer.score_conversations([[{"role": "user", "content": "Say hi."},
                                        {"role": "assistant", "content": "Hi!"}]]) == pytest.approx(details["score"])
    text = armo.explain(str(armo_run / "model"), [{"role": "user", "content": "Say hi."},
                                                   {"role": "assistant", "content": "Hi!"}], top_k=2)
    assert text.startswith("score ") and len(text.splitlines()) == 4


@pytest.mark.slow
def test_armo_reloads_with_plain_transformers_and_safetensors(armo_run):
    """The model card's recipe: backbone via transformers, head via safetensors, a few lines of torch."""
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = armo_run / "model"
    conv = [{"role": "user", "content": "Translate 'cat' into French."},
            {"role": "assistant", "content": "The French word for 'cat' is 'chat'."}]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    head = load_file(model_dir / "armo_head.safetensors")
    meta = json.loads((model_dir / "armo_config.json").read_text())

    def last_hidden(text):
        ids = tok(text, add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            return model.model(**ids).last_hidden_state[0, -1]

    full = last_hidden(tok.apply_chat_template(conv, tokenize=False))
    prompt = last_hidden(tok.apply_chat_template(conv[:1], tokenize=False, add_generation_prompt=True))
    x = prompt
    for i in range(meta["gate_layers"]):
        x = x @ head[f"gate.{i}.weight"].T + head[f"gate.{i}.bias"]
        x = torch.relu(x) if i < meta["gate_layers"] - 1 else x
    gates = torch.softmax(x / meta["temperature"], -1)
    rewards = head["regression"] @ full
    score = head["beta"][0] * (gates * (head["transform"] @ rewards)).sum()
    ours = armo.load_scorer(str(model_dir)).score_pairs([{"chosen": conv, "rejected": conv}])
    assert score.item() == pytest.approx(ours["score_chosen"][0], abs=1e-4)


def _rules_class(rules: str, features: dict[str, float]) -> int:
    """The class sklearn's own text rendering of the tree (``export_text``) gives: an independent reading."""
    lines = [line for line in rules.splitlines() if "|---" in line]
    depth, i = 0, 0
    while i < len(lines):
        line = lines[i]
        level = line.index("|---") // 4
        text = line.split("|--- ", 1)[1]
        if level != depth:
            i += 1
            continue
        if text.startswith("class:"):
            return int(float(text.split(":")[1]))
        name, op, value = re.match(r"(\S+) (<=|>)  ?(-?[\d.e+-]+)", text).groups()
        holds = features[name] <= float(value) if op == "<=" else features[name] > float(value)
        if holds:
            depth += 1
        i += 1
    raise AssertionError("no leaf reached")


@pytest.mark.slow
def test_tree_reloads_from_json_without_rmflow(armo_run, synthetic):
    """tree.json's decisions agree with sklearn's own rendering of the fitted tree, on features computed with
    plain transformers and numpy (the backbone's last hidden state times the saved probe weights)."""
    from safetensors.numpy import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = armo_run / "tree"
    rules = (model_dir / "tree_rules.txt").read_text()
    fitted = json.loads((model_dir / "tree.json").read_text())
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    regression = load_file(str(model_dir / "regression.safetensors"))["regression"]

    def probes(conversation):
        ids = tok(tok.apply_chat_template(conversation, tokenize=False), add_special_tokens=False,
                  return_tensors="pt")
        with torch.no_grad():
            return regression @ model.model(**ids).last_hidden_state[0, -1].numpy()

    rows = synthetic["train"][:8]
    ours = tree.load_scorer(str(model_dir)).score_pairs(rows)
    for row, p1, p2 in zip(rows, ours["p_order1"], ours["p_order2"]):
        delta = probes(row["chosen"]) - probes(row["rejected"])
        forward = _rules_class(rules, dict(zip(fitted["features"], delta)))
        backward = _rules_class(rules, dict(zip(fitted["features"], -delta)))
        assert (p1 > 0.5) == bool(forward) or p1 == 0.5  # leaf probability vs sklearn's leaf class
        assert (1 - p2 > 0.5) == bool(backward) or p2 == 0.5


@pytest.mark.slow
def test_stage2_needs_stage1_for_the_same_backbone(armo_run, tiny_base, tmp_path):
    args = (str(armo_run / "spec.json"),)
    with pytest.raises(RmflowError, match=r"stage1.json: stage-1 probes are absent"):
        armo.main_stage2(*args, str(armo_run / "model"), str(tmp_path / "nope"), str(armo_run / "pairs.parquet"),
                         str(tmp_path / "out"))
    with pytest.raises(RmflowError, match=r"field 'backbone': stage 1 was fitted on backbone"):
        armo.main_stage2(*args, str(tiny_base), str(armo_run / "stage1"), str(armo_run / "pairs.parquet"),
                         str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_in_process_train_runs_both_stages(tmp_path, monkeypatch, synthetic, trained_bt):
    """`rmflow train` outside the workflow: ArmoRM and the tree fit their stage-1 probes themselves."""
    from helpers import prepared
    from rmflow.data.prepare import write_pairs

    monkeypatch.chdir(tmp_path)  # the default attributes data set is prepared under the working directory
    Path("results/data/prepared").mkdir(parents=True)
    prepared(Path("results/data/prepared/synthetic_attributes.parquet"), synthetic["attributes"], "multi_objective")
    write_pairs(synthetic["train"], tmp_path / "pairs.parquet")
    common = dict(train_data=tmp_path / "pairs.parquet", max_length=128, test_defaults=False)
    with pytest.raises(RmflowError, match="ArmoRM needs a frozen backbone"):
        armo.train(spec_for("armo", **common), str(tmp_path / "armo"))
    armo.train(spec_for("armo", options={"gate_steps": 20, "backbone": str(trained_bt)}, **common),
               str(tmp_path / "armo"))
    assert (tmp_path / "armo/armo_head.safetensors").exists()
    tree.train(spec_for("tree", options={"max_depth": 2}, **common), str(tmp_path / "tree"), init=str(trained_bt))
    assert json.loads((tmp_path / "tree/metrics.json").read_text())["depth"] <= 2
    assert not list(tmp_path.glob(".*tmp")) and not list(tmp_path.glob("tmp*"))


@pytest.mark.slow
def test_a_backbone_named_by_hub_id_or_cached_snapshot_is_copied(tmp_path, monkeypatch, trained_bt):
    """The paper's backbones are hub ids (sfairXC/FsfairX-LLaMA3-RM-v0.1): resolved through the hub cache,
    offline, to the commit they came from; a snapshot folder of symlinks copies as real files."""
    import huggingface_hub

    from helpers import hub_cache

    commit = hub_cache(tmp_path / "hub", "sfairXC/FsfairX-LLaMA3-RM-v0.1", trained_bt)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    wanted = {f.name for f in trained_bt.iterdir()} - {"rmflow_run.json", "metrics.json", "train_log.jsonl"}
    for name, ref in (("by_id", "sfairXC/FsfairX-LLaMA3-RM-v0.1"),
                      ("snapshot", str(tmp_path / f"hub/models--sfairXC--FsfairX-LLaMA3-RM-v0.1/snapshots/{commit}"))):
        out = tmp_path / name
        out.mkdir()
        assert armo.copy_backbone(ref, out) == (commit if name == "by_id" else None)
        assert {f.name for f in out.iterdir()} == wanted
        assert not any(f.is_symlink() for f in out.iterdir())
        assert (out / "model.safetensors").read_bytes() == (trained_bt / "model.safetensors").read_bytes()
    with pytest.raises(RmflowError, match="cannot resolve backbone 'Skywork/absent' \\(revision main\\)"):
        armo.copy_backbone("Skywork/absent", tmp_path)


@pytest.mark.slow
def test_gate_prompt_feature_at_the_user_turn_end_is_the_seeds_gating_token(trained_bt, synthetic):
    """armo-rm/stage-2_prepare.py reads the prompt feature inside the whole conversation at the end-of-turn token
    that closes the last user turn; rmflow's user_turn_end embeds the prompt up to that token (causal attention:
    the same hidden state)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model, tokenizer = armo.load_backbone(str(trained_bt), "cpu")
    conversation = synthetic["train"][0]["chosen"]
    ours = armo.embed(model, tokenizer, [conversation[:-1]], 128, "left", position="user_turn_end")[0]
    after_header = armo.embed(model, tokenizer, [conversation[:-1]], 128, "left", generation_prompt=True)[0]
    tok = AutoTokenizer.from_pretrained(trained_bt)
    plain = AutoModel.from_pretrained(trained_bt).eval()
    ids = tok(tok.apply_chat_template(conversation, tokenize=False), add_special_tokens=False)["input_ids"]
    end = tok.convert_tokens_to_ids("<|end|>")
    gating = [i for i, t in enumerate(ids) if t == end][-2]  # the user turn's <|end|>; the last is the answer's
    with torch.no_grad():
        hidden = plain(torch.tensor([ids])).last_hidden_state[0, gating]
    assert np.allclose(ours, hidden.double().numpy(), atol=1e-5)
    assert not np.allclose(after_header, ours, atol=1e-3)


@pytest.mark.slow
def test_armo_and_the_tree_record_their_hub_backbone_and_data(tmp_path, synthetic, trained_bt):
    """Found by the rehearsal: ArmoRM's and the tree's rmflow_run.json recorded no hub input at all, so their
    leaderboard rows could not cite the backbone commit or the data sets they were fitted on."""
    import os

    from helpers import hub_cache, prepared
    from rmflow.data.prepare import write_pairs

    backbone = "sfairXC/FsfairX-LLaMA3-RM-v0.1"
    commit = hub_cache(tmp_path / "hub", backbone, trained_bt)
    attributes = prepared(tmp_path / "attributes.parquet", synthetic["attributes"], "multi_objective")
    write_pairs(synthetic["train"][:40], tmp_path / "pairs.parquet")
    records = {"attributes": {"id": "org/attributes", "revision": "main", "commit": "a" * 40},
               "pairs": {"id": "org/pairs", "revision": "v1", "commit": "b" * 40}}
    for name, record in records.items():  # prepare-data's reports name the hub data set each file came from
        (tmp_path / f"{name}.report.json").write_text(json.dumps({"source": record["id"], "hub": [record]}))
    for method, options in (("armo", {"gate_steps": 10, "gate_hidden": 8, "gate_batch": 16}), ("tree", {})):
        (tmp_path / f"{method}.json").write_text(spec_for(method, "unused", tmp_path / "pairs.parquet", max_length=96,
                                                          options=options, test_defaults=False).to_json())
    os.environ["HF_HUB_CACHE"] = str(tmp_path / "hub")
    try:
        pairs, probe = str(tmp_path / "pairs.parquet"), str(tmp_path / "stage1")
        steps = [("armo", "probe", {"attributes": str(attributes)}, probe),
                 ("armo", "gate", {"probe": probe, "data": pairs}, tmp_path / "armo"),
                 ("tree", "fit", {"probe": probe, "data": pairs}, tmp_path / "tree")]
        for method, stage, inputs, out in steps:
            proc = run_cli("stage", "--method", method, "--stage", stage, "--spec", str(tmp_path / f"{method}.json"),
                           "--inputs", json.dumps({**inputs, "backbone": backbone}), "--out", str(out))
            assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        del os.environ["HF_HUB_CACHE"]
    expected = {"base": {"id": backbone, "revision": "main", "commit": commit},
                "train_data": [records["attributes"], records["pairs"]]}
    for model in ("armo", "tree"):
        assert json.loads((tmp_path / model / "rmflow_run.json").read_text())["hub"] == expected, model
        assert json.loads((tmp_path / model / "metrics.json").read_text())["hub"] == expected, model


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


# ---- 7. ArmoRM's gate: softmax(z / temperature) from the saved head, in numpy ------------------------------------
@pytest.mark.slow
def test_armo_gate_from_the_saved_head_uses_its_temperature(tmp_path, synthetic, trained_bt):
    from helpers import prepared
    from rmflow.data.prepare import read_pairs, write_pairs
    from rmflow.methods import armo
    from rmflow.models.scalar import hidden_at_last
    from rmflow.train.batching import encode

    attributes = prepared(tmp_path / "attributes.parquet", synthetic["attributes"], "multi_objective")
    write_pairs(synthetic["train"], tmp_path / "pairs.parquet")
    spec = spec_for("armo", "unused", tmp_path / "pairs.parquet", max_length=128, test_defaults=False,
                    options={"gate_steps": 80, "gate_hidden": 16, "gate_batch": 64, "temperature": 2.0})
    (tmp_path / "spec.json").write_text(spec.to_json())
    armo.main_stage1(str(tmp_path / "spec.json"), str(trained_bt), str(attributes), str(tmp_path / "stage1"))
    armo.main_stage2(str(tmp_path / "spec.json"), str(trained_bt), str(tmp_path / "stage1"),
                     str(tmp_path / "pairs.parquet"), str(tmp_path / "model"))
    head = {k: v.double().numpy() for k, v in load_file(str(tmp_path / "model/armo_head.safetensors")).items()}
    scorer = armo.ArmoScorer(str(tmp_path / "model"))
    conversation = synthetic["train"][0]["chosen"]
    ids = encode(scorer.tokenizer, conversation[:-1], 128, "left", generation_prompt=True)
    with torch.no_grad():
        z = hidden_at_last(scorer.model, torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))
    z = z.double().numpy()[0]
    n = json.loads((tmp_path / "model/armo_config.json").read_text())["gate_layers"]  # linear layers, last = logits
    for i in range(n):
        z = head[f"gate.{i}.weight"] @ z + head[f"gate.{i}.bias"]
        z = np.maximum(z, 0) if i < n - 1 else z
    expected = np.exp(z / 2.0) / np.exp(z / 2.0).sum()
    gates = np.array(scorer.details([conversation])["gates"][0])
    assert gates == pytest.approx(expected, abs=1e-5)
    assert not np.allclose(np.exp(z) / np.exp(z).sum(), expected, atol=1e-3), "the temperature must matter here"
    # training used the same gate: the validation accuracy it recorded is the scorer's on the same pairs
    rows = read_pairs(tmp_path / "pairs.parquet")
    order = np.random.default_rng(0).permutation(len(rows))
    val = [rows[i] for i in order[:max(1, int(round(0.2 * len(rows))))]]
    scored = scorer.score_pairs(val)
    accuracy = np.mean([c > r for c, r in zip(scored["score_chosen"], scored["score_rejected"])])
    recorded = json.loads((tmp_path / "model/metrics.json").read_text())["validation_accuracy"]
    assert accuracy == pytest.approx(recorded, abs=1e-6)  # the recorded one went through float32


@pytest.mark.slow
def test_a_large_embedding_is_kept_chunk_by_chunk_and_a_rerun_resumes(trained_bt, synthetic, tmp_path, monkeypatch,
                                                                       caplog):
    """Inside the stage command's checkpoint directory, ArmoRM's and the tree's embeddings of a set larger than a
    chunk are saved chunk by chunk; a job killed after the first chunk resumes from it, and the result equals the
    embedding in one pass."""
    import logging

    from rmflow.methods.frozen import backbone
    from rmflow.train.checkpoint import checkpoint_directory

    model, tokenizer = backbone.load_backbone(str(trained_bt), device="cpu")
    texts = [r["chosen"] for r in synthetic["train"][:12]]
    whole = backbone.embed(model, tokenizer, texts, 128, "left")
    monkeypatch.setattr(backbone, "EMBED_CHUNK", 5)
    real, calls = backbone._embed_batches, []

    def killed_after_one(*args):
        if calls:
            raise KeyboardInterrupt("the job's time limit")
        calls.append(len(args[2]))
        return real(*args)

    monkeypatch.setattr(backbone, "_embed_batches", killed_after_one)
    with checkpoint_directory(tmp_path), pytest.raises(KeyboardInterrupt):
        backbone.embed(model, tokenizer, texts, 128, "left")
    saved = sorted(p.name for p in tmp_path.rglob("chunk-*.safetensors"))
    assert saved == ["chunk-00000.safetensors"]

    def counting(*args):
        calls.append(len(args[2]))
        return real(*args)

    calls.clear()
    monkeypatch.setattr(backbone, "_embed_batches", counting)
    with checkpoint_directory(tmp_path), caplog.at_level(logging.INFO, logger=backbone.__name__):
        resumed = backbone.embed(model, tokenizer, texts, 128, "left")
    assert calls == [5, 2] and "read from" in caplog.text  # chunk 0 read back; chunks 1 and 2 embedded
    assert np.allclose(resumed, whole, atol=1e-5)
    # other texts (or another model) never read these chunks
    calls.clear()
    with checkpoint_directory(tmp_path):
        backbone.embed(model, tokenizer, texts[::-1], 128, "left")
    assert calls == [5, 5, 2]
