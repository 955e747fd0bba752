"""One benchmark contender in its own process (so its peak RSS is its own); prints one JSON line of measurements.

    python benchmarks/contenders.py train --who rmflow|rmflow_separate|trl|hf_pad_longest --work DIR --batch 8 \
        --max-length 4096
    python benchmarks/contenders.py score --who rmflow|pipeline16|batch1 --work DIR --model DIR --batch 16

Every training contender gets the same base model (``DIR/base``), the same pairs (``DIR/train.parquet``), the same
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

# where and in what the contenders run: the CPU in fp32 (benchmarks/bench.py) or, from benchmarks/gpu.py, a GPU
# with bf16 training (scoring stays fp32 there so that the scores compare to 1e-4)
RUN = {"device": "cpu", "bf16": False}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rows(work: Path) -> list[dict]:
    from rmflow.data.prepare import read_pairs

    return read_pairs(str(work / "train.parquet"))


def train_rmflow(work: Path, batch: int, max_length: int, lr: float, share_prompt: bool = True) -> dict:
    """rmflow's BT trainer; ``share_prompt`` False runs each side of a pair on its own (the peers' computation)."""
    from rmflow.methods import bt
    from rmflow.spec import RunSpec

    spec = RunSpec(method="bt", base="bench", base_model=str(work / "base"), train_data=str(work / "train.parquet"),
                   train={"lr": lr, "epochs": 1, "per_device_batch": batch, "grad_accum": 1, "max_length": max_length,
                          "warmup_ratio": 0.0, "lr_schedule": "constant", "log_every": 1000, "checkpoint_every": 0,
                          "share_prompt": share_prompt, "precision": "bf16-mixed" if RUN["bf16"] else "fp32"})
    out = work / ("out_rmflow" if share_prompt else "out_rmflow_separate")
    bt.train(spec, str(out))
    m = json.loads((out / "metrics.json").read_text())
    # real_tokens: both sides whole, as the peers count; computed_tokens: what the forwards ran (a shared prompt once)
    return {"seconds": m["wall_time_s"], "real_tokens": m["tokens_seen"], "pairs": m["pairs_seen"],
            "computed_tokens": m["utilisation"]["computed_tokens"], "padding_fraction": m["padding_fraction"],
            "mean_loss": _mean_loss(out / "train_log.jsonl"), "steps": m["optimizer_steps"],
            "mfu": m["utilisation"].get("mfu"), "cuda_max_allocated_mb": m["utilisation"].get("cuda_max_allocated_mb")}


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
               use_cpu=RUN["device"] == "cpu", bf16=RUN["bf16"], seed=42, dataloader_num_workers=0, disable_tqdm=True,
               **extra)


def _model_and_tokenizer(work: Path):
    from rmflow.models.load import load_model, load_tokenizer

    tokenizer = load_tokenizer(str(work / "base"))
    return load_model(str(work / "base"), tokenizer, num_labels=1), tokenizer


def _train_hf(trainer, counter: Counter, pairs: int) -> dict:
    started = time.time()
    result = trainer.train()
    seconds = time.time() - started
    # Saved like rmflow's run saves its model (outside the timed part), so every peak RSS includes writing the weights
    trainer.save_model(trainer.args.output_dir)
    return {"seconds": seconds, "real_tokens": counter.real, "pairs": pairs,
            "padding_fraction": 1 - counter.real / max(counter.total, 1), "mean_loss": result.training_loss,
            "steps": trainer.state.global_step}


def train_trl(work: Path, batch: int, max_length: int, lr: float) -> dict:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    model, tokenizer = _model_and_tokenizer(work)
    rows = _rows(work)
    dataset = Dataset.from_list([{"chosen": r["chosen"], "rejected": r["rejected"]} for r in rows])
    # TRL's RewardConfig turns gradient checkpointing on by default (less memory, about a third more compute);
    # off here, so that every trainer does the same computation and the speed and memory figures compare like for like
    args = _hf_args(RewardConfig, work, "trl", batch, lr, max_length=max_length, gradient_checkpointing=False)
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


def _eval_rows(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "eval.jsonl").read_text().splitlines()]


def score(who: str, work: Path, model_dir: Path, batch: int) -> dict:
    """Score both responses of every eval pair; the scores go to a file so the caller can compare them exactly.

    ``rmflow``: the path ``rmflow evaluate`` takes (ScalarScorer.score_pairs: on a CPU each pair's shared prompt runs
    once and both answers reuse its keys and values; length-sorted token-budget batches otherwise).
    ``pipeline16``: RewardBench's run_rm.py: a transformers ``text-classification`` pipeline over the chat-rendered
    texts, chosen then rejected, batch 16, padded, truncated at max_length, raw logits.
    ``batch1``: one unpadded text at a time, the exact reference.
    Tokenisation is inside the timed region for all three.
    """
    rows = _eval_rows(work)
    if who == "pipeline16":
        return _score_pipeline(work, rows, model_dir, batch)
    import torch

    from rmflow.methods.scalar.train import load_scalar_scorer
    from rmflow.models.scalar import rewards

    scorer = load_scalar_scorer(str(model_dir), batch_size=batch, device=RUN["device"])
    scorer.model = scorer.model.float()  # fp32 on a GPU too: the scores compare with the pipeline's to 1e-4
    started = time.time()
    if who == "rmflow":
        out = scorer.score_pairs(rows)
        scores = out["score_chosen"] + out["score_rejected"]
    else:
        from rmflow.train.batching import encode

        scores = []
        with torch.inference_mode():
            for conversation in [r[side] for side in ("chosen", "rejected") for r in rows]:
                ids = torch.tensor([encode(scorer.tokenizer, conversation, scorer.max_length, scorer.truncation_side)])
                ids = ids.to(RUN["device"])
                scores += rewards(scorer.model, ids, torch.ones_like(ids)).tolist()
    seconds = time.time() - started
    return _scored(work, who, scores, seconds, rows, scorer.tokenizer)


def _score_pipeline(work: Path, rows: list[dict], model_dir: Path, batch: int) -> dict:
    """Model and tokenizer loaded with plain transformers, as run_rm.py loads them. The chat template already holds
    the BOS, so special tokens are not added again (run_rm.py adds a second one; that changes the scores, and the
    comparison needs identical inputs). Truncation on the left, like rmflow's."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.truncation_side = "left"
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    max_length = json.loads((model_dir / "rmflow_run.json").read_text())["train"]["max_length"]
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=RUN["device"])
    started = time.time()
    scores = []
    for side in ("chosen", "rejected"):
        texts = [tokenizer.apply_chat_template(r[side], tokenize=False) for r in rows]
        out = pipe(texts, batch_size=batch, truncation=True, padding=True, max_length=max_length,
                   function_to_apply="none", add_special_tokens=False)
        scores += [(o[0] if isinstance(o, list) else o)["score"] for o in out]
    seconds = time.time() - started
    return _scored(work, "pipeline16", scores, seconds, rows, tokenizer)


