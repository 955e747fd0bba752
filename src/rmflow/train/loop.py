"""The shared training loop: accelerate (CPU, GPUs, DeepSpeed), accumulation, schedule, logging, progress bar.

Methods supply the model, a function that yields the micro-batches of an epoch, and a loss function; nothing here
knows which method is training.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Sequence

from rmflow.errors import RmflowError
from rmflow.train.config import TrainConfig

log = logging.getLogger(__name__)

# loss_fn(model, batch) -> (loss, stats); stats holds counts summed over the run: pairs, correct, tokens
LossFn = Callable[[object, object], tuple[object, dict]]


def make_accelerator(config: TrainConfig):
    from accelerate import Accelerator

    plugin = None
    if config.deepspeed:
        try:
            from accelerate.utils import DeepSpeedPlugin
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RmflowError("DeepSpeed requested but not installed: pip install 'rmflow[gpu]'") from exc
        plugin = DeepSpeedPlugin(hf_ds_config=config.deepspeed)
        # We feed our own batches, so "auto" sizes in the JSON must be filled here rather than by a dataloader.
        ds = plugin.deepspeed_config
        ds["train_micro_batch_size_per_gpu"] = config.per_device_batch
        ds["gradient_accumulation_steps"] = config.grad_accum
        ds["gradient_clipping"] = config.max_grad_norm
    return Accelerator(
        gradient_accumulation_steps=config.grad_accum,
        mixed_precision="bf16" if config.bf16 else "no",
        deepspeed_plugin=plugin,
    )


def _shard(batches: list, rank: int, world: int) -> list:
    """This rank's batches. Every rank gets the same count (unequal counts hang DDP's gradient sync): the last
    ranks repeat batches from the start of the epoch, and the repetition is logged, never silent."""
    per_rank = math.ceil(len(batches) / world)
    short = per_rank * world - len(batches)
    if short:
        log.info("%d batches do not split evenly over %d processes: %d repeated", len(batches), world, short)
    padded = batches + batches[:short]
    return padded[rank::world]


def train_loop(model, epoch_batches: Callable[[int], Sequence], n_micro_per_epoch: int, loss_fn: LossFn,
               config: TrainConfig) -> dict:
    """Train ``model``; return the accelerator, the prepared model, run metrics and the per-step history."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    accelerator = make_accelerator(config)
    world, rank = accelerator.num_processes, accelerator.process_index
    micro_per_rank = math.ceil(n_micro_per_epoch / world)
    steps_per_epoch = max(1, math.ceil(micro_per_rank / config.grad_accum))
    total_steps = config.max_steps or max(1, math.ceil(steps_per_epoch * config.epochs))
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    scheduler = get_scheduler(config.lr_schedule, optimizer,
                              num_warmup_steps=math.ceil(config.warmup_ratio * total_steps),
                              num_training_steps=total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()

    totals = {"pairs": 0, "correct": 0, "tokens": 0}
    window = {"loss": 0.0, "n": 0, "pairs": 0, "correct": 0}
    last_loss, step, epoch, started = float("nan"), 0, 0, time.time()
    history: list[dict] = []
    bar = tqdm(total=total_steps, desc="train", unit="step", disable=not accelerator.is_local_main_process)
    try:
        while step < total_steps:
            batches = _shard(list(epoch_batches(epoch)), rank, world)
            for batch in batches:
                with accelerator.accumulate(model):
                    loss, stats = loss_fn(model, batch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and config.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
                for key in totals:
                    totals[key] += int(stats.get(key, 0))
                window["loss"] += float(loss.detach()) * stats.get("pairs", 1)
                window["n"] += stats.get("pairs", 1)
                window["pairs"] += stats.get("pairs", 0)
                window["correct"] += stats.get("correct", 0)
                if not accelerator.sync_gradients:
                    continue
                scheduler.step()
                step += 1
                bar.update(1)
                if step % config.log_every == 0 or step == total_steps:
                    last_loss = window["loss"] / max(window["n"], 1)
                    record = {"step": step, "epoch": epoch, "loss": last_loss, "lr": scheduler.get_last_lr()[0],
                              "accuracy": window["correct"] / max(window["pairs"], 1),
                              "elapsed_s": round(time.time() - started, 3)}
                    bar.set_postfix(loss=f"{last_loss:.4f}", acc=f"{record['accuracy']:.3f}")
                    log.info("step %d/%d loss %.4f acc %.3f lr %.2e", step, total_steps, last_loss,
                             record["accuracy"], record["lr"])
                    history.append(record)
                    window = {"loss": 0.0, "n": 0, "pairs": 0, "correct": 0}
                if step >= total_steps:
                    break
            epoch += 1
    finally:
        bar.close()
    wall = time.time() - started
    return {
        "accelerator": accelerator,
        "model": model,
        "history": history,
        "metrics": {
            "final_loss": last_loss,
            "train_accuracy": totals["correct"] / max(totals["pairs"], 1),
            "tokens_seen": totals["tokens"],
            "pairs_seen": totals["pairs"],
            "optimizer_steps": step,
            "epochs_started": epoch,
            "wall_time_s": round(wall, 3),
            "processes": world,
        },
    }
