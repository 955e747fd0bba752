"""Save a trained run as a standard Hugging Face directory (safetensors) plus rmflow's records."""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
from pathlib import Path

from rmflow.io import atomic_dir, write_json, write_text
from rmflow.spec import RunSpec

log = logging.getLogger(__name__)

# a module of this name on the trained model is used in training only (GRM's LM head): checkpoints keep it, so a
# resume continues it, and the saved model leaves it out, so it reloads as the plain architecture its config names
TRAINING_ONLY = "rmflow_training_only"


def save_run(result: dict, tokenizer, spec: RunSpec, out_dir: str, metrics: dict) -> None:
    """Write model, tokenizer, ``rmflow_run.json``, ``metrics.json`` and ``train_log.jsonl`` atomically.

    ``accelerator.get_state_dict`` gathers ZeRO-3 shards into full weights first, so the saved model is a normal
    loadable one (the original recipe's ZeRO-3 save was not; methods.md §1 pitfall).
    """
    import torch
    import transformers

    from rmflow.train.trainable import merge_adapters

    accelerator, model = result["accelerator"], result["model"]
    hub = hub_inputs(spec, metrics, getattr(accelerator.unwrap_model(model).config, "_commit_hash", None))
    spec, metrics = dataclasses.replace(spec, hub=hub), {**metrics, "hub": hub}
    if merge_adapters(accelerator.unwrap_model(model)):  # LoRA: the saved model is the merged plain one
        log.info("merged LoRA adapters into the weights")
    state = accelerator.get_state_dict(model)
    if state is not None:  # only the main process holds the gathered weights
        state = {k: v for k, v in state.items() if not k.startswith(f"{TRAINING_ONLY}.")}
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


def hub_inputs(spec: RunSpec, metrics: dict, model_commit: str | None = None) -> dict:
    """{role: {id, revision, commit}} of the run's hub inputs: the model it started from (the commit transformers
    loaded, else the one the reference resolves to) and its training data (from the prepare report)."""
    from rmflow.hub import hub_record

    hub = {}
    start = metrics.get("initialised_from") or spec.base_model
    base = hub_record(start, spec.revision, commit=model_commit)
    recorded = Path(start, "rmflow_run.json")
    if base is None and recorded.is_file():  # a model rmflow trained (an SSRM round's previous round): its hub base
        base = (json.loads(recorded.read_text(encoding="utf-8")).get("hub") or {}).get("base")
    if base:
        hub["base"] = base
    data = data_hub(metrics.get("train_data") or spec.train_data)
    if data:
        hub["train_data"] = data
    return hub


def data_hub(path: str | None, depth: int = 3) -> list | None:
    """The hub records of a prepared (or transformed) data file, read from its report: a transform's report names
    the prepared file it read, whose report names the hub data set."""
    if not path or depth == 0:
        return None
    report = Path(path).with_suffix(".report.json")
    if not report.is_file():
        return None
    content = json.loads(report.read_text(encoding="utf-8"))
    if content.get("hub"):
        return content["hub"]
    source = content.get("source")
    return data_hub(source, depth - 1) if isinstance(source, str) and source.endswith(".parquet") else None
