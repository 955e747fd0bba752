"""The real Snakefile, run by the real snakemake in a temp working directory."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from helpers import DEFAULT, QUICK, REPO, SNAKEMAKE, snakemake

# scripts/results-page.py (a script, not a module: its name has a hyphen)
_spec = importlib.util.spec_from_file_location("results_page", REPO / "scripts/results-page.py")
RESULTS_PAGE = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(RESULTS_PAGE)


def quick_plan():
    """What the end-to-end run plans (config.yaml + quick.yaml): the expectations below come from it, so a method
    joining the default needs no edit here."""
    from rmflow.config import load_config
    from rmflow.plan import Plan

    return Plan(load_config(DEFAULT, QUICK, schema_path=REPO / "workflow/schemas/config.schema.yaml"))


@pytest.mark.slow
def test_embedded_workflow_end_to_end(finished_run):
    results = finished_run / "results"
    everything = pl.read_csv(results / "leaderboard.csv")
    sections = ["Score", "Chat", "Chat Hard", "Safety", "Reasoning", "Math", "Ties"]
    assert everything.columns == ["Benchmark", "Eval Set", "Model", "Base Model", "Method",
                                  *[c for s in sections for c in (s, f"{s}_lo", f"{s}_hi")], "Length Corr"]
    board = everything.filter(pl.col("Benchmark") == "rewardbench_v1")
    plan = quick_plan()
    assert sorted(board["Model"]) == sorted([f"{b}/{m}" for m, b in plan.pairs]
                                            + [f"{name} (external)" for name in plan.externals])
    assert set(board["Eval Set"]) == {"synthetic"} and board["Math"].is_null().all()
    assert (board["Score_lo"] <= board["Score"]).all() and (board["Score"] <= board["Score_hi"]).all()
    # RewardBench 2 rows: scalar methods only, never mixed into the v1 ranking; Score empty (2 of 6 subsets)
    v2 = everything.filter(pl.col("Benchmark") == "rewardbench_v2")
    assert sorted(v2["Method"].unique()) == sorted([*plan.scalar_methods(), "external"])
    assert v2.height == len(plan.scalar_methods()) * len(plan.bases) + len(plan.externals)
    assert set(v2["Eval Set"]) == {"synthetic_v2"} and v2["Score"].is_null().all()
    assert v2["Math"].is_not_null().all() and v2["Ties"].is_not_null().all()
    corr = dict(zip(board["Model"], board["Length Corr"]))
    assert corr["tiny_llama/pair_pm"] is None and -1 <= corr["tiny_llama/odin"] <= 1
    assert board["Score"].to_list() == sorted(board["Score"].to_list(), reverse=True)
    for row in board.iter_rows(named=True):
        scores = json.loads((results / f"eval/synthetic/{row['Method']}/{row['Base Model']}/scores.json").read_text())
        assert row["Score"] == pytest.approx(100 * scores["score"])
        assert row["Chat Hard"] == pytest.approx(100 * scores["sections"]["Chat Hard"])
    v2_scores = json.loads((results / "eval/synthetic_v2/bt/tiny_llama/scores.json").read_text())
    assert v2_scores["benchmark"] == "rewardbench_v2" and v2_scores["subsets"]["Math"]["n"] == 6
    for name, trained in (("bt_copy", "tiny_llama/bt"), ("odin_quality", "tiny_gemma/odin")):
        external = everything.filter(pl.col("Model") == f"{name} (external)")
        same = everything.filter(pl.col("Model") == trained)
        assert external.height == 2 and external["Method"].to_list() == ["external"] * 2
        assert external.select(sections).rows() == same.select(sections).rows()  # scored exactly as trained
    md = (results / "leaderboard.md").read_text()
    assert "| bt_copy (external) |" in md and "odin\\_quality (external)" in (results / "leaderboard.tex").read_text()
    # the summary (a row per model, a column per eval set) first, then a detail table per benchmark
    assert md.startswith("## Summary") and "\n## RewardBench\n\n| Benchmark | Eval Set | Model |" in md
    assert "\n## RewardBench 2\n" in md and "| tiny_llama/bt |" in md
    # every rule logged and benchmarked; models in HF layout
    assert (results / "logs/train/bt/tiny_llama.log").read_text().count("step ") >= 1
    assert (results / "benchmarks/train/bt/tiny_gemma.tsv").exists()
    assert (results / "models/bt/tiny_gemma/model.safetensors").exists()
    report = json.loads((results / "data/prepared/synthetic.report.json").read_text())
    assert report["rows_kept"] == 24 * 12 and report["rows_dropped_invalid"] == 0


@pytest.mark.slow
def test_outputs_follow_the_runs_umask(finished_run):
    import stat

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    results = finished_run / "results"
    model = results / "models/bt/tiny_llama"
    for path in (results / "leaderboard.csv", results / "eval/synthetic/bt/tiny_llama/scores.json",
                 results / "eval/synthetic/bt/tiny_llama/examples.parquet", *[p for p in model.iterdir()]):
        assert mode(path) == 0o664, (path, oct(mode(path)))
    assert mode(model) == 0o775 and mode(results / "models/armo/tiny_llama") == 0o775


@pytest.mark.slow
def test_pairwise_methods_in_the_workflow(finished_run):
    results = finished_run / "results"
    for method in ("pair_pm", "ssrm", "rrm"):
        scores = json.loads((results / f"eval/synthetic/{method}/tiny_llama/scores.json").read_text())
        assert scores["kind"] == "pairwise" and 0 <= scores["method_stats"]["position_bias"] <= 1
        examples = pl.read_parquet(results / f"eval/synthetic/{method}/tiny_llama/examples.parquet")
        assert {"p_chosen", "p_order1", "p_order2"} <= set(examples.columns)
    assert "mean_tie_mass" in json.loads((results / "eval/synthetic/rrm/tiny_gemma/scores.json").read_text())[
        "method_stats"]
    rrm = json.loads((results / "data/transformed/rrm/tiny_llama.report.json").read_text())
    assert rrm["non_neutral_rows"] == 8 * 288 and rrm["neutral_rows"] == 6 * 288 and rrm["original_rows"] == 288
    report = json.loads((results / "ssrm/tiny_llama/report.json").read_text())
    assert [it["iteration"] for it in report["iterations"]] == [0, 1, 2]
    for it in report["iterations"][:2]:
        assert it["kept_rows"] <= it["pool_rows"] and "kept_pseudo_label_accuracy" in it
        assert 0 <= it["eval_accuracy"] <= 1
    # the shards really are separate jobs
    assert len(list((results / "ssrm/tiny_llama/iter1/labels").glob("shard*.parquet"))) == 2


@pytest.mark.slow
def test_armo_tree_and_odin_in_the_workflow(finished_run):
    results = finished_run / "results"
    stage1 = json.loads((results / "stages/armo/tiny_llama/probe/stage1.json").read_text())
    assert stage1["backbone"] == "results/models/bt/tiny_llama"
    assert (results / "models/armo/tiny_llama/armo_head.safetensors").exists()
    assert (results / "models/tree/tiny_gemma/tree_rules.txt").read_text().strip()
    odin = json.loads((results / "eval/synthetic/odin/tiny_llama/scores.json").read_text())
    assert odin["kind"] == "scalar" and odin["length_correlation"] is not None
    conversation = finished_run / "conversation.json"
    conversation.write_text(json.dumps([{"role": "user", "content": "Say hi."},
                                        {"role": "assistant", "content": "Hi!"}]))
    proc = subprocess.run([sys.executable, "-m", "rmflow.cli", "explain", "--method", "armo", "--model-dir",
                           str(results / "models/armo/tiny_llama"), "--conversation", str(conversation),
                           "--top-k", "3"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("score ") and len(proc.stdout.strip().splitlines()) == 5


@pytest.mark.slow
def test_best_of_n_table_and_plot(finished_run):
    results = finished_run / "results"
    table = pl.read_csv(results / "bestofn.csv")
    plan = quick_plan()
    scalar = set(plan.scalar_methods())
    assert set(table["method"]) == scalar and sorted(set(table["n"])) == [1, 2, 4, 8]
    assert table.height == sum(len(plan.bases_of(m)) for m in scalar) * 4
    assert (results / "bestofn.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    prm = json.loads((results / "bestofn/synthetic_bestofn/prm/tiny_llama.json").read_text())
    assert prm["step_accuracy"] is not None and prm["method_stats"]["aggregation"] == "mean"
    assert json.loads((results / "bestofn/synthetic_bestofn/orm/tiny_llama.json").read_text())["step_accuracy"] is None
    scores = json.loads((results / "eval/synthetic/prm/tiny_gemma/scores.json").read_text())
    assert scores["method_stats"] == {"aggregation": "mean"}


@pytest.mark.slow
def test_rank_rule_writes_dpo_pairs(finished_run):
    rank = finished_run / "results/rank/bt/tiny_llama"
    stats = json.loads((rank / "stats.json").read_text())
    assert stats["prompts"] == 6 and stats["dpo_pairs"] + stats["no_pair"] == 6
    assert stats["forwards"] == 6 * 8  # a scalar RM scores every response once
    pairs = [json.loads(line) for line in (rank / "dpo_pairs.jsonl").read_text().splitlines()]
    assert all(p["chosen"][0] == p["rejected"][0] for p in pairs)


@pytest.mark.slow
def test_leaderboard_regenerates_from_per_run_files(finished_run):
    results = finished_run / "results"
    before = (results / "leaderboard.csv").read_bytes()
    gathered = ("leaderboard.csv", "leaderboard.md", "leaderboard.tex", "leaderboard_subsets.csv",
                "pairwise_significance.csv", "leaderboard_sources.csv", "leaderboard_published.csv",
                "leaderboard_published.md", "plots/sections_ci.svg", "plots/run_metrics.csv")
    snapshot = {name: (results / name).read_bytes() for name in gathered}
    for name in gathered:
        (results / name).unlink()
    proc = snakemake(finished_run, "all", "--cores", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "leaderboard" in proc.stderr and "train_cpu" not in proc.stderr
    assert (results / "leaderboard.csv").read_bytes() == before
    assert {name: (results / name).read_bytes() for name in gathered} == snapshot  # byte for byte
    again = snakemake(finished_run, "all", "--cores", "1")
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_paper_outputs_significance_plots_and_latex(finished_run):
    results = finished_run / "results"
    board = pl.read_csv(results / "leaderboard.csv")
    sig = pl.read_csv(results / "pairwise_significance.csv")
    v1 = board.filter(pl.col("Benchmark") == "rewardbench_v1")
    # v2 rows have no overall Score here (2 of 6 subsets), so only v1 models are tested against v1's best
    assert sig.height == v1.height - 1 and set(sig["best"]) == {v1["Model"][0]}
    assert set(sig["eval_set"]) == {"synthetic"}
    assert ((sig["p_value"] >= 0) & (sig["p_value"] <= 1)).all()
    assert (sig["significant"] == ((sig["diff_lo"] > 0) | (sig["diff_hi"] < 0))).all()
    tex = (results / "leaderboard.tex").read_text()
    summary = pl.read_csv(results / "leaderboard_summary.csv")
    assert summary.height == board["Model"].n_unique() and {"RewardBench: synthetic", "RewardBench 2: synthetic_v2"} \
        <= set(summary.columns)
    # the summary (header + a row per model), then the detail table (header, 2 blocks, a row per board row)
    assert tex.count(r"\\") == summary.height + 1 + board.height + 3 and r"\toprule" in tex and r"\textbf{" in tex
    for name in ("sections_ci", "length_bias", "train_loss"):
        assert (results / f"plots/{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (results / f"plots/{name}.svg").read_text().lstrip().startswith("<?xml")
    assert (results / "plots/bestofn.svg").exists()
    metrics = pl.read_csv(results / "plots/run_metrics.csv")
    assert metrics.height == board.height and metrics.filter(pl.col("model") == "tiny_llama/bt")["final_loss"][0] > 0
    # ArmoRM's gate (under models/, after its probe stage) and SSRM's last round (with its rounds): the plan tells plots
    for model in ("tiny_llama/armo", "tiny_gemma/ssrm"):
        assert metrics.filter(pl.col("model") == model)["final_loss"].drop_nulls().len() > 0, model
    drawn = (results / "logs/plots.log").read_text()
    assert "armo/tiny_llama" in drawn and "ssrm/tiny_gemma" in drawn and "bt/tiny_gemma" in drawn, drawn[-2000:]
    # how well each job used its hardware: BT's prompts ran once, and every scoring job counted its forwards
    bt = metrics.filter(pl.col("model") == "tiny_llama/bt").row(0, named=True)
    assert 0 < bt["train_mfu"] < 1.5 and bt["train_prompt_share_saved"] > 0 and 0 <= bt["train_padding"] < 0.5
    scored = metrics.filter(pl.col("model").str.starts_with("tiny_"))
    assert scored["score_mfu"].null_count() == scored["score_tokens_per_s"].null_count() == 0
    assert (scored["score_tokens_per_s"] > 0).all() and (scored["score_mfu"] > 0).all()


def _report_text(path: Path) -> str:
    """The report's HTML plus every embedded file (Snakemake inlines them as base64 data URIs)."""
    import base64
    import re

    html = path.read_text()
    blobs = re.findall(r";base64,([A-Za-z0-9+/=]+)", html)
    return html + "\n".join(base64.b64decode(b).decode("utf-8", "replace") for b in blobs)


