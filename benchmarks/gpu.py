"""Training and scoring on a GPU against the peers, on a 0.3-1 B stand-in built from a config (nothing is downloaded).

    python benchmarks/gpu.py --out benchmarks/RESULTS-gpu.md             (a CUDA GPU; rmflow's venv with TRL)
    python benchmarks/gpu.py --device cpu --size tiny --out DIR/gpu.md   (how it is tested without a GPU)

1. BT training in bf16 with SDPA on the same pairs, batch, steps and learning rate: rmflow (each pair's prompt run
   once) vs TRL's ``RewardTrainer``: real tokens/s (both sides of a pair counted whole, as TRL counts them), MFU
   against the device's bf16 peak (rmflow's fact sheet), peak CUDA memory. Target: rmflow >= 1.5x TRL.
2. Scoring at least 2,000 texts of realistic lengths with the rmflow-trained model, both in fp32: rmflow's scorer vs
   the RewardBench pipeline (``text-classification``, batch 16), with the largest score difference (< 1e-4).
   Target: rmflow >= 2x the pipeline.

Each contender runs in its own process through benchmarks/contenders.py (as benchmarks/bench.py runs them on the
CPU); the measurements go to OUT with a .json suffix beside OUT. ``--size tiny`` is a 0.85 M-parameter Llama and a
few pairs: it checks the script, and its numbers say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import contender, max_diff  # noqa: E402  (benchmarks/ is not a package)
from workloads import TINY, WORDS, _write, matmul_parameters  # noqa: E402

# (model shape, training pairs, scoring pairs, batch, max_length)
SIZES = {
    # ~0.4 B parameters: Llama layout, 24 layers of 1,024 with GQA, an 8k vocabulary trained on the workload's words
    "gpu": ({"family": "llama", "vocab_size": 8192, "hidden_size": 1024, "intermediate_size": 4096, "num_layers": 24,
             "num_heads": 16, "num_kv_heads": 4, "max_position_embeddings": 4096, "seed": 0}, 2048, 1024, 8, 2048),
    "tiny": (TINY, 16, 8, 4, 512),
}
TARGETS = {"train": 1.5, "score": 2.0}


def _length(rng: random.Random, median: float, low: int, high: int) -> int:
    return int(min(high, max(low, round(rng.lognormvariate(math.log(median), 0.9)))))


def pairs(n: int, rng: random.Random, scale: float) -> list[dict]:
    """Prompt and answers of lognormal word counts (about a token a word): prompts median 250 words, answers 150,
    the shape of chat preference data; ``scale`` shrinks them for the tiny check."""
    def text(median: float) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(_length(rng, median * scale, 4, int(1500 * scale))))

    out = []
    for i in range(n):
        user = [{"role": "user", "content": text(250)}]
        out.append({"id": f"g{i}", "subset": "gpu", "chosen": user + [{"role": "assistant", "content": text(150)}],
                    "rejected": user + [{"role": "assistant", "content": text(150)}]})
    return out


def build(work: Path, size: str) -> dict:
    from rmflow.models.tiny import TinySpec
    from rmflow.models.tiny import build as build_base

    shape, n_train, n_score, batch, max_length = SIZES[size]
    rng = random.Random(0)
    scale = 1.0 if size == "gpu" else 0.2
    train, evals = pairs(n_train, rng, scale), pairs(n_score, rng, scale)
    _write(work, train, evals)
    build_base(TinySpec(**shape), [m["content"] for r in train for m in r["chosen"] + r["rejected"][1:]],
               str(work / "base"))
    params, matmul = matmul_parameters(work / "base")
    return {"size": size, "params": params, "matmul_params": matmul, "train_pairs": n_train,
            "score_texts": 2 * n_score, "batch": batch, "max_length": max_length, "shape": shape}


def peak(device: str) -> tuple[float | None, str]:
    from rmflow.sizing.utilisation import device_peak

    return device_peak(device)


def measure(work: Path, info: dict, device: str) -> dict:
    common = ["--threads", "8" if device == "cuda" else "2", "--max-length", str(info["max_length"]), "--lr", "1e-5",
              "--device", device]
    train = {who: contender("train", who, work, "--batch", str(info["batch"]), "--bf16", *common)
             for who in ("rmflow", "trl")}
    score = {who: contender("score", who, work, "--model", str(work / "out_rmflow"), "--batch", "16", *common)
             for who in ("rmflow", "pipeline16")}
    return {"train": train, "score": score, "max_abs_diff": max_diff(work, "rmflow", "pipeline16")}


def _mb(value) -> str:
    return "-" if not value else f"{value:,.0f}"


def report(info: dict, runs: dict, device: str, machine: dict) -> tuple[str, dict]:
    peak_flops, source = peak(device)
    per_token = 6 * info["matmul_params"]
    rows, ratios = [], {}
    train = runs["train"]
    tps = {who: r["real_tokens"] / r["seconds"] for who, r in train.items()}
    for who, r in train.items():
        computed = r.get("computed_tokens", r["real_tokens"])
        mfu = per_token * computed / r["seconds"] / peak_flops if peak_flops else None
        rows.append(f"| {'rmflow BT (prompt shared)' if who == 'rmflow' else 'TRL RewardTrainer'} | "
                    f"{tps[who]:,.0f} | {computed / r['real_tokens']:.0%} | {r['padding_fraction']:.1%} | "
                    f"{'-' if mfu is None else f'{mfu:.1%}'} | {_mb(r.get('cuda_max_allocated_mb'))} | "
                    f"{r['mean_loss']:.4f} |")
    ratios["train"] = tps["rmflow"] / tps["trl"]
    score = runs["score"]
    pps = {who: r["pairs"] / r["seconds"] for who, r in score.items()}
    ratios["score"] = pps["rmflow"] / pps["pipeline16"]
    check = {k: "met" if ratios[k] >= TARGETS[k] else "**not met**" for k in TARGETS}
    diff_ok = "met" if runs["max_abs_diff"] < 1e-4 else "**not met**"
    lines = [
        "# GPU benchmarks", "",
        f"Generated by `benchmarks/gpu.py --size {info['size']} --device {device}` ({machine['minutes']:.1f} min) "
        f"on {machine['device_name']}; Python {machine['python']}, torch {machine['torch']}, transformers "
        f"{machine['transformers']}, TRL {machine['trl']}. Peak: {source}"
        + (f" ({peak_flops / 1e9:,.1f} GFLOP/s)." if peak_flops else "."), "",
        f"Stand-in: a Llama of {info['params'] / 1e6:,.1f} M parameters built from a config ({info['shape']}), "
        f"random weights; {info['train_pairs']} training pairs and {info['score_texts']} scoring texts of "
        "random words with lognormal lengths (prompts median 250 words, answers 150; about a token a word), "
        f"max_length {info['max_length']}.", "",
        f"## Training (bf16, SDPA, batch {info['batch']} pairs, one epoch)", "",
        "| trainer | real tokens/s | tokens computed | padded-token fraction | MFU | peak CUDA memory (MB) "
        "| mean loss |",
        "|---|---|---|---|---|---|---|", *rows, "",
        "Real tokens/s counts both sides of every pair whole; MFU divides the FLOPs of the tokens really computed "
        f"(6 x {info['matmul_params'] / 1e6:,.1f} M multiplied parameters a token) by the peak.", "",
        "## Scoring (fp32, both sides of every pair)", "",
        "| scorer | pairs/s | x pipeline |", "|---|---|---|",
        f"| rmflow evaluate | {pps['rmflow']:.2f} | {ratios['score']:.2f}x |",
        f"| RewardBench pipeline (text-classification, batch 16) | {pps['pipeline16']:.2f} | 1.00x |", "",
        "## Targets", "", "| target | measured | |", "|---|---|---|",
        f"| training: rmflow >= {TARGETS['train']:g}x TRL real tokens/s | {ratios['train']:.2f}x | {check['train']} |",
        f"| scoring: rmflow >= {TARGETS['score']:g}x the pipeline | {ratios['score']:.2f}x | {check['score']} |",
        f"| scoring: identical scores in fp32 (max abs difference < 1e-4) | {runs['max_abs_diff']:.2e} | {diff_ok} |",
        ""]
    return "\n".join(lines), {"ratios": ratios, "max_abs_diff": runs["max_abs_diff"], "peak_flops": peak_flops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "RESULTS-gpu.md"))
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--size", default="gpu", choices=list(SIZES))
    a = parser.parse_args()
    import torch
    import transformers
    import trl

    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py: no CUDA device is visible (use --device cpu --size tiny to check it)")
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        info = build(work, a.size)
        print(f"stand-in: {info['params'] / 1e6:.1f} M parameters; {info['train_pairs']} pairs", flush=True)
        runs = measure(work, info, a.device)
    machine = {"device_name": torch.cuda.get_device_name(0) if a.device == "cuda" else platform.processor() or "cpu",
               "python": platform.python_version(), "torch": torch.__version__,
               "transformers": transformers.__version__, "trl": trl.__version__,
               "minutes": (time.time() - started) / 60}
    text, summary = report(info, runs, a.device, machine)
    Path(a.out).write_text(text)
    Path(a.out).with_suffix(".json").write_text(json.dumps({"info": info, "runs": runs, "machine": machine,
                                                            **summary}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
