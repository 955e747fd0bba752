"""Bootstrap intervals against the analytic Bernoulli interval, the paired test on planted and null differences,
and RewardBench 2 scoring on hand-made rows (best-of-4 credit, the Ties formula, evaluate end to end)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from helpers import run_cli, write_jsonl
from rmflow import stats
from rmflow.errors import RmflowError
from rmflow.evaluate import rewardbench2 as rb2


def mean_of_subsets(per_subset):
    total = sum(n for _, n in per_subset.values())
    return {"Score": sum(acc * n for acc, n in per_subset.values()) / total}


def test_bootstrap_interval_matches_the_analytic_bernoulli_interval():
    n, p = 400, 0.7
    credits = [1.0] * int(n * p) + [0.0] * (n - int(n * p))
    low, high = stats.bootstrap(["s"] * n, credits, mean_of_subsets, n_boot=4000, seed=1)["Score"]
    half = 1.959964 * math.sqrt(p * (1 - p) / n)  # Wald interval: 0.655 .. 0.745
    assert low == pytest.approx(p - half, abs=0.006) and high == pytest.approx(p + half, abs=0.006)


def test_resampling_stays_inside_each_subset():
    # subset "a" always right, "b" always wrong: any replicate keeps 10 a-rows and 30 b-rows, so the pooled mean
    # cannot move; an unstratified bootstrap would spread around 0.25
    subsets, credits = ["a"] * 10 + ["b"] * 30, [1.0] * 10 + [0.0] * 30
    low, high = stats.bootstrap(subsets, credits, mean_of_subsets, n_boot=500)["Score"]
    assert low == high == pytest.approx(0.25)


def test_paired_test_finds_a_planted_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    n = 600
    subsets = [f"s{i % 3}" for i in range(n)]
    strong = (rng.random(n) < 0.80).astype(float)
    weak = (rng.random(n) < 0.60).astype(float)
    planted = stats.paired_test(subsets, strong, weak, mean_of_subsets, n_boot=2000, seed=0)
    assert planted["difference"] == pytest.approx(strong.mean() - weak.mean())
    assert planted["p_value"] < 0.01 and planted["significant"] and planted["diff_lo"] > 0
    # same accuracy, different rows: 30 right answers swapped for 30 others
    twin = strong.copy()
    right, wrong = np.flatnonzero(twin == 1)[:30], np.flatnonzero(twin == 0)[:30]
    twin[right], twin[wrong] = 0.0, 1.0
    null = stats.paired_test(subsets, strong, twin, mean_of_subsets, n_boot=2000, seed=0)
    assert null["difference"] == pytest.approx(0.0) and null["p_value"] > 0.5 and not null["significant"]
    same = stats.paired_test(subsets, strong, strong, mean_of_subsets, n_boot=200)
    assert same["p_value"] == 1.0 and same["diff_lo"] == same["diff_hi"] == 0.0


def test_percentile_interval_edges_and_the_documented_defaults():
    """The interval's percentile points on values whose percentiles are known exactly; the defaults (1,000
    replicates, seed 0, 95 %) the README states; a fixed seed gives the same interval every time."""
    assert stats._interval(np.arange(101.0), 0.90) == pytest.approx((5.0, 95.0), abs=1e-9)
    assert stats._interval(np.array([np.nan, 2.0, np.nan]), 0.5) == (2.0, 2.0)
    assert stats._interval(np.array([np.nan]), 0.95) == (None, None)
    rng = np.random.default_rng(5)
    subsets, credits = [f"s{i % 2}" for i in range(60)], (rng.random(60) < 0.6).astype(float)
    explicit = stats.bootstrap(subsets, credits, mean_of_subsets, n_boot=1000, seed=0, level=0.95)
    assert stats.bootstrap(subsets, credits, mean_of_subsets) == explicit
    assert stats.bootstrap(subsets, credits, mean_of_subsets, n_boot=1000, seed=1) != explicit
    other = 1.0 - credits
    assert stats.paired_test(subsets, credits, other, mean_of_subsets) == \
        stats.paired_test(subsets, credits, other, mean_of_subsets, n_boot=1000, seed=0, level=0.95)


def test_paired_p_value_and_significance_at_zero_by_hand():
    """Two rows, a = [1, 0], b = [0, 0]: a replicate's difference is 0 exactly when both draws pick row 2
    (probability 1/4), else 0.5 or 1. So p = 2 x 1/4 = 0.5, the interval's low end is 0 and, touching zero, the
    difference is not significant; mirrored, the high end is 0."""
    one = ["s", "s"]
    result = stats.paired_test(one, [1.0, 0.0], [0.0, 0.0], mean_of_subsets, n_boot=8000, seed=3)
    assert result["difference"] == 0.5 and result["p_value"] == pytest.approx(0.5, abs=0.03)
    assert result["diff_lo"] == 0.0 and result["diff_hi"] == 1.0 and result["significant"] is False
    mirrored = stats.paired_test(one, [0.0, 0.0], [1.0, 0.0], mean_of_subsets, n_boot=8000, seed=3)
    assert mirrored["diff_hi"] == 0.0 and mirrored["diff_lo"] == -1.0 and mirrored["significant"] is False
    # a score that does not exist for these rows gives an empty result with every field
    assert stats.paired_test(one, [1.0, 0.0], [0.0, 0.0], lambda per_subset: {"Score": None}, n_boot=10) == {
        "difference": None, "diff_lo": None, "diff_hi": None, "p_value": None, "significant": None}


def test_best_of_four_credit_with_ties_at_the_top():
    assert rb2.best_of_credit([0.9], [0.1, 0.2, 0.3]) == 1.0
    assert rb2.best_of_credit([0.3], [0.1, 0.9, 0.3]) == 0.0
    assert rb2.best_of_credit([0.9], [0.9, 0.2, 0.9]) == pytest.approx(1 / 3)  # three share the top


def test_ties_formula_by_hand():
    prompts = {
        "ref:1": rb2.ties_prompt([0.8], [0.5, 0.1]),         # accurate, gap 0.3, spread 0
        "tied:1": rb2.ties_prompt([0.9, 0.7], [0.6]),        # accurate, gap 0.1, spread 0.2
        "ref:2": rb2.ties_prompt([0.4], [0.6]),              # wrong, gap -0.2, spread 0
        "tied:2": rb2.ties_prompt([0.5, 0.5], [0.2]),        # accurate, gap 0.3, spread 0
        "tied:3": rb2.ties_prompt([0.5, 0.6], [0.1]),        # no ref partner: counts for accuracy only
    }
    # pair 1: min gap 0.1; 0.1 > 0.2? no; 0.1 > 0.2? no; tanh(0.1/0.2 - 1) = tanh(-0.5)
    # pair 2: min gap -0.2; 0.3 > 0? yes; -0.2 > 0? no; spread 0 with gap -0.2 -> -1
    expected = (0.30 * 1.0 + 0.30 * 0.5 + 0.20 * (0 + 1) / 2 + 0.20 * 0.0
                + 0.01 * (math.tanh(-0.5) - 1) / 2)
    assert rb2.ties_score(prompts) == pytest.approx(expected)
    with pytest.raises(RmflowError, match="neither ref:<n> nor tied:<n>"):
        rb2.ties_score({"other-7": prompts["ref:1"]})


def test_overall_is_the_mean_of_all_six_or_missing():
    six = dict(zip(rb2.V2_SUBSETS, [0.657, 0.419, 0.661, 0.822, 0.766, 0.663]))
    assert rb2.overall(six) == pytest.approx(0.6647, abs=1e-4)  # ArmoRM's published 66.5
    assert rb2.overall({**six, "Ties": None}) is None


def _v2_row(i, subset, chosen, rejected, row_id=None):
    return {"id": row_id or f"{subset}-{i}", "subset": subset, "prompt": f"Question {i}: say something useful.",
            "chosen": chosen, "rejected": rejected}


@pytest.mark.slow
def test_evaluate_writes_rewardbench2_scores(tmp_path, trained_bt):
    rows = [_v2_row(i, s, [f"A careful answer number {i}."], ["no", "Nope.", f"wrong {i}"])
            for i, s in enumerate(rb2.V2_SUBSETS[:-1] * 2)]
    rows += [_v2_row(0, "Ties", ["Paris."], ["Lyon.", "Rome."], "ref:0"),
             _v2_row(0, "Ties", ["Paris.", "It is Paris."], ["Lyon."], "tied:0")]
    data = write_jsonl(tmp_path / "rb2.jsonl", rows)
    out = tmp_path / "eval"
    proc = run_cli("evaluate", "--model-dir", str(trained_bt), "--method", "bt", "--data", str(data), "--benchmark",
                   "rewardbench_v2", "--eval-set", "rb2", "--base", "tiny", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["benchmark"] == "rewardbench_v2" and set(scores["sections"]) == set(rb2.V2_SUBSETS)
    assert scores["subsets"]["Factuality"]["n"] == 2 and scores["subsets"]["Ties"]["n"] == 2
    values = list(scores["sections"].values())
    assert scores["score"] == pytest.approx(sum(values) / 6)


@pytest.mark.slow
def test_rewardbench2_rejects_pairwise_methods_and_bad_rows(tmp_path, trained_bt):
    bad = write_jsonl(tmp_path / "bad.jsonl", [_v2_row(0, "Math", "not a list", ["x"])])
    proc = run_cli("evaluate", "--model-dir", str(trained_bt), "--method", "bt", "--data", str(bad), "--benchmark",
                   "rewardbench_v2", "--eval-set", "rb2", "--base", "tiny", "--out-dir", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "bad.jsonl:1: field 'chosen': must be a non-empty list" in proc.stderr and not (tmp_path / "o").exists()
    from rmflow.evaluate.run import _score_v2
    from rmflow.methods._pairpm_model import PairwiseScorer

    with pytest.raises(RmflowError, match="needs a scalar reward model"):  # checked before any scoring
        _score_v2(PairwiseScorer.__new__(PairwiseScorer), [_v2_row(0, "Math", ["a"], ["b"])])


def test_synthetic_rewardbench2_rows_come_from_labelled_candidates(synthetic):
    from rmflow.data.synth import rewardbench2_rows

    sets = synthetic["bestofn"]
    rows = rewardbench2_rows(sets)
    math_rows = [r for r in rows if r["subset"] == "Math"]
    assert len(math_rows) == len(sets)
    for item, row in zip(sets, math_rows):
        right = {a for a, label in zip(item["answers"], item["labels"]) if label}
        assert row["chosen"][0] in right and not set(row["rejected"]) & right and len(row["rejected"]) == 3
    ties = {r["id"]: r for r in rows if r["subset"] == "Ties"}
    several = [n for n, item in enumerate(sets) if sum(item["labels"]) > 1]
    assert sorted(ties) == sorted([f"ref:{n}" for n in several] + [f"tied:{n}" for n in several])
    assert all(len(ties[f"tied:{n}"]["chosen"]) == sum(sets[n]["labels"]) for n in several)


def test_ties_prompt_counts_an_exact_tie_as_not_accurate():
    """Accurate means every correct answer strictly above every wrong one: an equal score is no win (mutmut found
    ``>=`` survived)."""
    assert rb2.ties_prompt([0.5, 0.7], [0.5, 0.1]) == {"accurate": 0.0, "gap": 0.0, "spread": pytest.approx(0.2)}
    assert rb2.ties_prompt([0.6, 0.7], [0.5])["accurate"] == 1.0


def test_a_ties_id_without_ref_or_tied_names_the_file_and_field():
    assert rb2.ties_key("x-ref:12:more") == ("ref", "12")
    with pytest.raises(RmflowError) as caught:
        rb2.ties_key("tie-3", where="rb2.jsonl")
    assert str(caught.value) == "rb2.jsonl: field 'id': Ties row id 'tie-3' is neither ref:<n> nor tied:<n>"
    with pytest.raises(RmflowError, match=r"^field 'id': Ties row id"):
        rb2.ties_key("tie-3")


def test_ties_formula_on_boundaries_and_every_term():
    """Every term of the Ties formula away from 0 and 1, margins exactly at the spread (strict >), a zero spread with
    a zero gap, and a prompt without its partner sorted before complete pairs (the mutants mutmut left alive)."""
    prompts = {
        "tied:1": rb2.ties_prompt([0.5, 0.75], [0.25]),   # no ref:1: accuracy only
        "ref:2": rb2.ties_prompt([1.0], [0.25]),          # accurate, gap 0.75
        "tied:2": rb2.ties_prompt([1.0, 0.75], [0.25]),   # accurate, gap 0.5, spread 0.25: both margins hold
        "ref:3": rb2.ties_prompt([0.5], [0.5]),           # an exact tie: not accurate, gap 0
        "tied:3": rb2.ties_prompt([0.5, 0.5], [0.5]),     # not accurate, gap 0, spread 0: ratio 0
        "ref:4": rb2.ties_prompt([0.75], [0.5]),          # accurate, gap 0.25
        "tied:4": rb2.ties_prompt([1.0, 0.5], [0.0]),     # accurate, gap 0.5 == spread 0.5: no margin
    }
    pairs = rb2.ties_pairs(prompts)
    assert [(p["tied_margin"], p["both_margin"]) for p in pairs] == [(1.0, 1.0), (0.0, 0.0), (0.0, 0.0)]
    assert [p["ratio"] for p in pairs] == pytest.approx([math.tanh(1.0), 0.0, math.tanh(-0.5)])
    expected = (0.30 * 3 / 4 + 0.30 * 2 / 3 + 0.20 * 1 / 3 + 0.20 * 1 / 3
                + 0.01 * (math.tanh(1.0) + math.tanh(-0.5)) / 3)
    assert rb2.ties_score(prompts) == pytest.approx(expected)
    complete = {k: v for k, v in prompts.items() if k != "tied:1"}  # every prompt paired: the bootstrap's unit
    assert rb2.ties_score(complete) == pytest.approx(sum(map(rb2.pair_credit, rb2.ties_pairs(complete))) / 3)
    assert rb2.ties_score({"ref:1": prompts["ref:2"], "tied:2": prompts["tied:2"]}) is None  # no complete pair


def test_rewardbench2_score_report_by_hand():
    """score_report in process (the evaluate tests reach it only through a subprocess): best-of-4 credits with a
    shared top score, Ties by its formula, an unknown subset counted but not scored, and the overall only when all
    six subsets are present."""
    rows = [{"id": "f1", "subset": "Factuality"}, {"id": "f2", "subset": "Factuality"},
            {"id": "m1", "subset": "Math"}, {"id": "ref:1", "subset": "Ties"}, {"id": "tied:1", "subset": "Ties"},
            {"id": "x1", "subset": "Chat"}]
    chosen = [[0.9], [0.1], [0.5], [1.0], [1.0, 0.75], [0.3]]
    rejected = [[0.2, 0.3, 0.4], [0.5, 0.2, 0.0], [0.5, 0.5, 0.2], [0.25], [0.25], [0.1, 0.0, 0.2]]
    report = rb2.score_report(rows, chosen, rejected)
    # f1 alone on top: 1; f2 below a rejected: 0; m1 shares the top with two rejected: 1/3; Ties prompts accurate
    assert report["credits"] == pytest.approx([1.0, 0.0, 1 / 3, 1.0, 1.0, 1.0])
    ties = 0.30 + 0.30 + 0.20 * 1 + 0.20 * 1 + 0.01 * math.tanh(0.5 / 0.25 - 1)  # gaps .75 (ref), .5 (tied); spread .25
    assert report["subsets"] == {"Chat": {"accuracy": 1.0, "n": 1}, "Factuality": {"accuracy": 0.5, "n": 2},
                                 "Math": {"accuracy": pytest.approx(1 / 3), "n": 1},
                                 "Ties": {"accuracy": pytest.approx(ties), "n": 2}}
    assert report["sections"] == {"Factuality": 0.5, "Precise IF": None, "Math": pytest.approx(1 / 3),
                                  "Safety": None, "Focus": None, "Ties": pytest.approx(ties)}
    assert report["ties"] == {"ref:1": {"accurate": 1.0, "gap": 0.75, "spread": 0.0},
                              "tied:1": {"accurate": 1.0, "gap": 0.5, "spread": 0.25}}
    assert report["score"] is None and report["prior_sets"] is None
    assert report["unscored_subsets"] == {"Chat": 1}
    assert report["section_map"] == "rewardbench_v2"
    assert report["formula"] == "unweighted mean of the six RewardBench 2 subsets"
    six = [{"id": f"r{i}", "subset": s} for i, s in enumerate(rb2.V2_SUBSETS[:-1])]
    full = rb2.score_report(six + rows[3:5], [[1.0], [0.0], [1.0], [1.0], [0.0]] + chosen[3:5],
                            [[0.5]] * 5 + rejected[3:5])
    assert full["score"] == pytest.approx((1 + 0 + 1 + 1 + 0 + ties) / 6)
    assert full["unscored_subsets"] == {}
