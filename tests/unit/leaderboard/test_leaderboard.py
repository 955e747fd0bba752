"""Leaderboard gathering: columns, sorting, intervals, significance, Markdown/LaTeX, and the checks that refuse a
results directory mixing schemas or evaluations."""

from __future__ import annotations

import json
import math
import re

import polars as pl
import pytest

from helpers import LookupScorer, run_cli
from rmflow import leaderboard
from rmflow.errors import RmflowError
from rmflow.evaluate.rewardbench import score_report
from rmflow.evaluate.run import SCORES_SCHEMA, ids_digest
from rmflow.leaderboard import render

FAST = leaderboard.Options(n_boot=200)


def write_scores(root, eval_set, method, base, subsets, credits, sections="synthetic_v1", ids=None):
    path = root / eval_set / method / base / "scores.json"
    path.parent.mkdir(parents=True)
    ids = ids or [f"row{i}" for i in range(len(subsets))]
    report = score_report(subsets, credits, sections)
    path.write_text(json.dumps({"schema": SCORES_SCHEMA, "benchmark": "rewardbench_v1", "eval_set": eval_set,
                                "method": method, "base": base, "n_examples": len(subsets),
                                "released": method == "external",  # what evaluate writes for a released model
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
    tex = render.to_latex(board, style)
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


def test_latex_marks_released_models_and_says_why(tmp_path):
    write_scores(tmp_path, "synthetic", "bt", "a_b", SUBSETS * 5, [1, 0, 1, 0] * 5)
    write_scores(tmp_path, "synthetic", "external", "armo_rm", SUBSETS * 5, [1, 1, 0, 1] * 5)
    board, _, _ = leaderboard.tables(leaderboard.read_scores(leaderboard.find_scores(tmp_path)), FAST)
    tex = render.to_latex(board, released={"armo_rm (external)"})
    marked = [row for row in _latex_body_rows(tex) if r"$^\dagger$" in row]
    assert len(marked) == 1 and "armo" in marked[0]
    assert r"$^\dagger$: a released reward model" in tex
    plain = render.to_latex(board)
    assert r"\dagger" not in plain
    # the leaderboard's own .tex marks the model whose scores.json says released, and only it
    out = _outputs(tmp_path)
    leaderboard.main(leaderboard.find_scores(tmp_path), out["csv"], out["md"], out["subsets"], out["tex"], None, FAST)
    written = [row for row in _latex_body_rows(out["tex"].read_text()) if r"$^\dagger$" in row]
    assert len(written) == 1 and "armo" in written[0] and "a\\_b" not in written[0]


def test_a_released_models_scores_written_before_the_released_key_still_read_as_released(tmp_path):
    """scores.json files of the same schema written before `released` existed: the registry's EXTERNAL flag of the
    scoring module decides, so a regenerated leaderboard names the released model as before."""
    for method, base in (("external", "armo_rm"), ("bt", "a_b")):
        path = write_scores(tmp_path, "synthetic", method, base, SUBSETS, [1, 0, 1, 1])
        record = json.loads(path.read_text())
        del record["released"]
        path.write_text(json.dumps(record))
    names = {leaderboard.model_name(r) for r in leaderboard.read_scores(leaderboard.find_scores(tmp_path))}
    assert names == {"armo_rm (external)", "a_b/bt"}


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


def write_v2(root, eval_set, base, per_subset):
    """A RewardBench 2 scores.json + examples.parquet as ``rmflow evaluate`` writes them, from its own scoring
    (``_score_v2``) with a scorer whose every score is given: ``per_subset`` maps a subset to its rows'
    (id or "", chosen scores, rejected scores); Ties rows are ref:<n>/tied:<n>."""
    from rmflow.evaluate.run import _score_v2

    rows, table = [], {}
    for subset, items in per_subset.items():
        for i, (row_id, chosen, rejected) in enumerate(items):
            row = {"id": row_id or f"{subset}-{i}", "subset": subset, "prompt": "p"}
            for side, scores in (("chosen", chosen), ("rejected", rejected)):
                row[side] = [f"{row['id']} {side} {j}" for j in range(len(scores))]
                table.update(zip(row[side], scores))
            rows.append(row)
    report, columns = _score_v2(LookupScorer(table), rows)
    credits = report.pop("credits")  # as evaluate does; _score_v2 has already moved the Ties terms into columns
    path = root / eval_set / "bt" / base / "scores.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"schema": SCORES_SCHEMA, "benchmark": "rewardbench_v2", "eval_set": eval_set,
                                "method": "bt", "base": base, "n_examples": len(rows),
                                "example_ids_sha256": ids_digest([r["id"] for r in rows]), **report}))
    pl.DataFrame({"id": [r["id"] for r in rows], "subset": [r["subset"] for r in rows], **columns,
                  "correct": credits}, strict=False).write_parquet(path.with_name("examples.parquet"))
    return report


