"""``rmflow export``: a trained BT model as the checkpoint TRL, plain transformers, vLLM and OpenRLHF load as they
are, with the same rewards; TRL's own GRPO reward path (trl 1.16, GRPOTrainer._calculate_rewards) is run on it."""

from __future__ import annotations

import json

import pytest

from helpers import run_cli, spec_for

CHATS = [[{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": answer}]
         for answer in ("It is 4.", "Five, I think.", "4")]


@pytest.fixture(scope="module")
def exported(trained_bt, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "bt"
    proc = run_cli("export", "--model-dir", str(trained_bt), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "reproduces its scores to" in proc.stdout
    return out


@pytest.fixture(scope="module")
def method_scores(trained_bt) -> list[float]:
    from rmflow.methods import bt

    return bt.load_scorer(str(trained_bt)).score_conversations(CHATS, progress=False)


@pytest.mark.slow  # its model is trained (trained_bt)
def test_the_export_has_the_layout_the_loaders_need(exported):
    from transformers import AutoTokenizer

    config = json.loads((exported / "config.json").read_text())
    assert config["architectures"][0].endswith("ForSequenceClassification")  # vLLM's pooling runner detects it
    assert len(config["id2label"]) == 1  # num_labels 1: vLLM's score API, TRL's logits[:, 0]
    tokenizer = AutoTokenizer.from_pretrained(exported)
    assert config["pad_token_id"] == tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.chat_template  # in the tokenizer files: /classify `messages` and TRL render with it
    assert (exported / "model.safetensors").is_file() and not list(exported.glob("*.bin"))
    from safetensors import safe_open

    with safe_open(exported / "model.safetensors", "pt") as weights:
        assert "score.weight" in weights.keys() and "score.bias" not in weights.keys()  # OpenRLHF's head
        assert tuple(weights.get_slice("score.weight").get_shape())[0] == 1
    card = (exported / "README.md").read_text()
    assert "bt reward model trained with rmflow" in card and "pipeline_tag: text-classification" in card
    assert json.loads((exported / "rmflow_export.json").read_text())["max_probe_difference"] < 1e-4


@pytest.mark.slow  # its model is trained (trained_bt)
def test_plain_transformers_and_the_token_classifier_view_give_the_methods_scores(exported, method_scores):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from rmflow.serve.export import plain_scores

    assert max(abs(a - b) for a, b in zip(plain_scores(str(exported), CHATS), method_scores)) < 1e-5
    # verl's legacy reward worker reads the same `score` weights as a token classifier, at the last token
    tokenizer = AutoTokenizer.from_pretrained(exported)
    model = AutoModelForTokenClassification.from_pretrained(exported, num_labels=1).eval()
    for chat, expected in zip(CHATS, method_scores):
        ids = tokenizer(tokenizer.apply_chat_template(chat, tokenize=False), add_special_tokens=False,
                        return_tensors="pt")
        with torch.inference_mode():
            assert abs(model(**ids).logits[0, -1, 0].item() - expected) < 1e-5


@pytest.mark.slow  # its model is trained (trained_bt)
def test_trls_grpo_reward_path_loads_the_export_by_its_path(exported, tiny_base, method_scores, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    # bf16=False: GRPOConfig's default bf16 autocast moves the rewards by ~1e-4 (the comparison is of fp32 paths)
    args = GRPOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, per_device_train_batch_size=3,
                      num_generations=3, max_completion_length=4, save_strategy="no")
    trainer = GRPOTrainer(model=str(tiny_base), reward_funcs=str(exported), args=args,
                          train_dataset=Dataset.from_list([{"prompt": CHATS[0][:1]}] * 3))
    prompts, completions = [c[:1] for c in CHATS], [c[1:] for c in CHATS]
    rewards = trainer._calculate_rewards([{"prompt": p} for p in prompts], prompts, completions, [[1]] * 3)
    assert max(abs(a - b) for a, b in zip(rewards[:, 0].tolist(), method_scores)) < 1e-5


@pytest.mark.slow  # its model is trained (trained_bt)
def test_serve_takes_the_export_too(exported, method_scores):
    import httpx

    from helpers import serving
    from rmflow.serve.app import create_app
    from rmflow.serve.engine import RewardEngine

    engine = RewardEngine(str(exported))
    assert engine.name == "tiny/bt"
    with serving(create_app(engine)) as url:
        for path in ("/classify", "/pooling"):
            answer = httpx.post(url + path, json={"input": [engine.tokenizer.apply_chat_template(c, tokenize=False)
                                                            for c in CHATS], "use_activation": False}).json()
            got = [d["probs"][0] if path == "/classify" else d["data"][0] for d in answer["data"]]
            assert max(abs(r - e) for r, e in zip(got, method_scores)) < 1e-5
        group = httpx.post(url + "/v1/group_rewards", json={"messages": CHATS[0][:1], "responses": [
            c[1]["content"] for c in CHATS]}).json()
        assert max(abs(r - e) for r, e in zip(group["rewards"], method_scores)) < 1e-5
        one = httpx.post(url + "/classify", json={"messages": CHATS[2], "use_activation": False}).json()
        assert abs(one["data"][0]["probs"][0] - method_scores[2]) < 1e-5
        queries = [f"<|im_start|>user\n{c[0]['content']}<|im_end|>\n<|im_start|>assistant\n{c[1]['content']}<|im_end|>"
                   for c in CHATS]  # a ChatML policy's text, as OpenRLHF sends it
        rewards = httpx.post(url + "/get_reward", json={"query": queries}).json()["rewards"]
        assert max(abs(r - e) for r, e in zip(rewards, method_scores)) < 1e-5


def test_a_method_that_is_not_one_head_is_refused_with_a_pointer_to_serve(tmp_path):
    model = tmp_path / "pm"
    model.mkdir()
    (model / "rmflow_run.json").write_text(spec_for("pair_pm").to_json())
    proc = run_cli("export", "--model-dir", str(model), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "rmflow serve --model-dir" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
