"""The modelling file of the ArmoRM stand-in (``modeling_custom.py`` in RLHFlow/ArmoRM-Llama3-8B-v0.1), written
into its repository. It follows the released file's structure: a Llama backbone, a bias-free regression layer giving
19 objective rewards at the last token, a gating MLP over the hidden state at the start of the last
``<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n`` pattern, ``score`` = gated sum of the
transformed rewards. The released file hard-codes the pattern's Llama-3 token ids; the stand-in's vocabulary is
smaller, so the pattern is read from config.json (``gating_token_pattern``)."""

MODELING_CUSTOM = '''
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from transformers import LlamaModel, LlamaPreTrainedModel
from transformers.utils import ModelOutput


@dataclass
class CustomOutput(ModelOutput):
    rewards: Optional[torch.FloatTensor] = None
    hidden_state: Optional[torch.FloatTensor] = None
    prompt_embedding: Optional[torch.FloatTensor] = None
    gating_output: Optional[torch.FloatTensor] = None
    score: Optional[torch.FloatTensor] = None


class GatingNetwork(nn.Module):
    def __init__(self, in_features, out_features, bias=True, temperature=10, hidden_dim=1024, n_hidden=3):
        super().__init__()
        self.temperature = temperature
        layers = []
        for _ in range(n_hidden):
            layers.append(nn.Linear(in_features, hidden_dim))
            in_features = hidden_dim
        layers.append(nn.Linear(in_features, out_features, bias=bias))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return torch.softmax(x / self.temperature, dim=1)


def find_token_for_gating(ids, pattern):
    for j in range(len(ids) - len(pattern), -1, -1):
        if ids[j:j + len(pattern)] == pattern:
            return j
    raise ValueError("Token pattern not found in the list.")


class LlamaForRewardModelWithGating(LlamaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.num_objectives = config.num_objectives
        self.regression_layer = nn.Linear(config.hidden_size, config.num_objectives, bias=False)
        self.gating = GatingNetwork(config.hidden_size, config.num_objectives,
                                    temperature=config.gating_temperature, hidden_dim=config.gating_hidden_dim,
                                    n_hidden=config.gating_n_hidden)
        self.reward_transform_matrix = nn.Parameter(torch.eye(config.num_objectives), requires_grad=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(input_ids.shape[0], device=hidden.device)
        if self.config.pad_token_id is None:
            last = torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, device=hidden.device)
        else:
            last = torch.eq(input_ids, self.config.pad_token_id).int().argmax(-1) - 1
            last = last % input_ids.shape[-1]
        hidden_state = hidden[rows, last]
        rewards = self.regression_layer(hidden_state)
        positions = [find_token_for_gating(ids.tolist(), list(self.config.gating_token_pattern)) for ids in input_ids]
        prompt_embedding = hidden[rows, positions]
        gating_output = self.gating(prompt_embedding)
        score = torch.sum(gating_output * (rewards @ self.reward_transform_matrix), dim=1, keepdim=True)
        return CustomOutput(rewards=rewards, hidden_state=hidden_state, prompt_embedding=prompt_embedding,
                            gating_output=gating_output, score=score)
'''
