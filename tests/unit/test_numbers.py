"""Tests that catch wrong numbers: each checks a number against a source of truth outside the code under test
(a hand computation, plain transformers, the generated text parsed again, a second implementation written
differently, or a property such as "a model trained on separable pairs scores far above chance, its inverted copy
far below"). Each was run once against a planted bug (README, Tests)."""

from __future__ import annotations

import json
import random
import re
import shutil

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import load_file, save_file

from helpers import LookupScorer, run_cli, spec_for, write_jsonl


# ---- 1. evaluate's credits follow the scores: a separable model beats chance, its inverted copy does not ----------
@pytest.fixture(scope="module")
def separable(tmp_path_factory, synthetic, tiny_base):
    """BT trained on pairs a tiny model can separate (a polite full answer vs a curt refusal), and held-out rows."""
    from rmflow.data.prepare import write_pairs
    from rmflow.methods import bt

    work = tmp_path_factory.mktemp("separable")
    prompts = [r["chosen"][0]["content"] for r in synthetic["train"]]
    good, bad = "Sure, here is a complete and careful answer.", "No."

    def rows(ps):
        return [{"chosen": [{"role": "user", "content": p}, {"role": "assistant", "content": good}],
                 "rejected": [{"role": "user", "content": p}, {"role": "assistant", "content": bad}]} for p in ps]

    write_pairs(rows(prompts[:96]), work / "train.parquet")
    spec = spec_for("bt", tiny_base, work / "train.parquet", lr=1e-2, max_steps=12, per_device_batch=16, max_length=96)
    bt.train(spec, str(work / "model"))
    test = [{"id": str(i), "subset": "synth-refuse", "prompt": p, "chosen": good, "rejected": bad}
            for i, p in enumerate(prompts[96:136])]
    write_jsonl(work / "test.jsonl", test)
    inverted = work / "inverted"
    shutil.copytree(work / "model", inverted)
    weights = load_file(str(inverted / "model.safetensors"))
    weights["score.weight"] = -weights["score.weight"]  # every reward negated
    save_file(weights, str(inverted / "model.safetensors"), metadata={"format": "pt"})
    return work


def _scores(model, data, out):
    proc = run_cli("evaluate", "--model-dir", str(model), "--method", "bt", "--data", str(data), "--sections",
                   "synthetic_v1", "--eval-set", "t", "--base", "tiny", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "scores.json").read_text()), pl.read_parquet(out / "examples.parquet")


@pytest.mark.slow
def test_credit_is_one_exactly_where_chosen_outscores_rejected(separable, tmp_path):
    _, examples = _scores(separable / "model", separable / "test.jsonl", tmp_path / "a")
    by_hand = [1.0 if c > r else 0.0 for c, r in zip(examples["score_chosen"], examples["score_rejected"])]
    assert examples["correct"].to_list() == by_hand


@pytest.mark.slow
def test_separable_pairs_score_far_above_chance_and_the_inverted_model_far_below(separable, tmp_path):
    good, _ = _scores(separable / "model", separable / "test.jsonl", tmp_path / "good")
    flipped, _ = _scores(separable / "inverted", separable / "test.jsonl", tmp_path / "flipped")
    assert good["subsets"]["synth-refuse"]["accuracy"] >= 0.9
    assert flipped["subsets"]["synth-refuse"]["accuracy"] <= 0.1


# ---- 2. RewardBench 2 credits against a scorer whose every score is known (helpers.LookupScorer) -----------
def test_rewardbench2_credits_by_hand():
    from rmflow.evaluate.run import _score_v2

    rows = [{"id": "a", "subset": "Math", "prompt": "p", "chosen": ["right"], "rejected": ["w1", "w2", "w3"]},
            {"id": "b", "subset": "Math", "prompt": "q", "chosen": ["right2"], "rejected": ["x1", "x2", "x3"]},
            {"id": "c", "subset": "Focus", "prompt": "r", "chosen": ["tie"], "rejected": ["tie2", "y", "z"]}]
    table = {"right": 3.0, "w1": 1.0, "w2": 2.0, "w3": 0.0,  # chosen on top: 1
             "right2": 0.5, "x1": 1.0, "x2": 0.0, "x3": 0.2,  # a rejected one on top: 0
             "tie": 2.0, "tie2": 2.0, "y": 1.0, "z": 0.0}  # chosen shares the top with one other: 1/2
    report, columns = _score_v2(LookupScorer(table), rows)
    assert report["credits"] == [1.0, 0.0, 0.5]
    assert report["subsets"]["Math"]["accuracy"] == 0.5 and report["subsets"]["Focus"]["accuracy"] == 0.5
    assert columns["scores_chosen"] == [[3.0], [0.5], [2.0]]