V2_ONE_ROW_EACH = {"Factuality": [("", [0.9], [0.1, 0.2, 0.3])], "Precise IF": [("", [0.1], [0.9, 0.2, 0.3])],
                   "Math": [("", [0.5], [0.5, 0.2, 0.3])], "Safety": [("", [0.9], [0.1, 0.2, 0.3])],
                   "Focus": [("", [0.9], [0.1, 0.2, 0.3])],
                   "Ties": [("ref:1", [1.0], [0.25]), ("tied:1", [1.0, 0.75], [0.25])]}


def test_the_whole_leaderboard_contract(tmp_path, caplog):
    """Every output of ``main`` on runs built so their numbers are known by hand: one row per subset (or one Ties
    pair) makes every bootstrap replicate equal the point, so each interval must be that point; two rows [1, 0] in
    one subset give replicates 0, 50, 100 with chances 1/4, 1/2, 1/4, so a 40 % interval is exactly [50, 50]."""
    root = tmp_path / "eval"
    # v1 "aa": Chat Hard and a prior set only (no Score: nothing to rank) — sorts before "synthetic"
    write_scores(root, "aa", "bt", "a", ["llmbar-natural", "anthropic_hhh"], [1, 0], "rewardbench_v1")
    # v1 "rb": all four sections and a prior set, one row each
    rb = ["alpacaeval-easy", "llmbar-natural", "donotanswer", "hep-go", "anthropic_hhh"]
    write_scores(root, "rb", "bt", "a", rb, [1, 0, 1, 1, 0], "rewardbench_v1")
    # v1 "synthetic": two trained models tied on Score (sorted by name) and one external model
    two = ["synth-casing", "synth-casing", "synth-hard-casing", "synth-refuse", "synth-math"]
    write_scores(root, "synthetic", "bt", "b", two, [1, 0, 1, 1, 1])
    write_scores(root, "synthetic", "odin", "a", two, [0, 1, 1, 1, 1])
    ext = write_scores(root, "synthetic", "external", "bt_copy", two, [1, 1, 0, 0, 0])
    ext.write_text(json.dumps({**json.loads(ext.read_text()), "length_correlation": -0.25}))
    full = write_v2(root, "v2full", "a", V2_ONE_ROW_EACH)
    write_v2(root, "v2part", "a", {k: v for k, v in V2_ONE_ROW_EACH.items() if k != "Focus"})
    out = _outputs(tmp_path)
    options = leaderboard.Options(n_boot=400, seed=0, level=0.4, ci_style="brackets")
    with caplog.at_level("INFO", logger="rmflow.leaderboard"):
        md = leaderboard.main(leaderboard.find_scores(root), out["csv"], out["md"], out["subsets"], out["tex"],
                              out["sig"], options)
    assert f"leaderboard of 7 runs written to {out['csv']} (bootstrap B=400, seed 0)" in caplog.messages

    board = pl.read_csv(out["csv"])
    assert board.columns == leaderboard.KEYS + [
        c for s in ["Score", "Chat", "Chat Hard", "Safety", "Reasoning", "Factuality", "Precise IF", "Math",
                    "Focus", "Ties", "Prior Sets"] for c in (s, f"{s}_lo", f"{s}_hi")] + ["Length Corr"]
    rows = {(r["Eval Set"], r["Model"]): r for r in board.iter_rows(named=True)}
    assert [(r["Benchmark"], r["Eval Set"], r["Model"]) for r in board.iter_rows(named=True)] == [
        ("rewardbench_v1", "aa", "a/bt"), ("rewardbench_v1", "rb", "a/bt"),
        ("rewardbench_v1", "synthetic", "a/odin"), ("rewardbench_v1", "synthetic", "b/bt"),
        ("rewardbench_v1", "synthetic", "bt_copy (external)"),
        ("rewardbench_v2", "v2full", "a/bt"), ("rewardbench_v2", "v2part", "a/bt")]
    ext_row = rows["synthetic", "bt_copy (external)"]
    assert (ext_row["Base Model"], ext_row["Method"], ext_row["Length Corr"]) == ("bt_copy", "external", -0.25)
    # rb: (1 + 0 + 1 + 1 + 0.5 * 0) / 4.5; every interval is its point
    rb_row = rows["rb", "a/bt"]
    assert rb_row["Score"] == pytest.approx(300 / 4.5) and rb_row["Prior Sets"] == 0.0
    for column in ("Score", "Chat", "Chat Hard", "Safety", "Reasoning", "Prior Sets"):
        assert rb_row[f"{column}_lo"] == rb_row[f"{column}_hi"] == pytest.approx(rb_row[column]), column
    # synthetic: the two-row Chat subset [1, 0] → a 40 % interval of exactly [50, 50]
    b_row = rows["synthetic", "b/bt"]
    assert (b_row["Chat"], b_row["Chat_lo"], b_row["Chat_hi"]) == (50.0, 50.0, 50.0)
    assert b_row["Score"] == rows["synthetic", "a/odin"]["Score"] == 87.5
    # v2: Factuality 1, Precise IF 0, Math 1/2 (a shared top), Safety 1, Focus 1, Ties by its formula
    v2 = rows["v2full", "a/bt"]
    ties = 0.30 + 0.30 + 0.20 + 0.20 + 0.01 * math.tanh(0.5 / 0.25 - 1)  # gaps .75 / .5, the tied spread .25
    assert v2["Score"] == pytest.approx(100 * (1 + 0 + 0.5 + 1 + 1 + ties) / 6) == 100 * full["score"]
    assert v2["Math"] == 50.0 and v2["Ties"] == pytest.approx(100 * ties)
    for column in ("Score", "Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties"):
        assert v2[f"{column}_lo"] == v2[f"{column}_hi"] == pytest.approx(v2[column]), column
    part = rows["v2part", "a/bt"]
    assert part["Score"] is None and part["Score_lo"] is None and part["Focus"] is None
    assert part["Factuality_lo"] == 100.0 and part["Precise IF_hi"] == 0.0

    subsets = pl.read_csv(out["subsets"])
    assert subsets.columns == ["benchmark", "eval_set", "model", "base", "method", "subset", "n", "accuracy"]
    assert subsets.filter((pl.col("eval_set") == "synthetic") & (pl.col("model") == "b/bt")).select(
        "base", "method", "subset", "n", "accuracy").rows() == [
        ("b", "bt", "synth-casing", 2, 50.0), ("b", "bt", "synth-hard-casing", 1, 100.0),
        ("b", "bt", "synth-math", 1, 100.0), ("b", "bt", "synth-refuse", 1, 100.0)]

    sig = pl.read_csv(out["sig"])
    assert sig.columns == ["benchmark", "eval_set", "best", "model", "difference", "diff_lo", "diff_hi", "p_value",
                           "significant"]
    # "aa" has no Score (skipped, not the end of the list); synthetic: the best is a/odin (tie broken by name)
    assert sig.select("benchmark", "eval_set", "best", "model").rows() == [
        ("rewardbench_v1", "synthetic", "a/odin", "b/bt"),
        ("rewardbench_v1", "synthetic", "a/odin", "bt_copy (external)")]
    assert sig["difference"].to_list() == [0.0, 62.5]
    # a/odin vs b/bt differ only on the two Chat rows, swapped: replicate differences -25, 0, +25 with chances
    # 1/4, 1/2, 1/4, so the 40 % interval of the difference is exactly [0, 0] (at 95 % it would be [-25, 25])
    assert sig.row(0, named=True)["diff_lo"] == sig.row(0, named=True)["diff_hi"] == 0.0

    assert "87.5 [" in md and "±" not in md
    tex = out["tex"].read_text()
    assert "40\\% bootstrap intervals" in tex and "$\\pm$" not in tex
    again = {k: tmp_path / "again" / f"lb.{k}" for k in out}
    (tmp_path / "again").mkdir()
    leaderboard.main(leaderboard.find_scores(root), again["csv"], again["md"], again["subsets"], again["tex"],
                     again["sig"], options)
    assert all(again[k].read_bytes() == out[k].read_bytes() for k in out)  # seeded: byte for byte


