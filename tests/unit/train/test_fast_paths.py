"""The fast paths the benchmarks measure give the simple path's numbers: split forwards vs one padded forward,
length-sorted token-budget scoring vs one text at a time, and BT training with and without the split."""

from __future__ import annotations

import json
import random

import pytest
import torch

from helpers import spec_for
from rmflow.train.batching import pad, padded_tokens, padding_chunks


def test_padding_chunks_cover_every_sequence_once_within_the_limit():
    rng = random.Random(0)
    lengths = [int(rng.lognormvariate(4.5, 1.0)) + 1 for _ in range(64)]
    chunks = padding_chunks(lengths, 0.1)
    assert sorted(i for c in chunks for i in c) == list(range(64))
    for chunk in chunks:
        width = max(lengths[i] for i in chunk)
        assert 1 - sum(lengths[i] for i in chunk) / (width * len(chunk)) <= 0.1
    assert padding_chunks(lengths, 1.0) == [sorted(range(64), key=lambda i: -lengths[i])]
    real = sum(lengths)
    assert padded_tokens([[0] * n for n in lengths], 0.1) <= real / 0.9
    assert padded_tokens([[0] * n for n in lengths], 1.0) == 64 * max(lengths)


def _sequences(tokenizer, n=12, seed=0):
    rng = random.Random(seed)
    words = "reward model answer helpful because first then result".split()
    return [tokenizer(" ".join(rng.choice(words) for _ in range(rng.randint(2, 120))),
                      add_special_tokens=False)["input_ids"] for _ in range(n)]


def test_split_forward_equals_one_padded_forward_with_gradients(tiny_base):
    from rmflow.methods.scalar.train import forward_in_parts
    from rmflow.models.load import load_model, load_tokenizer
    from rmflow.models.scalar import head_outputs

    tokenizer = load_tokenizer(str(tiny_base))
    model = load_model(str(tiny_base), tokenizer, num_labels=1)
    seqs = _sequences(tokenizer)
    fast = forward_in_parts(model, seqs, tokenizer.pad_token_id, "cpu", 0.1)
    fast.sum().backward()
    fast_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    ids, mask = pad(seqs, tokenizer.pad_token_id)
    simple = head_outputs(model, ids, mask)
    simple.sum().backward()
    assert len(padding_chunks([len(s) for s in seqs], 0.1)) > 1  # the split really happened
    assert torch.allclose(fast, simple, atol=1e-5)
    for a, p in zip(fast_grads, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-5)


@pytest.mark.slow
def test_token_budget_scoring_equals_one_text_at_a_time(trained_bt):
    from rmflow.methods.scalar.train import load_scalar_scorer

    scorer = load_scalar_scorer(str(trained_bt), batch_size=8)
    scorer.max_batch_tokens = 256
    rng = random.Random(1)
    convs = [[{"role": "user", "content": "q " * rng.randint(1, 60)},
              {"role": "assistant", "content": "a " * rng.randint(1, 90)}] for _ in range(30)]
    batches = scorer.batches([len(c[0]["content"]) for c in convs])
    assert sorted(i for b in batches for i in b) == list(range(30))
    fast = scorer.score_conversations(convs, progress=False)
    scorer.batch_size = 1
    one_by_one = scorer.score_conversations(convs, progress=False)
    assert max(abs(a - b) for a, b in zip(fast, one_by_one)) < 1e-4


@pytest.mark.slow
def test_bt_training_with_and_without_split_forwards(tmp_path, synthetic, tiny_base):
    from rmflow.data.prepare import write_pairs
    from rmflow.methods import bt

    write_pairs(synthetic["train"], tmp_path / "train.parquet")
    losses, metrics = {}, {}
    for split in (0.1, 1.0):
        spec = spec_for("bt", tiny_base, tmp_path / "train.parquet", max_steps=8, split_padding=split)
        out = tmp_path / f"m{split}"
        bt.train(spec, str(out))
        losses[split] = [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]
        metrics[split] = json.loads((out / "metrics.json").read_text())
    assert losses[0.1] == pytest.approx(losses[1.0], abs=1e-5)
    assert metrics[0.1]["tokens_seen"] == metrics[1.0]["tokens_seen"]
    assert metrics[0.1]["padding_fraction"] < metrics[1.0]["padding_fraction"]


@pytest.mark.slow
def test_shared_prompt_scoring_equals_scoring_each_text_whole(trained_bt):
    """Pairs share their prompt: computed once, its keys and values reused for both answers, the rewards are the
    ones each whole text gets on its own; a pair cut at max_length, or with a short common prefix, is scored whole."""
    from rmflow.methods.scalar.train import load_scalar_scorer
    from rmflow.train.token_cache import encode_all

    scorer = load_scalar_scorer(str(trained_bt), batch_size=8)
    scorer.max_length = 400  # nothing cut (the tiny base has 512 positions)
    rng = random.Random(2)
    rows = []
    for _ in range(12):
        prompt = [{"role": "user", "content": " ".join(rng.choice("abcdefgh") for _ in range(rng.randint(50, 100)))}]
        rows.append({"chosen": prompt + [{"role": "assistant", "content": "yes " * rng.randint(1, 30)}],
                     "rejected": prompt + [{"role": "assistant", "content": "no " * rng.randint(1, 30)}]})
    rows.append({"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                 "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]})
    flat = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    n = len(rows)
    encoded = encode_all(scorer.tokenizer, flat, scorer.max_length, scorer.truncation_side)
    shareable = scorer._shareable(encoded, [[i, n + i] for i in range(n)])
    assert len(shareable) == 12, "every pair but the one with a two-token prompt shares its prefix"
    paired = scorer.score_pairs(rows)
    whole = [scorer.score_conversations([c], progress=False)[0] for c in flat]
    assert max(abs(a - b) for a, b in zip(paired["score_chosen"] + paired["score_rejected"], whole)) < 1e-4
    scorer.max_length = 40  # now the long pairs are cut: never shared
    assert len(scorer._shareable(encode_all(scorer.tokenizer, flat, 40, "left"), [[i, n + i] for i in range(n)])) \
        < 12
