"""The shared training loop: accelerate (CPU, GPUs, DeepSpeed), accumulation, schedule, logging, progress bar.

Methods supply the model, a function that yields the micro-batches of an epoch, and a loss function; nothing here
knows which method is training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from typing import Callable, Sequence

from rmflow.errors import RmflowError
from rmflow.models.load import attention_of
from rmflow.sizing import utilisation
from rmflow.train import tracking
from rmflow.train.checkpoint import Checkpointer, Preempted, PreemptionSignals, active_directory
from rmflow.train.config import TrainConfig
from rmflow.train.state_files import weights_only_deepspeed
from rmflow.train.trainable import prepare_trainable

log = logging.getLogger(__name__)

# loss_fn(model, batch) -> (loss, stats); stats holds counts summed over the run (pairs, correct, tokens,
# computed_tokens) and a method's own loss terms as TERM + name, each summed over the batch's pairs: logged per pair
LossFn = Callable[[object, object], tuple[object, dict]]
TERM = "term/"

# `make test-fast` sets this: the fast tier promises no training, and a test that trains anyway must fail there
# (and be marked slow) rather than quietly making the fast tier slow.
NO_TRAINING_ENV = "RMFLOW_NO_TRAINING"


class TrainingRefused(RuntimeError):
    """Training was started where RMFLOW_NO_TRAINING forbids it (not an RmflowError: no test may expect it)."""


def deepspeed_unavailable() -> str | None:
    """Why DeepSpeed cannot run in this process (None when it can). On a machine without CUDA it runs on its CPU
    accelerator (gloo; DeepSpeed builds a small shared-memory op with the C++ compiler the first time)."""
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # read when deepspeed is first imported
    try:
        import deepspeed  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install raising anything at import
        return f"DeepSpeed cannot be imported ({type(exc).__name__}: {exc}; pip install 'rmflow[gpu]')"
    return None


def _single_process_group() -> None:
    """DeepSpeed always runs in a process group; outside a launcher this process is a group of one."""
    import socket

    if "LOCAL_RANK" in os.environ:
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)})


def make_accelerator(config: TrainConfig):
    """The accelerator for ``config``, and what became of a requested DeepSpeed configuration.

    A DeepSpeed JSON that cannot be used here stops the run with the reason, unless ``deepspeed_fallback`` allows
    training without it: then it is said once in the log and recorded as ``deepspeed: not used (reason)``. Without
    a GPU, DeepSpeed runs on its CPU accelerator and the processes form a gloo group: a real ZeRO group, each rank
    seeing the world size and holding its shard (tests/unit/train/test_deepspeed.py)."""
    import torch
    from accelerate import Accelerator

    plugin, status, handlers = None, None, []
    cpu = not torch.cuda.is_available()  # several CPU processes form a gloo group only with cpu=True
    if config.deepspeed:
        if not os.path.isfile(config.deepspeed):
            raise RmflowError("DeepSpeed configuration file does not exist", file=config.deepspeed,
                              field="train.deepspeed")
        reason = deepspeed_unavailable()
        if reason and not config.deepspeed_fallback:
            raise RmflowError(f"train.deepspeed asks for {config.deepspeed}, but {reason}; set "
                              "train.deepspeed_fallback: true to train without DeepSpeed here", field="train.deepspeed")
        if reason:
            status = f"not used ({reason})"
            log.warning("DeepSpeed %s not used: %s; training without it (train.deepspeed_fallback)", config.deepspeed,
                        reason)
        else:
            from accelerate.utils import DeepSpeedPlugin, InitProcessGroupKwargs

            plugin = DeepSpeedPlugin(hf_ds_config=config.deepspeed)
            # We feed our own batches, so "auto" sizes in the JSON must be filled here rather than by a dataloader.
            ds = plugin.deepspeed_config
            ds["train_micro_batch_size_per_gpu"] = config.per_device_batch
            ds["gradient_accumulation_steps"] = config.grad_accum
            ds["gradient_clipping"] = config.max_grad_norm
            world = int(os.environ.get("WORLD_SIZE", "1"))
            ds["train_batch_size"] = config.per_device_batch * config.grad_accum * world
            _single_process_group()
            if cpu:  # accelerate finds no backend on a CPU-only DeepSpeed run unless told: gloo
                handlers.append(InitProcessGroupKwargs(backend="gloo"))
            cpu = False  # cpu=True would make accelerate ignore the DeepSpeed plugin
            status = f"used ({config.deepspeed}, ZeRO stage {ds.get('zero_optimization', {}).get('stage', 0)}" + \
                (", CPU accelerator)" if not torch.cuda.is_available() else ")")
            log.info("DeepSpeed %s", status)
    accelerator = Accelerator(
        gradient_accumulation_steps=config.grad_accum,
        mixed_precision="bf16" if config.bf16 else "no",
        deepspeed_plugin=plugin,
        cpu=cpu,
        kwargs_handlers=handlers,
        **tracking.accelerator_options(config.report_to),
    )
    return accelerator, status


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
    if os.environ.get(NO_TRAINING_ENV):
        raise TrainingRefused(f"{NO_TRAINING_ENV} is set (make test-fast): a test that trains belongs in the slow tier "
                              "(@pytest.mark.slow)")
    import torch
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    accelerator, deepspeed = make_accelerator(config)
    world, rank = accelerator.num_processes, accelerator.process_index
    micro_per_rank = math.ceil(n_micro_per_epoch / world)
    steps_per_epoch = max(1, math.ceil(micro_per_rank / config.grad_accum))
    total_steps = config.max_steps or max(1, math.ceil(steps_per_epoch * config.epochs))
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    trainable = prepare_trainable(model, config)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and p.requires_grad]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 and p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    scheduler = get_scheduler(config.lr_schedule, optimizer,
                              num_warmup_steps=(config.warmup_steps if config.warmup_steps is not None
                                                else math.ceil(config.warmup_ratio * total_steps)),
                              num_training_steps=total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    if deepspeed and deepspeed.startswith("used"):
        weights_only_deepspeed(model)  # its checkpoints are read back without running code (state_files)
    # the scheduler is not registered with accelerate (that saves it as a pickle): the checkpointer writes it as JSON
    model.train()

    state = {"step": 0, "epoch": 0, "batch": 0, "last_loss": float("nan"), "elapsed_before": 0.0, "history": [],
             "totals": {"pairs": 0, "correct": 0, "tokens": 0, "computed_tokens": 0}, "window": _empty_window()}
    checkpoint_dir = active_directory()
    checkpointer = Checkpointer(checkpoint_dir, config.checkpoint_every, minutes=config.checkpoint_every_minutes) \
        if checkpoint_dir else None
    if checkpointer:
        refusal = checkpointer.claim(accelerator)  # while another process trains into the same checkpoints
        if _any_process(accelerator, refusal is not None):  # every rank stops together
            raise refusal or RmflowError("another training is writing these checkpoints (rank 0's error names it)",
                                         field="checkpoint")
        state = checkpointer.restore(accelerator, scheduler) or state
    tracking.start(accelerator, config.report_to, dataclasses.asdict(config))
    started = time.time()
    if checkpointer:
        checkpointer.last_save = started  # the time-based interval counts from this (re)start
    bar = tqdm(total=total_steps, initial=state["step"], desc="train", unit="step",
               disable=not accelerator.is_local_main_process)
    try:
        with PreemptionSignals() if checkpointer else contextlib.nullcontext() as signals:
            while state["step"] < total_steps:
                batches = _shard(list(epoch_batches(state["epoch"])), rank, world)
                if not batches:  # every example was filtered out: an epoch without batches would loop forever
                    raise RmflowError("nothing to train on: the training data gave no batches (were all rows "
                                      "filtered out, e.g. longer than train.max_length? the log counts them)")
                for position in range(state["batch"], len(batches)):
                    _micro_step(model, optimizer, accelerator, loss_fn, batches[position], state, config)
                    state["batch"] = position + 1
                    if not accelerator.sync_gradients:
                        continue
                    scheduler.step()
                    state["step"] += 1
                    bar.update(1)
                    _maybe_log(accelerator, state, total_steps, scheduler, bar, config, started)
                    if checkpointer:
                        _maybe_checkpoint(checkpointer, accelerator, scheduler, state, signals, started)
                    if state["step"] >= total_steps:
                        break
                else:
                    state["epoch"] += 1
                    state["batch"] = 0
                    continue
                break
    finally:
        bar.close()
        if checkpointer:
            checkpointer.release()
    tracking.finish(accelerator, config.report_to)
    wall = time.time() - started + state["elapsed_before"]
    totals = dict(zip(state["totals"], _sum_over_processes(accelerator, list(state["totals"].values()))))
    return {
        "accelerator": accelerator,
        "model": model,
        "history": state["history"],
        "metrics": {
            "final_loss": state["last_loss"],
            "train_accuracy": totals["correct"] / max(totals["pairs"], 1),
            "tokens_seen": totals["tokens"],
            "pairs_seen": totals["pairs"],
            "optimizer_steps": state["step"],
            "epochs_started": state["epoch"] + (1 if state["batch"] else 0),
            "wall_time_s": round(wall, 3),
            # what an admin sizes the kill grace and checkpoint interval from (README, preemption)
            "step_time_s": round(wall / max(state["step"], 1), 3),
            "checkpoint_save_s": checkpointer.save_times() if checkpointer else None,
            "processes": world,
            "trainable": trainable,
            "deepspeed": deepspeed or "not requested",
            **precision_record(accelerator, model, optimizer, config, deepspeed_used=bool(deepspeed and
                                                                                          deepspeed.startswith("used"))),
            "attention": attention_of(accelerator.unwrap_model(model)),
            # real tokens/s, model FLOPs, MFU and peak memory: what rmflow plan's time estimates calibrate on
            "utilisation": utilisation.record(accelerator.unwrap_model(model), totals["tokens"], wall,
                                              str(accelerator.device), world,
                                              computed_tokens=totals.get("computed_tokens", totals["tokens"])),
        },
    }


def precision_record(accelerator, model, optimizer, config: TrainConfig, deepspeed_used: bool) -> dict:
    """What the run really held and computed in (metrics.json): parameters, compute, optimizer states."""
    params = {str(p.dtype).removeprefix("torch.") for p in accelerator.unwrap_model(model).parameters()}
    if deepspeed_used:
        states = "float32 (DeepSpeed's master copy)"
    else:
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer
        dtypes = {str(v.dtype).removeprefix("torch.") for state in inner.state.values() for v in state.values()
                  if hasattr(v, "dtype") and v.ndim > 0}
        states = ", ".join(sorted(dtypes)) or "none (no step taken)"
    return {"precision": config.precision, "parameter_dtype": ", ".join(sorted(params)),
            "compute_dtype": "bfloat16" if config.bf16 else "float32", "optimizer_state_dtype": states}


def _empty_window() -> dict:
    return {"loss": 0.0, "n": 0, "pairs": 0, "correct": 0, "tokens": 0}


def _micro_step(model, optimizer, accelerator, loss_fn: LossFn, batch, state: dict, config: TrainConfig) -> None:
    with accelerator.accumulate(model):
        # autocast around the whole loss: the methods call the backbone directly (pooling, logits at chosen
        # positions), which bypasses the autocast accelerate puts on the model's own forward
        with accelerator.autocast():
            loss, stats = loss_fn(model, batch)
        accelerator.backward(loss)
        if accelerator.sync_gradients and config.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad()
    for key in state["totals"]:  # computed_tokens: what the forwards ran, the tokens themselves unless said
        state["totals"][key] += int(stats.get(key, stats.get("tokens", 0) if key == "computed_tokens" else 0))
    window = state["window"]
    window["loss"] += float(loss.detach()) * stats.get("pairs", 1)
    window["n"] += stats.get("pairs", 1)
    window["pairs"] += stats.get("pairs", 0)
    window["correct"] += stats.get("correct", 0)
    window["tokens"] = window.get("tokens", 0) + stats.get("tokens", 0)  # .get: checkpoints from before it existed
    for key, value in stats.items():  # every rank's loss gives the same terms: the window's keys stay aligned
        if key.startswith(TERM):
            window[key] = window.get(key, 0.0) + float(value)


def _maybe_log(accelerator, state: dict, total_steps: int, scheduler, bar, config: TrainConfig,
               started: float) -> None:
    step = state["step"]
    if step % config.log_every and step != total_steps:
        return
    window = dict(zip(state["window"], _sum_over_processes(accelerator, list(state["window"].values()))))
    state["last_loss"] = window["loss"] / max(window["n"], 1)
    record = {"step": step, "epoch": state["epoch"], "loss": state["last_loss"], "lr": scheduler.get_last_lr()[0],
              "accuracy": window["correct"] / max(window["pairs"], 1),
              "elapsed_s": round(time.time() - started + state["elapsed_before"], 3)}
    terms = {key.removeprefix(TERM): value / max(window["pairs"], 1) for key, value in window.items()
             if key.startswith(TERM)}
    if terms:
        record["terms"] = terms
    bar.set_postfix(loss=f"{state['last_loss']:.4f}", acc=f"{record['accuracy']:.3f}")
    log.info("step %d/%d loss %.4f acc %.3f lr %.2e", step, total_steps, state["last_loss"], record["accuracy"],
             record["lr"])
    seconds = record["elapsed_s"] - state.get("logged_at_s", 0.0)
    tracking.record(accelerator, config.report_to,
                    {"train/loss": record["loss"], "train/accuracy": record["accuracy"], "train/lr": record["lr"],
                     "train/tokens_per_s": window.get("tokens", 0) / seconds if seconds > 0 else 0.0,
                     **{f"train/{name}": value for name, value in terms.items()}}, step)
    state["logged_at_s"] = record["elapsed_s"]
    state["history"].append(record)
    state["window"] = _empty_window()


def _sum_over_processes(accelerator, values: list[float]) -> list[float]:
    """Logged losses and counts cover the global batch, not one rank's share of it."""
    if accelerator.num_processes == 1:
        return values
    import torch

    summed = accelerator.reduce(torch.tensor(values, dtype=torch.float64, device=accelerator.device), "sum")
    return [float(v) if isinstance(v0, float) else int(round(v)) for v, v0 in zip(summed.tolist(), values)]


def _any_process(accelerator, flag: bool) -> bool:
    """SLURM signals every task, but not always at the same instant: all ranks must agree to stop together."""
    return _sum_over_processes(accelerator, [1.0 if flag else 0.0])[0] > 0


def _maybe_checkpoint(checkpointer: Checkpointer, accelerator, scheduler, state: dict, signals: PreemptionSignals,
                      started: float) -> None:
    checkpointer.alive()
    preempted = _any_process(accelerator, signals.received is not None)
    periodic = checkpointer.every and state["step"] % checkpointer.every == 0
    # every rank must agree to save (a collective): rank 0's clock decides for all
    timed = bool(checkpointer.minutes) and _any_process(
        accelerator, accelerator.is_main_process and time.time() - checkpointer.last_save >= checkpointer.minutes * 60)
    if not (preempted or periodic or timed):
        return
    snapshot = {**state, "elapsed_before": state["elapsed_before"] + time.time() - started}
    where = checkpointer.save(accelerator, scheduler, state["step"], snapshot)
    if preempted:
        log.warning("stopped at optimizer step %d after a preemption signal; rerun to resume from %s",
                    state["step"], where)
        raise Preempted(state["step"], where)
