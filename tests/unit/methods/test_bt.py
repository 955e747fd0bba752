"""BT loss, last-token pooling with either padding side, training metrics, and reload in plain transformers."""

from __future__ import annotations

import json
import math

import pytest
import torch

from helpers import spec_for
from rmflow.errors import RmflowError
from rmflow.methods import bt
from rmflow.models.scalar import last_token_index, rewards
from rmflow.train.batching import encode, length_grouped_batches, pad, padding_fraction


def test_bt_loss_hand_computed():
    r_c, r_r = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    expected = (-math.log(1 / (1 + math.exp(-1))) - math.log(1 / (1 + math.exp(1)))) / 2
    assert bt.bt_loss(r_c, r_r).item() == pytest.approx(expected, rel=1e-6)
    # a margin of 1 on the first pair moves its difference to 0: -log(0.5)
    with_margin = bt.bt_loss(r_c, r_r, margin=torch.tensor([1.0, 0.0])).item()
    assert with_margin == pytest.approx((math.log(2) - math.log(1 / (1 + math.exp(1)))) / 2, rel=1e-6)
    centred = bt.bt_loss(r_c, r_r, center_coefficient=0.1).item()
    assert centred == pytest.approx(expected + 0.1 * (9 + 1) / 2, rel=1e-6)


def test_last_token_index_left_and_right():
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_index(right).tolist() == [2, 4]
    assert last_token_index(left).tolist() == [4, 4]


def test_rewards_identical_under_left_and_right_padding(tiny_base):
    from rmflow.models.load import load_model, load_tokenizer

    tok = load_tokenizer(str(tiny_base))
    model = load_model(str(tiny_base), tok, num_labels=1).eval()
    convs = [[{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}],
             [{"role": "user", "content": "List 3 fruits please, one per line."},
              {"role": "assistant", "content": "- apple\n- pear\n- plum"}]]
    seqs = [encode(tok, c, 128, "left") for c in convs]
    assert len(seqs[0]) != len(seqs[1])
    with torch.no_grad():
        alone = [rewards(model, *pad([s], tok.pad_token_id)).item() for s in seqs]
        right = rewards(model, *pad(seqs, tok.pad_token_id, "right")).tolist()
        left = rewards(model, *pad(seqs, tok.pad_token_id, "left")).tolist()
    assert right == pytest.approx(alone, abs=1e-5)
    assert left == pytest.approx(alone, abs=1e-5)


def test_no_double_bos_and_left_truncation(tiny_base):
    from rmflow.models.load import load_tokenizer

    tok = load_tokenizer(str(tiny_base))
    conv = [{"role": "user", "content": "word " * 50}, {"role": "assistant", "content": "the end"}]
    ids = encode(tok, conv, 10_000, "left")
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    short = encode(tok, conv, 12, "left")
    assert len(short) == 12 and short == ids[-12:]
    assert encode(tok, conv, 12, "right") == ids[:12]


def test_length_grouping_cuts_padding_and_keeps_every_pair():
    import random

    rng = random.Random(0)
    lengths = [rng.choice([5, 10, 200, 400]) for _ in range(400)]
    grouped = length_grouped_batches(lengths, 8, seed=1)
    plain = length_grouped_batches(lengths, 8, seed=1, group=False)
    assert sorted(i for b in grouped for i in b) == list(range(400))
    as_seqs = lambda batches: [[[0] * lengths[i] for i in b] for b in batches]  # noqa: E731
    assert padding_fraction(as_seqs(grouped)) < 0.1 < padding_fraction(as_seqs(plain))


@pytest.mark.slow
def test_training_writes_metrics_and_hf_layout(trained_bt):
    names = {p.name for p in trained_bt.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "metrics.json", "rmflow_run.json",
            "train_log.jsonl"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    metrics = json.loads((trained_bt / "metrics.json").read_text())
    for key in ("final_loss", "train_accuracy", "tokens_seen", "wall_time_s", "padding_fraction"):
        assert key in metrics
    assert metrics["optimizer_steps"] == 6 and metrics["pairs_seen"] == 48
    assert 0 <= metrics["padding_fraction"] < 1 and math.isfinite(metrics["final_loss"])
    assert len((trained_bt / "train_log.jsonl").read_text().splitlines()) == 3


@pytest.mark.slow
def test_saved_model_reloads_in_plain_transformers_with_same_scores(trained_bt):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    scorer = bt.load_scorer(str(trained_bt))
    rows = [{"chosen": [{"role": "user", "content": "Translate 'cat' into French."},
                        {"role": "assistant", "content": "The French word for 'cat' is 'chat'."}],
             "rejected": [{"role": "user", "content": "Translate 'cat' into French."},
                          {"role": "assistant", "content": "No."}]}]
    ours = scorer.score_pairs(rows)
    # plain transformers, no rmflow code: the model card's recipe
    tok = AutoTokenizer.from_pretrained(trained_bt)
    model = AutoModelForSequenceClassification.from_pretrained(trained_bt).eval()
    texts = [tok.apply_chat_template(rows[0][k], tokenize=False) for k in ("chosen", "rejected")]
    batch = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    with torch.no_grad():
        plain = model(**batch).logits.squeeze(-1).tolist()
    assert plain == pytest.approx([ours["score_chosen"][0], ours["score_rejected"][0]], abs=1e-5)
    assert model.config.pad_token_id == tok.pad_token_id


def test_model_without_pad_token_gets_one(tmp_path, tiny_base):
    from transformers import AutoTokenizer

    from rmflow.models.load import NEW_PAD_TOKEN, load_model, load_tokenizer

    tok = AutoTokenizer.from_pretrained(tiny_base)
    tok.pad_token = tok.eos_token  # the Llama-3 situation: pad == eos
    tok.save_pretrained(tmp_path)
    for f in ("config.json", "model.safetensors"):
        (tmp_path / f).write_bytes((tiny_base / f).read_bytes())
    fixed = load_tokenizer(str(tmp_path))
    assert fixed.pad_token == NEW_PAD_TOKEN and fixed.pad_token_id != fixed.eos_token_id
    model = load_model(str(tmp_path), fixed, num_labels=1)
    assert model.config.pad_token_id == fixed.pad_token_id
    assert model.get_input_embeddings().num_embeddings >= len(fixed)


def test_missing_base_path_and_offline_hub_id_are_clear_errors(tmp_path):
    from rmflow.errors import RmflowError
    from rmflow.models.load import load_tokenizer

    with pytest.raises(RmflowError, match="base model path './no/such/model' does not exist"):
        load_tokenizer("./no/such/model")
    with pytest.raises(RmflowError, match="set the base model's 'model' to DIR"):
        load_tokenizer("some-org/not-cached-model")


def test_sharding_gives_every_process_the_same_number_of_batches():
    from rmflow.train.loop import _shard

    batches = [[i] for i in range(7)]
    shards = [_shard(batches, rank, 3) for rank in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    seen = [b[0] for s in shards for b in s]
    assert set(seen) == set(range(7)) and len(seen) == 9  # nothing dropped, two repeated
    assert _shard(batches, 0, 1) == batches


def test_rows_with_keys_only_late_rows_carry_keep_them(tmp_path):
    import polars as pl

    from rmflow.methods._io import write_rows

    rows = [{"a": i} for i in range(150)] + [{"a": 1, "late": "x"}]
    write_rows(rows, tmp_path / "r.parquet")
    assert pl.read_parquet(tmp_path / "r.parquet")["late"].to_list()[-1] == "x"


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
