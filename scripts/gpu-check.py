"""What a GPU run must check, in one short script (a few minutes on one GPU; `make` and CI never run it).

    python scripts/gpu-check.py --out DIR        (needs a CUDA GPU, deepspeed, and rmflow's dependencies)

On a tiny Llama built from config and the synthetic suite, with bf16:
1. BT without DeepSpeed, with ZeRO-2 and with ZeRO-3 (config/deepspeed/zero{2,3}.json, one process): metrics.json
   says DeepSpeed was used, the saved model holds full (gathered) weights of the right shapes, it reloads in plain
   transformers and scores as rmflow's scorer does, and the three loss curves agree within bf16 tolerance;
2. a ZeRO-3 run stopped by SIGUSR1 resumes from its checkpoint to (nearly) the weights of a clean run;
3. scoring throughput on a ~120 M-parameter Llama (random weights, long-tailed lengths): rmflow's scorer against
   transformers' text-classification pipeline at batch 16 (RewardBench's run_rm.py), with the largest score
   difference;
4. the GPU paths (``--sections gpu_paths``): a bf16-stored base trained without DeepSpeed at lr 1e-6 in
   bf16-mixed (every tensor must move), the pair-PM and the PRM trained in bf16 under each attention implementation
   installed (eager, sdpa, flash_attention_2) with rmflow's A/B and +/- logits compared with plain transformers'
   forward, and a job that asked for a GPU started with none visible (it must refuse, exit 2).
Everything measured goes to DIR/gpu-check.json and is printed. ``--device cpu --sections gpu_paths`` runs part 4
on a CPU (how it is tested without a GPU; the numbers then say nothing about a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = {"lr": 2e-3, "max_steps": 24, "per_device_batch": 8, "grad_accum": 2, "max_length": 256,
         "precision": "bf16-mixed",
         "log_every": 1, "seed": 7, "checkpoint_every": 0, "split_padding": 1.0}
ENV = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29531",
       "TOKENIZERS_PARALLELISM": "false"}


def train(work: Path, name: str, deepspeed: str | None, *extra: str, wait: bool = True):
    from rmflow.spec import RunSpec

    spec = RunSpec(method="bt", base="tiny", base_model=str(work / "base"), train_data=str(work / "train.parquet"),
                   train={**TRAIN, "deepspeed": deepspeed})
    (work / f"{name}.json").write_text(spec.to_json())
    cmd = [sys.executable, "-m", "rmflow.cli", "train", "--spec", str(work / f"{name}.json"), "--out",
           str(work / name), *extra]
    log = open(work / f"{name}.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENV}, cwd=REPO)
    if not wait:
        return proc
    code = proc.wait(timeout=600)
    if code:
        raise SystemExit(f"{name} failed ({code}):\n" + (work / f"{name}.log").read_text()[-4000:])
    return json.loads((work / name / "metrics.json").read_text())


def losses(model_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (model_dir / "train_log.jsonl").read_text().splitlines()]


def reload_check(model_dir: Path, rows: list[dict]) -> dict:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from rmflow.methods import bt

    config = AutoConfig.from_pretrained(model_dir)
    weights = load_file(str(model_dir / "model.safetensors"))
    embed = weights["model.embed_tokens.weight"]
    full = embed.shape == (config.vocab_size, config.hidden_size) and all(t.numel() > 0 for t in weights.values())
    ours = bt.load_scorer(str(model_dir), device="cuda").score_conversations([r["chosen"] for r in rows],
                                                                             progress=False)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.bfloat16).cuda().eval()
    plain = []
    with torch.no_grad():
        for r in rows:
            ids = tok(tok.apply_chat_template(r["chosen"], tokenize=False), add_special_tokens=False,
                      return_tensors="pt").to("cuda")
            plain.append(model(**ids).logits[0, 0].float().item())
    return {"full_weights": bool(full), "saved_dtype": str(embed.dtype),
            "max_abs_diff_vs_plain_transformers": max(abs(a - b) for a, b in zip(ours, plain))}


def scoring_benchmark(work: Path) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification, pipeline

    from rmflow.models.load import load_tokenizer
    from rmflow.models.scalar import ScalarScorer

    torch.manual_seed(0)
    tok = load_tokenizer(str(work / "base"))
    config = LlamaConfig(vocab_size=len(tok), hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                         num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=4096,
                         pad_token_id=tok.pad_token_id, num_labels=1)
    model = LlamaForSequenceClassification(config).to(torch.bfloat16).cuda().eval()
    params = sum(p.numel() for p in model.parameters())
    rng = random.Random(0)
    words = "the a model reward answer helpful honest because step result value code check".split()
    texts = []
    for _ in range(512):
        n = int(min(1500, max(10, rng.lognormvariate(5.0, 0.9))))
        texts.append([{"role": "user", "content": " ".join(rng.choice(words) for _ in range(40))},
                      {"role": "assistant", "content": " ".join(rng.choice(words) for _ in range(n))}])
    rendered = [tok.apply_chat_template(t, tokenize=False) for t in texts]
    scorer = ScalarScorer(model, tok, max_length=2048, batch_size=64, device="cuda", max_batch_tokens=65536)
    scorer.score_conversations(texts[:32], progress=False)  # warm-up
    torch.cuda.synchronize()
    started = time.time()
    ours = scorer.score_conversations(texts, progress=False)
    torch.cuda.synchronize()
    ours_s = time.time() - started
    tok.padding_side = "right"
    pipe = pipeline("text-classification", model=model, tokenizer=tok, device=0, function_to_apply="none",
                    truncation=True, max_length=2048, top_k=1)
    list(pipe(rendered[:32], batch_size=16))
    torch.cuda.synchronize()
    started = time.time()
    theirs = [out[0]["score"] for out in pipe(rendered, batch_size=16)]
    torch.cuda.synchronize()
    theirs_s = time.time() - started
    return {"params": params, "texts": len(texts), "rmflow_texts_per_s": len(texts) / ours_s,
            "pipeline_batch16_texts_per_s": len(texts) / theirs_s, "ratio": theirs_s / ours_s,
            "max_abs_diff": max(abs(a - b) for a, b in zip(ours, theirs)),
            "note": "bf16 weights; the pipeline re-tokenises the rendered text with add_special_tokens"}


def run_cli(work: Path, name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    with open(work / f"{name}.log", "w") as log:
        return subprocess.run([sys.executable, "-m", "rmflow.cli", *args], stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, **ENV, **(env or {})}, cwd=REPO, timeout=900)


def train_spec(work: Path, name: str, method: str, base: Path, data: Path, attention: str | None = None,
               **train) -> Path:
    from rmflow.spec import RunSpec

    spec = RunSpec(method=method, base="tiny", base_model=str(base), train_data=str(data),
                   train={**TRAIN, "max_steps": 3, **train}, attn_implementation=attention)
    path = work / f"{name}.json"
    path.write_text(spec.to_json())
    return path


def gpu_paths(work: Path, suite: dict, device: str) -> dict:
    """Part 4: bf16 weights move without DeepSpeed; pair-PM and PRM logits under each attention; the refusal."""
    import importlib.util

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from rmflow.data.formats import kind_of, write_rows
    from rmflow.data.prepare import prepare_rows
    from rmflow.methods import pair_pm
    from rmflow.methods._io import write_rows as write_pm_rows
    from rmflow.methods.pairwise.pm import logits_at
    from rmflow.train.batching import pad

    out: dict = {}
    bf16_base = work / "base_bf16"
    model = AutoModelForCausalLM.from_pretrained(work / "base", dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(bf16_base)
    for f in (work / "base").iterdir():
        if not f.name.startswith("model") and f.is_file():
            (bf16_base / f.name).write_bytes(f.read_bytes())
    spec = train_spec(work, "bf16_base", "bt", bf16_base, work / "train.parquet", lr=1e-6, lr_schedule="constant",
                      warmup_steps=0)
    proc = run_cli(work, "bf16_base", "train", "--spec", str(spec), "--out", str(work / "bf16_base"))
    start, trained = load_file(str(bf16_base / "model.safetensors")), load_file(str(work / "bf16_base" /
                                                                                    "model.safetensors"))
    shared = [k for k in start if k in trained and trained[k].shape == start[k].shape]
    metrics = json.loads((work / "bf16_base" / "metrics.json").read_text()) if proc.returncode == 0 else {}
    out["bf16_base_without_deepspeed"] = {
        "exit": proc.returncode, "tensors": len(shared),
        "tensors_moved": sum(not trained[k].float().equal(start[k].float()) for k in shared),
        **{k: metrics.get(k) for k in ("precision", "parameter_dtype", "compute_dtype", "optimizer_state_dtype")}}

    pm_rows, _ = pair_pm.transform(suite["train"][:64], pair_pm.Config())
    write_pm_rows(pm_rows, work / "pm.parquet")
    kept, _ = prepare_rows(suite["steps"], "step_rows", where={"split": "train"})
    write_rows(kept, kind_of("step_rows"), work / "steps.parquet")
    attentions = ["eager", "sdpa"] + (["flash_attention_2"] if importlib.util.find_spec("flash_attn") else [])
    runs = {}
    for attention in attentions:
        for method, data in (("pair_pm", work / "pm.parquet"), ("prm", work / "steps.parquet")):
            name = f"{method}_{attention}"
            spec = train_spec(work, name, method, work / "base", data, attention, max_length=512)
            proc = run_cli(work, name, "train", "--spec", str(spec), "--out", str(work / name))
            row = {"exit": proc.returncode}
            if proc.returncode == 0:
                metrics = json.loads((work / name / "metrics.json").read_text())
                model = AutoModelForCausalLM.from_pretrained(work / name, dtype=torch.bfloat16,
                                                             attn_implementation=attention).to(device).eval()
                ids, mask = pad([list(range(5, 45)), list(range(50, 70))], 0, side="right")
                positions = torch.tensor([[39, 10], [19, 0]])
                with torch.no_grad():
                    ours = logits_at(model, ids.to(device), mask.to(device), positions.to(device))
                    full = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
                plain = full[torch.arange(2, device=device).unsqueeze(-1), positions.to(device)]
                row.update(attention=metrics["attention"], final_loss=metrics["final_loss"],
                           max_abs_logit_diff_vs_plain=(ours - plain).abs().max().item())
            runs[name] = row
    out["attention_runs"] = runs
    refused = run_cli(work, "refusal", "--rule", "train_a100_80g", "--gpus", "4", "methods",
                      env={"CUDA_VISIBLE_DEVICES": ""})
    out["refusal"] = {"exit": refused.returncode,
                      "message": (work / "refusal.log").read_text().strip().splitlines()[-1]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--sections", nargs="+", default=["deepspeed", "scoring", "gpu_paths"],
                        choices=["deepspeed", "scoring", "gpu_paths"])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: part 4 only, as a test")
    args = parser.parse_args()
    import torch

    from rmflow.data.prepare import write_pairs
    from rmflow.data.synth import generate
    from rmflow.models.tiny import TinySpec, build

    work = Path(args.out) / "work"
    work.mkdir(parents=True, exist_ok=True)
    suite = generate(seed=0, n_train_per_subset=32, n_test_per_subset=4)
    write_pairs(suite["train"], work / "train.parquet")
    corpus = [m["content"] for r in suite["train"] for s in ("chosen", "rejected") for m in r[s]]
    build(TinySpec(family="llama", vocab_size=1024, hidden_size=64, intermediate_size=128, num_layers=2,
                   num_heads=4, num_kv_heads=2, max_position_embeddings=1024), corpus, work / "base")
    import transformers

    report = {"device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
              "torch": torch.__version__, "transformers": transformers.__version__}
    if args.device == "cpu" and set(args.sections) != {"gpu_paths"}:
        raise SystemExit("--device cpu runs only --sections gpu_paths")
    if "gpu_paths" in args.sections:
        report["gpu_paths"] = gpu_paths(work, suite, args.device)
    if "deepspeed" in args.sections:
        deepspeed_checks(work, suite, report)
    if "scoring" in args.sections:
        report["scoring"] = scoring_benchmark(work)
    text = json.dumps(report, indent=2)
    print(text)
    (Path(args.out) / "gpu-check.json").write_text(text)


def deepspeed_checks(work: Path, suite: dict, report: dict) -> None:
    """Parts 1 and 2: BT without DeepSpeed and under ZeRO-2/3, and a ZeRO-3 preemption and resume."""
    import deepspeed

    report["deepspeed"] = deepspeed.__version__
    rows = suite["train"][:8]
    runs = {}
    for name, ds in (("plain", None), ("zero2", str(REPO / "config/deepspeed/zero2.json")),
                     ("zero3", str(REPO / "config/deepspeed/zero3.json"))):
        metrics = train(work, name, ds)
        runs[name] = {"deepspeed": metrics["deepspeed"], "final_loss": metrics["final_loss"],
                      **reload_check(work / name, rows)}
    base = losses(work / "plain")
    for name in ("zero2", "zero3"):
        runs[name]["max_loss_diff_vs_plain"] = max(abs(a - b) for a, b in zip(base, losses(work / name)))
    report["runs"] = runs
    # preemption under ZeRO-3: SIGUSR1 mid-run, then the rerun resumes from the checkpoint
    scratch = work / "scratch"
    proc = train(work, "zero3_resumed", str(REPO / "config/deepspeed/zero3.json"), "--checkpoint-dir", str(scratch),
                 wait=False)
    log = work / "zero3_resumed.log"
    deadline = time.time() + 300
    while "step 6/24" not in log.read_text() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGUSR1)
    first_exit = proc.wait(timeout=300)
    train(work, "zero3_resumed", str(REPO / "config/deepspeed/zero3.json"), "--checkpoint-dir", str(scratch))
    from safetensors.torch import load_file

    a, b = load_file(str(work / "zero3" / "model.safetensors")), load_file(str(work / "zero3_resumed" /
                                                                               "model.safetensors"))
    report["preemption"] = {"first_exit": first_exit,
                            "resumed": "resuming from" in (work / "zero3_resumed.log").read_text(),
                            "max_weight_diff_vs_clean": max((a[k].float() - b[k].float()).abs().max().item()
                                                            for k in a)}


if __name__ == "__main__":
    main()
