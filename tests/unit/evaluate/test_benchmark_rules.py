"""Each benchmark's official rule on hand-made rows, ties included (docs/evaluation.md names the source files)."""

from __future__ import annotations

import pytest

from rmflow.data.convert import LayoutError
from rmflow.evaluate import rewardbench2
from rmflow.evaluate.benchmarks import judgebench, ppe_correctness, ppe_preference, processbench, rm_bench, rmb, scoring


def _rm_bench_item(domain="chat", row_id=1):
    raw = {"id": row_id, "prompt": "p", "chosen": ["c0", "c1", "c2"], "rejected": ["r0", "r1", "r2"],
           "domain": domain}
    return rm_bench.convert(raw)


def test_rm_bench_matrix_hard_normal_easy_and_ties_lose():
    item = _rm_bench_item()
    # chosen styles score 1, 2, 3; rejected 1, 2, 3: M[i][j] = s(c_i) > s(r_j); ties (the diagonal) lose
    row = rm_bench.credit(item, scores=[1, 2, 3, 1, 2, 3])
    assert row["normal"] == 0.0  # every diagonal cell is a tie
    assert row["hard"] == 0.0  # upper triangle: plainer chosen (lower score) against fancier rejected
    assert row["easy"] == 1.0  # lower triangle
    assert row["correct"] == pytest.approx(3 / 9)
    detail = rm_bench.details([item], [row])
    assert detail["domains"]["chat"]["matrix"] == [[0, 0, 0], [1, 0, 0], [1, 1, 0]]


def test_rm_bench_pools_safety_and_averages_four_domains():
    refuse = _rm_bench_item("safety-refuse", 1)
    respond = _rm_bench_item("safety-response", 1)
    assert refuse["subset"] == respond["subset"] == "safety" and refuse["id"] != respond["id"]
    items = [_rm_bench_item(d, 7) for d in ("chat", "code", "math")] + [refuse, respond]
    all_win, none_win = [9, 9, 9, 0, 0, 0], [0, 0, 0, 9, 9, 9]
    scores = [all_win, all_win, none_win, all_win, none_win]
    rows = [rm_bench.credit(i, scores=s) for i, s in zip(items, scores)]
    report = scoring.report("rm_bench", items, rows)
    # chat 1, code 1, math 0, safety pooled (1 + 0) / 2 = 0.5: Overall = 2.5 / 4
    assert report["sections"]["Safety"] == 0.5 and report["score"] == pytest.approx(0.625)
    assert report["details"]["domains"]["safety"]["n"] == 2


def test_rm_bench_domain_from_the_file_name_or_refused(tmp_path):
    raw = {"id": 3, "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"],
           "__file__": str(tmp_path / "code_filtered.json")}
    assert rm_bench.convert(raw)["subset"] == "code"
    with pytest.raises(LayoutError) as refused:
        rm_bench.convert({**raw, "__file__": "rows.json"})
    assert refused.value.field == "domain"


def _judge(label="A>B"):
    return judgebench.convert({"pair_id": "x", "source": "mmlu-pro-law", "question": "q", "response_A": "a",
                               "response_B": "b", "label": label})


def test_judgebench_a_reward_tie_decides_b_over_a():
    assert judgebench.credit(_judge("B>A"), scores=[1.0, 1.0])["correct"] == 1.0
    assert judgebench.credit(_judge("A>B"), scores=[1.0, 1.0])["correct"] == 0.0
    assert judgebench.credit(_judge("A>B"), scores=[2.0, 1.0])["correct"] == 1.0
    # a constant model scores the share of B>A labels, not 0
    items = [_judge("A>B"), _judge("B>A"), _judge("B>A")]
    for n, item in enumerate(items):
        item["id"] = str(n)
    rows = [judgebench.credit(i, scores=[0.0, 0.0]) for i in items]
    assert scoring.report("judgebench", items, rows)["score"] == pytest.approx(2 / 3)


def test_judgebench_both_orders_for_pairwise_models():
    item = _judge("B>A")  # the labelled winner (B) is the comparison's first candidate
    assert item["comparisons"] == [[1, 0]]
    assert judgebench.credit(item, orders=[(0.9, 0.8)])["correct"] == 1.0  # +1 +1
    assert judgebench.credit(item, orders=[(0.9, 0.2)])["correct"] == 0.0  # +1 -1: inconsistent, net 0
    assert judgebench.credit(item, orders=[(0.9, 0.5)])["correct"] == 1.0  # +1, a tie decision: net 1
    assert judgebench.credit(item, orders=[(0.5, 0.5)])["correct"] == 0.0


