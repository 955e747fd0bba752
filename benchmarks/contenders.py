"""One benchmark contender in its own process (so its peak RSS is its own); prints one JSON line of measurements.

    python benchmarks/contenders.py train --who rmflow|trl|hf_pad_longest --work DIR --batch 8 --max-length 4096
    python benchmarks/contenders.py score --who rmflow|batch1|fixed_batches --work DIR --model DIR

Every training contender gets the same tiny Llama (``DIR/base``), the same pairs (``DIR/train.parquet``), the same
global batch, max_length, optimizer steps, learning rate and fp32 on the CPU, and is timed over its training loop
only (model loading and tokenisation excluded for all three).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rows(work: Path) -> list[dict]:
    from rmflow.data.prepare import read_pairs

    return read_pairs(str(work / "train.parquet"))


def train_rmflow(work: Path, batch: int, max_length: int, lr: float) -> dict:
    from rmflow.methods import bt
    from rmflow.spec import RunSpec

    spec = RunSpec(method="bt", base="bench", base_model=str(work / "base"), train_data=str(work / "train.parquet"),
                   train={"lr": lr, "epochs": 1, "per_device_batch": batch, "grad_accum": 1, "max_length": max_length,
                          "warmup_ratio": 0.0, "lr_schedule": "constant", "log_every": 1000, "checkpoint_every": 0})
    out = work / "out_rmflow"
    bt.train(spec, str(out))
    m = json.loads((out / "metrics.json").read_text())
    return {"seconds": m["wall_time_s"], "real_tokens": m["tokens_seen"], "pairs": m["pairs_seen"],
            "padding_fraction": m["padding_fraction"], "mean_loss": _mean_loss(out / "train_log.jsonl"),
            "steps": m["optimizer_steps"]}


def _mean_loss(log_file: Path) -> float:
    """The run's mean training loss (log_every exceeds the step count, so the one log line covers the whole run),
    the number the Hugging Face trainers report as training_loss."""
    history = [json.loads(line) for line in log_file.read_text().splitlines()]
    return history[-1]["loss"]


class Counter:
    """Counts the real and padded tokens of every batch a Hugging Face trainer builds."""

    def __init__(self, collate):
        self.collate, self.real, self.total = collate, 0, 0

    def __call__(self, features):
        out = self.collate(features)
        self.real += int(out["attention_mask"].sum())
        self.total += int(out["attention_mask"].numel())
        return out


def _hf_args(cls, work: Path, who: str, batch: int, lr: float, **extra):
    return cls(output_dir=str(work / f"out_{who}"), per_device_train_batch_size=batch, gradient_accumulation_steps=1,
               learning_rate=lr, num_train_epochs=1, lr_scheduler_type="constant", warmup_steps=0,
               weight_decay=0.001, max_grad_norm=1.0, logging_steps=1, save_strategy="no", report_to=[],
               use_cpu=True, bf16=False, seed=42, dataloader_num_workers=0, disable_tqdm=True, **extra)


def _model_and_tokenizer(work: Path):
    from rmflow.models.load import load_model, load_tokenizer

    tokenizer = load_tokenizer(str(work / "base"))
    return load_model(str(work / "base"), tokenizer, num_labels=1), tokenizer


def _train_hf(trainer, counter: Counter, pairs: int) -> dict:
    started = time.time()
    result = trainer.train()
    seconds = time.time() - started
    return {"seconds": seconds, "real_tokens": counter.real, "pairs": pairs,
            "padding_fraction": 1 - counter.real / max(counter.total, 1), "mean_loss": result.training_loss,
            "steps": trainer.state.global_step}


def train_trl(work: Path, batch: int, max_length: int, lr: float) -> dict:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    model, tokenizer = _model_and_tokenizer(work)
    rows = _rows(work)
    dataset = Dataset.from_list([{"chosen": r["chosen"], "rejected": r["rejected"]} for r in rows])
    args = _hf_args(RewardConfig, work, "trl", batch, lr, max_length=max_length)
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    counter = Counter(trainer.data_collator)
    trainer.data_collator = counter
    return _train_hf(trainer, counter, len(rows))


def train_hf_pad_longest(work: Path, batch: int, max_length: int, lr: float) -> dict:
    """The original recipe's batching: chosen and rejected stacked in one batch, padded to the longest."""
    import torch
    import torch.nn.functional as F
    from transformers import Trainer, TrainingArguments

    from rmflow.models.scalar import rewards
    from rmflow.train.batching import encode, pad

    model, tokenizer = _model_and_tokenizer(work)
    rows = _rows(work)
    features = [{"chosen": encode(tokenizer, r["chosen"], max_length, "left"),
                 "rejected": encode(tokenizer, r["rejected"], max_length, "left")} for r in rows]

    def collate(batch_rows):
        ids, mask = pad([f["chosen"] for f in batch_rows] + [f["rejected"] for f in batch_rows],
                        tokenizer.pad_token_id)
        return {"input_ids": ids, "attention_mask": mask}

    class PairTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            r = rewards(model, inputs["input_ids"], inputs["attention_mask"])
            chosen, rejected = torch.chunk(r, 2)
            return -F.logsigmoid(chosen - rejected).mean()

    counter = Counter(collate)
    args = _hf_args(TrainingArguments, work, "hf_pad_longest", batch, lr, remove_unused_columns=False)
    trainer = PairTrainer(model=model, args=args, train_dataset=features, data_collator=counter)
    return _train_hf(trainer, counter, len(rows))


def score(who: str, work: Path, model_dir: Path, batch: int) -> dict:
    """Score every response of the eval rows; the scores go to a file so the caller can compare them exactly."""
    import torch

    from rmflow.methods._scalar_train import load_scalar_scorer
    from rmflow.models.scalar import rewards
    from rmflow.train.batching import encode, pad

    rows = [json.loads(line) for line in (work / "eval.jsonl").read_text().splitlines()]
    conversations = [r[side] for r in rows for side in ("chosen", "rejected")]
    scorer = load_scalar_scorer(str(model_dir), batch_size=batch)
    started = time.time()  # tokenisation included for every contender
    if who == "rmflow":  # the evaluate path: length-sorted batches under a token budget
        scores = scorer.score_conversations(conversations, progress=False)
    else:
        encoded = [encode(scorer.tokenizer, c, scorer.max_length, scorer.truncation_side) for c in conversations]
        size = 1 if who == "batch1" else batch
        scores = []
        with torch.inference_mode():
            for start in range(0, len(encoded), size):
                ids, mask = pad(encoded[start:start + size], scorer.tokenizer.pad_token_id)
                scores += rewards(scorer.model, ids, mask).tolist()
    seconds = time.time() - started
    (work / f"scores_{who}.json").write_text(json.dumps(scores))
    return {"seconds": seconds, "pairs": len(rows), "responses": len(conversations)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=["train", "score"])
    parser.add_argument("--who", required=True)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    a = parser.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.task == "train":
        fn = {"rmflow": train_rmflow, "trl": train_trl, "hf_pad_longest": train_hf_pad_longest}[a.who]
        result = fn(a.work, a.batch, a.max_length, a.lr)
    else:
        result = score(a.who, a.work, a.model, a.batch)
    print(json.dumps({"who": a.who, "task": a.task, **result, "peak_rss_mb": _peak_rss_mb()}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
