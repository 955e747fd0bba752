"""rmflow plan: memory estimates against hand computations, every job of the DAG, and each refusal."""

from __future__ import annotations

import collections
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO, hub_cache, snakemake
from rmflow.errors import RmflowError
from rmflow.sizing import estimate as est
from rmflow.sizing import main as plan_main
from rmflow.sizing.shapes import ModelShape, from_config_json

PAPER = REPO / "config/paper.yaml"
SINFO = REPO / "tests/data/sinfo-paper-cluster"  # the cluster profiles/slurm describes
FIELDS = {"rule", "method", "base", "gpus", "gpu_type", "est_gpu_mem_gb", "gpu_mem_gb", "est_hours",
          "time_limit_hours", "est_disk_gb", "fits", "advice"}


def _shape(name: str) -> ModelShape:
    from rmflow import hub_facts

    return from_config_json(hub_facts.config_json(name), f"rmflow.hub_facts: {name}")


def test_bt_on_llama3_8b_under_zero3_matches_a_hand_computation():
    # config.json: 32 layers, hidden 4096, MLP 14336, 32 heads of 128, 8 KV heads, vocab 128256; one score row
    layer = 4096 * 32 * 128 * 2 + 4096 * 8 * 128 * 2 + 3 * 4096 * 14336 + 2 * 4096  # q,o + k,v + MLP + 2 norms
    params = 32 * layer + 128256 * 4096 + 4096 + 4096  # layers + embedding + score head + final norm
    assert params == 7_504_928_768
    states = 4 * (128256 * 4096) + 18 * params // 4  # DeepSpeed ZeRO-3: 4 x largest layer + 18 x params / GPUs
    tokens = 2 * 4096  # one pair per GPU: chosen and rejected at max_length 4096
    checkpoints = 32 * tokens * 4096 * 2  # each layer's bf16 input
    # the layer recomputed in backward, in bf16: 11 h (norms, q, rotary, repeated K/V, attention output) + 4 kv d
    # (k, v and their rotary copies) + 4 i (gate, up, activation, product)
    one_layer = tokens * (11 * 4096 + 4 * 8 * 128 + 4 * 14336) * 2
    expected = states + checkpoints + one_layer + 2e9
    setup = est.Setup(gpus=4, zero_stage=3, bf16=True, gradient_checkpointing=True, attention="sdpa")
    got = est.train_memory(_shape("meta-llama/Meta-Llama-3-8B-Instruct"), "classifier", setup, 2, 4096)
    assert got["total"] == pytest.approx(expected, rel=1e-9)
    assert round(got["total"] / 1e9, 1) == 41.8


def test_odin_on_gemma2_9b_under_zero2_with_eager_attention_matches_a_hand_computation():
    # the seed's ODIN run: 16 pairs x 2,048 tokens per GPU, ZeRO-2 on 4 GPUs, eager attention (Gemma-2)
    layer = 3584 * 16 * 256 * 2 + 3584 * 8 * 256 * 2 + 3 * 3584 * 14336 + 4 * 3584  # Gemma-2: 4 norms a layer
    params = 42 * layer + 256000 * 3584 + 3584 + 3584  # tied embedding
    states = 2 * params + 18 * params // 4  # DeepSpeed ZeRO-2: 16-bit weights + 18 x params / GPUs
    tokens = 32 * 2048
    checkpoints = 42 * tokens * 3584 * 2
    one_layer = tokens * (11 * 3584 + 4 * 8 * 256 + 4 * 14336 + 2 * 16 * 2048) * 2  # + eager's scores, softmax
    expected = states + checkpoints + one_layer + 2e9
    setup = est.Setup(gpus=4, zero_stage=2, bf16=True, gradient_checkpointing=True, attention="eager")
    got = est.train_memory(_shape("google/gemma-2-9b-it"), "classifier", setup, 32, 2048)
    assert got["total"] == pytest.approx(expected, rel=1e-9)
    assert 95 <= got["total"] / 1e9 <= 110  # over an 80 GB A100


