"""Peak memory per GPU, FLOPs and disk of one job, from its model's shape and its batches.

Memory = model states + activations + logits + a fixed allowance for the CUDA context, NCCL and the allocator.

* Model states under ZeRO-2/3 come from DeepSpeed's own estimators (``estimate_zero{2,3}_model_states_mem_needs``:
  16-bit weights, 16- and 32-bit gradients, 32-bit master weights and Adam moments; where DeepSpeed is not
  installed, the same formulas, pinned to DeepSpeed's by a test). Without DeepSpeed rmflow keeps fp32 weights,
  gradients and AdamW moments on every GPU (16 bytes a parameter) plus autocast's bf16 weight copies (2).
* Activations are counted per layer and token on the tensors transformers' decoder layers save for backward
  (:func:`layer_activation_bytes`; Korthikanti et al. 2022 count fewer for Megatron's fused kernels, and
  benchmarks/PLAN-CALIBRATION.md measured HF's modules above that). Gradient checkpointing keeps each layer's input
  and recomputes one layer at a time.
* An LM head's logits cost 10 bytes per vocabulary entry and position in training (16-bit logits, their fp32 copy
  for the loss, its gradient) and 6 in scoring; rmflow computes them only at the positions its losses read
  (``logits_to_keep``: the pair-PM's answer token, the PRM's step tags), which each method's SIZING counts.

FLOPs: 2 per multiplied parameter and token forward (6 with backward) plus attention's products; the plan divides
them by the GPUs' peak times a model-FLOPs utilisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from rmflow.sizing.shapes import ModelShape

GB = 1e9
CONTEXT_BYTES = 2 * GB  # CUDA context, NCCL buffers, allocator slack
ATTENTION_KEEPS_SCORES = ("eager",)


@dataclass(frozen=True)
class Setup:
    """How a job holds its model: DeepSpeed stage (0: none), offload, GPUs, precision, attention."""

    gpus: int = 1  # per node
    nodes: int = 1
    zero_stage: int = 0
    offload_optimizer: bool = False
    offload_params: bool = False
    bf16: bool = True
    gradient_checkpointing: bool = False
    attention: str = "sdpa"


def _deepspeed_zero2(params: int, gpus: int, nodes: int, offload: bool) -> int:
    try:
        from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs
    except Exception:  # not installed here (the submitting host may lack it): the same formula
        total = gpus * nodes
        return 2 * params if offload else 2 * params + int(18 * params / total)
    return estimate_zero2_model_states_mem_needs(params, gpus, nodes, cpu_offload=offload)[1]


def _deepspeed_zero3(params: int, largest: int, gpus: int, nodes: int, offload: bool, offload_params: bool) -> int:
    try:
        from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    except Exception:
        total, layer = gpus * nodes, 4 * largest
        if offload:
            return layer if offload_params else layer + int(2 * params / total)
        return layer + int(18 * params / total)
    return estimate_zero3_model_states_mem_needs(params, largest, gpus, nodes, cpu_offload=offload,
                                                 cpu_offload_params=offload_params, zero_init=True)[1]


def model_states_bytes(shape: ModelShape, head: str, setup: Setup) -> int:
    params = shape.params(head)
    if setup.zero_stage >= 3:
        return _deepspeed_zero3(params, shape.largest_layer_params(), setup.gpus, setup.nodes,
                                setup.offload_optimizer, setup.offload_params)
    if setup.zero_stage in (1, 2):  # stage 1 also shards only optimizer states; the stage-2 figure bounds it
        return _deepspeed_zero2(params, setup.gpus, setup.nodes, setup.offload_optimizer)
    return (18 if setup.bf16 else 16) * params


def layer_activation_bytes(shape: ModelShape, tokens: int, seq_len: int, attention: str, element: int = 2) -> int:
    """One decoder layer's saved activations for ``tokens`` tokens in sequences of ``seq_len``, counted on
    transformers' own modules (Llama, Mistral, Gemma): each norm's input and output (2h, twice), the q/k/v outputs
    (h + 2 kv d), rotary's inputs and outputs (2h + 2 kv d), the K/V copies repeated to every head (2h), the
    attention output and its reshaped copy (2h), and the MLP's gate, up, activation and product (4i; 2i ungated).
    Eager attention also keeps the score matrix and its softmax (2 a s). ``element``: bytes per value."""
    h, kv = shape.hidden, shape.kv_heads * shape.head_dim
    values = 11 * h + 4 * kv + (4 if shape.gated else 2) * shape.intermediate
    if attention in ATTENTION_KEEPS_SCORES:
        values += 2 * shape.heads * seq_len
    return tokens * values * element


def train_memory(shape: ModelShape, head: str, setup: Setup, batch_texts: int, seq_len: int,
                 logit_positions: float = 0) -> dict:
    """Peak bytes per GPU of one training micro-step, by part (``logit_positions``: LM-head logits per text)."""
    tokens = batch_texts * seq_len
    element = 2 if setup.bf16 else 4
    layer = layer_activation_bytes(shape, tokens, seq_len, setup.attention, element)
    if setup.gradient_checkpointing:
        activations = shape.layers * tokens * shape.hidden * element + layer
    else:
        activations = shape.layers * layer
    logits = int(batch_texts * logit_positions * shape.vocab * 10)
    # torch's foreach AdamW (rmflow's optimizer without DeepSpeed) allocates two fp32 temporaries the size of the
    # parameters during the step, after the activations are freed: the peak is whichever is larger. DeepSpeed
    # steps its own partitioned optimizer (not counted).
    step = 0 if setup.zero_stage else 8 * shape.params(head)
    parts = {"model_states": model_states_bytes(shape, head, setup), "activations": activations, "logits": logits,
             "optimizer_step": max(0, step - activations - logits), "context": CONTEXT_BYTES}
    return {**parts, "total": sum(parts.values())}


def inference_memory(shape: ModelShape, head: str, batch_tokens: int, seq_len: int, attention: str,
                     bf16: bool = True, logit_positions: float = 0) -> dict:
    """Peak bytes of scoring or embedding one batch of ``batch_tokens`` padded tokens (no gradients kept): the
    weights, one layer's working set and the LM-head logits kept (``logit_positions`` per text)."""
    element = 2 if bf16 else 4
    h, i = shape.hidden, shape.intermediate
    working = batch_tokens * (4 * h + 3 * i) * element
    if attention in ATTENTION_KEEPS_SCORES:
        working += batch_tokens * 2 * shape.heads * seq_len * element
    logits = int(batch_tokens / max(seq_len, 1) * max(logit_positions, 0) * shape.vocab * 6)
    parts = {"weights": shape.params(head) * element, "activations": working, "logits": logits,
             "context": CONTEXT_BYTES}
    return {**parts, "total": sum(parts.values())}


def flops_per_token(shape: ModelShape, head: str, seq_len: float, train: bool) -> float:
    """Model FLOPs per token (forward, or forward and backward): 2 per parameter a token is multiplied by (every
    parameter but the input embedding, a lookup; a tied LM head multiplies by it once more) plus attention's score
    and value products over the causal half of the sequence."""
    embedding = shape.vocab * shape.hidden
    multiplied = shape.params(head) - embedding + (embedding if head == "lm" and shape.tied else 0)
    attention = 2 * 2 * shape.layers * seq_len * shape.heads * shape.head_dim / 2
    forward = 2 * multiplied + attention
    return 3 * forward if train else forward


def checkpoint_bytes(shape: ModelShape, head: str, zero_stage: int) -> int:
    """One resumable checkpoint: 16-bit weights, fp32 master weights and Adam moments under DeepSpeed (14 bytes a
    parameter); fp32 weights and AdamW moments without it (12)."""
    return (14 if zero_stage else 12) * shape.params(head)


def model_bytes(shape: ModelShape, head: str, element: int = 4) -> int:
    """A saved model (rmflow saves the fp32 master weights) or a cached hub checkpoint (16-bit: element 2)."""
    return element * shape.params(head)
