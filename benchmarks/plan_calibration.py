"""How far `rmflow plan`'s estimates are from measured trainings, on this CPU (and the GPU check, where one is lent).

    .venv/bin/python benchmarks/plan_calibration.py [--out benchmarks/PLAN-CALIBRATION.md]

Each configuration trains rmflow's BT for a few optimizer steps in its own process, on pairs long enough that every
sequence is cut to max_length (no padding: the estimate's token count is exact), and records that process's peak
RSS over the training steps and tokens/s. The estimate is the plan's own functions (rmflow.sizing.estimate) for fp32
on one device, less the fixed allowance that stands for the CUDA context on a GPU. Time: the plan's FLOPs per token
against the measured tokens/s gives the MFU this CPU reached, against its measured fp32 matmul peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
# (name, base, pairs per step, max_length, gradient checkpointing, steps)
CONFIGS = [("tiny, 8 pairs x 512", "tiny", 8, 512, False, 4), ("tiny, 8 pairs x 1024", "tiny", 8, 1024, False, 4),
           ("tiny, 8 pairs x 1024, checkpointing", "tiny", 8, 1024, True, 4),
           ("SmolLM2-135M, 1 pair x 256", "smollm2", 1, 256, False, 3),
           ("SmolLM2-135M, 2 pairs x 512", "smollm2", 2, 512, False, 3),
           ("SmolLM2-135M, 2 pairs x 512, checkpointing", "smollm2", 2, 512, True, 3)]


def _pairs(n: int, words: int) -> list[dict]:
    import random

    rng = random.Random(0)
    vocab = "the model answer reward human prefers response helpful honest because clear step first result".split()

    def text():
        return " ".join(rng.choice(vocab) for _ in range(words))

    return [{"id": f"p{i}", "chosen": [{"role": "user", "content": text()}, {"role": "assistant", "content": text()}],
             "rejected": [{"role": "user", "content": text()}, {"role": "assistant", "content": text()}]}
            for i in range(n)]


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(args) -> None:
    """One training in this process. Its peak is measured from the moment the model and optimizer are prepared
    (Linux: the high-water mark is reset there, through /proc/self/clear_refs), so imports, tokenising and loading
    stay out of it; the weights, resident by then, are added back."""
    import accelerate
    import torch

    from rmflow.methods import bt
    from rmflow.spec import RunSpec

    prepared = {}
    original = accelerate.Accelerator.prepare

    def prepare(self, *objects, **kwargs):
        out = original(self, *objects, **kwargs)
        prepared["rss_kb"] = _status_kb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        return out

    accelerate.Accelerator.prepare = prepare
    torch.set_num_threads(args.threads)
    spec = RunSpec(method="bt", base="calibration", base_model=args.base, train_data=args.data,
                   train={"lr": 1e-5, "max_steps": args.steps, "per_device_batch": args.pairs, "grad_accum": 1,
                          "max_length": args.max_length, "warmup_ratio": 0.0, "lr_schedule": "constant",
                          "log_every": 1000, "checkpoint_every": 0, "group_by_length": False,
                          "gradient_checkpointing": args.checkpointing})
    bt.train(spec, args.out)
    metrics = json.loads(Path(args.out, "metrics.json").read_text())
    print(json.dumps({"training_mb": (_status_kb("VmHWM") - prepared["rss_kb"]) * 1.024e-3,
                      "tokens": metrics["tokens_seen"], "seconds": metrics["wall_time_s"],
                      "padding": metrics.get("padding_fraction")}))


def _run(*extra: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *extra], capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _bases(work: Path) -> dict[str, Path]:
    from rmflow.models.tiny import TinySpec, build
    from workloads import TINY, smollm2_base

    tiny = work / "tiny"
    build(TinySpec(**TINY), [m["content"] for r in _pairs(64, 200) for m in r["chosen"]], str(tiny))
    return {"tiny": tiny, "smollm2": smollm2_base()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--base"), parser.add_argument("--data"), parser.add_argument("--out")
    parser.add_argument("--pairs", type=int, default=1), parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3), parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report", default=str(REPO / "benchmarks/PLAN-CALIBRATION.md"))
    args = parser.parse_args()
    if args.child:
        return child(args)

    import torch

    from rmflow.data.prepare import write_pairs
    from rmflow.sizing import estimate as est
    from rmflow.sizing.shapes import shape_of
    from rmflow.sizing.utilisation import cpu_peak_flops

    torch.set_num_threads(args.threads)
    peak = cpu_peak_flops()  # the figure every training's metrics.json divides by (best of three)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bases = _bases(work)
        for name, base, pairs, length, checkpointing, steps in CONFIGS:
            data = work / f"pairs-{length}.parquet"
            if not data.exists():
                write_pairs(_pairs(pairs * steps + 8, length * 2), str(data))  # every side cut to max_length
            got = _run("--base", str(bases[base]), "--data", str(data), "--out", str(work / f"out-{len(rows)}"),
                       "--pairs", str(pairs), "--max-length", str(length), "--steps", str(steps),
                       "--threads", str(args.threads), *(["--checkpointing"] if checkpointing else []))
            shape = shape_of(str(bases[base]))
            setup = est.Setup(gpus=1, bf16=False, gradient_checkpointing=checkpointing, attention="sdpa")
            memory = est.train_memory(shape, "classifier", setup, 2 * pairs, length)
            estimated_mb = (memory["total"] - memory["context"]) / 1e6
            weights_mb = est.model_bytes(shape, "classifier") / 1e6  # resident before the peak is measured
            measured_mb = got["training_mb"] + weights_mb
            flops = est.flops_per_token(shape, "classifier", length, train=True)
            tokens_per_s = got["tokens"] / got["seconds"]
            rows.append({"config": name, "params": shape.params("classifier"), "estimated_mb": round(estimated_mb),
                         "measured_mb": round(measured_mb), "memory_error": round(estimated_mb / measured_mb - 1, 3),
                         "tokens_per_s": round(tokens_per_s, 1), "flops_per_token": flops,
                         "mfu": round(tokens_per_s * flops / peak, 3), "padding": got["padding"]})
            print(json.dumps(rows[-1]), flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, fp32 matmul peak " \
              f"{peak / 1e9:.0f} GFLOP/s"
    lines = ["# rmflow plan: estimates against measured trainings", "",
             f"Written by `benchmarks/plan_calibration.py` on {time.strftime('%Y-%m-%d')} at "
             f"{_commit()}; {machine}. Measured: the training process's peak RSS from the moment model and "
             "optimizer are prepared, plus the fp32 weights resident by then; estimated: the plan's total less its "
             "fixed CUDA allowance.", "",
             "| configuration | params | est. MB | measured MB | memory error | tokens/s | model FLOPs/token | MFU |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['config']} | {r['params'] / 1e6:.2f} M | {r['estimated_mb']} | {r['measured_mb']} | "
              f"{r['memory_error']:+.0%} | {r['tokens_per_s']} | {r['flops_per_token'] / 1e6:.1f} M | "
              f"{r['mfu']:.0%} |" for r in rows]
    errors = [abs(r["memory_error"]) for r in rows]
    lines += ["", f"Memory: the estimate is within {max(errors):.0%} of the measured peak (mean |error| "
              f"{sum(errors) / len(errors):.0%}). Time: the plan divides FLOPs by peak x MFU; this CPU reached "
              f"{min(r['mfu'] for r in rows):.0%}-{max(r['mfu'] for r in rows):.0%} of its matmul peak. GPU MFU "
              "and peak CUDA memory are not calibrated here (no GPU was lent): the plan's GPU time rests on the "
              "assumed MFU in src/rmflow/sizing/facts.yaml until runs record theirs.", "",
              "The estimate runs low on this CPU. Without checkpointing the gap grows with the tokens (allocator "
              "slack and intermediates the per-layer count misses). With checkpointing the peak moves to the "
              "backward of one recomputed layer: for the tiny model (4 heads, 16 sequences of 1,024 tokens) the "
              "CPU attention backward's a x s x s probabilities and their gradient would account for about 0.5 GB "
              "(2 x 16 x 4 x 1024^2 x 4 bytes), which the estimate leaves out because the GPU kernels it models "
              "(flash, memory-efficient SDPA) do not materialise them; that is an explanation by count, not a "
              "measurement. Read a plan's 'within 10 %' warning as tight."]
    Path(args.report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    (Path(args.report).with_suffix(".json")).write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    print("\n".join(lines))


def _commit() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown commit"


if __name__ == "__main__":
    main()
