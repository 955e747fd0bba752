"""Training options shared by every method (one source of truth for defaults; config.yaml mirrors them)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rmflow.errors import RmflowError

PRECISIONS = ("fp32", "bf16-mixed")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule and sequence options. Defaults follow the Llama-3-8B BT recipe where one exists."""

    lr: float = 2e-6  # peak learning rate
    epochs: float = 1.0  # passes over the training pairs (fractions allowed)
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    per_device_batch: int = 1  # pairs per device per micro-step
    grad_accum: int = 64  # micro-steps per optimizer step
    warmup_ratio: float = 0.03  # share of optimizer steps spent warming up
    warmup_steps: int | None = None  # optimizer steps spent warming up; overrides warmup_ratio when set (axolotl)
    lr_schedule: str = "cosine"  # any transformers.get_scheduler name
    weight_decay: float = 0.001
    max_grad_norm: float = 1.0
    max_length: int = 4096  # tokens per side of a pair, after truncation
    truncation_side: str = "left"  # drop the oldest context, keep the answer's end
    # fp32: fp32 weights and compute. bf16-mixed: fp32 master weights and optimizer states, forward in bf16 under
    # autocast (or, with DeepSpeed, bf16 weights with DeepSpeed's fp32 master copy). Weights always load as fp32
    # for training: AdamW updates of lr 1e-6 applied to bf16 hub weights round away (below bf16's resolution).
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    deepspeed: str | None = None  # path to a DeepSpeed JSON (config/deepspeed/zero3.json)
    deepspeed_fallback: bool = False  # where DeepSpeed cannot run (no GPU, not installed): train without it, logged
    # and recorded in metrics.json, instead of stopping
    seed: int = 42
    margin_field: str | None = None  # optional per-row margin subtracted inside the BT loss
    group_by_length: bool = True  # length-grouped batches keep padding small
    split_padding: float = 0.1  # split a micro-batch's forward so each part pads at most this share (1: one pass)
    # pair methods: run each pair's shared prompt once, [prompt | chosen | rejected] in one row under a block mask
    # (rmflow.train.shared_prompt); kept off automatically where it would not be exact (recorded in metrics.json)
    share_prompt: bool = True
    train_layers: int | None = None  # train only the top k transformer layers (+ final norm, head); None = all
    lora_r: int = 0  # LoRA rank on the trained layers' linear modules (peft); 0 = no adapters, full weights train
    lora_alpha: float = 16.0  # LoRA scaling numerator (scale = lora_alpha / lora_r)
    lora_dropout: float = 0.0
    log_every: int = 10  # optimizer steps between log lines
    report_to: list | None = None  # training curves to tensorboard and/or wandb (accelerate trackers); None = off
    checkpoint_every: int = 500  # optimizer steps between resumable checkpoints (0: only on SIGTERM/SIGUSR1)
    # also save when this many minutes passed since the last save (0: off): a bound on the work a hard kill loses
    # that does not depend on how long a step takes (an 8B step is minutes; SLURM's kill grace is seconds)
    checkpoint_every_minutes: float = 0.0

    @property
    def bf16(self) -> bool:
        """Whether the run computes in bf16 (and scoring on a GPU may load its weights as bf16)."""
        return self.precision == "bf16-mixed"

    @classmethod
    def from_dict(cls, values: dict, where: str = "train") -> "TrainConfig":
        values = dict(values)
        if "bf16" in values:  # run specs written before train.precision (rmflow_run.json of older models)
            legacy = values.pop("bf16")
            values.setdefault("precision", "bf16-mixed" if legacy else "fp32")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RmflowError(f"unknown training option(s) {unknown}; known: {sorted(known)}", field=where)
        config = cls(**values)
        if config.precision not in PRECISIONS:
            raise RmflowError(f"must be one of {', '.join(PRECISIONS)}, not {config.precision!r}",
                              field=f"{where}.precision")
        if config.truncation_side not in ("left", "right"):
            raise RmflowError("must be 'left' or 'right'", field=f"{where}.truncation_side")
        if config.lora_r and config.deepspeed:
            raise RmflowError("LoRA adapters are merged into the weights at save time, which ZeRO's sharded weights "
                              "do not allow here: unset deepspeed or lora_r", field=f"{where}.lora_r")
        return config