def test_the_zero_formulas_used_without_deepspeed_are_deepspeeds(monkeypatch):
    pytest.importorskip("deepspeed")
    cases = [(7_504_928_768, 525_336_576, 4, 1, False, False), (9_241_709_568, 917_504_000, 4, 2, True, False),
             (27_000_000_000, 1_179_648_000, 8, 1, True, True)]
    with_ds = [(est._deepspeed_zero2(p, g, n, o), est._deepspeed_zero3(p, big, g, n, o, op))
               for p, big, g, n, o, op in cases]
    for module in ("deepspeed.runtime.zero.stage3", "deepspeed.runtime.zero.stage_1_and_2"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails: the fallback formula
    without = [(est._deepspeed_zero2(p, g, n, o), est._deepspeed_zero3(p, big, g, n, o, op))
               for p, big, g, n, o, op in cases]
    assert with_ds == without


def _dry_run_counts(tmp_path: Path, configs=(PAPER,)) -> dict[str, int]:
    proc = snakemake(tmp_path / "dry", "all", "-n", "--profile", str(REPO / "profiles/slurm"),
                     configs=configs, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = (proc.stdout + proc.stderr).split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


@pytest.fixture
def roomy_disk(monkeypatch):
    # the filesystem's answer is the edge: a cluster's scratch has room for the paper run
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=50e12))


def _plan(tmp_path, *layers, profile=REPO / "profiles/slurm", sinfo=SINFO):
    out = tmp_path / "plan.json"
    try:
        plan_main.main([str(PAPER), *map(str, layers)], str(profile), str(out), str(sinfo) if sinfo else None,
                       str(REPO))
        error = None
    except RmflowError as exc:
        error = str(exc)
    return json.loads(out.read_text())["jobs"], error


def test_the_paper_plan_lists_every_job_of_its_dry_run_and_fits_the_profiles_cluster(tmp_path, monkeypatch,
                                                                                      roomy_disk, capsys):
    monkeypatch.chdir(tmp_path)
    jobs, error = _plan(tmp_path)
    assert error is None, error
    assert collections.Counter(j["rule"] for j in jobs) == _dry_run_counts(tmp_path)
    assert all(FIELDS <= set(j) for j in jobs) and all(j["fits"] for j in jobs)
    gpu = [j for j in jobs if j["gpus"]]
    # every job of a rule the profile gives GPUs (trainings, stages, evaluations), as the dry run counts them
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())["set-resources"]
    gpu_rules = {rule for rule, resources in profile.items() if "gres" in resources}
    assert len(gpu) == sum(n for rule, n in _dry_run_counts(tmp_path).items() if rule in gpu_rules)
    assert all(j["est_gpu_mem_gb"] and j["est_hours"] for j in gpu)
    odin = next(j for j in jobs if j["method"] == "odin" and j["rule"] == "train_a100_80g")
    assert odin["gpus"] == 4 and odin["gpu_type"] == "a100" and odin["est_gpu_mem_gb"] < odin["gpu_mem_gb"] == 80
    assert f"plan: all {len(jobs)} jobs fit" in capsys.readouterr().out


def test_an_oversized_layer_is_refused_with_its_estimate_and_advice(tmp_path, monkeypatch, roomy_disk):
    monkeypatch.chdir(tmp_path)
    layer = tmp_path / "oversized.yaml"
    layer.write_text(yaml.safe_dump({"methods": {"bt": {"bases": {"llama3_8b_instruct": {"train": {
        "lr": 2e-6, "grad_accum": 8, "deepspeed": None, "per_device_batch": 16, "max_length": 8192}}}}}}))
    jobs, error = _plan(tmp_path, layer)
    assert error.startswith(f"the run cannot finish as planned: 1 of {len(jobs)} jobs refused, 0 problem(s)")
    line = error.splitlines()[1].strip()
    assert line.startswith("train_a100_80g[method=bt, base=llama3_8b_instruct]: needs ~")
    gb = float(re.search(r"needs ~(\d+) GB per GPU, over 80 GB", line).group(1))
    assert gb > 200  # 18 bytes a parameter on every GPU, and 32 sequences of 8,192 tokens
    assert "no single change fits; together: ZeRO-3 + gradient checkpointing + per_device_batch 1" in line
    bt = next(j for j in jobs if j["job"] == "train_a100_80g[method=bt, base=llama3_8b_instruct]")
    assert bt["fits"] is False and bt["advice"] and bt["est_gpu_mem_gb"] == pytest.approx(gb, abs=1)


