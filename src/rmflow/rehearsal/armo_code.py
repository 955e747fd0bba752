"""The modelling file of the ArmoRM stand-in (``modeling_custom.py`` in RLHFlow/ArmoRM-Llama3-8B-v0.1), written
into its repository from the recorded facts of the released file (rmflow/rehearsal/facts/, whose ArmoRM entry
gives each fact's source): the same imports, ``LLAMA_INPUTS_DOCSTRING`` and the decorator it feeds included, so
loading the stand-in through ``trust_remote_code`` fails under transformers 5 exactly as the real repository does;
the same ``GatingNetwork`` (three Linear+ReLU layers, Linear with bias, ``softmax(x / temperature)`` times a learned
``logit_scale``), ``regression_layer``, frozen ``reward_transform_matrix``, gate position (the start of the last
occurrence of the token pattern) and reward position (the last non-pad token).

The one difference: the released file hard-codes the pattern's Llama-3 ids [128009, 128006, 78191, 128007, 271];
the stand-in's vocabulary is smaller, so its own ids of the same text are written in their place
(``modeling_file``).
"""

TOKEN_PATTERN_MARK = "TOKEN_PATTERN_IDS"

MODELING_CUSTOM = '''
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import LlamaModel, LlamaPreTrainedModel
from transformers.models.llama.modeling_llama import LLAMA_INPUTS_DOCSTRING
from transformers.utils import ModelOutput, add_start_docstrings_to_model_forward


class GatingNetwork(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, temperature: float = 10,
                 logit_scale: float = 1., hidden_dim: int = 1024, n_hidden: int = 3, dropout: float = 0.0):
        super().__init__()
        self.temperature = temperature
        self.logit_scale = nn.Parameter(torch.ones(1) * logit_scale)
        self.dropout_prob = dropout
        layers = []
        for _ in range(n_hidden):
            layers.append(nn.Linear(in_features, hidden_dim))
            in_features = hidden_dim
        layers.append(nn.Linear(in_features, out_features, bias=bias))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
                if self.dropout_prob > 0:
                    x = F.dropout(x, p=self.dropout_prob, training=self.training)
        x = F.softmax(x / self.temperature, dim=1)
        return x * self.logit_scale[0]


token_pattern = TOKEN_PATTERN_IDS


def find_token_for_gating(lst, ):
    token_pattern_len = len(token_pattern)
    search_end = len(lst)
    for j in range(search_end - token_pattern_len, -1, -1):
        if lst[j:j + token_pattern_len] == token_pattern:
            return j
    raise ValueError("Token pattern not found in the list.")


@dataclass
class CustomOutput(ModelOutput):
    rewards: torch.FloatTensor = None
    hidden_state: Optional[Tuple[torch.FloatTensor, ...]] = None
    prompt_embedding: Optional[torch.FloatTensor] = None
    gating_output: Optional[torch.FloatTensor] = None
    score: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None


class LlamaForRewardModelWithGating(LlamaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = LlamaModel(config)
        config_dict = config.to_dict()
        self.num_objectives = config_dict.get("num_objectives", 19)
        self.regression_layer = nn.Linear(config.hidden_size, self.num_objectives, bias=False)
        self.post_init()
        self.reward_transform_matrix = nn.Parameter(torch.zeros(self.num_objectives, self.num_objectives),
                                                    requires_grad=False)
        self.gating = GatingNetwork(config.hidden_size, config.num_objectives,
                                    temperature=config_dict.get("gating_temperature", 10),
                                    hidden_dim=config_dict.get("gating_hidden_dim", 1024),
                                    n_hidden=config_dict.get("gating_n_hidden", 3))

    @add_start_docstrings_to_model_forward(LLAMA_INPUTS_DOCSTRING)
    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        transformer_outputs = self.model(input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                         past_key_values=past_key_values, inputs_embeds=inputs_embeds)
        tokens_hidden_states = transformer_outputs[0]
        if input_ids is not None:
            batch_size = input_ids.shape[0]
        else:
            batch_size = inputs_embeds.shape[0]
        if self.config.pad_token_id is None and batch_size != 1:
            raise ValueError("Cannot handle batch sizes > 1 if no padding token is defined.")
        if self.config.pad_token_id is None:
            sequence_lengths = -1
        else:
            if input_ids is not None:
                sequence_lengths = torch.eq(input_ids, self.config.pad_token_id).int().argmax(-1) - 1
                sequence_lengths = sequence_lengths % input_ids.shape[-1]
                sequence_lengths = sequence_lengths.to(tokens_hidden_states.device)
            else:
                sequence_lengths = -1
        dummy_iterator = torch.arange(batch_size, device=tokens_hidden_states.device)
        hidden_states = tokens_hidden_states[dummy_iterator, sequence_lengths]
        assert hidden_states.shape == (batch_size, self.config.hidden_size)
        rewards = self.regression_layer(hidden_states)
        gating_token_positions = [find_token_for_gating(ids.tolist()) for ids in input_ids]
        prompt_embedding = tokens_hidden_states[dummy_iterator, gating_token_positions, :]
        gating_output = self.gating(prompt_embedding)
        rewards_adjusted = rewards @ self.reward_transform_matrix
        score = torch.sum(gating_output * rewards_adjusted, dim=1)
        return CustomOutput(rewards=rewards, hidden_state=hidden_states, prompt_embedding=prompt_embedding,
                            gating_output=gating_output, score=score, logits=score)
'''


def modeling_file(pattern_ids: list[int]) -> str:
    """The stand-in's modeling_custom.py: the released structure with the stand-in vocabulary's pattern ids."""
    return MODELING_CUSTOM.lstrip().replace(TOKEN_PATTERN_MARK, repr(list(pattern_ids)))
