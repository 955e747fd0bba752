"""rmflow's benchmark suite: training and scoring throughput against peers, side by side, in one invocation.

    benchmarks/run.sh            (= python benchmarks/bench.py --out benchmarks/RESULTS.md)

Every figure is a ratio against a peer measured on the same machine, model, data and batch settings in the same
run; each contender runs ``--repeats`` times in its own process and the table shows medians. See RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = ("rmflow", "rmflow_separate", "trl", "hf_pad_longest")
# the multi-turn slice measures training only: its scoring would repeat `real`'s at five times the cost
SCORE = {"tiny": ("rmflow", "pipeline16", "batch1"), "real": ("rmflow", "pipeline16"), "multiturn": ()}
REAL = ("real", "multiturn")  # workloads on the real checkpoint and RMFLOW_SHARED_DATA


def contender(task: str, who: str, work: Path, *extra: str) -> dict:
    cmd = [sys.executable, str(REPO / "benchmarks/contenders.py"), task, "--who", who, "--work", str(work), *extra]
    with tempfile.TemporaryDirectory(dir=work) as tokens:  # a cold token cache for every run: tokenising is timed
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=work,
                              env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                                   "RMFLOW_TOKEN_CACHE": tokens})
    if proc.returncode != 0:
        raise SystemExit(f"{task} {who} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def matmul_flops(threads: int, size: int = 1024, repeats: int = 20) -> float:
    """Measured fp32 matmul FLOP/s: the ceiling any trainer on this CPU can reach."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size ** 3 * repeats / (time.perf_counter() - started)


def dag_seconds(repeats: int) -> tuple[float, int]:
    """``snakemake -n`` for 10 methods x 8 base models x 3 eval sets: (median seconds, jobs)."""
    import yaml

    from workloads import TINY

    bases = {f"tiny_{i}": {"tiny": {**TINY, "seed": i}, "gpu_preset": "cpu"} for i in range(8)}
    evals = {f"synthetic_{i}": {"path": "results/data/synthetic/test.jsonl", "sections": "synthetic_v1"}
             for i in range(3)}
    methods = ["bt", "pair_pm", "ssrm", "rrm", "odin", "armo", "tree", "prm", "orm", "orm_scalar"]
    overlay = {"base_models": bases, "eval_sets": evals,
               "run": {"methods": methods, "base_models": list(bases), "eval_sets": list(evals)}}
    times, jobs = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "big.yaml").write_text(yaml.safe_dump(overlay))
        for _ in range(repeats):
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "all", "--snakefile",
                                   str(REPO / "Snakefile"), "--directory", tmp, "--configfile",
                                   str(REPO / "config/config.yaml"), str(Path(tmp) / "big.yaml")],
                                  capture_output=True, text=True, timeout=600)
            times.append(time.perf_counter() - started)
            if proc.returncode != 0:
                raise SystemExit(f"snakemake -n failed:\n{proc.stderr[-3000:]}")
            counts = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("total")]
            jobs = int(counts[-1]) if counts else jobs
    return statistics.median(times), jobs


def max_diff(work: Path, who: str, reference: str) -> float:
    ours, theirs = (json.loads((work / f"scores_{name}.json").read_text()) for name in (who, reference))
    return max(abs(x - y) for x, y in zip(ours, theirs, strict=True))


def run_workload(name: str, work: Path, repeats: int, threads: int) -> dict:
    """Train with every trainer, then score the rmflow-trained model with every scorer; medians over ``repeats``."""
    import workloads  # benchmarks/ is on sys.path when run as a script

    info = getattr(workloads, name)(work)
    print(f"workload {name}: {info['description']}", flush=True)
    lr = "1e-4" if name == "tiny" else "1e-5"
    common = ["--threads", str(threads), "--max-length", str(info["max_length"]), "--lr", lr]
    train = {who: [] for who in TRAIN}
    for _ in range(repeats):  # interleaved, so drifting machine load hits every contender alike
        for who in train:
            train[who].append(contender("train", who, work, "--batch", str(info["batch"]), *common))
            print(f"{name} train {who}: {train[who][-1]}", flush=True)
    score = {who: [] for who in SCORE[name]}
    for _ in range(repeats):
        for who in score:
            score[who].append(contender("score", who, work, "--model", str(work / "out_rmflow"),
                                        "--batch", str(info["score_batch"]), *common))
            print(f"{name} score {who}: {score[who][-1]}", flush=True)
    diffs = {who: {ref: max_diff(work, who, ref) for ref in score if ref != who} for who in score}
    return {"workload": info, "repeats": repeats, "train": train, "score": score, "diffs": diffs}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workloads", default="tiny,real,multiturn", help="comma-separated: tiny, real, multiturn")
    parser.add_argument("--repeats", type=int, default=3, help="runs per contender on the tiny workload")
    parser.add_argument("--real-repeats", type=int, default=1, help="runs per contender on the real workload")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks/RESULTS.md"))
    a = parser.parse_args()
    import workloads
    from results_table import write_results

    started = time.time()
    results, missing = [], {}
    for name in a.workloads.split(","):
        why = workloads.real_available() if name in REAL else None
        if why:
            print(f"workload real skipped: {why}", flush=True)
            missing[name] = why
            continue
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run_workload(name, Path(tmp), a.real_repeats if name in REAL else a.repeats,
                                        a.threads))
    dag, jobs = dag_seconds(a.repeats)
    import torch
    import transformers
    import trl

    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": a.threads,
               "python": platform.python_version(), "torch": torch.__version__,
               "transformers": transformers.__version__, "trl": trl.__version__,
               "matmul_gflops": matmul_flops(a.threads) / 1e9, "total_minutes": (time.time() - started) / 60}
    raw = {"args": vars(a), "results": results, "missing": missing, "dag": [dag, jobs], "machine": machine}
    Path(a.out).with_suffix(".json").write_text(json.dumps(raw, indent=1))  # the measurements behind the table
    write_results(a.out, results, missing, (dag, jobs), machine, a.repeats)
    print(Path(a.out).read_text())


if __name__ == "__main__":
    main()
