"""Save a trained run as a standard Hugging Face directory (safetensors) plus rmflow's records."""

from __future__ import annotations

import json
import logging
import platform

from rmflow.io import atomic_dir, write_json, write_text
from rmflow.spec import RunSpec

log = logging.getLogger(__name__)


def save_run(result: dict, tokenizer, spec: RunSpec, out_dir: str, metrics: dict) -> None:
    """Write model, tokenizer, ``rmflow_run.json``, ``metrics.json`` and ``train_log.jsonl`` atomically.

    ``accelerator.get_state_dict`` gathers ZeRO-3 shards into full weights first, so the saved model is a normal
    loadable one (the original recipe's ZeRO-3 save was not; methods.md §1 pitfall).
    """
    import torch
    import transformers

    from rmflow.train.trainable import merge_adapters

    accelerator, model = result["accelerator"], result["model"]
    if merge_adapters(accelerator.unwrap_model(model)):  # LoRA: the saved model is the merged plain one
        log.info("merged LoRA adapters into the weights")
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        with atomic_dir(out_dir) as tmp:
            accelerator.unwrap_model(model).save_pretrained(tmp, state_dict=state)
            tokenizer.save_pretrained(tmp)
            write_text(tmp / "rmflow_run.json", spec.to_json())
            write_json(tmp / "metrics.json", {
                **metrics,
                "method": spec.method, "base": spec.base, "method_version": spec.method_version,
                "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                             "python": platform.python_version()},
            })
            write_text(tmp / "train_log.jsonl", "".join(json.dumps(r) + "\n" for r in result["history"]))
        log.info("saved %s", out_dir)
    accelerator.wait_for_everyone()
