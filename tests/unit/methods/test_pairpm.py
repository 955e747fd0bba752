"""pair-PM family: template, two-order scoring, RRM counts, SSRM selection, tournaments, bad inputs."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import pair, spec_for
from rmflow.errors import RmflowError
from rmflow.methods import rrm, ssrm
from rmflow.methods.pairwise import pm as pm
from rmflow.methods.pairwise.model import knockout, round_robin


def test_prompt_matches_the_recipe_template_exactly():
    context = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
               {"role": "user", "content": "Add 2+2"}]
    expected = ("[CONTEXT] \n\n\n<turn> user\n Hi\n\n<turn> assistant\n Hello\n\n<turn> user\n Add 2+2\n\n\n"
                " [RESPONSE A] 4 [RESPONSE B] 5 \n")
    assert pm.pm_prompt(context, "4", "5") == expected


def test_standard_to_pm_places_chosen_by_seeded_coin():
    rows = [pair(prompt=f"q{i}", good=f"good{i}", bad=f"bad{i}") for i in range(40)]
    out = pm.standard_to_pm(rows, seed=3)
    assert out == pm.standard_to_pm(rows, seed=3)
    labels = [r["messages"][1]["content"] for r in out]
    assert 10 < labels.count("A") < 30
    for row, label in zip(out, labels):  # the label points at the chosen answer
        prompt = row["messages"][0]["content"]
        a_part = prompt.split("[RESPONSE A] ")[1].split(" [RESPONSE B]")[0]
        assert a_part.startswith("good") == (label == "A")
    both = pm.standard_to_pm(rows[:3], seed=3, both_orders=True)
    assert [r["messages"][1]["content"] for r in both] == ["A", "B"] * 3


def test_pm_row_without_a_valid_answer_is_named():
    rows = pm.standard_to_pm([pair(), pair()], seed=0)
    rows[1]["messages"][1]["content"] = "Neither"
    with pytest.raises(RmflowError, match=r"pm.parquet:2: field 'messages\[1\].content': the answer is 'Neither'"):
        pm.check_pm_rows(rows, "pm.parquet")


def test_a_and_b_must_be_single_tokens():
    class Tok:
        name_or_path = "my/odd-tokenizer"

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [1, 2] if text == "A" else [3]}

    with pytest.raises(RmflowError, match="answer 'A' is 2 tokens in the tokenizer of 'my/odd-tokenizer'"):
        pm.answer_token_ids(Tok())


def test_rrm_counts_labels_and_winners():
    rows = [pair(prompt=f"q{i}", good=f"w{i}", bad=f"l{i}") for i in range(5)]
    augmented = rrm.augment(rows, seed=0)
    assert len(augmented) == 14 * 5
    neutral = [r for r in augmented if r["augmentation"] == "neutral"]
    on_prompt = [r for r in augmented if r["augmentation"] == "on_prompt_wins"]
    assert len(neutral) == 30 and len(on_prompt) == 40
    assert all(r["messages"][1]["content"] == "Same" for r in neutral)
    for r in on_prompt:  # the answer from this row's own prompt wins
        prompt = r["messages"][0]["content"]
        i = prompt.split("<turn> user\n q")[1][0]
        a_part = prompt.split("[RESPONSE A] ")[1].split(" [RESPONSE B]")[0]
        assert (a_part in (f"w{i}", f"l{i}")) == (r["messages"][1]["content"] == "A")
    for r in neutral:  # neither neutral answer comes from the row's own prompt
        prompt = r["messages"][0]["content"]
        i = prompt.split("<turn> user\n q")[1][0]
        assert f"[RESPONSE A] w{i} " not in prompt and f"[RESPONSE A] l{i} " not in prompt
    _, counts = rrm.transform(rows, rrm.Config())
    assert counts["rows_out"] == 75 and counts["non_neutral_rows"] == 40 and counts["labels"]["Same"] == 30


def test_ssrm_threshold_filter_and_label_orientation():
    def row(p, truth):
        return {"context": [{"role": "user", "content": "q"}], "response_1": "one", "response_2": "two",
                "p": p, "truth": truth}

    labels = [row(0.95, 1), row(0.1, 0), row(0.8, 1), row(0.5, 0), row(0.85, 0)]
    kept, stats = ssrm.select(labels, ssrm.Config(threshold=0.8), iteration=0)
    assert stats["kept_rows"] == 3  # 0.8 is not strictly above the threshold; 0.5 never is
    assert stats["kept_pseudo_label_accuracy"] == pytest.approx(2 / 3)
    assert stats["pool_accuracy"] == pytest.approx(3 / 5)  # p >= 0.5 predicts response_1
    winners = []
    for r in kept:
        prompt, label = r["messages"][0]["content"], r["messages"][1]["content"]
        a_part = prompt.split("[RESPONSE A] ")[1].split(" [RESPONSE B]")[0]
        winners.append(a_part if label == "A" else ("two" if a_part == "one" else "one"))
    assert winners == ["one", "two", "one"]  # p = 0.1: the model prefers response_2, so that is the label
    kept_repo, _ = ssrm.select(labels, ssrm.Config(threshold=0.8, keep_original_orientation=True), 0)
    assert len(kept_repo) == 3


@pytest.mark.parametrize("threshold", [0.5, 1.0, 0.3, 1.2])
def test_ssrm_threshold_outside_half_open_interval_is_rejected(threshold):
    from rmflow.methods import method_config

    with pytest.raises(RmflowError, match=r"methods.ssrm.options': threshold must lie in \(0.5, 1\)"):
        method_config("ssrm", {"threshold": threshold})


def test_ssrm_empty_pool_is_an_error(tmp_path):
    from rmflow.data.prepare import write_pairs

    rows = [pair(prompt=f"q{i}") for i in range(4)]
    with pytest.raises(RmflowError, match="the unlabeled pool is empty"):
        ssrm.split(rows, ssrm.Config(), pool_rows=[])
    labeled, pool, report = ssrm.split(rows, ssrm.Config(labeled_fraction=0.25))
    assert report["labeled_rows"] == 1 and report["pool_rows"] == 3 and len(pool) == 3
    assert {p["truth"] for p in pool} <= {0, 1}
    empty = tmp_path / "empty.parquet"
    write_pairs([], empty)
    spec = tmp_path / "spec.json"

    spec.write_text(spec_for("ssrm", "x", "y", base="b", test_defaults=False).to_json())
    write_pairs(rows, tmp_path / "train.parquet")
    with pytest.raises(RmflowError, match="empty.parquet: the unlabeled pool file holds no rows"):
        ssrm.main_split(str(spec), str(tmp_path / "train.parquet"), str(empty), str(tmp_path / "l"),
                        str(tmp_path / "p"), str(tmp_path / "r"))
    assert not (tmp_path / "l").exists()


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13])
def test_knockout_finds_the_known_best_with_n_minus_1_comparisons(n):
    quality = [(7 * i + 3) % n for i in range(n)]  # a permutation; the best index is hidden in it
    best, used = knockout(n, lambda i, j: 1.0 if quality[i] > quality[j] else 0.0)
    assert quality[best] == n - 1 and used == n - 1
    wins, used_rr = round_robin(n, lambda i, j: 1.0 if quality[i] > quality[j] else 0.0)
    assert used_rr == n * (n - 1) // 2 and wins.index(max(wins)) == best


@pytest.mark.slow
def test_trained_pm_scores_both_orders_and_reloads(tmp_path, synthetic, tiny_base):

    from rmflow.methods import pair_pm
    from rmflow.methods._io import write_rows
    from rmflow.methods.pairwise.model import rank

    rows, counts = pair_pm.transform(synthetic["train"], pair_pm.Config())
    assert counts["rows_out"] == len(synthetic["train"])
    write_rows(rows, tmp_path / "pm.parquet")
    spec = spec_for("pair_pm", tiny_base, tmp_path / "pm.parquet", max_length=256, log_every=2)
    pair_pm.train(spec, str(tmp_path / "model"))
    metrics = json.loads((tmp_path / "model/metrics.json").read_text())
    assert metrics["both_orders"] is False and metrics["optimizer_steps"] == 4
    assert (tmp_path / "model/model.safetensors").exists()
    scorer = pair_pm.load_scorer(str(tmp_path / "model"))
    test = [{"chosen": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["chosen"]}],
             "rejected": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["rejected"]}]}
            for r in synthetic["test"][:6]]
    out = scorer.score_pairs(test)
    swapped = scorer.score_pairs([{"chosen": r["rejected"], "rejected": r["chosen"]} for r in test])
    # plain transformers and the recipe's prompt written out here (methods-detail.md §2): P(A) vs P(B) after the
    # assistant header, chosen first and chosen second
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    lm = AutoModelForCausalLM.from_pretrained(tmp_path / "model").eval()
    a_id, b_id = tok("A", add_special_tokens=False)["input_ids"][0], tok("B", add_special_tokens=False)["input_ids"][0]

    def p_first(question, first, second):
        user = f"[CONTEXT] \n\n\n<turn> user\n {question}\n\n\n [RESPONSE A] {first} [RESPONSE B] {second} \n"
        text = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
        with torch.no_grad():
            logits = lm(**tok(text, add_special_tokens=False, return_tensors="pt")).logits[0, -1]
        return torch.softmax(logits[[a_id, b_id]], -1)[0].item()

    plain1, plain2 = [], []
    for r in test:
        question, good, bad = r["chosen"][0]["content"], r["chosen"][1]["content"], r["rejected"][1]["content"]
        plain1.append(p_first(question, good, bad))
        plain2.append(1 - p_first(question, bad, good))
    assert out["p_order1"] == pytest.approx(plain1, abs=1e-5) and out["p_order2"] == pytest.approx(plain2, abs=1e-5)
    assert out["p_chosen"] == pytest.approx([(a + b) / 2 for a, b in zip(plain1, plain2)], abs=1e-5)
    # the same two prompts read from the other side
    assert swapped["p_chosen"] == pytest.approx([1 - p for p in out["p_chosen"]], abs=1e-5)
    assert scorer.summary(out)["position_bias"] == pytest.approx(
        sum(abs(a - b) for a, b in zip(plain1, plain2)) / 6, abs=1e-5)
    ranked = rank(scorer, test[0]["chosen"][:-1], ["x", "y", "z", "w"], mode="knockout")
    assert ranked["comparisons"] == 3 and ranked["forward_passes"] == 6


@pytest.mark.slow
def test_score_position_user_turn_end_reads_the_logits_where_the_seed_scorer_does(tmp_path, tiny_base, synthetic):
    """RLHFlow's scorer for its released pair-PM (useful_code/eval_reward_bench_pm.py), written out with plain
    transformers: the user turn rendered without the assistant header, the BOS text removed, tokenized without
    special tokens, softmax of the A/B logits at the last token; both orders averaged."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rmflow.methods import external, pair_pm
    from rmflow.methods._io import write_rows

    pm_rows, _ = pair_pm.transform(synthetic["train"], pair_pm.Config())
    write_rows(pm_rows, tmp_path / "pm.parquet")
    pair_pm.train(spec_for("pair_pm", tiny_base, tmp_path / "pm.parquet", max_length=256),
                  str(tmp_path / "pm"))
    released = tmp_path / "pm"  # scored as a released model would be: an external pairwise_pm
    rows = [{"chosen": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["chosen"]}],
             "rejected": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["rejected"]}]}
            for r in synthetic["test"][:4]]
    scored = {position: external.scorer_for(external.Config(model=str(released), scorer="pairwise_pm",
                                                            score_position=position)).score_pairs(rows)
              for position in ("after_generation_prompt", "user_turn_end")}
    tok = AutoTokenizer.from_pretrained(released)
    model = AutoModelForCausalLM.from_pretrained(released).eval()
    a, b = tok.encode("A", add_special_tokens=False)[0], tok.encode("B", add_special_tokens=False)[0]

    def p_first(context, first, second):
        prompt = pm.pm_prompt(context, first, second)
        text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False)
        ids = tok.encode(text.replace(tok.bos_token, ""), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            logits = model(ids).logits[0, -1]
        return torch.softmax(logits[[a, b]], dim=-1)[0].item()

    first = [p_first(r["chosen"][:-1], r["chosen"][-1]["content"], r["rejected"][-1]["content"]) for r in rows]
    second = [1 - p_first(r["chosen"][:-1], r["rejected"][-1]["content"], r["chosen"][-1]["content"]) for r in rows]
    assert scored["user_turn_end"]["p_order1"] == pytest.approx(first, abs=1e-5)
    assert scored["user_turn_end"]["p_order2"] == pytest.approx(second, abs=1e-5)
    # the very ids the seed's scorer reads (no BOS, no assistant header), and not rmflow's default ones
    prompt = pm.pm_prompt(rows[0]["chosen"][:-1], "x", "y")
    seed_ids = tok.encode(tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False)
                          .replace(tok.bos_token, ""), add_special_tokens=False)
    assert pm.prompts_ids(tok, [prompt], 4096, "left", "user_turn_end") == [seed_ids]
    assert pm.prompts_ids(tok, [prompt], 4096, "left")[0][1:len(seed_ids) + 1] == seed_ids  # BOS, then the header
    with pytest.raises(ValueError, match="score_position must be one of after_generation_prompt, user_turn_end"):
        external.Config(model="m", scorer="pairwise_pm", score_position="last")


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