def test_judgebench_overall_is_micro_over_sources():
    per = {"mmlu-pro": (1.0, 3), "livecodebench": (0.0, 1)}
    out = judgebench.score_fn(per)
    assert out["Score"] == 0.75 and out["MMLU-Pro"] == 1.0 and out["LiveBench Math"] is None


def _rmb_pair(goal="Helpfulness"):
    return rmb.convert({"pair_uid": "1", "category_path": f"Pairwise_set/{goal}/Chat",
                        "conversation_input": [{"role": "user", "content": "q", "language": "English"}],
                        "chosen": {"llm_name": "m", "answer": "good"}, "reject": {"llm_name": "n", "answer": "bad"}})


def _rmb_bon(goal="Harmlessness", losers=3):
    return rmb.convert({"bon_uid": "2", "category_path": f"BoN_set/{goal}/S1",
                        "conversation_input": [{"role": "user", "content": "q", "language": "English"}],
                        "bon_best": {"llm_name": "m", "answer": "best"},
                        "loser_list": [{"llm_name": "n", "answer": f"l{k}"} for k in range(losers)]})


def test_rmb_pairwise_is_strict_and_bon_must_beat_every_loser():
    pair = _rmb_pair()
    assert pair["subset"] == "helpfulness/pairwise"
    assert rmb.credit(pair, scores=[1.0, 1.0])["correct"] == 0.0
    assert rmb.credit(pair, scores=[1.1, 1.0])["correct"] == 1.0
    bon = _rmb_bon()
    assert bon["subset"] == "harmlessness/bon" and bon["comparisons"] == [[0, 1], [0, 2], [0, 3]]
    assert rmb.credit(bon, scores=[5, 1, 2, 4.9])["correct"] == 1.0
    assert rmb.credit(bon, scores=[5, 1, 5, 4])["correct"] == 0.0  # a tie with one loser is a loss


def test_rmb_headline_is_the_mean_of_four_cells():
    per = {"helpfulness/pairwise": (0.8, 10), "helpfulness/bon": (0.4, 2), "harmlessness/pairwise": (0.6, 5),
           "harmlessness/bon": (0.2, 1)}
    assert rmb.score_fn(per)["Score"] == pytest.approx(0.5)
    assert rmb.score_fn({k: v for k, v in per.items() if k != "harmlessness/bon"})["Score"] is None


def test_ppe_preference_leaves_human_ties_out_counted_by_reason():
    base = {"question_id": "q", "prompt": "p", "response_1": "a", "response_2": "b"}
    raws = [{**base, "question_id": "1", "winner": "model_a"}, {**base, "question_id": "2", "winner": "model_b"},
            {**base, "question_id": "3", "winner": "tie"}, {**base, "question_id": "4", "winner": "tie (bothbad)"}]
    items, skipped = scoring.convert_rows("ppe_preference", raws)
    assert [i["comparisons"] for i in items] == [[[0, 1]], [[1, 0]]]
    assert skipped == {"human tie (tie)": 1, "human tie (tie (bothbad))": 1}
    assert ppe_preference.credit(items[0], scores=[1.0, 1.0])["correct"] == 0.0
    assert ppe_preference.credit(items[1], scores=[0.0, 1.0])["correct"] == 1.0


def test_ppe_correctness_pairs_per_domain_and_unweighted_domain_mean():
    raw = {"question_id": "q", "prompt": "p", "response_1": "r1", "response_2": "r2", "response_3": "r3",
           "scores": [True, False, False], "sampled_conflict_pairs": [[0, 1], [2, 0]],
           "__file__": "lmarena-ai/PPE-MATH-Best-of-K"}
    items = ppe_correctness.convert(raw)
    assert [i["subset"] for i in items] == ["math", "math"]
    assert [i["candidates"] for i in items] == [["r1", "r2"], ["r1", "r3"]]  # the correct answer first
    assert ppe_correctness.credit(items[0], scores=[2.0, 2.0])["correct"] == 0.0
    with pytest.raises(LayoutError) as refused:
        ppe_correctness.convert({**raw, "sampled_conflict_pairs": [[1, 2]]})
    assert refused.value.field == "sampled_conflict_pairs"
    per = {"mmlu_pro": (1.0, 100), "math": (0.0, 1), "gpqa": (1.0, 1), "mbpp_plus": (0.0, 1), "ifeval": (0.5, 1)}
    assert ppe_correctness.score_fn(per)["Score"] == pytest.approx(0.5)


