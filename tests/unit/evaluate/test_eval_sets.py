"""Eval sets prepared once (rmflow prepare-eval) and read back by rmflow evaluate --prepared; no model involved."""

from __future__ import annotations

import json

import pytest

from helpers import run_cli
from rmflow.errors import RmflowError
from rmflow.evaluate import eval_sets

V1 = {"id": "1", "subset": "alpacaeval-easy", "prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}
V2 = {"id": "m1", "subset": "Math", "prompt": "1+1?", "chosen": ["2"], "rejected": ["3", "4", "5"]}


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("benchmark, rows", [("rewardbench_v1", [V1, {**V1, "id": "2", "subset": "donotanswer"}]),
                                             ("rewardbench_v2", [V2])])
def test_prepared_rows_read_back_as_the_loader_gives_them(tmp_path, benchmark, rows):
    source = _jsonl(tmp_path / "rows.jsonl", rows)
    proc = run_cli("prepare-eval", "--name", "s", "--data", str(source), "--benchmark", benchmark,
                   "--out", str(tmp_path / "s.jsonl"), "--report", str(tmp_path / "s.report.json"))
    assert proc.returncode == 0, proc.stderr
    back, report = eval_sets.read_prepared(str(tmp_path / "s.jsonl"), benchmark)
    assert back == eval_sets.load(str(source), benchmark, "filtered")
    assert report["rows"] == len(rows) and report["benchmark"] == benchmark and report["hub"] is None
    assert report["example_ids_sha256"] == eval_sets.ids_digest([r["id"] for r in rows])
    with pytest.raises(RmflowError, match="holds .* rows, not"):
        eval_sets.read_prepared(str(tmp_path / "s.jsonl"), next(b for b in eval_sets.BENCHMARKS if b != benchmark))


def test_a_bad_row_names_file_row_and_field_and_writes_nothing(tmp_path):
    source = _jsonl(tmp_path / "rows.jsonl", [V1, {k: v for k, v in V1.items() if k != "subset"}])
    proc = run_cli("prepare-eval", "--data", str(source), "--benchmark", "rewardbench_v1",
                   "--out", str(tmp_path / "s.jsonl"), "--report", str(tmp_path / "s.report.json"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{source}:2: field 'subset': is missing" in proc.stderr
    assert list(tmp_path.iterdir()) == [source]


def test_a_truncated_prepared_file_is_refused(tmp_path):
    eval_sets.prepare(str(_jsonl(tmp_path / "rows.jsonl", [V1, {**V1, "id": "2"}])), "rewardbench_v1", "filtered",
                      None, str(tmp_path / "s.jsonl"), str(tmp_path / "s.report.json"))
    text = (tmp_path / "s.jsonl").read_text().splitlines()
    (tmp_path / "s.jsonl").write_text(text[0] + "\n")
    with pytest.raises(RmflowError, match="has 1 rows, its report 2"):
        eval_sets.read_prepared(str(tmp_path / "s.jsonl"), "rewardbench_v1")


@pytest.mark.parametrize("benchmark, sections, expected", [
    ("rewardbench_v1", None, "rewardbench_v1"), ("rewardbench_v1", "synthetic_v1", "synthetic_v1"),
    ("rewardbench_v2", None, None)])
def test_benchmark_and_section_map(benchmark, sections, expected):
    assert eval_sets.check_choice(benchmark, sections) == expected


@pytest.mark.parametrize("benchmark, sections, message", [
    ("rewardbench_v1", "rewardbench_v2", "RewardBench 2 rows: benchmark: rewardbench_v2"),
    ("rewardbench_v2", "synthetic_v1", "leave sections out"), ("rewardbench_v3", None, "benchmark must be one of")])
def test_the_old_double_use_of_sections_is_refused_with_the_new_key(benchmark, sections, message):
    with pytest.raises(RmflowError, match=message):
        eval_sets.check_choice(benchmark, sections)


def test_the_plan_names_the_eval_set_field():
    from helpers import DEFAULT, REPO
    from rmflow.config import load_config
    from rmflow.plan import Plan

    config = load_config(DEFAULT, schema_path=REPO / "workflow/schemas/config.schema.yaml")
    config["eval_sets"]["synthetic_v2"]["sections"] = "synthetic_v1"
    with pytest.raises(RmflowError, match=r"eval_sets.synthetic_v2.sections.*leave sections out"):
        Plan(config)