def _profile(tmp_path, retries: int | None = None, **rule_changes) -> Path:
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    if retries is not None:
        profile["retries"] = retries
    for rule, changes in rule_changes.items():
        profile["set-resources"][rule].update(changes)
    folder = tmp_path / "profile"
    folder.mkdir(exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def test_time_maxtime_and_gpu_type_refusals(tmp_path, monkeypatch, roomy_disk):
    monkeypatch.chdir(tmp_path)
    _, error = _plan(tmp_path, profile=_profile(tmp_path, train_a40_48g={"runtime": 600}))
    assert "train_a40_48g[method=bt, base=gemma_2b_it]: needs ~" in error
    assert re.search(r"h, over its runtime of 10 h: runtime: \d+ \(minutes, 20 % spare\)", error)
    _, error = _plan(tmp_path, profile=_profile(tmp_path, evaluate={"runtime": 7 * 1440}))
    assert "runtime 168 h is over partition 'gpu-a100' MaxTime 72 h" in error
    _, error = _plan(tmp_path, profile=_profile(tmp_path, bestofn={"gres": "gpu:h100:1"}))
    assert "GPU type 'h100' (gres 'gpu:h100:1') is not in partition 'gpu-a100' (it has: a100)" in error
    # a partition the cluster lacks is the onstart check's refusal, here too
    _, error = _plan(tmp_path, profile=_profile(tmp_path, stage_fit={"slurm_partition": "gpu-h100"}))
    assert "rule stage_fit: slurm_partition 'gpu-h100' does not exist on this cluster" in error


def test_disk_refusals_name_what_needs_the_space(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=150e9))
    _, error = _plan(tmp_path)
    assert re.search(r"disk: results/ \(saved models, checkpoints in results/scratch/\) needs ~\d+ GB, 150 GB free",
                     error)
    assert re.search(r"disk: the Hugging Face cache \(.*\) needs ~18\d GB, 150 GB free", error)


def test_sinfo_gives_each_partitions_maxtime_and_gpu_types():
    from rmflow.slurm.resources import cluster_partitions, slurm_minutes

    parts = cluster_partitions(str(SINFO))
    assert parts["gpu-a100"].max_time_min == 3 * 1440 and parts["gpu-a100"].gpu_types == {"a100"}
    assert parts["cpu"].gpu_types == frozenset() and parts["cpu"].max_gpus == 0
    assert [slurm_minutes(t) for t in ("2-00:00:00", "1:30:00", "30:00", "45", "3-12", "infinite")] == \
        [2880, 90, 30, 45, 3 * 1440 + 720, None]


def test_backbone_embedding_batches_keep_to_a_token_budget():
    from rmflow.methods.frozen.backbone import token_budget_batches

    lengths = [100] * 20 + [4096] * 5
    batches = token_budget_batches(lengths, batch_size=16, max_batch_tokens=8192)
    assert sorted(i for b in batches for i in b) == list(range(25))  # every text once
    assert all(len(b) * max(lengths[i] for i in b) <= 8192 for b in batches)  # the 4,096-token texts go two by two
    assert [len(b) for b in batches] == [16, 4, 2, 2, 1]