def _scored(work: Path, who: str, scores: list[float], seconds: float, rows: list[dict], tokenizer) -> dict:
    (work / f"scores_{who}.json").write_text(json.dumps(scores))
    from rmflow.train.batching import render

    tokens = sum(len(tokenizer(render(tokenizer, r[side]), add_special_tokens=False)["input_ids"])
                 for r in rows for side in ("chosen", "rejected"))
    return {"seconds": seconds, "pairs": len(rows), "responses": 2 * len(rows), "tokens": tokens}


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
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--bf16", action="store_true", help="train in bf16 (rmflow bf16-mixed, TRL/HF bf16=True)")
    a = parser.parse_args()
    RUN.update(device=a.device, bf16=a.bf16)
    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.task == "train":
        fn = {"rmflow": train_rmflow, "rmflow_separate": lambda *args: train_rmflow(*args, share_prompt=False),
              "trl": train_trl, "hf_pad_longest": train_hf_pad_longest}[a.who]
        result = fn(a.work, a.batch, a.max_length, a.lr)
    else:
        result = score(a.who, a.work, a.model, a.batch)
    if a.device == "cuda":
        result["cuda_max_allocated_mb"] = (result.get("cuda_max_allocated_mb")
                                           or torch.cuda.max_memory_allocated() / 2 ** 20)
    print(json.dumps({"who": a.who, "task": a.task, **result, "peak_rss_mb": _peak_rss_mb()}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
