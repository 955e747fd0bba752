"""ODIN: the losses on a hand-computed batch, training, and reload in plain transformers (quality head)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from helpers import spec_for
from rmflow.evaluate.run import length_correlation
from rmflow.methods import odin


def test_pearson_and_orthogonality_by_hand():
    assert odin.pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0])).item() == pytest.approx(1)
    assert odin.pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])).item() == pytest.approx(-1)
    # rows centre to (-1, 1, 0) and (1, -1, 0): opposite directions, |cos| = 1
    assert odin.orthogonality(torch.tensor([[0.0, 2.0, 1.0], [2.0, 0.0, 1.0]])).item() == pytest.approx(1)
    # (-1, 1, 0) and (-1, -1, 2) are orthogonal
    assert odin.orthogonality(torch.tensor([[0.0, 2.0, 1.0], [0.0, 0.0, 3.0]])).item() == pytest.approx(0, abs=1e-7)


def test_odin_losses_hand_computed():
    # two pairs, rows [c0, r0, c1, r1]; columns (length head, quality head)
    scores = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0], [4.0, 1.0]])
    lengths = torch.tensor([10.0, 30.0, 20.0, 40.0])
    weight = torch.tensor([[0.0, 2.0, 1.0], [0.0, 0.0, 3.0]])
    out = odin.odin_losses(scores, lengths, weight, odin.Config(length_weight=0.5, ortho_weight=2.0))
    # totals 3, 3, 3, 5: pair differences 0 and -2
    rank = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert out["rank"].item() == pytest.approx(rank, rel=1e-6)
    assert out["length_fit"].item() == pytest.approx(0, abs=1e-6)  # r_L = (len - 10) / 10 + 1: perfectly linear
    # quality (2, 0, 1, 1) vs length (10, 30, 20, 40): centred (1,-1,0,0)·(-15,5,-5,15) = -20; norms √2 and √500
    rho_q = -20 / (math.sqrt(2) * math.sqrt(500))
    assert out["quality_free"].item() == pytest.approx(abs(rho_q), rel=1e-5)
    assert out["loss"].item() == pytest.approx(rank + 0.5 * (0 + abs(rho_q)) + 2.0 * 0, rel=1e-5)


def test_length_correlation_of_scalar_scores():
    rows = [{"chosen": [{"role": "assistant", "content": "x" * n}],
             "rejected": [{"role": "assistant", "content": "y" * (n + 1)}]} for n in (1, 5)]
    scored = {"score_chosen": [1.0, 5.0], "score_rejected": [2.0, 6.0]}
    assert length_correlation(rows, scored) == pytest.approx(1.0)
    assert length_correlation(rows, {"p_chosen": [0.5, 0.5]}) is None


@pytest.mark.slow
def test_odin_trains_and_reloads_in_plain_transformers(tmp_path, synthetic, tiny_base):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rmflow.data.prepare import write_pairs

    write_pairs(synthetic["train"], tmp_path / "train.parquet")
    spec = spec_for("odin", tiny_base, tmp_path / "train.parquet", log_every=2)
    odin.train(spec, str(tmp_path / "model"))
    metrics = json.loads((tmp_path / "model/metrics.json").read_text())
    assert metrics["reward_head"] == 1 and metrics["optimizer_steps"] == 4
    # its four terms are logged beside the loss, per pair, and they add up to it with the configured weights
    options = spec.options
    for record in map(json.loads, (tmp_path / "model/train_log.jsonl").read_text().splitlines()):
        terms = record["terms"]
        assert set(terms) == {"rank", "length_fit", "quality_free", "ortho"}
        recombined = (terms["rank"] + options.length_weight * (terms["length_fit"] + terms["quality_free"])
                      + options.ortho_weight * terms["ortho"])
        assert record["loss"] == pytest.approx(recombined, rel=1e-5)
    row = synthetic["train"][0]
    ours = odin.load_scorer(str(tmp_path / "model")).score_pairs([row])
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model").eval()
    assert model.config.num_labels == 2
    texts = [tok.apply_chat_template(row[k], tokenize=False) for k in ("chosen", "rejected")]
    with torch.no_grad():
        logits = model(**tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")).logits
    assert logits[:, 1].tolist() == pytest.approx([ours["score_chosen"][0], ours["score_rejected"][0]], abs=1e-5)


# ---- 6. ODIN: the orthogonality term on heads that are not orthogonal --------------------------------------------
def test_odin_loss_includes_the_orthogonality_of_non_orthogonal_heads():
    import math

    from rmflow.methods import odin

    scores = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0], [4.0, 1.0]])
    lengths = torch.tensor([10.0, 30.0, 20.0, 40.0])
    weight = torch.tensor([[1.0, 2.0, 3.0], [1.0, 3.0, 2.0]])
    # centred rows (-1, 0, 1) and (-1, 1, 0): cos = 1 / (sqrt 2 * sqrt 2) = 0.5
    out = odin.odin_losses(scores, lengths, weight, odin.Config(length_weight=0.0, ortho_weight=3.0))
    rank = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert out["ortho"].item() == pytest.approx(0.5, rel=1e-6)
    assert out["loss"].item() == pytest.approx(rank + 3.0 * 0.5, rel=1e-6)
