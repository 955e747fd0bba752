"""Data validation, loaders and converters: every bad input names file, row and field, exits 2, writes nothing."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from helpers import DEFAULT, REPO, pair, run_cli, write_jsonl
from rmflow.data.convert import parse_hh_transcript, ratings_to_pairs
from rmflow.data.loaders import read_rows
from rmflow.data.prepare import prepare_rows, read_pairs
from rmflow.data.schema import check_pair
from rmflow.errors import RmflowError


def prepare(tmp_path, rows, *extra):
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out, report = tmp_path / "out.parquet", tmp_path / "report.json"
    proc = run_cli("prepare-data", "--source", str(src), "--out", str(out), "--report", str(report), *extra)
    return proc, out, report


BAD_INPUTS = {
    "malformed_json": (['{"chosen": [1, 2'], "in.jsonl:1: malformed JSON"),
    "missing_rejected": ([{"chosen": pair()["chosen"]}], "in.jsonl:1: field 'rejected': is missing"),
    "roles_out_of_order": ([pair(), {"chosen": [{"role": "assistant", "content": "x"},
                                                {"role": "user", "content": "y"}],
                                     "rejected": pair()["rejected"]}],
                           "in.jsonl:2: field 'chosen[0].role': is 'assistant' but turn 0 must be 'user'"),
    "different_prompts": ([pair(), pair(), {"chosen": pair(prompt="A?")["chosen"],
                                            "rejected": pair(prompt="B?")["rejected"]}],
                          "in.jsonl:3: field 'rejected[0].content': differs from chosen"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_rows_fail_with_file_row_and_field(tmp_path, case):
    rows, expected = BAD_INPUTS[case]
    proc, out, report = prepare(tmp_path, rows)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, "one clear line, no traceback"
    assert not out.exists() and not report.exists()
    assert not list(tmp_path.glob(".*tmp")), "no temp files left behind"


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "in.jsonl").write_text("")
    out = tmp_path / "out.parquet"
    proc = run_cli("prepare-data", "--source", str(tmp_path / "in.jsonl"), "--out", str(out),
                   "--report", str(tmp_path / "r.json"))
    assert proc.returncode == 2 and "in.jsonl: holds no rows" in proc.stderr
    assert not out.exists()


def test_missing_source_file_is_named(tmp_path):
    proc = run_cli("prepare-data", "--source", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o"),
                   "--report", str(tmp_path / "r"))
    assert proc.returncode == 2 and "nope.jsonl: no such file" in proc.stderr


def test_skip_drops_and_counts_by_reason(tmp_path):
    rows = [pair(), {"chosen": pair()["chosen"]}, pair(good=""), pair(), {"chosen": pair()["chosen"]}]
    proc, out, report = prepare(tmp_path, rows, "--on-invalid", "skip")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(report.read_text())
    assert summary["rows_read"] == 5 and summary["rows_kept"] == 2
    assert summary["dropped_by_reason"] == {"missing_field": 2, "empty_content": 1}
    assert "dropped 2 invalid rows: missing_field (first at" in proc.stderr
    assert len(read_pairs(out)) == 2


def test_valid_multi_turn_pair_passes():
    turns = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
             {"role": "user", "content": "c"}]
    row = {"chosen": turns + [{"role": "assistant", "content": "good"}],
           "rejected": turns + [{"role": "assistant", "content": "bad"}]}
    assert check_pair(row) is None
    assert check_pair({**row, "rejected": row["rejected"][:2]}).reason == "length_mismatch"
    assert check_pair({**row, "rejected": row["rejected"][:3]}).reason == "no_final_answer"


def test_json_and_parquet_loaders_number_rows(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps([pair(), pair()]))
    rows = read_rows(str(tmp_path / "d.json"))
    assert [r["__row__"] for r in rows] == [1, 2]
    kept, _ = prepare_rows(rows, "standard")
    from rmflow.data.prepare import write_pairs

    write_pairs(kept, tmp_path / "d.parquet")
    assert [r["__row__"] for r in read_rows(str(tmp_path / "d.parquet"))] == [1, 2]


def test_hub_id_offline_fails_fast_with_local_path_hint(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RmflowError, match="point the config's 'path' at a local"):
        read_rows("some-org/some-preference-data", split="train")


def test_a_hub_data_set_in_the_hub_cache_loads_offline_by_id_with_its_splits_and_data_dir(tmp_path, monkeypatch):
    """A cluster's pre-seeded HF_HOME (or the rehearsal hub) holds the repository as huggingface_hub downloads it;
    datasets' load_dataset(id) (5.2) cannot use that offline, so rmflow reads the cached snapshot folder."""
    import polars as pl
    from huggingface_hub import constants

    from helpers import hub_cache

    repo = tmp_path / "repo"
    (repo / "preference").mkdir(parents=True)
    pl.DataFrame({"prompt": ["a", "b"], "n": [1, 2]}).write_parquet(repo / "train.parquet")
    pl.DataFrame({"prompt": ["c"], "n": [3]}).write_parquet(repo / "validation.parquet")
    flat = tmp_path / "flat"  # hub_cache links a flat folder: put the data_dir's file there under its own name
    flat.mkdir()
    for f in repo.glob("*.parquet"):
        (flat / f.name).write_bytes(f.read_bytes())
    commit = hub_cache(tmp_path / "hub", "org/sets", flat, repo_type="dataset")
    folder = tmp_path / f"hub/datasets--org--sets/snapshots/{commit}/preference"
    folder.mkdir()
    pl.DataFrame({"prompt": ["p"], "split": ["val"]}).write_parquet(folder / "pref.parquet")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert [r["prompt"] for r in read_rows("org/sets", split="train")] == ["a", "b"]
    assert [r["n"] for r in read_rows("org/sets", split="validation")] == [3]
    assert [r["split"] for r in read_rows("org/sets", split="train", data_dir="preference")] == ["val"]
    with pytest.raises(RmflowError, match="could not read split 'test'.*train"):
        read_rows("org/sets", split="test")