@pytest.fixture(scope="module")
def report(finished_run) -> Path:
    out = finished_run / "results/report.html"
    proc = snakemake(finished_run, "--report", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.slow
def test_snakemake_report_holds_the_leaderboard_figures_and_config(finished_run, report):
    text = _report_text(report)
    board = pl.read_csv(finished_run / "results/leaderboard.csv")
    for row in board.head(5).iter_rows(named=True):
        assert row["Model"] in text and repr(row["Score"]) in text  # the CSV's own numbers, embedded
    for caption in ("Paired bootstrap test", "Reward against response length", "Training loss per",
                    "complete configuration", "Best-of-N accuracy"):
        assert caption in text
    assert "leaderboard:" in text and "ci_style: pm" in text  # config_used.yaml
    assert "\\begin{tabular}" in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    shot = tmp_path / "report.png"
    proc = subprocess.run([*flags, "--window-size=1400,1000", f"--screenshot={shot}", report.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    from PIL import Image

    pixels = Image.open(shot).convert("L")
    assert pixels.size == (1400, 1000)
    histogram = pixels.histogram()
    # not a blank page (one colour): a rendered one is mostly white too (text, the DAG's thin lines; 93 % white was
    # seen on a fully drawn page), so the bound is 99 %, with the DOM check below for the navigation
    assert max(histogram) < 0.99 * sum(histogram)
    # the page's JavaScript built the navigation (the raw HTML holds only data)
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert ">1. Leaderboard<" in dom.stdout and ">2. Figures<" in dom.stdout
    assert ">1. Leaderboard<" not in report.read_text()


def overlay(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BAD_CONFIGS = {
    "unknown_key": ({"train": {"learning_rate": 0.1}}, "unknown config key 'train.learning_rate'"),
    "unknown_method": ({"run": {"methods": ["bt", "magic_rm"]}}, "unknown method 'magic_rm'"),
    "tree_without_armo": ({"run": {"methods": ["bt", "tree"]}},
                          "method 'tree' reads the outputs of 'armo', which is not in run.methods"),
    "missing_base_path": ({"base_models": {"mine": {"model": "./models/missing"}},
                           "run": {"base_models": ["mine"]}},
                          "base_models.mine.model': base model path './models/missing' does not exist"),
    # hostile and careless names: refused at config load, before any shell command or path is made of them
    "hostile_base_name": ({"base_models": {"t$(touch PWNED)": {"tiny": {"family": "llama"}}},
                           "run": {"base_models": ["t$(touch PWNED)"]}},
                          "the name 't$(touch PWNED)' is not allowed"),
    "path_traversal_eval_set": ({"eval_sets": {"../../../../../evil": {"path": "results/data/synthetic/test.jsonl"}},
                                 "run": {"eval_sets": ["../../../../../evil"]}},
                                "the name '../../../../../evil' is not allowed"),
    "misspelt_method_entry": ({"methods": {"pair_mp": {"options": {"margin": 1.0}}}},
                              "no method is called 'pair_mp' (did you mean 'pair_pm'?)"),
    "space_in_a_dataset_name": ({"datasets": {"my pairs": {"path": "x.jsonl", "format": "standard"}}},
                                "config key 'datasets': the name 'my pairs' is not allowed"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_stops_before_any_job(tmp_path, case):
    data, expected = BAD_CONFIGS[case]
    work = tmp_path / "work"
    work.mkdir()
    proc = snakemake(work, "all", "--cores", "1", configs=(DEFAULT, QUICK, overlay(tmp_path, data)), timeout=120)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "bad.yaml" in proc.stderr
    if case == "unknown_key":  # names the file that holds the key, not every layered config
        assert "config/config.yaml" not in proc.stderr.split("unknown config key")[0].splitlines()[-1]
    assert not (work / "results").exists()
    assert not list(tmp_path.rglob("PWNED")) and not (tmp_path.parent / "evil").exists()


def test_every_name_a_rule_interpolates_into_its_shell_command_is_quoted():
    """Names are refused unless they are identifiers (schema definitions.name); the rules quote them anyway, and
    every path, so nothing a config says is ever read by the shell as code."""
    from rmflow.config import NAME_PATTERN

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["definitions"]["name"]["pattern"] == NAME_PATTERN
    unquoted = re.compile(r"\{(wildcards\.\w+|input(\.\w+)?|output(\.\w+)?|log)\}")
    found = [f"{p.name}:{i}: {line.strip()}" for p in sorted((REPO / "workflow/rules").glob("*.smk"))
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if line.strip().startswith('"') and unquoted.search(line)]
    assert not found, found


@pytest.mark.slow
def test_a_bad_eval_row_stops_the_run_in_a_cpu_rule_before_anything_trains(tmp_path):
    """Eval rows are validated once, by prepare_eval, and prepare_data (which every training, probe and best-of-N
    job waits on) waits for all of them: a broken row never costs a GPU job, let alone one per model."""
    import json

    good = {"id": "1", "subset": "alpacaeval-easy", "prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}
    rows = tmp_path / "eval.jsonl"
    rows.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "2", "rejected": ""}) + "\n")
    work = tmp_path / "work"
    work.mkdir()
    bad = {"run": {"eval_sets": ["synthetic", "broken"]}, "eval_sets": {"broken": {"path": str(rows)}}}
    proc = snakemake(work, "all", "--cores", "2", configs=(DEFAULT, QUICK, overlay(tmp_path, bad)), timeout=300)
    assert proc.returncode != 0
    log = (work / "results/logs/prepare_eval/broken.log").read_text()
    assert f"{rows}:2" in log and "field 'rejected[1].content'" in log and "Traceback" not in log, log
    assert "Error in rule prepare_eval" in proc.stderr
    assert not (work / "results/data/prepared").exists() and not (work / "results/models").exists()
    assert not (work / "results/data/eval/broken.jsonl").exists()  # nothing half-written


@pytest.mark.slow
def test_a_two_stage_method_from_outside_rmflow_runs_through_the_generic_rules(tmp_path):
    """tests/toy_two_stage.py is registered by one config entry (methods.toy.module) and named in run.methods: the
    generic stage rules run its two stages, evaluate scores it, the leaderboard lists it; no rule or CLI knows it."""
    import json
    import os

    work = tmp_path / "work"
    work.mkdir()
    layer = {"run": {"methods": ["toy"], "base_models": ["tiny_llama"], "eval_sets": ["synthetic"],
                     "reward_models": []},
             "methods": {"toy": {"module": "toy_two_stage"}}, "rank": {"data": None}, "bestofn": {"sets": []}}
    path = os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
    proc = snakemake(work, "all", "--cores", "2", configs=(DEFAULT, QUICK, overlay(tmp_path, layer)), timeout=600,
                     env={"PYTHONPATH": path})
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = work / "results"
    for rule in ("stage_count", "stage_weigh"):
        assert f"rule {rule}:" in proc.stdout + proc.stderr
    counts = json.loads((results / "stages/toy/tiny_llama/count/counts.json").read_text())
    assert counts["pairs"] > 0 and (results / "models/toy/tiny_llama/weights.json").is_file()
    scores = json.loads((results / "eval/synthetic/toy/tiny_llama/scores.json").read_text())
    assert scores["method"] == "toy" and scores["kind"] == "scalar" and 0 <= scores["score"] <= 1
    assert "tiny_llama/toy" in (results / "leaderboard.md").read_text()
    assert not (results / "models/bt").exists()  # nothing else was trained


def _dry_run_jobs(output: str) -> list[dict]:
    """Every job block a dry run prints: rule, wildcards and resources."""
    jobs = []
    for block in re.split(r"\n(?:localrule|rule) ", output)[1:]:
        rule = block.split(":", 1)[0].strip()
        fields = dict(re.findall(r"^    (wildcards|resources): (.*)$", block, re.M))
        wildcards = dict(item.split("=", 1) for item in fields.get("wildcards", "").split(", ") if "=" in item)
        jobs.append({"rule": rule, "wildcards": wildcards, "resources": fields.get("resources", "")})
    return jobs


def test_paper_config_dry_runs_on_slurm_profile_with_resources(tmp_path):
    from rmflow.config import load_config
    from rmflow.plan import Plan

    proc = snakemake(tmp_path, "all", "-n", "--profile", str(REPO / "profiles/slurm"),
                     configs=(DEFAULT, REPO / "config/paper.yaml"), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "train_a100_80g" in out and "train_a40_48g" in out
    assert "gres=gpu:a100:4" in out and "gres=gpu:a40:4" in out
    assert "gres=gpu:a40:1" in out and "gres=gpu:a100:1" in out  # one-GPU rules name their type (rmflow plan)
    assert "slurm_partition=gpu-a100" in out
    assert "results/data/synthetic" not in out and "synthetic_data" not in out
    jobs = _dry_run_jobs(out)
    assert jobs and all("slurm_partition=" in job["resources"] for job in jobs if job["rule"] != "all")
    # a training job for every planned (method, base) pair and for no other: the seed's pairs only
    trained = {(job["wildcards"].get("method", job["rule"].split("_")[0]), job["wildcards"]["base"])
               for job in jobs if job["rule"].startswith(("train_", "ssrm_train", "stage_gate", "stage_fit",
                                                          "setup_untrained"))}
    plan = Plan(load_config(DEFAULT, REPO / "config/paper.yaml",
                            schema_path=REPO / "workflow/schemas/config.schema.yaml"))
    # the released models are set up (their declarations written) and scored, never trained
    released = {(m, b) for m, b in trained if m == "external"}
    assert released == {("external", name) for name in plan.externals} and len(released) == 5
    trained -= released
    assert trained == set(plan.pairs)
    assert {m for m, _ in trained} == set(plan.methods)
    gpu_training = [job for job in jobs if job["rule"].startswith("train_")]
    assert all("processes=4" in job["resources"] and "gres=gpu:" in job["resources"] for job in gpu_training)


def test_lint_is_clean():
    proc = subprocess.run([*SNAKEMAKE, "--lint", "--snakefile", str(REPO / "Snakefile")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_no_rule_runs_python_in_a_run_block():
    # Snakemake 9 runs each job of a run: rule as a whole snakemake subprocess (~4 s of CPU, ~10 s more where a
    # SLURM client cannot reach a controller); the spec rules hand their JSON to `rmflow write-json` instead
    blocks = [(smk.name, line) for smk in [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]
              for line in smk.read_text().splitlines() if re.match(r"\s+run:\s*$", line)]
    assert not blocks, blocks


@pytest.mark.slow
def test_a_results_page_is_written_from_the_runs_own_outputs_and_stamped(finished_run, tmp_path):
    import csv

    def page(results: Path, out: Path, *more: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(REPO / "scripts/results-page.py"), "--results", str(results),
                               "--title", "Quick run", "--command", "snakemake all", "--out", str(out), *more],
                              capture_output=True, text=True, timeout=120)

    out = tmp_path / "docs/quick.md"
    out.parent.mkdir()
    readme = tmp_path / "README.md"  # the front page's generated block, with the real README's markers around it
    real = (REPO / "README.md").read_text()
    start, end = real.index(RESULTS_PAGE.README_START), real.index(RESULTS_PAGE.README_END)
    readme.write_text("# Front\n\n" + real[start:end] + RESULTS_PAGE.README_END + "\n\nAfter.\n")
    proc = page(finished_run / "results", out, "--readme", str(readme))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert (finished_run / "results/leaderboard.md").read_text().strip() in text
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True)
    assert f"| commit | {head.stdout.strip()}" in text and "| machine | " in text and f"{os.cpu_count()} cores" in text
    with open(finished_run / "results/plots/run_metrics.csv") as handle:
        models = {row["model"] for row in csv.DictReader(handle)}
    assert models and all(f"| {model} |" in text for model in models)
    assert "## Best-of-N" in text
    figures = re.findall(r"!\[[^]]+\]\(([^)]+)\)", text)
    assert len(figures) == 3 and all((out.parent / f).is_file() for f in figures)
    # the front page's table: the run's RewardBench v1 rows, stamped with the same commit and CPU
    front = readme.read_text()
    assert front.startswith("# Front\n") and front.endswith("After.\n")
    assert f"at commit {head.stdout.strip()}" in front and f"{os.cpu_count()} cores" in front
    rows = [line for line in (finished_run / "results/leaderboard.md").read_text().splitlines()
            if line.startswith("| rewardbench_v1 |")]
    assert rows
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert f"| {cells[2]} | {cells[3]} |" in front  # model and score

    # a results folder the run has not finished is refused by name, and no page is left
    (tmp_path / "unfinished").mkdir()
    proc = page(tmp_path / "unfinished", tmp_path / "docs/unfinished.md")
    assert proc.returncode == 2 and "leaderboard.md: missing" in proc.stderr and "Traceback" not in proc.stderr
    assert not list((tmp_path / "docs").glob("unfinished*"))
