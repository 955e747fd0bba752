"""The bad-input corpus: careless and hostile input across data, eval sets, configs, CLI arguments, model
directories, caches and output locations. Each case runs the real ``rmflow`` entry point (``cli.main``, in this
process: the same parser, commands and error handling as the console script) and asserts a non-zero exit, an
error line naming the file, row or field, no traceback, and nothing written: no output, no temporary.

One case each also runs as a subprocess (``test_the_console_script_prints_one_line``), so the in-process runs are
known to match what a user sees.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

PAIR = {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "Go away."}
EVAL = {"id": "1", "prompt": "Say hi.", "chosen": "Hi!", "rejected": "Go away.", "subset": "alpacaeval-easy"}
RB = ["--format", "rewardbench"]


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def prepare_data(w: Path, source, *extra) -> list[str]:
    return ["prepare-data", "--source", str(source), *extra, "--out", str(w / "out/pairs.parquet"),
            "--report", str(w / "out/report.json")]


def prepare_eval(w: Path, data, benchmark="rewardbench_v1") -> list[str]:
    return ["prepare-eval", "--data", str(data), "--benchmark", benchmark, "--out", str(w / "out/eval.jsonl"),
            "--report", str(w / "out/eval.report.json")]


def evaluate(w: Path, model, data, *extra) -> list[str]:
    return ["evaluate", "--external", str(model), "--data", str(data), "--benchmark", "rewardbench_v1",
            "--eval-set", "rb", "--base", "tiny", "--out-dir", str(w / "out/eval"), *extra]


def plan(w: Path, overlay: dict) -> list[str]:
    import yaml

    (w / "bad.yaml").write_text(yaml.safe_dump(overlay))
    return ["plan", "--directory", str(REPO), "--configfile", str(REPO / "tests/workflow/quick.yaml"),
            str(w / "bad.yaml"), "--sinfo", "", "--json", str(w / "out/plan.json")]


def model_copy(w: Path, base: Path, name: str = "model") -> Path:
    return Path(shutil.copytree(base, w / name))


def edit_header(model: Path, change) -> Path:
    weights = model / "model.safetensors"
    raw = weights.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.dumps(change(json.loads(raw[8:8 + length]))).encode()
    weights.write_bytes(struct.pack("<Q", len(header)) + header + raw[8 + length:])
    return model


def first_tensor(header: dict) -> str:
    return next(k for k in header if k != "__metadata__")


def wrong_dtype(header: dict) -> dict:
    header[first_tensor(header)]["dtype"] = "F64"
    return header


def wrong_shape(header: dict) -> dict:
    header[first_tensor(header)]["shape"][0] += 1
    return header


def pickle_only(w: Path, base: Path) -> Path:
    import torch
    from safetensors.torch import load_file

    model = model_copy(w, base)
    torch.save(load_file(str(model / "model.safetensors")), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    return model


def template(w: Path, base: Path, text: str | None) -> Path:
    model = model_copy(w, base)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (model / "chat_template.jinja").unlink(missing_ok=True)
    if text is not None:
        (model / "chat_template.jinja").write_text(text)
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    return model


def sharded(w: Path, base: Path, index: str) -> Path:
    model = model_copy(w, base)
    (model / "model.safetensors.index.json").write_text(index)
    return model


def spec_file(w: Path, text: str) -> Path:
    (w / "spec.json").write_text(text)
    return w / "spec.json"


def eval_rows(w: Path, rows: list) -> Path:
    return jsonl(w / "eval.jsonl", rows)


def prepared_without_report(w: Path) -> Path:
    return jsonl(w / "prep.jsonl", [EVAL])


def prepared_with_report(w: Path, **report) -> Path:
    rows = jsonl(w / "prep.jsonl", [{"id": "1", "subset": "alpacaeval-easy",
                                    "chosen": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "a"}],
                                    "rejected": [{"role": "user", "content": "x"},
                                                 {"role": "assistant", "content": "b"}]}])
    (w / "prep.report.json").write_text(json.dumps({"schema": "rmflow.eval_rows/1", "benchmark": "rewardbench_v1",
                                                    "rows": 1, **report}))
    return rows


def hub_cache(w: Path, monkeypatch) -> None:
    """An empty Hugging Face cache, offline: every hub id is absent, as on a compute node without a download."""
    monkeypatch.setenv("HF_HOME", str(w / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(w / "hf/hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# name -> (build(w, base, monkeypatch) -> argv, what stderr must say (a substring))
CASES = {
    # ---- data (prepare-data) -------------------------------------------------------------------------------------
    "data_malformed_json_line": (lambda w, b, m: prepare_data(w, jsonl(w / "d.jsonl", [PAIR, "{oops"]), *RB),
                                 "d.jsonl:2: malformed JSON"),
    "data_line_is_an_array": (lambda w, b, m: prepare_data(w, jsonl(w / "d.jsonl", [[1, 2]]), *RB),
                              "d.jsonl:1: each line must be a JSON object"),
    "data_json_array_with_a_number": (lambda w, b, m: prepare_data(w, _write(w / "d.json", json.dumps([PAIR, 3])), *RB),
                                      "d.json:2: element 2 of the list is a JSON int"),
    "data_json_not_a_list": (lambda w, b, m: prepare_data(w, _write(w / "d.json", json.dumps(PAIR)), *RB),
                             "d.json: a .json data file must hold a list of row objects"),
    "data_json_nested_too_deep": (lambda w, b, m: prepare_data(w, _write(w / "d.json", "[" * 50000 + "]" * 50000)),
                                  "d.json: JSON nested too deeply"),
    "data_jsonl_nested_too_deep": (lambda w, b, m: prepare_data(w, _write(w / "d.jsonl", "[" * 50000 + "]" * 50000)),
                                   "d.jsonl:1: JSON nested too deeply"),
    "data_not_utf8": (lambda w, b, m: prepare_data(w, _write_bytes(w / "d.jsonl", b'{"prompt": "caf\xe9"}\n'), *RB),
                      "d.jsonl:1: not UTF-8 text"),
    "data_empty_file": (lambda w, b, m: prepare_data(w, _write(w / "d.jsonl", "")), "d.jsonl: holds no rows"),
    "data_missing_file": (lambda w, b, m: prepare_data(w, w / "nowhere.jsonl"), "nowhere.jsonl"),
    "data_folder_without_data": (lambda w, b, m: prepare_data(w, _mkdir(w / "empty")), "empty: folder holds no"),
    "data_unknown_format": (lambda w, b, m: prepare_data(w, jsonl(w / "d.jsonl", [PAIR]), "--format", "magic"),
                            "magic"),
    "data_missing_field": (lambda w, b, m: prepare_data(w, jsonl(w / "d.jsonl", [{"prompt": "p", "chosen": "a"}]),
                                                        *RB), "d.jsonl:1: field 'rejected'"),
    "data_wrong_layout_for_format": (lambda w, b, m: prepare_data(w, jsonl(w / "d.jsonl", [PAIR])),
                                     "d.jsonl:1: field 'chosen'"),
    "data_corrupt_parquet": (lambda w, b, m: prepare_data(w, _write_bytes(w / "d.parquet", b"PAR1 not really")),
                             "d.parquet: unreadable parquet file"),
    "data_bad_where": (lambda w, b, m: prepare_data(w, jsonl(w / "d.jsonl", [PAIR]), *RB, "--where", "split"),
                       "field 'where': --where takes COLUMN=VALUE items"),
    # ---- eval sets (prepare-eval, evaluate) ------------------------------------------------------------------------
    "eval_duplicate_ids": (lambda w, b, m: prepare_eval(w, eval_rows(w, [EVAL, EVAL])),
                           "field 'id': id '1' is used by rows 1, 2"),
    "eval_missing_id": (lambda w, b, m: prepare_eval(w, eval_rows(w, [{k: v for k, v in EVAL.items() if k != "id"}])),
                        "eval.jsonl:1: field 'id': is missing"),
    "eval_unknown_benchmark": (lambda w, b, m: prepare_eval(w, eval_rows(w, [EVAL]), "rewardbench_v9"),
                               "rewardbench_v9"),
    "eval_v2_ties_bad_id": (lambda w, b, m: ["evaluate", "--external", str(b), "--data", str(eval_rows(w, [
        {**EVAL, "subset": "Ties", "id": "x", "chosen": ["a"], "rejected": ["b"], "num_correct": 1}])),
        "--benchmark", "rewardbench_v2", "--eval-set", "rb2", "--base", "tiny", "--out-dir", str(w / "out/eval")],
        "Ties row id 'x' is neither ref:<n> nor tied:<n>"),
    "eval_scores_nothing": (lambda w, b, m: evaluate(w, b, eval_rows(w, [{**EVAL, "subset": "made-up"}])),
                            "field 'subset': no row falls in any section of section map rewardbench_v1"),
    "eval_duplicate_ids_at_evaluate": (lambda w, b, m: evaluate(w, b, eval_rows(w, [EVAL, EVAL])),
                                       "id '1' is used by rows 1, 2"),
    "eval_unknown_section_map": (lambda w, b, m: evaluate(w, b, eval_rows(w, [EVAL]), "--sections", "nope"),
                                 "field 'sections': sections must be one of"),
    "eval_sections_with_v2": (lambda w, b, m: ["evaluate", "--external", str(b), "--data", str(eval_rows(w, [EVAL])),
                                               "--benchmark", "rewardbench_v2", "--sections", "rewardbench_v1",
                                               "--eval-set", "x", "--base", "t", "--out-dir", str(w / "out/eval")],
                              "field 'sections': sections picks a rewardbench_v1 section map"),
    "eval_prepared_without_report": (lambda w, b, m: evaluate(w, b, "unused", "--prepared",
                                                              str(prepared_without_report(w))),
                                     "prep.jsonl: has no report beside it"),
    "eval_prepared_other_benchmark": (lambda w, b, m: evaluate(w, b, "unused", "--prepared", str(
        prepared_with_report(w, benchmark="rewardbench_v2"))), "field 'benchmark': holds rewardbench_v2 rows"),
    "eval_prepared_partial": (lambda w, b, m: evaluate(w, b, "unused", "--prepared", str(
        prepared_with_report(w, rows=5))), "prep.jsonl: has 1 rows, its report 5 (a partial file)"),
    "eval_no_rows_in_split": (lambda w, b, m: prepare_eval(w, _write(w / "e.json", "[]")), "holds no rows"),
    # ---- configs (rmflow plan loads and validates them as the workflow does) -------------------------------------
    "config_shell_in_a_base_name": (lambda w, b, m: plan(w, {"base_models": {"t$(touch PWNED)": {"tiny": {}}},
                                                             "run": {"base_models": ["t$(touch PWNED)"]}}),
                                    "the name 't$(touch PWNED)' is not allowed"),
    "config_path_traversal": (lambda w, b, m: plan(w, {"eval_sets": {"../../evil": {"path": "x.jsonl"}},
                                                       "run": {"eval_sets": ["../../evil"]}}),
                              "the name '../../evil' is not allowed"),
    "config_space_in_a_name": (lambda w, b, m: plan(w, {"datasets": {"my pairs": {"path": "x", "format": "standard"}}}),
                               "the name 'my pairs' is not allowed"),
    "config_reward_model_name": (lambda w, b, m: plan(w, {"reward_models": {"rm;rm -rf ~": {"model": "x"}}}),
                                 "the name 'rm;rm -rf ~' is not allowed"),
    "config_misspelt_method": (lambda w, b, m: plan(w, {"methods": {"pair_mp": {"options": {"margin": 1.0}}}}),
                               "no method is called 'pair_mp'"),
    "config_unknown_key": (lambda w, b, m: plan(w, {"train": {"learning_rate": 0.1}}),
                           "unknown config key 'train.learning_rate'"),
    "config_wrong_type": (lambda w, b, m: plan(w, {"train": {"lr": "fast"}}), "train.lr"),
    "config_unknown_method_in_run": (lambda w, b, m: plan(w, {"run": {"methods": ["magic_rm"]}}),
                                     "unknown method 'magic_rm'"),
    "config_yaml_syntax": (lambda w, b, m: ["plan", "--directory", str(REPO), "--configfile",
                                            _write(w / "bad.yaml", "train: {lr: [1,\n"), "--sinfo", ""], "bad.yaml"),
    "config_missing_file": (lambda w, b, m: ["plan", "--directory", str(REPO), "--configfile", str(w / "no.yaml"),
                                             "--sinfo", ""], "no.yaml"),
    # ---- CLI arguments --------------------------------------------------------------------------------------------
    "cli_batch_size_zero": (lambda w, b, m: evaluate(w, b, eval_rows(w, [EVAL]), "--batch-size", "0"),
                            "field 'batch-size': must be at least 1, not 0"),
    "cli_threads_negative": (lambda w, b, m: evaluate(w, b, eval_rows(w, [EVAL]), "--threads", "-2"),
                             "field 'threads': must be at least 1, not -2"),
    "cli_unknown_flag": (lambda w, b, m: prepare_data(w, "x", "--frobnicate"), "unrecognized arguments: --frobnicate"),
    "cli_missing_required": (lambda w, b, m: ["prepare-data", "--source", "x"], "the following arguments are required"),
    "cli_bad_choice": (lambda w, b, m: evaluate(w, b, "x", "--tie-rule", "coin"), "invalid choice: 'coin'"),
    "cli_no_model": (lambda w, b, m: ["evaluate", "--data", "x", "--benchmark", "rewardbench_v1", "--eval-set", "e",
                                      "--base", "b", "--out-dir", str(w / "out/eval")],
                     "give --model-dir and --method"),
    "cli_spec_missing": (lambda w, b, m: ["train", "--spec", str(w / "none.json"), "--out", str(w / "out/model")],
                         "none.json"),
    "cli_spec_malformed": (lambda w, b, m: ["train", "--spec", str(spec_file(w, "{not json")),
                                            "--out", str(w / "out/model")], "spec.json"),
    "cli_bad_stale_policy": (lambda w, b, m: ["train", "--spec", str(spec_file(w, "{}")), "--out", str(w / "out/m"),
                                              "--stale-checkpoints", "maybe"], "invalid choice: 'maybe'"),
    # ---- model directories -----------------------------------------------------------------------------------------
    "model_missing": (lambda w, b, m: evaluate(w, w / "no-model", eval_rows(w, [EVAL])), "no-model"),
    "model_dtype_misfit": (lambda w, b, m: evaluate(w, edit_header(model_copy(w, b), wrong_dtype),
                                                    eval_rows(w, [EVAL])),
                           "model.safetensors: weights file: tensor"),
    "model_shape_misfit": (lambda w, b, m: evaluate(w, edit_header(model_copy(w, b), wrong_shape),
                                                    eval_rows(w, [EVAL])),
                           "(an edited or corrupt header)"),
    "model_header_not_object": (lambda w, b, m: evaluate(w, edit_header(model_copy(w, b), lambda h: [1, 2]),
                                                         eval_rows(w, [EVAL])), "header that is a JSON list"),
    "model_truncated": (lambda w, b, m: evaluate(w, _truncate(model_copy(w, b)), eval_rows(w, [EVAL])),
                        "weights file is cut short"),
    "model_pickle_only": (lambda w, b, m: evaluate(w, pickle_only(w, b), eval_rows(w, [EVAL])),
                          "holds its weights only as pytorch_model.bin: a pickle, which rmflow never loads"),
    "model_index_names_a_missing_shard": (lambda w, b, m: evaluate(w, sharded(w, b, json.dumps(
        {"weight_map": {"x": "model-00002-of-00002.safetensors"}})), eval_rows(w, [EVAL])),
        "the shard index names model-00002-of-00002.safetensors"),
    "model_index_unreadable": (lambda w, b, m: evaluate(w, sharded(w, b, "{"), eval_rows(w, [EVAL])),
                               "model.safetensors.index.json: unreadable shard index"),
    "model_template_raises": (lambda w, b, m: evaluate(w, template(w, b, "{{ raise_exception('no, thanks') }}"),
                                                       eval_rows(w, [EVAL])),
                              "fails on a conversation (roles user/assistant; first user turn 'Say hi.')"),
    "model_template_undefined_call": (lambda w, b, m: evaluate(w, template(w, b, "{{ messages[0].nope() }}"),
                                                               eval_rows(w, [EVAL])),
                                      "field 'chat_template'"),
    "model_no_template": (lambda w, b, m: evaluate(w, template(w, b, None), eval_rows(w, [EVAL])),
                          "has no chat template"),
    "model_remote_code_not_trusted": (lambda w, b, m: evaluate(w, _auto_map(model_copy(w, b)), eval_rows(w, [EVAL])),
                                      "ships its own modelling code"),
    # ---- caches ------------------------------------------------------------------------------------------------------
    "cache_model_not_downloaded": (lambda w, b, m: hub_cache(w, m) or evaluate(w, "someone/absent-rm",
                                                                               eval_rows(w, [EVAL])),
                                   "could not load model 'someone/absent-rm'"),
    "cache_dataset_not_downloaded": (lambda w, b, m: hub_cache(w, m) or prepare_data(w, "someone/absent-data"),
                                     "someone/absent-data"),
    "cache_unreadable_hub_snapshot": (lambda w, b, m: _broken_snapshot(w, m) or evaluate(w, "someone/broken-rm",
                                                                                         eval_rows(w, [EVAL])),
                                      "someone/broken-rm"),
    # ---- output locations -----------------------------------------------------------------------------------------
    "out_is_a_folder": (lambda w, b, m: prepare_data(w, jsonl(w / "d.jsonl", [PAIR]), *RB)[:-4] +
                        ["--out", str(_mkdir(w / "pairs.parquet")), "--report", str(w / "out/r.json")],
                        "pairs.parquet: is an existing folder; a file is written here (--out)"),
    "out_dir_is_a_file": (lambda w, b, m: evaluate(w, b, eval_rows(w, [EVAL]))[:-2] +
                          ["--out-dir", _write(w / "evaluation", "x")],
                          "evaluation: is an existing file; a folder is written"),
    "out_under_a_file": (lambda w, b, m: prepare_data(w, jsonl(w / "d.jsonl", [PAIR]), *RB)[:-2] +
                         ["--report", str(w / "d.jsonl/report.json")], "d.jsonl is a file, not a folder (--report)"),
    "out_name_too_long": (lambda w, b, m: prepare_data(w, jsonl(w / "d.jsonl", [PAIR]), *RB)[:-2] +
                          ["--report", str(w / "out" / ("r" * 300))], "File name too long"),
}
# cases that need a mount (root) or a permission bit (non-root): see below
OUT_OF_SPACE = ("prepare-data", "evaluate")


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def _write_bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _broken_snapshot(w: Path, monkeypatch) -> None:
    """A cached hub model whose snapshot lost its config (an interrupted download): said, not a traceback."""
    hub_cache(w, monkeypatch)
    snapshot = w / "hf/hub/models--someone--broken-rm/snapshots/0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    (snapshot / "tokenizer_config.json").write_text("{not json")
    (w / "hf/hub/models--someone--broken-rm/refs").mkdir()
    (w / "hf/hub/models--someone--broken-rm/refs/main").write_text("0123456789abcdef0123456789abcdef01234567")


def _truncate(model: Path) -> Path:
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    return model


def _auto_map(model: Path) -> Path:
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.EvilRM"}
    (model / "config.json").write_text(json.dumps(config))
    (model / "modeling_evil.py").write_text("import os\nos.system('touch PWNED')\n")
    return model


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    from rmflow.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals exit 2 from inside the parser
        code = exc.code
    return code, capsys.readouterr().err


def assert_clean_refusal(code, err: str, expected: str, work: Path, outputs: Path) -> None:
    assert code == 2, err[-2000:]
    assert expected in err, err[-2000:]
    assert "Traceback" not in err
    assert not outputs.exists() or not any(outputs.rglob("*")), sorted(outputs.rglob("*"))
    assert not [p for p in work.rglob("*.tmp")], "a temporary was left"
    assert not list(work.rglob("PWNED")) and not Path("PWNED").exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_with_one_line_and_nothing_written(case, tmp_path, tiny_base, capsys, monkeypatch):
    build, expected = CASES[case]
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = build(work, tiny_base, monkeypatch)
    code, err = run_main(argv, capsys)
    assert_clean_refusal(code, err, expected, work, work / "out")


def test_the_corpus_is_at_least_sixty_cases():
    assert len(CASES) >= 60, len(CASES)


# ---- the place written to fails: a full disk, a read-only one ------------------------------------------------------
def _mount(where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


@pytest.fixture()
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not _mount(disk, "size=64k"):
        pytest.skip("a full disk is simulated with a 64 KiB tmpfs, which needs root and mount (CI has both)")
    # all but one 4 KiB page taken by someone else's file: the command starts, then runs out mid-write
    filler, free = disk / "someone-elses.bin", os.statvfs(disk)
    filler.write_bytes(b"\0" * ((free.f_bavail - 1) * free.f_frsize))
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


@pytest.fixture()
def read_only(tmp_path):
    folder = tmp_path / "ro"
    if os.geteuid() == 0:
        if not _mount(folder, "ro"):
            pytest.skip("a read-only folder for root needs a read-only mount, which failed here")
        yield folder
        subprocess.run(["umount", str(folder)], check=False)
    else:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def _many_pairs(path: Path) -> Path:
    return jsonl(path, [{"prompt": f"question {i} " * 20, "chosen": "a" * 300, "rejected": "b" * 300}
                        for i in range(2000)])


@pytest.mark.parametrize("command", OUT_OF_SPACE)
def test_a_full_disk_is_an_error_line_and_leaves_nothing(command, tmp_path, small_disk, tiny_base, capsys):
    work = tmp_path / "w"
    work.mkdir()
    if command == "prepare-data":
        argv = ["prepare-data", "--source", str(_many_pairs(work / "d.jsonl")), *RB, "--out",
                str(small_disk / "pairs.parquet"), "--report", str(small_disk / "report.json")]
    else:
        rows = [{**EVAL, "id": str(i), "prompt": "long " * 50} for i in range(300)]
        argv = ["evaluate", "--external", str(tiny_base), "--data", str(eval_rows(work, rows)), "--benchmark",
                "rewardbench_v1", "--eval-set", "rb", "--base", "tiny", "--out-dir", str(small_disk / "eval")]
    code, err = run_main(argv, capsys)
    assert code == 2 and "No space left on device" in err and "Traceback" not in err, err[-2000:]
    assert str(small_disk) in err
    assert [p.name for p in small_disk.rglob("*")] == ["someone-elses.bin"], sorted(small_disk.rglob("*"))


def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path, read_only, capsys):
    work = tmp_path / "w"
    work.mkdir()
    argv = ["prepare-data", "--source", str(jsonl(work / "d.jsonl", [PAIR])), *RB, "--out",
            str(read_only / "pairs.parquet"), "--report", str(work / "report.json")]
    code, err = run_main(argv, capsys)
    assert code == 2 and "no permission to write in" in err and "(--out)" in err, err[-2000:]
    assert not (work / "report.json").exists()


def test_a_later_output_failing_takes_back_the_earlier_ones(tmp_path, capsys, monkeypatch):
    """prepare-data writes the rows, then the report: when the report fails (here: its folder vanishes and a file
    takes its place mid-command), the rows already in place are removed, and the message says so."""
    from rmflow import io

    work = tmp_path / "w"
    work.mkdir()
    real = io.write_json

    def blocked_report(path, obj):
        Path(path).parent.write_text("now a file")  # another user's file appears where the report's folder goes
        return real(path, obj)

    monkeypatch.setattr("rmflow.data.prepare.write_json", blocked_report)
    argv = ["prepare-data", "--source", str(jsonl(work / "d.jsonl", [PAIR])), *RB, "--out",
            str(work / "out/pairs.parquet"), "--report", str(work / "rep/report.json")]
    code, err = run_main(argv, capsys)
    assert code == 2 and "Traceback" not in err, err[-2000:]
    assert "removed what it had written" in err and not (work / "out/pairs.parquet").exists(), err


def test_the_console_script_prints_one_line(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    bad = _write(work / "d.json", json.dumps([PAIR, 3]))
    proc = subprocess.run([sys.executable, "-m", "rmflow.cli", *prepare_data(work, bad, *RB)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("rmflow prepare-data: error: ")
    assert not (work / "out").exists()