def test_column_types_hold_when_a_column_is_empty_and_no_pair_is_tested(tmp_path):
    write_scores(tmp_path, "rb", "bt", "a", ["llmbar-natural", "anthropic_hhh"], [1, 0], "rewardbench_v1")
    board, _, pairwise = leaderboard.tables(leaderboard.read_scores(leaderboard.find_scores(tmp_path)), FAST)
    assert board.schema["Score"] == pl.Float64 and board.schema["Model"] == pl.String
    assert pairwise.is_empty() and dict(pairwise.schema) == {
        "benchmark": pl.String, "eval_set": pl.String, "best": pl.String, "model": pl.String,
        "difference": pl.Float64, "diff_lo": pl.Float64, "diff_hi": pl.Float64, "p_value": pl.Float64,
        "significant": pl.Boolean}


def test_every_refusal_names_its_file_and_field(tmp_path):
    """The exact messages: the CLI prints them as the one line a user sees."""
    with pytest.raises(RmflowError) as caught:
        leaderboard.find_scores(tmp_path)
    assert str(caught.value) == f"{tmp_path}: no <eval set>/<method>/<base>/scores.json files found"
    path = write_scores(tmp_path, "synthetic", "bt", "a", SUBSETS, [1, 0, 1, 0])
    good = json.loads(path.read_text())
    path.write_text('{"schema":\n oops}')
    with pytest.raises(RmflowError) as caught:
        leaderboard.read_scores([path])
    assert str(caught.value) == f"{path}:2: malformed JSON (Expecting value)"
    path.write_text(json.dumps({**good, "schema": "rmflow.scores/1"}))
    with pytest.raises(RmflowError) as caught:
        leaderboard.read_scores([path])
    assert str(caught.value) == (f"{path}: field 'schema': scores schema is 'rmflow.scores/1', expected "
                                 f"'{SCORES_SCHEMA}' (written by an older rmflow); re-run its evaluation")
    path.write_text(json.dumps({**good, "eval_set": "x", "method": "y", "base": "z"}))
    with pytest.raises(RmflowError) as caught:
        leaderboard.read_scores([path])
    assert str(caught.value) == f"{path}: file says eval set/method/base x/y/z but sits under synthetic/bt/a"
    path.write_text(json.dumps(good))
    other = write_scores(tmp_path, "synthetic", "bt", "b", SUBSETS[:3], [1, 1, 1])
    with pytest.raises(RmflowError) as caught:
        leaderboard.read_scores([path, other])
    assert str(caught.value) == (f"{other}: field 'n_examples': eval set 'synthetic' mixes different evaluations: "
                                 f"n_examples is 3 here but 4 in {path}; re-run one of them on the same data")
    # the same rule does not reach across eval sets: another set may score other rows
    elsewhere = write_scores(tmp_path, "other", "bt", "a", SUBSETS[:3], [1, 1, 1])
    assert len(leaderboard.read_scores([path, elsewhere])) == 2
    path.with_name("examples.parquet").unlink()
    with pytest.raises(RmflowError) as caught:
        leaderboard.tables(leaderboard.read_scores([path]), FAST)
    assert str(caught.value) == (f"{path.with_name('examples.parquet')}: examples.parquet is missing beside "
                                 "scores.json (needed for confidence intervals)")


