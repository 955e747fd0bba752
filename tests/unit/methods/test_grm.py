"""GRM: the SFT term is the base causal LM's own log-probability of the chosen answer (tied and untied heads, the
shared-prompt and the separate path), alpha 0 trains BT bit for bit, the terms are logged and recombine to the loss,
and the saved model is a plain sequence classifier without the training-only LM head."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import spec_for
from rmflow.methods import bt, grm


def _untied_copy(tiny_base, out):
    """The tiny base with its own LM head (Llama-3's layout): a causal LM whose lm_head differs from the embedding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    model.config.tie_word_embeddings = False
    torch.manual_seed(3)
    model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight) * 0.05)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_base).save_pretrained(out)
    return out


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("shared", [True, False])
def test_the_sft_term_is_the_causal_lms_log_probability_of_the_chosen_answer(tmp_path, synthetic, tiny_base, tied,
                                                                              shared):
    from transformers import AutoModelForCausalLM

    from rmflow.methods.scalar.train import answer_start, forward_in_parts
    from rmflow.models.load import load_model, load_tokenizer
    from rmflow.train.batching import encode
    from rmflow.train.save import TRAINING_ONLY
    from rmflow.train.shared_prompt import pack_pair, pair_outputs_in_parts

    base = str(tiny_base if tied else _untied_copy(tiny_base, tmp_path / "untied"))
    tok = load_tokenizer(base)
    rows = synthetic["train"][:3]
    sides = [(encode(tok, r["chosen"], 512, "left"), encode(tok, r["rejected"], 512, "left")) for r in rows]
    classifier = load_model(base, tok, num_labels=1).eval()
    grm.attach_lm_head(classifier, base, None)
    head = getattr(classifier, TRAINING_ONLY)[grm.LM_HEAD]
    with torch.no_grad():
        if shared:
            pairs = [pack_pair(c, r, 512, "left") for c, r in sides]
            _, answers = pair_outputs_in_parts(classifier, pairs, tok.pad_token_id, "cpu", 1.0, keep_answers=True)
        else:
            sequences = [s for pair in sides for s in pair]
            starts = [answer_start(*pair) for pair in sides for _ in (0, 1)]
            _, answers = forward_in_parts(classifier, sequences, tok.pad_token_id, "cpu", 1.0, starts)
        ours = grm.answer_logps(head, answers[0::2], None)

        lm = AutoModelForCausalLM.from_pretrained(base).eval()
        expected = []
        for chosen, rejected in sides:
            start = answer_start(chosen, rejected)
            logps = lm(input_ids=torch.tensor([chosen])).logits[0].log_softmax(-1)
            expected.append(sum(logps[t - 1, chosen[t]].item() for t in range(max(start, 1), len(chosen))))
    assert ours.tolist() == pytest.approx(expected, abs=1e-3)
    if not tied:
        assert not head.weight.equal(classifier.get_input_embeddings().weight)


@pytest.mark.slow
def test_alpha_zero_trains_bt_bit_for_bit(tmp_path, synthetic, tiny_base):
    from safetensors.torch import load_file

    from rmflow.data.prepare import write_pairs

    write_pairs(synthetic["train"], tmp_path / "train.parquet")
    bt.train(spec_for("bt", tiny_base, tmp_path / "train.parquet"), str(tmp_path / "bt"))
    grm.train(spec_for("grm", tiny_base, tmp_path / "train.parquet", options={"alpha": 0.0}), str(tmp_path / "grm"))
    ours, theirs = load_file(str(tmp_path / "grm/model.safetensors")), load_file(str(tmp_path / "bt/model.safetensors"))
    assert ours.keys() == theirs.keys() and all(ours[k].equal(theirs[k]) for k in ours)
    losses = [[json.loads(line)["loss"] for line in (tmp_path / m / "train_log.jsonl").read_text().splitlines()]
              for m in ("grm", "bt")]
    assert losses[0] == losses[1]


@pytest.mark.slow
def test_grm_logs_its_terms_and_saves_a_plain_classifier(tmp_path, synthetic, tiny_base):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    from rmflow.data.prepare import write_pairs

    write_pairs(synthetic["train"], tmp_path / "train.parquet")
    spec = spec_for("grm", tiny_base, tmp_path / "train.parquet", options={"alpha": 0.3})
    grm.train(spec, str(tmp_path / "model"))
    for record in map(json.loads, (tmp_path / "model/train_log.jsonl").read_text().splitlines()):
        terms = record["terms"]
        assert set(terms) == {"reward", "sft"} and terms["sft"] > 0
        assert record["loss"] == pytest.approx(0.3 * terms["sft"] + 0.7 * terms["reward"], rel=1e-5)
    metrics = json.loads((tmp_path / "model/metrics.json").read_text())
    assert metrics["grm"] == {"alpha": 0.3, "beta": 0.1, "lm_head": "tied input embedding", "softcap": None}
    saved = load_file(str(tmp_path / "model/model.safetensors"))
    assert not [k for k in saved if "training_only" in k]
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model")
    assert model.config.num_labels == 1
    scored = grm.load_scorer(str(tmp_path / "model")).score_pairs(synthetic["train"][:4])
    assert len(scored["score_chosen"]) == 4


@pytest.mark.slow
def test_a_preempted_grm_resumes_its_lm_head_bit_identically(tmp_path, synthetic, tiny_base):
    """The LM head is checkpointed with the model (tied here: one parameter under two names), so a run stopped by
    SIGUSR1 and resumed ends with the uninterrupted run's weights and losses."""
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    from rmflow.data.prepare import write_pairs
    from rmflow.train.checkpoint import PREEMPTED_EXIT

    write_pairs(synthetic["train"], tmp_path / "train.parquet")
    spec = spec_for("grm", tiny_base, tmp_path / "train.parquet", options={"alpha": 0.3},
                    train={"per_device_batch": 2, "max_steps": 40, "checkpoint_every": 10})
    (tmp_path / "spec.json").write_text(spec.to_json())

    def cmd(out, *extra):
        return [sys.executable, "-m", "rmflow.cli", "train", "--spec", str(tmp_path / "spec.json"), "--out",
                str(tmp_path / out), "--threads", "1", *extra]

    clean = subprocess.run(cmd("clean"), capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-2000:]
    scratch, log_file = tmp_path / "scratch", tmp_path / "first.log"
    with open(log_file, "w") as log:
        proc = subprocess.Popen(cmd("resumed", "--checkpoint-dir", str(scratch)), stdout=log,
                                stderr=subprocess.STDOUT)
        deadline = time.time() + 240
        while "step 12/40" not in log_file.read_text() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGUSR1)
        assert proc.wait(timeout=120) == PREEMPTED_EXIT, log_file.read_text()[-2000:]
    again = subprocess.run(cmd("resumed", "--checkpoint-dir", str(scratch)), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming from" in again.stderr
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("clean", "resumed"))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    losses = [[json.loads(line)["loss"] for line in (tmp_path / d / "train_log.jsonl").read_text().splitlines()]
              for d in ("clean", "resumed")]
    assert losses[0] == losses[1]
