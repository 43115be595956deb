"""Configuration of the DNABERT-2/GENA-LM stand-in: a BERT-like encoder shipped as custom code."""

from transformers import PretrainedConfig


class FusedBertConfig(PretrainedConfig):
    model_type = "MODEL_TYPE"  # replaced when the stand-in is written: "bert" (as DNABERT-2) or an unknown type

    def __init__(self, vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, hidden_dropout_prob=0.1, initializer_range=0.02, pad_token_id=0, **kwargs):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.initializer_range = initializer_range