def test_processbench_first_wrong_step_and_f1():
    raw = {"id": "a", "problem": "p", "steps": ["s0", "s1", "s2"], "label": 1, "__split__": "gsm8k"}
    item = processbench.convert(raw)
    assert item["subset"] == "gsm8k/error"
    assert processbench.step_chat(item)[0]["content"] == "p\n\ns0"
    assert processbench.credit(item, [0.9, 0.4, 0.1])["correct"] == 1.0
    assert processbench.credit(item, [0.9, 0.5, 0.1])["predicted"] == 2  # 0.5 is not below 0.5
    correct = processbench.convert({**raw, "id": "b", "label": -1})
    assert processbench.credit(correct, [0.9, 0.6, 0.7])["correct"] == 1.0
    # error acc 0.5, correct acc 1.0: F1 = 2 * 0.5 * 1 / 1.5
    per = {f"{s}/{k}": (0.5 if k == "error" else 1.0, 2) for s in processbench.SPLITS for k in ("error", "correct")}
    out = processbench.score_fn(per)
    assert out["GSM8K"] == pytest.approx(2 / 3) and out["Score"] == pytest.approx(2 / 3)
    assert processbench.score_fn({"gsm8k/error": (1.0, 1), "gsm8k/correct": (1.0, 1)})["Score"] is None


def test_rewardbench2_first_chosen_credit_and_the_old_rule():
    chosen, rejected = [1.0, 3.0], [2.0, 0.0, 0.0]
    assert rewardbench2.best_of_credit(chosen, rejected) == 0.0  # only the first chosen counts
    assert rewardbench2.best_of_credit(chosen, rejected, "any_chosen") == 1.0
    assert rewardbench2.best_of_credit([3.0, 3.0], [3.0, 1.0, 0.0]) == pytest.approx(1 / 3)


def test_rewardbench2_ties_formula_versions():
    # pair 1: spread 0 with a positive gap (2025-06: tanh(+inf) = 1; 0.1.4: left out of the mean)
    # pair 2: spread 1, gap min(2, 3) = 2: tanh(2 / 1 - 1) = tanh(1)
    prompts = {"ref:1": {"accurate": 1.0, "gap": 1.0, "spread": 0.0},
               "tied:1": {"accurate": 1.0, "gap": 1.0, "spread": 0.0},
               "ref:2": {"accurate": 1.0, "gap": 2.0, "spread": 0.0},
               "tied:2": {"accurate": 1.0, "gap": 3.0, "spread": 1.0}}
    import math

    base = 0.30 + 0.30 + 0.20 * 1.0 + 0.20 * 1.0
    assert rewardbench2.ties_score(prompts, "2025-06") == pytest.approx(base + 0.01 * (1 + math.tanh(1)) / 2)
    assert rewardbench2.ties_score(prompts, "0.1.4") == pytest.approx(base + 0.01 * math.tanh(1))


def test_a_bad_benchmark_row_is_one_error_line_naming_file_row_and_field(tmp_path):
    import json
    import subprocess
    import sys

    rows = tmp_path / "judgebench.jsonl"
    good = {"pair_id": "a", "source": "livecodebench", "question": "q", "response_A": "x", "response_B": "y",
            "label": "A>B"}
    rows.write_text(json.dumps(good) + "\n" + json.dumps({**good, "pair_id": "b", "label": "A=B"}) + "\n")
    out = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "-m", "rmflow", "prepare-eval", "--data", str(rows), "--benchmark",
                           "judgebench", "--out", str(out), "--report", str(tmp_path / "out.report.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{rows}:2: field 'label': must be A>B or B>A" in done.stderr, done.stderr
    assert not out.exists() and not (tmp_path / "out.report.json").exists()


def test_the_tulu_rendering_is_the_official_runners_and_only_for_scalar_models(tiny_base):
    from transformers import AutoTokenizer

    from rmflow.errors import RmflowError
    from rmflow.evaluate.run import apply_template_policy
    from rmflow.train.batching import render

    class Scalar:
        kind = "scalar"
        tokenizer = AutoTokenizer.from_pretrained(tiny_base)

        def score_conversations(self, conversations, progress=True):
            return [0.0] * len(conversations)

    scorer = Scalar()
    own = render(scorer.tokenizer, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}])
    apply_template_policy(scorer, "tulu")
    tulu = render(scorer.tokenizer, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}])
    # fastchat's "tulu" conversation (ADD_NEW_LINE_SINGLE, sep "\n") and the EOS RM-Bench's run_rm.py appends
    assert tulu == f"<|user|>\nHi\n<|assistant|>\nYo\n{scorer.tokenizer.eos_token}" and tulu != own

    class Pairwise:
        kind = "pairwise"
        tokenizer = scorer.tokenizer

    with pytest.raises(RmflowError, match="chat_template"):
        apply_template_policy(Pairwise(), "tulu")