def test_hh_transcript_converter():
    text = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Tell a joke\n\nAssistant: No."
    assert parse_hh_transcript(text) == [
        {"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell a joke"}, {"role": "assistant", "content": "No."}]
    with pytest.raises(ValueError, match="before the first"):
        parse_hh_transcript("Assistant: oops")


def test_hh_file_converts_and_reports_row_of_bad_transcript(tmp_path):
    good = {"chosen": "\n\nHuman: Q\n\nAssistant: yes", "rejected": "\n\nHuman: Q\n\nAssistant: no"}
    proc, out, _ = prepare(tmp_path, [good], "--format", "hh")
    assert proc.returncode == 0 and read_pairs(out)[0]["chosen"][1]["content"] == "yes"
    proc, out, _ = prepare(tmp_path, [good, {"chosen": "garbage", "rejected": "x"}], "--format", "hh")
    assert proc.returncode == 2 and "in.jsonl:2: field 'chosen': not an HH transcript" in proc.stderr


def test_ratings_to_pairs_best_vs_each_and_worst():
    row = {"prompt": "P", "responses": ["a", "b", "c", "d"], "scores": [7, 9, 9, 2]}
    pairs, dropped = ratings_to_pairs(row, "best_vs_each")
    assert [(p["chosen"][1]["content"], p["rejected"][1]["content"]) for p in pairs] == [("b", "a"), ("b", "d")]
    assert dropped == ["equal_scores"]
    pairs, dropped = ratings_to_pairs(row, "best_vs_worst")
    assert [(p["chosen"][1]["content"], p["rejected"][1]["content"]) for p in pairs] == [("b", "d")]
    assert sorted(dropped) == ["equal_scores", "not_best_vs_worst"]


def test_ratings_file_counts_equal_scores(tmp_path):
    rows = [{"prompt": "P", "responses": ["a", "b"], "scores": [1, 1]},
            {"prompt": "Q", "responses": ["a", "b"], "scores": [3, 1]}]
    proc, out, report = prepare(tmp_path, rows, "--format", "ratings_best_vs_each")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(report.read_text())["converter_counts"] == {"equal_scores": 1}
    assert len(read_pairs(out)) == 1


def test_unreachable_hub_switches_to_offline_and_fails_fast(monkeypatch):
    import time

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused at once
    from rmflow.hub import go_offline_if_unreachable

    started = time.time()
    assert go_offline_if_unreachable() is True
    assert time.time() - started < 5
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"


PROBE = "from rmflow.hub import go_offline_if_unreachable; print(go_offline_if_unreachable(timeout=5))"


def test_the_hub_probe_goes_through_the_users_proxy(tmp_path):
    """Nodes that reach the hub only through HTTP(S)_PROXY must not be switched offline: the probe is the hub
    client's own HTTP request. A local proxy answers for a host no resolver knows; without the proxy that host is
    unreachable (the old raw-socket probe ignored the proxy and always found it so)."""
    import http.server
    import subprocess
    import sys
    import threading

    seen = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # a forward proxy receives the absolute URL in the request line
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    clean = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
             "TRANSFORMERS_OFFLINE") and "proxy" not in k.lower()}
    env = {**clean, "HF_ENDPOINT": "http://hub.rmflow-proxy-test.invalid",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    try:
        through = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                                 env={**env, "HTTP_PROXY": f"http://127.0.0.1:{server.server_port}"})
        direct = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=env)
    finally:
        server.shutdown()
    assert through.returncode == 0 and through.stdout.strip() == "False", through.stderr[-2000:]
    assert seen and seen[0].startswith("http://hub.rmflow-proxy-test.invalid/")
    assert direct.stdout.strip() == "True" and "unreachable" in direct.stderr


