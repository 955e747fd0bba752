"""RewardBench 2 rules: best-of-4 credit with ties, the Ties formula on every term and boundary, the overall score,
the score report by hand, rmflow evaluate on v2 rows and the refusals of bad rows and pairwise methods."""

from __future__ import annotations

import json
import math

import pytest

from helpers import LookupScorer, run_cli, write_jsonl
from rmflow.errors import RmflowError
from rmflow.evaluate import rewardbench2 as rb2


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
    from rmflow.methods.pairwise.model import PairwiseScorer

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
