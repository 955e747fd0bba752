"""RLHFlow's released ArmoRM architecture, written in rmflow so its checkpoint loads without its own code.

The released repository (``RLHFlow/ArmoRM-Llama3-8B-v0.1``) ships ``modeling_custom.py``, whose imports
(``LLAMA_INPUTS_DOCSTRING`` among them) no longer exist in transformers 5: loading it with ``trust_remote_code``
fails before any weight is read. This module restates what that file computes (the facts are recorded with their
source in ``rmflow/rehearsal/facts/RLHFlow--ArmoRM-Llama3-8B-v0.1.yaml``) on transformers' own ``LlamaModel``:

- ``regression_layer``: Linear(hidden, num_objectives, bias=False), read at the last non-pad token
  (``argmax(input_ids == pad) - 1``, modulo the length: the last token of an unpadded row);
- ``gating``: ``gating_n_hidden`` Linear+ReLU layers of ``gating_hidden_dim``, then Linear(→ num_objectives, bias),
  ``softmax(x / gating_temperature)`` times the learned scalar ``logit_scale``, read at the start of the **last**
  occurrence of ``<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n`` (the released file hard-codes the
  pattern's Llama-3 ids [128009, 128006, 78191, 128007, 271]; here they come from the model's own tokenizer);
- a frozen ``reward_transform_matrix`` (num_objectives × num_objectives);
- ``score = sum(gating_output * (rewards @ reward_transform_matrix), dim=1)``, also returned as ``logits``.

The module names are the released ones, so ``from_pretrained`` maps the checkpoint's safetensors onto them as they
are. Scored by ``rmflow.models.custom_forward.CustomForwardScorer`` (reward ``score``, per-objective ``rewards``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import LlamaModel, LlamaPreTrainedModel
from transformers.utils import ModelOutput

from rmflow.errors import RmflowError

GATE_PATTERN_TEXT = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
RELEASED_GATE_IDS = (128009, 128006, 78191, 128007, 271)  # the released file's token_pattern (Llama-3 ids)
CONFIG_KEYS = ("num_objectives", "gating_temperature", "gating_hidden_dim", "gating_n_hidden")


@dataclass
class ArmoOutput(ModelOutput):
    rewards: torch.FloatTensor | None = None
    hidden_state: torch.FloatTensor | None = None
    prompt_embedding: torch.FloatTensor | None = None
    gating_output: torch.FloatTensor | None = None
    score: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None


class GatingNetwork(nn.Module):
    def __init__(self, in_features: int, out_features: int, temperature: float = 10, logit_scale: float = 1.0,
                 hidden_dim: int = 1024, n_hidden: int = 3):
        super().__init__()
        self.temperature = temperature
        self.logit_scale = nn.Parameter(torch.ones(1) * logit_scale)
        layers = []
        for _ in range(n_hidden):
            layers.append(nn.Linear(in_features, hidden_dim))
            in_features = hidden_dim
        layers.append(nn.Linear(in_features, out_features, bias=True))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return torch.softmax(x / self.temperature, dim=1) * self.logit_scale[0]


def last_occurrence(ids: list[int], pattern: list[int]) -> int:
    """Where the last occurrence of ``pattern`` starts in ``ids`` (the released find_token_for_gating)."""
    for j in range(len(ids) - len(pattern), -1, -1):
        if ids[j:j + len(pattern)] == pattern:
            return j
    raise RmflowError(f"the gate's token pattern {pattern} ({GATE_PATTERN_TEXT!r}) does not occur in a scored "
                      "sequence: ArmoRM reads its gate at the assistant header of a Llama-3 chat template; was the "
                      "text truncated into the answer, or rendered with another template?", field="scorer")


class ArmoRewardModel(LlamaPreTrainedModel):
    """The released ``LlamaForRewardModelWithGating``, forward for forward."""

    def __init__(self, config, gate_pattern: list[int] | None = None):
        super().__init__(config)
        missing = [key for key in CONFIG_KEYS if not hasattr(config, key)]
        if missing:
            raise RmflowError(f"config.json lacks {', '.join(missing)}: not an ArmoRM checkpoint", field="scorer")
        self.model = LlamaModel(config)
        self.num_objectives = config.num_objectives
        self.regression_layer = nn.Linear(config.hidden_size, config.num_objectives, bias=False)
        self.gating = GatingNetwork(config.hidden_size, config.num_objectives, temperature=config.gating_temperature,
                                    hidden_dim=config.gating_hidden_dim, n_hidden=config.gating_n_hidden)
        self.reward_transform_matrix = nn.Parameter(torch.zeros(config.num_objectives, config.num_objectives),
                                                    requires_grad=False)
        self.gate_pattern = list(gate_pattern or RELEASED_GATE_IDS)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(input_ids.shape[0], device=hidden.device)
        if self.config.pad_token_id is None:
            last = torch.full_like(rows, input_ids.shape[-1] - 1)
        else:
            last = torch.eq(input_ids, self.config.pad_token_id).int().argmax(-1) - 1
            last = last % input_ids.shape[-1]
        hidden_state = hidden[rows, last]
        rewards = self.regression_layer(hidden_state)
        positions = [last_occurrence(ids.tolist(), self.gate_pattern) for ids in input_ids]
        prompt_embedding = hidden[rows, positions, :]
        gating_output = self.gating(prompt_embedding)
        score = torch.sum(gating_output * (rewards @ self.reward_transform_matrix), dim=1)
        return ArmoOutput(rewards=rewards, hidden_state=hidden_state, prompt_embedding=prompt_embedding,
                          gating_output=gating_output, score=score, logits=score)


def gate_pattern(tokenizer) -> list[int]:
    """The gate's pattern in this tokenizer's ids (the released ids for Llama-3's own tokenizer)."""
    return tokenizer.encode(GATE_PATTERN_TEXT, add_special_tokens=False)
