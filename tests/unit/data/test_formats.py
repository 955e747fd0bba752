"""Every data layout the paper recipe reads: layout-true rows convert, a row that does not fit stops with the data
set's name, the format, the row and the columns seen (exit 2, nothing written).

The inline rows are shortened real rows: GSM8K pairs (../shared/data/gsm8k_pairs_train.jsonl, problem 1), a
ProcessBench step row (processbench_prm_train.jsonl, gsm8k-0) and its attribute row (math_attributes_train.jsonl),
reshaped into each hub layout the way `rmflow make-samples` does; the shared-data test at the end prepares every
sample file built from the real files.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from helpers import SHARED_DATA, run_cli, write_jsonl
from rmflow.data.formats import FORMATS, read_prepared
from rmflow.methods.pairwise.pm import pm_row

QUESTION = "A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in total does it take?"
GOOD = "It takes 2*1/2=<<2*1/2=1.0>>1 bolt of white fiber\nSo it takes 2+1=<<2+1=3>>3 bolts\nA: 3"
BAD = "It takes 2/2 = 1 bolt of white fiber\nSo it takes 2 + 1 = 4 bolts\nA: 4"
STEPS = ["To find how many flamingos were out, we track both colours.", "On Saturday 18 / 3 = 6 were painted."]


def _user(text):
    return {"role": "user", "content": text}


def _assistant(text):
    return {"role": "assistant", "content": text}


# format -> (layout-true rows, what the prepared file must hold, a row that does not fit, the message)
CASES = {
    "standard": ([{"chosen": [_user(QUESTION), _assistant(GOOD)], "rejected": [_user(QUESTION), _assistant(BAD)]}],
                 lambda r: r[0]["chosen"][1]["content"] == GOOD,
                 {"chosen": [_user(QUESTION), _assistant(GOOD)]}, "field 'rejected': is missing"),
    "hh": ([{"chosen": f"\n\nHuman: {QUESTION}\n\nAssistant: {GOOD}", "rejected": f"\n\nHuman: {QUESTION}\n\n"
             f"Assistant: {BAD}"}], lambda r: r[0]["rejected"][1]["content"] == BAD,
           {"chosen": "no markers here", "rejected": "x"}, "field 'chosen': not an HH transcript"),
    "rewardbench": ([{"prompt": QUESTION, "chosen": GOOD, "rejected": BAD}],
                    lambda r: r[0]["chosen"][0]["content"] == QUESTION,
                    {"prompt": QUESTION, "chosen": GOOD}, "field 'rejected': is missing"),
    "ratings_best_vs_each": ([{"prompt": QUESTION, "responses": [BAD, GOOD], "scores": [2, 9]}],
                             lambda r: r[0]["chosen"][1]["content"] == GOOD,
                             {"prompt": QUESTION, "responses": [BAD, GOOD], "scores": [2]}, "field 'scores':"),
    "ratings_best_vs_worst": ([{"prompt": QUESTION, "responses": [BAD, GOOD, "3"], "scores": [2, 9, 5]}],
                              lambda r: len(r) == 1 and r[0]["rejected"][1]["content"] == BAD,
                              {"prompt": QUESTION, "responses": [BAD]}, "field 'scores': is missing"),
    "helpsteer2_preference": (
        [{"prompt": f"{QUESTION}<extra_id_1>Assistant\nLet me think.<extra_id_1>User\nPlease answer.",
          "response_1": BAD, "response_2": GOOD, "preference_strength": 2, "split": "train"}],
        lambda r: r[0]["chosen"][-1]["content"] == GOOD and len(r[0]["chosen"]) == 4 and r[0]["strength"] == 2
        and r[0]["chosen"][1] == _assistant("Let me think."),
        {"prompt": QUESTION, "response_1": BAD, "response_2": GOOD, "preference_strength": "much better"},
        "field 'preference_strength': must be a number"),
    "pair_pm_messages": ([pm_row([_user(QUESTION)], BAD, GOOD, "B")],
                         lambda r: r[0]["chosen"][1]["content"] == GOOD and r[0]["rejected"][1]["content"] == BAD,
                         {"messages": [_user(f"[CONTEXT] {QUESTION} [RESPONSE A] {GOOD}"), _assistant("A")]},
                         "field 'messages': the user turn is not"),
    "multi_objective": ([{"messages": [_user(QUESTION), _assistant(GOOD)], "answer_correct": 1,
                          "process_correct": None, "correct_step_fraction": 0.5},
                         {"messages": [_user(QUESTION), _assistant(BAD)],
                          "attributes": {"answer_correct": 0, "process_correct": 0}}],
                        lambda r: r[0]["attributes"] == {"answer_correct": 1.0, "correct_step_fraction": 0.5,
                                                         "process_correct": None}
                        and r[1]["attributes"]["correct_step_fraction"] is None,
                        {"messages": [_user(QUESTION), _assistant(GOOD)], "answer_correct": "yes"},
                        "field 'answer_correct': must be a number, a boolean or null"),
    "helpsteer2_attributes": ([{"prompt": QUESTION, "response": GOOD, "helpfulness": 4, "correctness": 4,
                                "coherence": 4, "complexity": 1, "verbosity": 1}],
                              lambda r: r[0]["attributes"]["complexity"] == 1.0 and r[0]["messages"][1]["content"]
                              == GOOD, {"prompt": QUESTION, "response": GOOD, "helpfulness": 4},
                              "field 'correctness': is missing"),
    "step_rows": ([{"prompt": QUESTION, "steps": STEPS, "labels": [1, 0]}],
                  lambda r: [m["content"] for m in r[0]["messages"]] == [f"{QUESTION} {STEPS[0]}", "+", STEPS[1], "-"],
                  {"prompt": QUESTION, "steps": STEPS, "labels": [1]}, "field 'labels': has 1 labels for 2 steps"),
    "prm_conversations": ([{"conversations": [_user(f"{QUESTION} Step 1: {STEPS[0]}"), _assistant("+"),
                                              _user(f"Step 2: {STEPS[1]}"), _assistant("-")]}],
                          lambda r: len(r[0]["messages"]) == 4 and r[0]["messages"][3]["content"] == "-",
                          {"conversation": []}, "field 'messages': is missing"),
    "orm_conversations": ([{"conversations": [_user(f"{QUESTION} Step 1: {STEPS[0]}\nStep 2: {STEPS[1]}"),
                                              _assistant("-")]}],
                          lambda r: r[0]["messages"][1]["content"] == "-",
                          {"conversations": [_user("q"), _assistant("+"), _user("r"), _assistant("+")]},
                          "an ORM row is one user turn and one label, not 4 turns"),
    "bestofn": ([{"prompt": QUESTION, "answers": [BAD, GOOD, "A: 5"], "label": [0, 1, 0]}],
                lambda r: r[0]["labels"] == [0, 1, 0] and r[0]["context"] == [_user(QUESTION)],
                {"prompt": QUESTION, "answers": [BAD, GOOD], "label": [1]}, "field 'label': has 1 labels for 2"),
    "rewardbench2": ([{"id": 7, "prompt": QUESTION, "chosen": [GOOD], "rejected": [BAD, "A: 5", "A: 6"],
                       "num_correct": 1, "num_incorrect": 3, "total_completions": 4, "models": ["a"] * 4,
                       "subset": "Math"}],
                     lambda r: r[0]["id"] == "7" and len(r[0]["rejected"]) == 3,
                     {"id": 8, "prompt": QUESTION, "chosen": [GOOD], "rejected": [BAD], "num_correct": 2,
                      "subset": "Math"}, "field 'num_correct': is 2 but 'chosen' holds 1 completions"),
}


def _prepare(tmp_path, rows, fmt, *extra):
    src = write_jsonl(tmp_path / f"{fmt}.jsonl", rows)
    out, report = tmp_path / "out.parquet", tmp_path / "report.json"
    proc = run_cli("prepare-data", "--name", f"my_{fmt}", "--source", str(src), "--format", fmt,
                   "--out", str(out), "--report", str(report), *extra)
    return proc, out, report


def test_every_format_has_a_case():
    assert sorted(CASES) == sorted(FORMATS)


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_layout_true_rows_convert(tmp_path, fmt):
    rows, check, _, _ = CASES[fmt]
    proc, out, report = _prepare(tmp_path, rows, fmt)
    assert proc.returncode == 0, proc.stderr[-2000:]
    prepared = read_prepared(out)
    assert check(prepared), prepared
    assert json.loads(report.read_text())["kind"] == FORMATS[fmt].kind


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_a_row_that_does_not_fit_stops_with_set_format_row_and_columns(tmp_path, fmt):
    rows, _, bad, expected = CASES[fmt]
    proc, out, report = _prepare(tmp_path, rows + [bad], fmt)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1, "one clear line, no traceback"
    assert f"{fmt}.jsonl:{len(rows) + 1}:" in line and expected in line
    assert f"data set 'my_{fmt}' (format '{fmt}')" in line
    assert "columns seen: " + ", ".join(sorted(bad)) in line
    assert not out.exists() and not report.exists() and not list(tmp_path.glob(".*tmp"))


def test_where_filter_and_ties_are_counted(tmp_path):
    rows = [{"prompt": QUESTION, "response_1": BAD, "response_2": GOOD, "preference_strength": s, "split": split}
            for s, split in ((2, "train"), (0, "train"), (-1, "val"), (-3, "train"))]
    proc, out, report = _prepare(tmp_path, rows, "helpsteer2_preference", "--where", "split=train")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(report.read_text())
    assert summary["rows_filtered_out"] == 1 and summary["converter_counts"] == {"tie": 1}
    assert [r["chosen"][1]["content"] for r in read_prepared(out)] == [GOOD, BAD]


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent (set RMFLOW_SHARED_DATA)")
def test_every_sample_of_the_real_data_prepares_in_its_layout(tmp_path):
    """The paper-smoke samples: real rows from ../shared/data reshaped into each hub layout, each prepared."""
    import yaml

    from rmflow.data.samples import build

    smoke = yaml.safe_load((__import__("helpers").REPO / "tests/configs/paper-smoke.yaml").read_text())
    paper = yaml.safe_load((__import__("helpers").REPO / "config/paper.yaml").read_text())
    files = build(SHARED_DATA, {"pairs": 8, "attribute_rows": 8, "step_rows": 8})
    for name, entry in smoke["datasets"].items():
        fmt = paper["datasets"][name]["format"]
        rows = files[entry["path"].rsplit("/", 1)[1]]
        proc, out, _ = _prepare(tmp_path, rows, fmt)
        assert proc.returncode == 0, (name, proc.stderr[-1000:])
        assert pl.read_parquet(out).height >= 1
