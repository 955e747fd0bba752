"""How well a job used its hardware, recorded in metrics.json / scores.json (``utilisation``) and read back by
``rmflow plan`` as the MFU its time estimates divide by.

Model FLOPs per token follow the plan's own count (:func:`rmflow.sizing.estimate.flops_per_token`, from the model's
config). The peak is the device's: a GPU's bf16 dense peak from the fact sheet by its name, or, on a CPU, this
machine's fp32 matmul rate measured once per process (a 1,024-square product, best of three).
"""

from __future__ import annotations

import functools
import resource
import time

from rmflow.sizing.estimate import flops_per_token
from rmflow.sizing.shapes import facts, from_config_json


@functools.lru_cache(maxsize=1)
def cpu_peak_flops(size: int = 1024) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(5):
            a @ b
        best = max(best, 2 * size ** 3 * 5 / (time.perf_counter() - started))
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
           padding_fraction: float | None = None) -> dict:
    """Real tokens/s, model FLOPs per token, achieved FLOP/s, MFU against the devices' peak, and peak memory."""
    import torch

    config = getattr(model, "config", None)
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    out = {"device": kind, "processes": processes, "tokens": tokens, "seconds": round(seconds, 6),
           "tokens_per_s": round(tokens / seconds, 2) if seconds > 0 else None,
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
    achieved = tokens * per_token / seconds
    out.update({"model_flops_per_token": per_token, "achieved_flops": round(achieved),
                "peak_flops": peak, "peak_source": source,
                "mfu": round(achieved / (peak * processes), 4) if peak else None})
    return out
