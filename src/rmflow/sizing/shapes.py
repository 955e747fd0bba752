"""The few numbers of a model that decide its memory and FLOPs, read from its ``config.json`` without any weights.

Where a model's ``config.json`` can be read (a local directory, the Hugging Face cache; never a download) it is
used; otherwise the shipped fact sheet (``facts.yaml``, copied from each paper repository's ``config.json``) stands
in, and the plan says which one it used.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

# MLPs with one projection in and one out (BERT, GPT-2); every other family here gates (gate, up, down)
UNGATED = {"bert", "roberta", "distilbert", "gpt2", "opt", "xlm-roberta"}


@dataclass(frozen=True)
class ModelShape:
    family: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool = True
    head: str = "lm"  # lm | classifier: what the checkpoint carries on top of its transformer
    source: str = ""  # where these numbers were read

    @property
    def gated(self) -> bool:
        return self.family not in UNGATED

    def layer_params(self) -> int:
        attention = self.hidden * self.heads * self.head_dim * 2 + self.hidden * self.kv_heads * self.head_dim * 2
        mlp = (3 if self.gated else 2) * self.hidden * self.intermediate
        norms = (4 if self.family == "gemma2" else 2) * self.hidden
        return attention + mlp + norms

    def params(self, head: str | None = None) -> int:
        """Parameters with ``head`` on top: lm (an untied LM head adds vocab x hidden) or classifier (a score row)."""
        head = head or self.head
        embed = self.vocab * self.hidden
        top = (0 if self.tied else embed) if head == "lm" else self.hidden
        return self.layers * self.layer_params() + embed + top + self.hidden

    def largest_layer_params(self) -> int:
        """The largest single module, which ZeRO-3 gathers whole (the embedding, for every model here)."""
        return max(self.vocab * self.hidden, self.layer_params())


@functools.lru_cache(maxsize=1)
def facts() -> dict:
    return yaml.safe_load((Path(__file__).parent / "facts.yaml").read_text(encoding="utf-8"))


def from_config_json(config: dict, source: str) -> ModelShape:
    """A shape from a transformers ``config.json`` (text configs nested under ``text_config`` included)."""
    config = config.get("text_config") or config
    kind = config.get("model_type", "")
    hidden = config.get("hidden_size") or config.get("n_embd")
    heads = config.get("num_attention_heads") or config.get("n_head")
    architectures = " ".join(config.get("architectures") or [])
    head = "lm" if "CausalLM" in architectures or "LMHead" in architectures or not architectures else "classifier"
    return ModelShape(
        family=kind, layers=config.get("num_hidden_layers") or config.get("n_layer"), hidden=hidden,
        intermediate=config.get("intermediate_size") or config.get("n_inner") or 4 * hidden, heads=heads,
        kv_heads=config.get("num_key_value_heads") or heads, head_dim=config.get("head_dim") or hidden // heads,
        vocab=config.get("vocab_size"), tied=bool(config.get("tie_word_embeddings", True)), head=head,
        source=source)


def cached_config(ref: str, revision: str | None) -> Path | None:
    """``config.json`` of a hub id from the Hugging Face cache (no network)."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(ref, "config.json", revision=revision, local_files_only=True))
    except Exception:  # not cached, or not a repository id at all: the fact sheet is asked next
        return None


def shape_of(ref: str, revision: str | None = None) -> ModelShape | None:
    """The model's shape, or None where neither its config.json nor the fact sheet knows it."""
    local = Path(os.path.expanduser(ref))
    found = local / "config.json" if (local / "config.json").is_file() else None
    where = f"{ref}/config.json"
    if found is None and not local.exists():
        found = cached_config(ref, revision)
        where = f"config.json of {ref} in the Hugging Face cache"
    if found is not None:
        try:
            return from_config_json(json.loads(found.read_text(encoding="utf-8")), where)
        except (OSError, ValueError, TypeError, KeyError):
            return None
    from rmflow import hub_facts

    recorded = hub_facts.config_json(ref)
    if recorded:
        return from_config_json(recorded, f"the recorded config.json of {ref} (rmflow.hub_facts)")
    return None
