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
WORDS = ("the model answer reward human prefers response helpful honest harmless because clear short long detail "
         "step first then next finally result value number list code python function return error check safe "
         "question explain reason evidence source claim true false better worse example data train test").split()
MODEL = {"family": "llama", "vocab_size": 2048, "hidden_size": 128, "intermediate_size": 384, "num_layers": 4,
         "num_heads": 4, "num_kv_heads": 2, "max_position_embeddings": 4096, "seed": 0}


def skewed_length(rng, low: int = 20, high: int = 1500, median: float = 120.0, sigma: float = 1.0) -> int:
    """Lognormal lengths clipped to [low, high]: most texts short, a long tail (real preference data's shape)."""
    import math

    return int(min(high, max(low, round(rng.lognormvariate(math.log(median), sigma)))))


def text(rng, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def make_workload(work: Path, n_pairs: int, n_eval: int, seed: int = 0) -> dict:
    """Pairs with skewed prompt and answer lengths, an eval set in RewardBench layout, and the tiny Llama base."""
    import random

    from rmflow.data.prepare import write_pairs
    from rmflow.models.tiny import TinySpec, build

    rng = random.Random(seed)

    def pair(i: int) -> dict:
        user = [{"role": "user", "content": text(rng, skewed_length(rng))}]
        return {"id": f"p{i}", "chosen": user + [{"role": "assistant", "content": text(rng, skewed_length(rng))}],
                "rejected": user + [{"role": "assistant", "content": text(rng, skewed_length(rng))}]}

    train = [pair(i) for i in range(n_pairs)]
    evals = [{**pair(n_pairs + i), "subset": "bench"} for i in range(n_eval)]
    write_pairs(train, str(work / "train.parquet"))
    (work / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evals))
    corpus = [m["content"] for r in train for m in r["chosen"] + r["rejected"][1:]]
    build(TinySpec(**MODEL), corpus, str(work / "base"))
    from rmflow.models.load import load_model, load_tokenizer

    params = sum(p.numel() for p in load_model(str(work / "base"), load_tokenizer(str(work / "base")),
                                              num_labels=1).parameters())
    return {"pairs": n_pairs, "eval_pairs": n_eval, "params": params}


def contender(task: str, who: str, work: Path, *extra: str) -> dict:
    cmd = [sys.executable, str(REPO / "benchmarks/contenders.py"), task, "--who", who, "--work", str(work), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
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

    bases = {f"tiny_{i}": {"tiny": {**MODEL, "seed": i}, "gpu_preset": "cpu"} for i in range(8)}
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--eval-pairs", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks/RESULTS.md"))
    a = parser.parse_args()
    from results_table import write_results  # benchmarks/ is on sys.path when run as a script

    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        workload = make_workload(work, a.pairs, a.eval_pairs)
        common = ["--batch", str(a.batch), "--threads", str(a.threads)]
        train = {who: [] for who in ("rmflow", "trl", "hf_pad_longest")}
        for _ in range(a.repeats):  # interleaved, so drifting machine load hits every contender alike
            for who in train:
                train[who].append(contender("train", who, work, *common))
                print(f"train {who}: {train[who][-1]}", flush=True)
        score = {who: [] for who in ("rmflow", "batch1", "fixed_batches")}
        for _ in range(a.repeats):
            for who in score:
                score[who].append(contender("score", who, work, "--model", str(work / "out_rmflow"), *common))
                print(f"score {who}: {score[who][-1]}", flush=True)
        reference = json.loads((work / "scores_batch1.json").read_text())
        diffs = {who: max(abs(x - y) for x, y in zip(json.loads((work / f"scores_{who}.json").read_text()),
                                                     reference)) for who in score}
    dag, jobs = dag_seconds(a.repeats)
    flops = matmul_flops(a.threads)
    import torch
    import transformers
    import trl

    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": a.threads,
               "python": platform.python_version(), "torch": torch.__version__,
               "transformers": transformers.__version__, "trl": trl.__version__,
               "matmul_gflops": flops / 1e9, "total_minutes": (time.time() - started) / 60}
    raw = {"workload": workload, "args": vars(a), "train": train, "score": score, "diffs": diffs,
           "dag": [dag, jobs], "machine": machine}
    Path(a.out).with_suffix(".json").write_text(json.dumps(raw, indent=1))  # the measurements behind the table
    write_results(a.out, workload, a, train, score, diffs, (dag, jobs), machine)
    print(Path(a.out).read_text())


if __name__ == "__main__":
    main()
