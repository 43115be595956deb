"""Building or loading a sequence-classification model and its tokenizer."""

from __future__ import annotations

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
)

from plasmidlm import PlasmidlmError
from plasmidlm.tokenize import build_kmer_tokenizer, model_text, n_tokens

BUILTIN = "builtin"
PRESETS = {
    "tiny": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64},
    "small": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 512},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
}
# Stored in every saved config.json so that evaluation and `predict` know how windows were fed.
METADATA_KEY = "plasmidlm"


def label_maps(classes: list[str]) -> dict:
    return {"id2label": dict(enumerate(classes)), "label2id": {c: i for i, c in enumerate(classes)}}


def build_builtin(preset: str, kmer: int, stride: int, window_length: int, classes: list[str], seed: int):
    """A freshly initialised BERT of the given size preset with a k-mer tokenizer."""
    if preset not in PRESETS:
        raise PlasmidlmError(f"config model.preset: unknown preset {preset!r} ({', '.join(PRESETS)})")
    if not kmer:
        raise PlasmidlmError("config model.kmer: the built-in model needs a k-mer size (1 = single nucleotides)")
    tokens = n_tokens(window_length, kmer, stride)
    max_positions = max(512, tokens)
    tokenizer = build_kmer_tokenizer(kmer, model_max_length=max_positions)
    config = BertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=len(classes),
        **PRESETS[preset],
        **label_maps(classes),
    )
    torch.manual_seed(seed)
    return BertForSequenceClassification(config), tokenizer


def load_pretrained(name_or_path: str, classes: list[str], trust_remote_code: bool):
    """A hub id or local HF directory, with a fresh classification head for `classes`."""
    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except ValueError as error:
        if "trust_remote_code" in str(error):
            raise PlasmidlmError(
                f"config model.name_or_path: {name_or_path} needs custom code; set "
                f"model.trust_remote_code: true if you trust it"
            ) from None
        raise
    except OSError as error:
        raise PlasmidlmError(f"config model.name_or_path: cannot load {name_or_path}: {error}") from None
    config.num_labels = len(classes)
    for key, value in label_maps(classes).items():
        setattr(config, key, value)
    model = AutoModelForSequenceClassification.from_pretrained(
        name_or_path, config=config, trust_remote_code=trust_remote_code, ignore_mismatched_sizes=True
    )
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    return model, tokenizer


def build_or_load(model_config: dict, window_length: int, classes: list[str], seed: int):
    """Model and tokenizer ready for fine-tuning, with the window metadata stored in the config."""
    kmer = model_config.get("kmer")
    stride = model_config.get("kmer_stride", 1)
    if model_config["name_or_path"] == BUILTIN:
        kmer = kmer or 6
        model, tokenizer = build_builtin(model_config["preset"], kmer, stride, window_length, classes, seed)
    else:
        torch.manual_seed(seed)  # the new classification head is initialised at random
        model, tokenizer = load_pretrained(model_config["name_or_path"], classes,
                                           model_config.get("trust_remote_code", False))
    sample = ("ACGT" * window_length)[:window_length]
    tokens = len(tokenizer(model_text(sample, kmer, stride))["input_ids"])
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and tokens > limit:
        raise PlasmidlmError(
            f"config windows.length: {window_length} nt gives {tokens} tokens, above the model's "
            f"maximum of {limit}"
        )
    setattr(model.config, METADATA_KEY, {"window_length": window_length, "kmer": kmer, "kmer_stride": stride})
    return model, tokenizer


def load_checkpoint(path, device: str | torch.device = "cpu"):
    """A trained classifier directory (checkpoint or copy): model in eval mode, tokenizer, metadata."""
    model = AutoModelForSequenceClassification.from_pretrained(path).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    metadata = getattr(model.config, METADATA_KEY, None) or {}
    return model, tokenizer, metadata
