"""Shared-prompt training (rmflow.train.shared_prompt): a pair packed as [prompt | chosen | rejected] under a block
mask gives the separate forwards' rewards and gradients, on a Llama and a Gemma-3 stand-in (sliding window layers
included), with eager and SDPA attention, at several lengths and under truncation; a BT run with it on trains the
losses of a run with it off, and says what it saved."""

from __future__ import annotations

import json
import random

import pytest
import torch

from helpers import spec_for
from rmflow.train.batching import cut, pad
from rmflow.train.shared_prompt import (
    PackedPair,
    pack_pair,
    packed_batch,
    pair_head_outputs,
    pair_outputs_in_parts,
    why_not_shared,
)


def test_right_truncation_keeps_each_sides_first_tokens_as_the_separate_cut_does():
    prompt, chosen, rejected = list(range(10)), [100, 101, 102], [200]
    for max_length in (4, 10, 11, 12, 13, 20):
        pair = pack_pair(prompt + chosen, prompt + rejected, max_length, "right")
        assert pair.views() == (cut(prompt + chosen, max_length, "right"), cut(prompt + rejected, max_length, "right"))
        assert pair.chosen and pair.rejected  # each answer keeps a token: its reward is read there


def test_left_truncation_cuts_the_prompt_once_for_both_answers():
    prompt, chosen, rejected = list(range(10)), [100, 101, 102, 103], [200]
    pair = pack_pair(prompt + chosen, prompt + rejected, 8, "left")
    assert pair == PackedPair(prompt=[6, 7, 8, 9], chosen=chosen, rejected=rejected)
    # the longer side is the separate cut; the shorter one reads the same prompt, not a longer copy of it
    assert pair.views()[0] == cut(prompt + chosen, 8, "left")
    assert pair.views()[1] == [6, 7, 8, 9, 200] != cut(prompt + rejected, 8, "left")
    # an answer longer than max_length: no prompt, each answer's own end
    long = pack_pair(prompt + list(range(100, 120)), prompt + rejected, 8, "left")
    assert long == PackedPair(prompt=[], chosen=list(range(112, 120)), rejected=rejected)
    # nothing to cut: both views are the whole sides
    assert pack_pair(prompt + chosen, prompt + rejected, 64, "left").views() == (prompt + chosen, prompt + rejected)


def test_identical_sides_and_no_common_prompt_still_give_every_answer_a_token():
    same = pack_pair([1, 2, 3], [1, 2, 3], 16, "left")
    assert same == PackedPair(prompt=[1, 2], chosen=[3], rejected=[3])
    disjoint = pack_pair([5, 6], [7], 16, "left")
    assert disjoint == PackedPair(prompt=[], chosen=[5, 6], rejected=[7])


def _llama(tiny_base):
    from rmflow.models.load import load_model, load_tokenizer

    tokenizer = load_tokenizer(str(tiny_base))
    return load_model(str(tiny_base), tokenizer, num_labels=2), tokenizer.pad_token_id


def _gemma3(vocab: int = 400, window: int = 8):
    """A Gemma-3 text stand-in whose first layer has a sliding window far shorter than the rows."""
    from transformers import Gemma3TextConfig, Gemma3TextForSequenceClassification

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=window,
                              layer_types=["sliding_attention", "full_attention"], max_position_embeddings=512,
                              pad_token_id=0, num_labels=2)
    return Gemma3TextForSequenceClassification(config).float(), 0


def _pairs(n: int, vocab: int, seed: int, longest: int = 60) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = [rng.randrange(1, vocab) for _ in range(rng.choice([0, 1, 5, rng.randint(6, longest)]))]
        out.append((prompt + [rng.randrange(1, vocab) for _ in range(rng.randint(1, 30))],
                    prompt + [rng.randrange(1, vocab) for _ in range(rng.randint(1, 30))]))
    return out


def _separate(model, packed: list[PackedPair], pad_id: int):
    from rmflow.models.scalar import head_outputs

    ids, mask = pad([view for p in packed for view in p.views()], pad_id)
    return head_outputs(model, ids, mask)


def _outputs_and_grads(model, run):
    model.zero_grad()
    out = run()
    weights = torch.linspace(-1, 1, out.numel()).reshape(out.shape)  # every output weighs differently
    (out * weights).sum().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("family", ["llama", "gemma3"])