# ---- 3. one-pass step scores against plain transformers, one prefix at a time ----------------------------------
def test_step_probabilities_equal_plain_transformers_per_step(tmp_path, tiny_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rmflow.methods._steps_model import StepScorer
    from rmflow.models.load import load_model, load_tokenizer

    torch.manual_seed(0)
    tok = load_tokenizer(str(tiny_base))
    model = load_model(str(tiny_base), tok, auto_class="AutoModelForCausalLM")
    with torch.no_grad():  # a random but fixed head so P(+) varies from step to step
        model.get_output_embeddings().weight.normal_(0, 1)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    problem, steps = "Ann has 3 marbles.", ["Step 1: 3 + 4 = 7.", "Step 2: 7 - 1 = 6.", "The answer is 6."]
    ours = StepScorer(load_model(str(tmp_path / "m"), tok, auto_class="AutoModelForCausalLM"), tok, False, "mean",
                      512).step_probabilities([problem], ["\n".join(steps)], progress=False)[0]
    plain_tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    plus, minus = (plain_tok("+", add_special_tokens=False)["input_ids"][0],
                   plain_tok("-", add_special_tokens=False)["input_ids"][0])
    expected, chat = [], []
    for k, step in enumerate(steps):
        chat.append({"role": "user", "content": f"{problem} {step}" if k == 0 else step})
        text = plain_tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        with torch.no_grad():
            logits = plain(**plain_tok(text, add_special_tokens=False, return_tensors="pt")).logits[0, -1]
        expected.append(torch.softmax(logits[[plus, minus]], -1)[0].item())  # the next token after the header
        chat.append({"role": "assistant", "content": "+"})
    assert ours == pytest.approx(expected, abs=1e-5)
    assert max(expected) - min(expected) > 1e-3, "the check needs steps whose P(+) differ"


# ---- 4. the synthetic step labels, checked by redoing the arithmetic ------------------------------------------
STEP = re.compile(r"^Step \d+: (.+) = (-?\d+)\.$")


def test_step_labels_follow_the_arithmetic(synthetic):
    seen_wrong = 0
    for row in synthetic["steps"]:
        all_right = True
        for line, label in zip(row["steps"], row["labels"]):
            match = STEP.match(line)
            if match:
                all_right = all_right and eval(match.group(1)) == int(match.group(2))  # noqa: S307 - our arithmetic
            else:
                assert line.startswith("The answer is "), line
            assert label == all_right, (row["id"], line, label)
            seen_wrong += not label
    assert seen_wrong, "the suite has wrong steps to label"


# ---- 5. code items: the generator refuses a bug its tests cannot see ---------------------------------------------
def test_code_generator_refuses_bugs_that_pass_the_tests(monkeypatch):
    from rmflow.data import synth_code

    # "x + 0" and "x" agree on every input: no test can tell them apart
    invisible = ("add_zero", ("Write add_zero(x).", "Implement add_zero(x)."), "return x", ["return x + 0"], [0, 1])
    monkeypatch.setattr(synth_code, "FAMILIES", [invisible])
    with pytest.raises(AssertionError, match="no buggy variant of add_zero fails its tests"):
        synth_code.code_item(random.Random(0), train=True, k=3)


REFERENCE = {  # the families' specifications, written independently of synth_code's bodies
    "add_k": lambda k: lambda x: sum([x, k]), "times_k": lambda k: lambda x: sum([x] * k),
    "count_above": lambda k: lambda xs: len([v for v in xs if v - k > 0]),
    "sum_to": lambda k: lambda n: n * (n + 1) // 2 + k, "is_multiple": lambda k: lambda x: not (x % k),
    "clamp": lambda k: lambda x: sorted([0, x, k])[1]}


def test_code_answers_run_right_and_wrong_against_the_specification():
    from rmflow.data.synth_code import FAMILIES, code_item

    rng = random.Random(7)
    for _ in range(60):
        k = rng.randint(2, 9)
        _, good, bad = code_item(rng, train=bool(rng.getrandbits(1)), k=k)
        name = re.search(r"def (\w+)\(", good).group(1)
        inputs = [eval(str(v).format(k=k)) for fam in FAMILIES if fam[0] == name for v in fam[4]]  # noqa: S307
        functions = []
        for answer in (good, bad):
            namespace: dict = {}
            exec(answer.strip("`").removeprefix("python\n"), namespace)  # noqa: S102 - generated test code
            functions.append(namespace[name])
        spec = REFERENCE[name](k)
        assert all(functions[0](x) == spec(x) for x in inputs), good
        assert any(functions[1](x) != spec(x) for x in inputs), bad


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


# ---- 8. SSRM: which answer a kept pseudo-label prefers --------------------------------------------------------
def test_ssrm_keeps_predicted_or_original_orientation_as_asked():
    from rmflow.methods import ssrm

    labels = [{"context": [{"role": "user", "content": "q"}], "response_1": "first", "response_2": "second",
               "truth": 1, "p": 0.05}]  # the model is sure the second answer is better

    def winner(rows):
        (row,) = rows
        prompt, answer = row["messages"][0]["content"], row["messages"][1]["content"]
        a = prompt.split("[RESPONSE A] ")[1].split(" [RESPONSE B]")[0]
        b = prompt.split("[RESPONSE B] ")[1].rsplit(" \n", 1)[0]
        return a if answer == "A" else b

    predicted, _ = ssrm.select(labels, ssrm.Config(threshold=0.8), 0)
    original, stats = ssrm.select(labels, ssrm.Config(threshold=0.8, keep_original_orientation=True), 0)
    assert winner(predicted) == "second" and winner(original) == "first"
    assert stats["kept_pseudo_label_accuracy"] == 1.0  # the pool's truth (first is better) is what it kept