# ---- real-world data as it comes (system turns, HH transcripts, bad bytes, identical answers) ---------------------
SYSTEM = {"role": "system", "content": "You are a terse assistant."}


def test_a_leading_system_turn_is_valid_and_only_there():
    row = pair()
    row = {"chosen": [SYSTEM] + row["chosen"], "rejected": [SYSTEM] + row["rejected"]}
    assert check_pair(row) is None
    late = {"chosen": pair()["chosen"] + [SYSTEM, {"role": "assistant", "content": "x"}],
            "rejected": pair()["rejected"] + [SYSTEM, {"role": "assistant", "content": "y"}]}
    problem = check_pair(late)
    assert problem.reason == "role_order" and problem.field == "chosen[2].role" and "only turn 0" in problem.detail


def test_system_turn_rules_template_merge_error(tiny_base):
    from rmflow.models.gguf import load_template
    from rmflow.models.load import load_tokenizer
    from rmflow.train.batching import render

    conv = [SYSTEM, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    tok = load_tokenizer(str(tiny_base))  # the tiny template renders system turns itself
    assert "<|system|>\nYou are a terse assistant." in render(tok, conv)
    tok = load_tokenizer(str(tiny_base), system_turn="merge")
    assert "<|user|>\nYou are a terse assistant.\n\nHi<|end|>" in render(tok, conv) and "<|system|>" not in render(
        tok, conv)
    tok = load_tokenizer(str(tiny_base), system_turn="error")
    with pytest.raises(RmflowError, match="system_turn rule is 'error'"):
        render(tok, conv)
    gemma = load_tokenizer(str(tiny_base))
    gemma.chat_template = load_template("gemma")  # Gemma's template rejects a system turn
    with pytest.raises(RmflowError, match=r"field 'system_turn': the chat template .* rejects a system turn.*merge"):
        render(gemma, conv)
    gemma.rmflow_system_turn = "merge"
    assert render(gemma, conv).startswith("<|bos|><start_of_turn>user\nYou are a terse assistant.\n\nHi<end_of_turn>")


def test_system_turn_rule_is_recorded_in_the_run_spec_and_read_back(tmp_path, tiny_base):

    from rmflow.config import validate_config
    from rmflow.models.load import load_tokenizer
    from rmflow.plan import Plan

    config = yaml.safe_load(DEFAULT.read_text())
    config["base_models"]["tiny_gemma"]["system_turn"] = "merge"
    plan = Plan(validate_config(config, REPO / "workflow/schemas/config.schema.yaml"))
    assert plan.run_spec("bt", "tiny_gemma")["system_turn"] == "merge"
    assert plan.run_spec("bt", "tiny_llama")["system_turn"] == "template"
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    for f in tiny_base.iterdir():
        (model_dir / f.name).write_bytes(f.read_bytes())
    (model_dir / "rmflow_run.json").write_text(json.dumps(plan.run_spec("bt", "tiny_gemma")))
    assert load_tokenizer(str(model_dir)).rmflow_system_turn == "merge"  # scoring uses the base's rule


# Shaped like Anthropic HH's raw test transcripts, where the Assistant sometimes speaks twice in a row (the
# helpful split's row 39 is one); the default settings must convert them.
HH_DOUBLE = ("\n\nHuman: What can I cook with eggs and spinach?\n\nAssistant: An omelette works well."
             "\n\nAssistant: You could also bake them together in a frittata.\n\nHuman: Which is quicker?"
             "\n\nAssistant: {answer}")


def test_hh_transcripts_with_consecutive_speaker_turns_convert_with_defaults(tmp_path):
    rows = [{"chosen": HH_DOUBLE.format(answer="The omelette: about five minutes."),
             "rejected": HH_DOUBLE.format(answer="Frittata, obviously.")},
            {"chosen": "\n\nHuman: Hi\n\nHuman: Are you there?\n\nAssistant: Yes.",
             "rejected": "\n\nHuman: Hi\n\nHuman: Are you there?\n\nAssistant: No."}]
    proc, out, report = prepare(tmp_path, rows, "--format", "hh")
    assert proc.returncode == 0, proc.stderr
    kept = read_pairs(out)
    assert [m["role"] for m in kept[0]["chosen"]] == ["user", "assistant", "user", "assistant"]
    assert kept[0]["chosen"][1]["content"] == ("An omelette works well.\n\nYou could also bake them together in a "
                                               "frittata.")
    assert kept[1]["chosen"][0]["content"] == "Hi\n\nAre you there?"
    # one merge per side of each row, each counted in the report
    assert json.loads(report.read_text())["converter_counts"] == {"merged_consecutive_turns": 4}


def test_undecodable_bytes_name_the_file_and_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(json.dumps(pair()).encode() + b"\n" + b'{"chosen": "caf\xe9"}\n')
    out = tmp_path / "out.parquet"
    proc = run_cli("prepare-data", "--source", str(src), "--out", str(out), "--report", str(tmp_path / "r.json"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "in.jsonl:2: not UTF-8 text: byte 0xe9 at column 16" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    (tmp_path / "d.json").write_bytes(b'[\n{"a": 1},\n{"b": "\xff"}]')
    with pytest.raises(RmflowError, match=r"d.json:3: not UTF-8 text: byte 0xff"):
        read_rows(str(tmp_path / "d.json"))


def test_identical_answers_are_dropped_by_reason_or_refused(tmp_path):
    rows = [pair(), pair(good="Same.", bad="Same."), pair()]
    proc, out, report = prepare(tmp_path, rows, "--on-invalid", "skip")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(report.read_text())["dropped_by_reason"] == {"identical_responses": 1}
    assert len(read_pairs(out)) == 2
    (tmp_path / "strict").mkdir()
    proc, strict_out, _ = prepare(tmp_path / "strict", rows)
    assert not strict_out.exists()
    assert proc.returncode == 2 and "in.jsonl:2: field 'rejected[-1].content': is identical to the chosen answer" \
        in proc.stderr


def test_utf8_files_with_a_byte_order_mark_read_like_those_without(tmp_path):
    rows = [pair(), pair(prompt="Again?")]
    plain = write_jsonl(tmp_path / "plain.jsonl", rows)
    marked = tmp_path / "marked.jsonl"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    (tmp_path / "marked.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(rows).encode())
    def strip(row: dict) -> dict:  # the rows name their own file
        return {k: v for k, v in row.items() if k != "__file__"}

    assert [strip(r) for r in read_rows(str(marked))] == [strip(r) for r in read_rows(str(plain))]
    assert [strip(r) for r in read_rows(str(tmp_path / "marked.json"))] == [
        {**strip(r), "__row__": i} for i, r in enumerate(read_rows(str(plain)), 1)]


def test_a_pair_pm_row_off_its_template_is_a_counted_skip_or_a_named_error(tmp_path):
    from rmflow.methods.pairwise.pm import pm_row

    context = [{"role": "user", "content": "Which is right?"}]
    good = pm_row(context, "Paris.", "Lyon.", "A")
    off = pm_row(context, "Paris.", "Lyon.", "B")
    off["messages"][0]["content"] = off["messages"][0]["content"].replace(" [RESPONSE B] ", "  [RESPONSE B]\n")
    odd = pm_row(context, "Paris.", "Lyon.", "A")
    odd["messages"][1]["content"] = "Neither"
    src = write_jsonl(tmp_path / "pm.jsonl", [good, off, odd, good])
    out, report = tmp_path / "out.parquet", tmp_path / "r.json"
    args = ["prepare-data", "--source", str(src), "--format", "pair_pm_messages", "--out", str(out), "--report",
            str(report)]
    proc = run_cli(*args, "--on-invalid", "skip")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(report.read_text())["dropped_by_reason"] == {"pm_prompt_off_template": 1,
                                                                   "pm_answer_not_a_b_same": 1}
    assert len(read_pairs(out)) == 2
    out.unlink()
    proc = run_cli(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and not out.exists()
    assert "pm.jsonl:2: field 'messages': the user turn is not '[CONTEXT]" in proc.stderr
    assert "on_invalid: skip" in proc.stderr


def test_attribute_ratings_out_of_range_are_named():
    from rmflow.methods import armo

    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    config = armo.Config(objectives=["helpfulness", "verbosity"])
    with pytest.raises(RmflowError, match=r"a.jsonl:2: field 'helpfulness': is 5, not a rating in 0..4 or null"):
        armo.attribute_matrix([{"messages": msgs, "attributes": {"helpfulness": 4, "verbosity": 1}, "__row__": 1},
                               {"messages": msgs, "attributes": {"helpfulness": 5, "verbosity": 1}, "__row__": 2}],
                              config, "a.jsonl")
    prescaled = armo.Config(objectives=["helpfulness", "verbosity"], prescaled=True)
    with pytest.raises(RmflowError, match=r"field 'verbosity': is 1.5, not a pre-scaled label in \[0, 1\]"):
        armo.attribute_matrix([{"messages": msgs, "attributes": {"helpfulness": 0.2, "verbosity": 1.5}}], prescaled,
                              "a.jsonl")
    assert armo.attribute_matrix([{"messages": msgs, "attributes": {"helpfulness": 0.2, "verbosity": 1.0}}],
                                 prescaled, "a").tolist() == [[0.2, 1.0]]
