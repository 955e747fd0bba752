"""Which parameters train: everything (the recipes), only the top k transformer layers plus the head, and/or LoRA
adapters (``peft``), as users of TRL and OpenRLHF expect on small hardware.

``train_layers: k`` freezes the embeddings and every layer below the top k; the final norm and the head (the score
head of a sequence classifier; a causal LM's output layer unless it is tied to the input embeddings) keep training.
``lora_r > 0`` injects LoRA adapters into the linear layers of the (top k, if set) transformer layers and trains
only them and the head; before saving they are merged into the weights, so the saved model is a plain Hugging Face
model in the standard layout that loads without peft.
"""

from __future__ import annotations

import logging

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)


def layer_stack(model):
    """The ModuleList of transformer layers and the module that holds it (LlamaModel, Gemma3TextModel, ...)."""
    import torch

    backbone = getattr(model, model.base_model_prefix, model)
    n = getattr(model.config, "num_hidden_layers", None)
    for name, child in backbone.named_children():
        if isinstance(child, torch.nn.ModuleList) and (n is None or len(child) == n):
            return backbone, name, child
    raise RmflowError(f"cannot find the transformer layers of {type(model).__name__} to freeze or adapt")


def head_modules(model) -> list:
    """The output head: ``score`` of a sequence classifier; a causal LM's output layer when it is not tied to the
    input embeddings (training a tied one would train the embeddings too)."""
    if hasattr(model, "score"):
        return [model.score]
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is model.get_input_embeddings().weight
    return [] if out is None or tied else [out]


def prepare_trainable(model, config) -> dict:
    """Freeze and/or add adapters as ``config`` (TrainConfig) asks; return a summary for metrics.json."""
    if config.train_layers is None and not config.lora_r:
        return {"trained": "all", "parameters_trained": sum(p.numel() for p in model.parameters())}
    backbone, stack_name, layers = layer_stack(model)
    k = len(layers) if config.train_layers is None else config.train_layers
    if not 1 <= k <= len(layers):
        raise RmflowError(f"train_layers must lie in 1..{len(layers)} for this model, not {k}",
                          field="train.train_layers")
    top = list(range(len(layers) - k, len(layers)))
    for p in model.parameters():
        p.requires_grad_(False)
    trainable = [*head_modules(model)]
    norm = getattr(backbone, "norm", None)
    if norm is not None:
        trainable.append(norm)
    if config.lora_r:
        _inject_lora(model, stack_name, top, config)
    else:
        trainable += [layers[i] for i in top]
    for module in trainable:
        for p in module.parameters():
            p.requires_grad_(True)
    if config.lora_r:
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.requires_grad_(True)
    if config.gradient_checkpointing:  # frozen embeddings: checkpointed blocks still need inputs that want grads
        model.enable_input_require_grads()
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    summary = {"trained": f"top {k} of {len(layers)} layers" + (f" via LoRA r={config.lora_r}" if config.lora_r
                                                                   else "") + " + head",
               "parameters_trained": trained, "parameters_total": total}
    log.info("training %s: %d of %d parameters", summary["trained"], trained, total)
    return summary


def _inject_lora(model, stack_name: str, top: list[int], config) -> None:
    import torch

    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError as exc:
        raise RmflowError("train.lora_r needs the 'peft' package: pip install peft") from exc
    prefix = f"{model.base_model_prefix}.{stack_name}."
    targets = sorted({name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)
                      and name.startswith(prefix) and int(name[len(prefix):].split(".")[0]) in top})
    if not targets:
        raise RmflowError("no linear layer to put LoRA adapters on", field="train.lora_r")
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, bias="none")
    inject_adapter_in_model(lora, model)


def merge_adapters(model) -> int:
    """Fold every LoRA adapter into its base weight and put the plain layer back; return how many were merged."""
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:
        return 0
    merged = 0
    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, module.get_base_layer())
            merged += 1
    return merged
