"""Serving trained reward models to RLHF trainers: ``rmflow serve`` (an HTTP reward server for every method) and
``rmflow export`` (a checkpoint vLLM, TRL, OpenRLHF and verl load as they are, for one-head scalar methods)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one ``rmflow serve`` accepts; the command's option defaults are these (no FastAPI import needed)."""

    max_inputs: int = 256              # conversations (or completions) per request
    max_input_tokens: int | None = None  # per conversation; None: the model's context length
    max_body_bytes: int = 8 << 20
    max_batch_tokens: int = 16384      # the batcher's budget per forward call
    max_wait_ms: float = 5.0           # how long the batcher waits for more requests
    max_queued_items: int = 4096       # beyond it: 429
