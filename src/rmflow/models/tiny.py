"""Build a tiny causal LM and its byte-level BPE tokenizer from config, saved in standard HF layout.

The tokenizer is trained on the synthetic corpus so a 1-5 M parameter model sees short sequences; it has a chat
template, a BOS, an end-of-turn token and its own pad token (never the EOS, see methods-detail.md §1 pitfall a).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)

SPECIALS = {"pad_token": "<|pad|>", "bos_token": "<|bos|>", "eos_token": "<|end|>"}
ROLE_TOKENS = ["<|user|>", "<|assistant|>", "<|system|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
FAMILIES = ("llama", "gemma", "qwen2")


@dataclass(frozen=True)
class TinySpec:
    """Shape of a tiny base model."""

    family: str = "llama"
    vocab_size: int = 2048
    hidden_size: int = 64
    intermediate_size: int = 192
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    max_position_embeddings: int = 1024
    seed: int = 0


def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIALS.values()) + ROLE_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, **SPECIALS)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def model_config(spec: TinySpec, tokenizer):
    from transformers import GemmaConfig, LlamaConfig, Qwen2Config

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    if spec.family == "llama":
        return LlamaConfig(**common)
    if spec.family == "gemma":
        return GemmaConfig(head_dim=spec.hidden_size // spec.num_heads, **common)
    if spec.family == "qwen2":
        return Qwen2Config(**common)
    raise RmflowError(f"unknown tiny model family '{spec.family}' (known: {', '.join(FAMILIES)})", field="family")


def corpus_from_pairs(path: str) -> list[str]:
    """Every message text of a prepared standard-row parquet file (the tokenizer's training corpus)."""
    from rmflow.data.prepare import read_pairs

    return [m["content"] for row in read_pairs(path) for side in ("chosen", "rejected") for m in row[side]]


def build(spec: TinySpec, corpus: list[str], out_dir: str | Path) -> int:
    """Train the tokenizer, initialise the model with ``spec.seed`` and save both; return the parameter count."""
    import torch
    from transformers import AutoModelForCausalLM

    from rmflow.io import atomic_dir, write_json

    tokenizer = train_tokenizer(corpus, spec.vocab_size)
    torch.manual_seed(spec.seed)
    model = AutoModelForCausalLM.from_config(model_config(spec, tokenizer))
    n_params = sum(p.numel() for p in model.parameters())
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "rmflow_base.json", {"tiny_spec": spec.__dict__, "parameters": n_params})
    log.info("built %s base with %d parameters, vocab %d", spec.family, n_params, len(tokenizer))
    return n_params