def test_the_seed_decides_every_interval_and_test(tmp_path):
    """Same seed, same tables; another seed, other intervals and p-values (a bootstrap left unseeded would give
    different tables on every run, and the README promises byte-identical regeneration)."""
    import numpy as np

    rng = np.random.default_rng(7)
    subsets = [SUBSETS[i % 4] for i in range(40)]
    for base in ("a", "b", "c"):
        write_scores(tmp_path, "synthetic", "bt", base, subsets, (rng.random(40) < 0.7).astype(int).tolist())
    records = leaderboard.read_scores(leaderboard.find_scores(tmp_path))
    first = leaderboard.tables(records, FAST)
    again = leaderboard.tables(records, FAST)
    other = leaderboard.tables(records, leaderboard.Options(n_boot=200, seed=1))
    assert first[0].equals(again[0]) and first[2].equals(again[2])
    assert not first[0].equals(other[0]) and not first[2].equals(other[2])


def test_significance_keeps_the_board_order_of_its_groups(tmp_path):
    """One block of tests per benchmark and eval set, in the leaderboard's order (v1 before v2, sets by name).
    Seven groups: polars groups in a random order unless told to keep it, and three matched by chance once in six
    (a mutation run saw it)."""
    names = ("s4", "s2", "s6", "s1", "s5", "s3")
    for eval_set in names:
        write_scores(tmp_path, eval_set, "bt", "a", SUBSETS, [1, 0, 1, 0])
        write_scores(tmp_path, eval_set, "bt", "b", SUBSETS, [1, 1, 1, 1])
    write_v2(tmp_path, "v2", "a", V2_ONE_ROW_EACH)
    write_v2(tmp_path, "v2", "b", {**V2_ONE_ROW_EACH, "Factuality": [("", [0.0], [0.1, 0.2, 0.3])]})
    _, _, pairwise = leaderboard.tables(leaderboard.read_scores(leaderboard.find_scores(tmp_path)), FAST)
    assert pairwise.select("benchmark", "eval_set", "best", "model").rows() == [
        *[("rewardbench_v1", name, "b/bt", "a/bt") for name in sorted(names)], ("rewardbench_v2", "v2", "a/bt", "b/bt")]


def test_a_records_own_released_key_decides_and_an_older_record_is_read_by_its_module():
    """scores.json says whether it is a released model's; a file from before that key is decided by its scoring
    module's EXTERNAL flag."""
    from rmflow import methods

    assert leaderboard.is_released({"method": "bt", "released": True})
    assert not leaderboard.is_released({"method": methods.RELEASED, "released": False})
    assert leaderboard.is_released({"method": methods.RELEASED}) and not leaderboard.is_released({"method": "bt"})
    assert not leaderboard.is_released({"method": "no-such-method"})
