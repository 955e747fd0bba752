"""How well a job used its hardware, recorded in metrics.json / scores.json (``utilisation``) and read back by
``rmflow plan`` as the MFU its time estimates divide by.

Model FLOPs per token follow the plan's own count (:func:`rmflow.sizing.estimate.flops_per_token`, from the model's
config). The peak is the device's: a GPU's bf16 dense peak from the fact sheet by its name, or, on a CPU, this
machine's fp32 matmul rate measured once per process (a 1,024-square product, the best of three).
"""

from __future__ import annotations

import contextlib
import functools
import resource
import time

from rmflow.sizing.estimate import flops_per_token
from rmflow.sizing.shapes import facts, from_config_json


@functools.lru_cache(maxsize=1)
def cpu_peak_flops(size: int = 1024) -> float:
    import torch

    # one warm-up product, then the best of three single ones: ~0.1 s a process (five products per timing cost
    # 0.5 s in every train and evaluate job, ~2 min of CPU over the CI suite, for the same number within noise)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        a @ b
        best = max(best, 2 * size ** 3 / (time.perf_counter() - started))
    return best


def device_peak(device: str) -> tuple[float | None, str]:
    """(peak FLOP/s of one device, where the number comes from)."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.device(device)).lower()
        for kind, peak in facts()["gpu_peak_flops"].items():
            if kind in name.replace(" ", ""):
                return float(peak), f"bf16 dense peak of {kind} (rmflow's fact sheet; device {name})"
        return None, f"no peak known for {name}"
    return cpu_peak_flops(), "fp32 matmul measured on this CPU"


def record(model, tokens: int, seconds: float, device: str, processes: int = 1, train: bool = True,
           padding_fraction: float | None = None, computed_tokens: int | None = None) -> dict:
    """Real tokens/s, model FLOPs per token, achieved FLOP/s, MFU against the devices' peak, and peak memory.

    ``tokens`` counts every sequence whole (a pair's prompt twice, as peer trainers count); ``computed_tokens``
    what the forwards really ran (a shared prompt once; padding never counts). Achieved FLOP/s and MFU are the
    computed tokens', so MFU says how busy the hardware was, and tokens/s how fast the data went through."""
    import torch

    computed = tokens if computed_tokens is None else computed_tokens
    config = getattr(model, "config", None)
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    out = {"device": kind, "processes": processes, "tokens": tokens, "seconds": round(seconds, 6),
           "tokens_per_s": round(tokens / seconds, 2) if seconds > 0 else None,
           "computed_tokens": computed, "prompt_share_saved": round(1 - computed / tokens, 4) if tokens else 0.0,
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "padding_fraction": padding_fraction}
    if kind == "cuda":
        out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    if config is None or seconds <= 0:
        return out
    try:
        shape = from_config_json(config.to_dict(), "the model's config")
    except (TypeError, KeyError, ZeroDivisionError):
        return out
    head = "lm" if "CausalLM" in type(model).__name__ else "classifier"
    per_token = flops_per_token(shape, head, 0, train)  # attention's share left out: lengths vary per batch
    peak, source = device_peak(device)
    achieved = computed * per_token / seconds
    out.update({"model_flops_per_token": per_token, "achieved_flops": round(achieved),
                "peak_flops": peak, "peak_source": source,
                "mfu": round(achieved / (peak * processes), 4) if peak else None})
    return out


@contextlib.contextmanager
def counted_forwards(model):
    """Counts the tokens every forward of ``model``'s backbone runs (``real``: under a 2D attention mask's ones,
    ``padded``: every position) while the block runs, for any scorer whatever its batching: scores.json's
    ``utilisation``. A model without a backbone (an endpoint) counts nothing."""
    counts = {"real": 0, "padded": 0, "seconds": 0.0}
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), None) if model is not None else None
    handle = None
    if backbone is not None and hasattr(backbone, "register_forward_pre_hook"):
        def count(module, args, kwargs):
            ids = kwargs.get("input_ids", args[0] if args else None)
            if ids is None:
                ids = kwargs.get("inputs_embeds")
                ids = ids[..., 0] if ids is not None else None
            if ids is None:
                return
            mask = kwargs.get("attention_mask")
            counts["padded"] += ids.numel()
            counts["real"] += int(mask.sum()) if mask is not None and getattr(mask, "dim", lambda: 0)() == 2 \
                else ids.numel()

        handle = backbone.register_forward_pre_hook(count, with_kwargs=True)
    started = time.perf_counter()
    try:
        yield counts
    finally:
        counts["seconds"] = time.perf_counter() - started
        if handle is not None:
            handle.remove()


def scoring_record(model, counts: dict, device: str) -> dict | None:
    """``record`` for a scoring job from ``counted_forwards``' counts; None where nothing was counted."""
    if model is None or not counts["padded"]:
        return None
    padding = 1 - counts["real"] / counts["padded"]
    return record(model, counts["real"], counts["seconds"], device, train=False, padding_fraction=round(padding, 4))