def test_the_default_runs_jobs_are_its_dry_runs_too(tmp_path, monkeypatch):
    # built bases, the synthetic suite and the ranking job: rules the paper run does not have
    from rmflow.config import load_config
    from rmflow.plan import Plan
    from rmflow.sizing.jobs import planned_jobs

    config = load_config(str(REPO / "config/config.yaml"), schema_path=REPO / "workflow/schemas/config.schema.yaml")
    monkeypatch.chdir(tmp_path)
    counts = collections.Counter(j.rule for j in planned_jobs(Plan(config)))
    assert counts == _dry_run_counts(tmp_path, configs=(REPO / "config/config.yaml",))


def test_hub_models_already_in_the_cache_need_no_more_room(tmp_path, monkeypatch):
    # pre-downloaded models (hf download) are on disk already: only the ones the cache lacks are counted
    from huggingface_hub import constants

    from rmflow.sizing.check import hub_cache_gb
    from rmflow.sizing.jobs import Job, Work

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    jobs = [Job("evaluate", {}, work=Work("score", ref, None, "classifier", 1, 1, 1, 1))
            for ref in ("meta-llama/Meta-Llama-3-8B-Instruct", "google/gemma-2-27b-it")]
    both = hub_cache_gb(jobs)
    assert both == pytest.approx((8_030_261_248 + 27_227_128_320) * 2 / 1e9, rel=0.01)
    folder = tmp_path / "gemma"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gemma2"}))
    hub_cache(tmp_path / "hub", "google/gemma-2-27b-it", folder)
    assert hub_cache_gb(jobs) == pytest.approx(8_030_261_248 * 2 / 1e9, rel=0.01)


def test_a_resumable_job_longer_than_its_runtime_fits_within_the_profiles_retries(tmp_path, monkeypatch, roomy_disk):
    """ArmoRM's gate embeds a set whose card says 100K-1M pairs, planned at 1M: ~83 h against 72 h. Its embeddings
    are kept chunk by chunk, so it fits in 2 attempts where the profile retries (2 retries: 3 attempts), and is
    refused, saying what would do, where it does not."""
    monkeypatch.chdir(tmp_path)
    jobs, error = _plan(tmp_path)
    gate = next(j for j in jobs if j["rule"] == "stage_gate")
    assert gate["fits"] and gate["attempts"] == 2 and gate["est_hours"] > gate["time_limit_hours"]
    assert any("size bucket 100,000-1,000,000: planned at its upper end (1,000,000)" in a
               for a in gate["assumptions"]), gate["assumptions"]
    assert any(a.startswith("resumable: ~") for a in gate["assumptions"])
    jobs, error = _plan(tmp_path, profile=_profile(tmp_path, retries=0))
    assert "stage_gate[method=armo, base=llama3_8b_instruct]: needs ~" in error
    assert "(resumable: 2 attempts of 72 h would do; 1 allowed)" in error
    train = next(j for j in jobs if j["job"] == "train_a40_48g[method=bt, base=gemma_2b_it]")
    assert train["attempts"] == 1  # a training resumes too, but its hours are planned to fit one runtime


def test_a_sizing_key_nothing_reads_is_refused_not_sized_as_bt(monkeypatch):
    """A method declaring SIZING = {"logits_kept": 10} (the protocol's old, wrong name) would be sized as BT: refused,
    naming the key and the known ones."""
    from rmflow import methods
    from rmflow.sizing.jobs import DEFAULT_SIZING, sizing_of

    class OnePlan:
        def module(self, method):
            return methods.get(method)

        def method_options(self, method, base):
            return None

    monkeypatch.setattr(methods.get("prm"), "SIZING", {"sequences_per_row": 1, "logits_kept": 10})
    with pytest.raises(RmflowError, match="declares SIZING key.s. logits_kept, which nothing reads.*logit_positions"):
        sizing_of(OnePlan(), "prm", "tiny")
    monkeypatch.setattr(methods.get("prm"), "SIZING", {"sequences_per_row": 1, "logit_positions": 10})
    assert sizing_of(OnePlan(), "prm", "tiny") == {**DEFAULT_SIZING, "sequences_per_row": 1, "logit_positions": 10}
