"""Training only some parameters: the top k layers + head, or LoRA adapters merged into a plain saved model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from helpers import spec_for
from rmflow.errors import RmflowError
from rmflow.methods import bt


def _train(tmp_path, synthetic, base, **train) -> tuple:
    from rmflow.data.prepare import write_pairs

    write_pairs(synthetic["train"], tmp_path / "train.parquet")
    spec = spec_for("bt", base, tmp_path / "train.parquet", lr=5e-2, max_steps=3, train=train)
    bt.train(spec, str(tmp_path / "model"))
    weights = load_file(str(tmp_path / "model/model.safetensors"))
    return weights, json.loads((tmp_path / "model/metrics.json").read_text())


@pytest.fixture(scope="module")
def two_layer_base(tmp_path_factory, synthetic):
    from rmflow.models.tiny import TinySpec, build

    out = tmp_path_factory.mktemp("bases") / "two"
    corpus = [m["content"] for r in synthetic["train"] for s in ("chosen", "rejected") for m in r[s]]
    build(TinySpec(family="llama", vocab_size=400, hidden_size=32, intermediate_size=64, num_layers=3,
                   num_heads=2, num_kv_heads=1, max_position_embeddings=512), corpus, out)
    return out


def _base_weights(base) -> dict:
    return load_file(str(base / "model.safetensors"))


@pytest.mark.slow
def test_top_layer_and_head_train_the_rest_stays_frozen(tmp_path, synthetic, two_layer_base):
    trained, metrics = _train(tmp_path, synthetic, two_layer_base, train_layers=1)
    before = _base_weights(two_layer_base)
    changed = {k for k in before if k in trained and not torch.equal(before[k], trained[k])}
    assert changed, "the top layer trained"
    assert all(k.startswith(("model.layers.2.", "model.norm.")) for k in changed), changed
    assert any(k.startswith("model.layers.2.") for k in changed) and "score.weight" in trained
    assert metrics["trainable"]["trained"] == "top 1 of 3 layers + head"
    assert metrics["trainable"]["parameters_trained"] < metrics["trainable"]["parameters_total"] / 2


@pytest.mark.slow
def test_lora_is_merged_into_a_plain_model_that_scores_like_rmflow(tmp_path, synthetic, two_layer_base):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    trained, metrics = _train(tmp_path, synthetic, two_layer_base, lora_r=4, lora_alpha=8.0)
    assert not [k for k in trained if "lora" in k], "adapters merged, not saved"
    before = _base_weights(two_layer_base)
    changed = {k for k in before if k in trained and not torch.equal(before[k], trained[k])}
    assert changed and all(".layers." in k and k.endswith("proj.weight") or k.startswith("model.norm") for k in changed)
    assert not any("embed_tokens" in k for k in changed)
    assert "LoRA r=4" in metrics["trainable"]["trained"]
    # plain transformers, no peft, no rmflow: the same reward as rmflow's scorer
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model").eval()
    row = synthetic["test"][0]
    conv = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["chosen"]}]
    text = tok.apply_chat_template(conv, tokenize=False)
    with torch.no_grad():
        plain = model(**tok(text, add_special_tokens=False, return_tensors="pt")).logits[0, 0].item()
    ours = bt.load_scorer(str(tmp_path / "model")).score_conversations([conv], progress=False)[0]
    assert plain == pytest.approx(ours, abs=1e-5)


@pytest.mark.slow
def test_bad_trainable_options_are_named(tmp_path, synthetic, two_layer_base):
    with pytest.raises(RmflowError, match=r"train_layers must lie in 1..3"):
        _train(tmp_path, synthetic, two_layer_base, train_layers=7)
    with pytest.raises(RmflowError, match="ZeRO"):
        _train(tmp_path, synthetic, two_layer_base, lora_r=4, deepspeed="config/deepspeed/zero3.json")
