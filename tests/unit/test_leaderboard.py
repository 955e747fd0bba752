"""Leaderboard gathering: columns, sorting, intervals, significance, Markdown/LaTeX, and the checks that refuse a
results directory mixing schemas or evaluations."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from rmflow import leaderboard, tables_render
from rmflow.errors import RmflowError
from rmflow.evaluate.rewardbench import score_report
from rmflow.evaluate.run import SCORES_SCHEMA, ids_digest
from helpers import run_cli

FAST = leaderboard.Options(n_boot=200)


def write_scores(root, eval_set, method, base, subsets, credits, sections="synthetic_v1", ids=None):
    path = root / eval_set / method / base / "scores.json"
    path.parent.mkdir(parents=True)
    ids = ids or [f"row{i}" for i in range(len(subsets))]
    report = score_report(subsets, credits, sections)
    path.write_text(json.dumps({"schema": SCORES_SCHEMA, "benchmark": "rewardbench_v1", "eval_set": eval_set,
                                "method": method, "base": base, "n_examples": len(subsets),
                                "example_ids_sha256": ids_digest(ids), **report}))
    pl.DataFrame({"id": ids, "subset": subsets, "correct": [float(c) for c in credits]}).write_parquet(
        path.with_name("examples.parquet"))
    return path


SUBSETS = ["synth-casing", "synth-hard-casing", "synth-refuse", "synth-math"]


def _outputs(tmp_path):
    return {k: tmp_path / f"lb.{k}" for k in ("csv", "md", "subsets", "tex", "sig")}


def test_gathers_sorts_and_writes(tmp_path):
    write_scores(tmp_path, "synthetic", "bt", "a", SUBSETS, [1, 0, 1, 0])
    write_scores(tmp_path, "synthetic", "bt", "b", SUBSETS, [1, 1, 1, 1])
    out = _outputs(tmp_path)
    md = leaderboard.main(leaderboard.find_scores(tmp_path), out["csv"], out["md"], out["subsets"], out["tex"],
                          out["sig"], FAST)
    board = pl.read_csv(out["csv"])
    assert board["Model"].to_list() == ["b/bt", "a/bt"]
    assert board["Score"].to_list() == pytest.approx([100.0, 50.0])
    assert {"Score_lo", "Score_hi", "Chat_lo", "Chat_hi"} <= set(board.columns)
    assert "Prior Sets" not in board.columns and "Length Corr" not in board.columns
    # one row per subset: every resample of a 1-row subset is that row, so b's interval is a point
    assert "| rewardbench_v1 | synthetic | b/bt | 100.0 ± 0.0 | 100.0 ± 0.0 |" in md
    assert pl.read_csv(out["subsets"]).height == 8
    sig = pl.read_csv(out["sig"])
    assert sig.row(0, named=True)["best"] == "b/bt" and sig.row(0, named=True)["model"] == "a/bt"


def test_prior_sets_column_when_present(tmp_path):
    write_scores(tmp_path, "rb", "bt", "a", ["llmbar-natural", "anthropic_hhh"], [1, 0], "rewardbench_v1")
    board, _, _ = leaderboard.tables(leaderboard.read_scores(leaderboard.find_scores(tmp_path)), FAST)
    assert board["Prior Sets"].to_list() == [0.0] and board["Score"].to_list() == [None]


def test_old_schema_or_misplaced_file_is_named(tmp_path):
    path = write_scores(tmp_path, "synthetic", "bt", "a", SUBSETS, [1, 0, 1, 0])
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "schema": "rmflow.scores/1"}))
    with pytest.raises(RmflowError, match=r"synthetic/bt/a/scores.json: field 'schema': .*older rmflow"):
        leaderboard.read_scores([path])
    path.write_text(json.dumps({**data, "base": "other"}))
    with pytest.raises(RmflowError, match="sits under synthetic/bt/a"):
        leaderboard.read_scores([path])


def test_a_different_evaluation_under_the_same_eval_set_is_refused(tmp_path):
    write_scores(tmp_path, "synthetic", "bt", "a", SUBSETS, [1, 0, 1, 0])
    other = write_scores(tmp_path, "synthetic", "bt", "b", SUBSETS, [1, 1, 1, 1], ids=["x1", "x2", "x3", "x4"])
    out = _outputs(tmp_path)
    proc = run_cli("leaderboard", "--root", str(tmp_path), "--csv", str(out["csv"]), "--md", str(out["md"]),
                   "--subsets", str(out["subsets"]), "--tex", str(out["tex"]), "--bootstrap", "100")
    assert proc.returncode == 2
    assert str(other) in proc.stderr and "eval set 'synthetic' mixes different evaluations" in proc.stderr
    assert "example_ids_sha256" in proc.stderr
    assert not any(p.exists() for p in out.values())  # never a silently wrong table


def test_empty_root_is_an_error(tmp_path):
    with pytest.raises(RmflowError, match="no <eval set>/<method>/<base>/scores.json"):
        leaderboard.find_scores(tmp_path)


def _latex_body_rows(tex: str) -> list[str]:
    body = tex.split(r"\toprule")[1].split(r"\bottomrule")[0]
    return [line for line in body.splitlines() if line.endswith(r"\\") and "multicolumn" not in line]


@pytest.mark.parametrize("style", ["pm", "brackets"])
def test_latex_table_is_well_formed(tmp_path, style):
    write_scores(tmp_path, "synthetic", "bt", "a_b", SUBSETS * 5, [1, 0, 1, 0] * 5)
    write_scores(tmp_path, "synthetic", "odin", "a_b", SUBSETS * 5, [1, 1, 0, 1] * 5)
    board, _, _ = leaderboard.tables(leaderboard.read_scores(leaderboard.find_scores(tmp_path)), FAST)
    tex = tables_render.to_latex(board, style)
    # balanced braces (escaped ones excluded) and environments
    bare = tex.replace(r"\{", "").replace(r"\}", "")
    assert bare.count("{") == bare.count("}")
    assert tex.count(r"\begin{") == tex.count(r"\end{") == 2
    spec = re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1)
    rows = _latex_body_rows(tex)
    assert len(rows) == 3  # header + 2 models
    assert all(row.count(" & ") == len(spec) - 1 for row in rows)
    assert r"a\_b/odin" in tex and "a_b" not in tex.replace(r"a\_b", "")  # underscores escaped
    best = [row for row in rows if "odin" in row][0]
    other = [row for row in rows if "bt" in row][0]
    assert best.count(r"\textbf{") == 4 and other.count(r"\textbf{") == 2  # Chat is a tie: both bold
    assert (r"$\pm$" in tex) == (style == "pm") and ("[" in rows[1]) == (style == "brackets")


def test_rewardbench2_ties_bootstrap_by_prompt_pair():
    """RewardBench 2's Ties are resampled as (ref, tied) pairs, one unit per pair number with the pair's credit;
    other subsets stay one unit per row. (A CI run once failed here when ties_pairs lost its 'pair' key.)"""
    from rmflow.evaluate import rewardbench2 as rb2

    ties = {"ref:7": rb2.ties_prompt([1.0], [0.25]), "tied:7": rb2.ties_prompt([1.0, 0.75], [0.25]),
            "ref:9": rb2.ties_prompt([0.5], [0.5]), "tied:9": rb2.ties_prompt([0.5, 0.5], [0.5])}
    examples = pl.DataFrame({
        "id": ["f1", "f2", *ties], "subset": ["Factuality", "Factuality"] + ["Ties"] * 4,
        "correct": [1.0, 0.0] + [float(t["accurate"]) for t in ties.values()],
        "gap": [0.0, 0.0] + [t["gap"] for t in ties.values()],
        "spread": [0.0, 0.0] + [t["spread"] for t in ties.values()]})
    ids, subsets, credits = leaderboard.bootstrap_units({"benchmark": "rewardbench_v2"}, examples)
    assert ids == ["f1", "f2", "ties-pair:7", "ties-pair:9"]
    assert subsets == ["Factuality", "Factuality", "Ties", "Ties"]
    assert credits[:2] == [1.0, 0.0]
    assert credits[2:] == pytest.approx([rb2.pair_credit(p) for p in rb2.ties_pairs(ties)])
    assert sum(credits[2:]) / 2 == pytest.approx(rb2.ties_score(ties))
    v1 = leaderboard.bootstrap_units({"benchmark": "rewardbench_v1"}, examples)
    assert v1 == (examples["id"].to_list(), examples["subset"].to_list(), examples["correct"].to_list())
