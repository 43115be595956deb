"""The DNABERT-2/GENA-LM stand-in: fused query/key/value (`Wqkv`), ALiBi-style distance bias instead of
position embeddings, and a base model that returns a plain tuple (last hidden state, pooled output)."""

import math

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_fusedbert import FusedBertConfig


def distance_bias(n_heads: int, length: int, device) -> torch.Tensor:
    slopes = torch.tensor([2 ** (-8 * (head + 1) / n_heads) for head in range(n_heads)], device=device)
    positions = torch.arange(length, device=device)
    distance = (positions[None, :] - positions[:, None]).abs()
    return -slopes[:, None, None] * distance[None]


class FusedAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden, bias):
        batch, length, width = hidden.shape
        query, key, value = (self.Wqkv(hidden).view(batch, length, 3, self.heads, width // self.heads)
                             .permute(2, 0, 3, 1, 4))
        attended = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=bias)
        return self.output(attended.transpose(1, 2).reshape(batch, length, width))


class FusedLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention = FusedAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size)
        self.mlp = nn.Sequential(nn.Linear(config.hidden_size, config.intermediate_size), nn.GELU(),
                                 nn.Linear(config.intermediate_size, config.hidden_size))
        self.mlp_norm = nn.LayerNorm(config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden, bias):
        hidden = self.attention_norm(hidden + self.dropout(self.attention(hidden, bias)))
        return self.mlp_norm(hidden + self.dropout(self.mlp(hidden)))


class FusedBertPreTrainedModel(PreTrainedModel):
    config_class = FusedBertConfig
    base_model_prefix = "bert"

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class FusedBertModel(FusedBertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.embedding_norm = nn.LayerNorm(config.hidden_size)
        self.layers = nn.ModuleList(FusedLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, value):
        self.embeddings = value

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.embedding_norm(self.embeddings(input_ids))
        bias = distance_bias(self.config.num_attention_heads, input_ids.shape[1], input_ids.device)
        bias = bias[None].masked_fill(attention_mask[:, None, None, :] == 0, -math.inf).to(hidden.dtype)
        for layer in self.layers:
            hidden = layer(hidden, bias)
        return hidden, torch.tanh(self.pooler(hidden[:, 0]))


class FusedBertForSequenceClassification(FusedBertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = FusedBertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, return_dict=None, **kwargs):
        _, pooled = self.bert(input_ids, attention_mask=attention_mask)
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)
