"""Building or loading a sequence-classification model and its tokenizer."""

from __future__ import annotations

import copy
import sys

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
# peft's name for every linear layer except the output layer: the LoRA targets where peft has no default.
ALL_LINEAR = "all-linear"


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
    """Model and tokenizer ready for fine-tuning, with the window metadata stored in the config.

    With `lora.enabled`, the model is a peft model with LoRA adapters (see `add_lora`).
    """
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
    lora = model_config.get("lora") or {}
    if lora.get("enabled"):
        model = add_lora(model, lora)
    return model, tokenizer


# --- LoRA ---------------------------------------------------------------------------------------------


def import_peft():
    """peft, needed only with LoRA, so it is imported only then."""
    try:
        import peft
    except ImportError:
        raise PlasmidlmError("config model.lora.enabled: LoRA needs the peft package: pip install peft") from None
    return peft


def default_lora_targets(model) -> list[str] | str:
    """peft's LoRA modules for the architecture where the model has them, else every linear layer but the head.

    Models with custom code can share a model type with a built-in one but name their layers otherwise
    (DNABERT-2 is "bert" with a fused `Wqkv`).
    """
    defaults = import_peft().utils.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    targets = defaults.get(model.config.model_type, [])
    module_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return list(targets) if targets and set(targets) <= module_names else ALL_LINEAR


def add_lora(model, lora: dict):
    """`model` with LoRA adapters; only they and the classification head (peft's SEQ_CLS `modules_to_save`) train."""
    peft = import_peft()
    config = peft.LoraConfig(
        task_type=peft.TaskType.SEQ_CLS,
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=lora["target_modules"] or default_lora_targets(model),
    )
    try:
        return peft.get_peft_model(model, config)
    except ValueError as error:
        raise PlasmidlmError(f"config model.lora.target_modules: {error}") from None


def lora_description(lora_model) -> str:
    """The adapters' settings and layers, for the log."""
    config = lora_model.peft_config[lora_model.active_adapter]
    targets = config.target_modules  # peft resolves a list or "all-linear" to a set of names; a regex stays as is
    layers = targets if isinstance(targets, str) else ", ".join(sorted(targets))
    return f"LoRA (r={config.r}, alpha={config.lora_alpha}) on {layers} and the classification head"


def is_lora_model(model) -> bool:
    """Whether `model` is a peft model. peft need not be imported for the check: without it, no model is one."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def merged_model(lora_model):
    """A plain transformers model with the adapters merged into the weights; `lora_model` stays as it is.

    A copy rather than merging in place and unmerging, which would change the frozen weights by rounding
    and so break exact resuming. It briefly holds the weights twice.
    """
    return copy.deepcopy(lora_model).merge_and_unload()


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters."""
    parameters = list(model.parameters())
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)


def load_checkpoint(path, device: str | torch.device = "cpu"):
    """A trained classifier directory (checkpoint or copy): model in eval mode, tokenizer, metadata."""
    model = AutoModelForSequenceClassification.from_pretrained(path).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    metadata = getattr(model.config, METADATA_KEY, None) or {}
    return model, tokenizer, metadata