@pytest.mark.parametrize("max_length,side", [(512, "left"), (40, "left"), (40, "right"), (12, "left")])
def test_packed_rows_give_the_separate_forwards_rewards_and_gradients(tiny_base, family, attention, max_length,
                                                                       side):
    model, pad_id = _llama(tiny_base) if family == "llama" else _gemma3()
    model.set_attn_implementation(attention)
    assert why_not_shared(model) is None
    packed = [pack_pair(c, r, max_length, side) for c, r in _pairs(10, 400, seed=max_length)]
    assert max(len(v) for p in packed for v in p.views()) <= max_length
    if max_length == 512:
        assert any(len(p.prompt) > 8 for p in packed)  # past the Gemma stand-in's sliding window
    separate, separate_grads = _outputs_and_grads(model, lambda: _separate(model, packed, pad_id))
    one_pass, one_pass_grads = _outputs_and_grads(model, lambda: pair_head_outputs(model, packed, pad_id, "cpu"))
    split, split_grads = _outputs_and_grads(model, lambda: pair_outputs_in_parts(model, packed, pad_id, "cpu", 0.1))
    assert separate.shape == one_pass.shape == (2 * len(packed), 2)
    for out, grads in ((one_pass, one_pass_grads), (split, split_grads)):
        assert torch.allclose(out, separate, atol=1e-5), (out - separate).abs().max()
        assert len(grads) == len(separate_grads)
        for a, b in zip(grads, separate_grads):
            assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_the_sliding_window_mask_matters_for_the_gemma_stand_in():
    """A guard on the test above: with the full mask on the sliding layers the rewards would differ."""
    model, pad_id = _gemma3()
    model.set_attn_implementation("sdpa")
    packed = [pack_pair(c, r, 512, "left") for c, r in _pairs(6, 400, seed=3) if len(c) > 30]
    wrong = dict(model.config.to_dict(), layer_types=["full_attention", "full_attention"])
    with torch.no_grad():
        ids, mask, positions, ends = packed_batch(packed, pad_id, type(model.config)(**wrong), "cpu")
        hidden = model.model(input_ids=ids, attention_mask={"full_attention": mask, "sliding_attention": mask},
                             position_ids=positions).last_hidden_state
        rows = torch.arange(len(packed))[:, None].expand(-1, 2)
        full_mask = model.score(hidden[rows, ends].reshape(2 * len(packed), -1))
        separate = _separate(model, packed, pad_id)
    assert not torch.allclose(full_mask, separate, atol=1e-3)


def test_attention_without_a_block_mask_keeps_the_separate_path(tiny_base):
    model, _ = _llama(tiny_base)
    model.config._attn_implementation = "flash_attention_2"
    assert "takes no block mask" in why_not_shared(model)


def _train_bt(work, synthetic, tiny_base, name: str, **train) -> tuple[list[float], dict]:
    from rmflow.data.prepare import write_pairs
    from rmflow.methods import bt

    data = work / "train.parquet"
    if not data.exists():
        write_pairs(synthetic["train"][:64], data)
    spec = spec_for("bt", tiny_base, data, max_length=512, warmup_steps=0, train=train)
    bt.train(spec, str(work / name))
    losses = [json.loads(line)["loss"] for line in (work / name / "train_log.jsonl").read_text().splitlines()]
    return losses, json.loads((work / name / "metrics.json").read_text())


@pytest.mark.slow
def test_bt_trains_the_same_losses_with_the_prompt_shared_and_says_what_it_saved(tmp_path, synthetic, tiny_base):
    shared_losses, shared = _train_bt(tmp_path, synthetic, tiny_base, "shared")
    separate_losses, separate = _train_bt(tmp_path, synthetic, tiny_base, "separate", share_prompt=False)
    assert shared_losses == pytest.approx(separate_losses, abs=1e-5)
    assert shared["train_accuracy"] == separate["train_accuracy"]
    assert shared["share_prompt"]["used"] and shared["share_prompt"]["pairs_cut_once"] == 0
    assert shared["share_prompt"]["prompt_share_saved"] > 0.1
    assert separate["share_prompt"] == {"used": False, "reason": "train.share_prompt is false"}
    use, plain = shared["utilisation"], separate["utilisation"]
    assert use["tokens"] == plain["tokens"] == shared["tokens_seen"]  # counted as peers count: the prompt twice
    assert use["computed_tokens"] < use["tokens"] and plain["computed_tokens"] == plain["tokens"]
    assert use["prompt_share_saved"] == pytest.approx(1 - use["computed_tokens"] / use["tokens"], abs=1e-4)
    for record in (use, plain):
        assert record["achieved_flops"] == pytest.approx(
            record["computed_tokens"] * record["model_flops_per_token"] / record["seconds"], rel=1e-3)
        assert record["mfu"] == pytest.approx(record["achieved_flops"] / record["peak_flops"], abs=1e-4)
        assert 0 <= record["padding_fraction"] < 1
