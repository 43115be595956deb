"""Building or loading a sequence-classification model and its tokenizer."""

from __future__ import annotations

import logging
import copy
import inspect
import math
import sys

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
)

from plasmidlm import PlasmidlmError, versions
from plasmidlm.tokenize import build_kmer_tokenizer, n_tokens, token_ids

logger = logging.getLogger(__name__)

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
# Model types whose position ids start after the padding index (RoBERTa-style): usable positions are fewer.
POSITIONS_AFTER_PADDING = {"esm", "roberta", "xlm-roberta", "camembert"}
# Inputs the pipeline can feed; a model gets those its forward accepts (token_type_ids are never needed).
MODEL_INPUTS = ("input_ids", "attention_mask")
# Training windows tokenized to check the input format and the length limit before training.
CHECK_SAMPLE = 2000
# Headroom above the longest sampled window when token counts vary (BPE): unsampled windows may be longer.
LENGTH_MARGIN = 0.05


def label_maps(classes: list[str]) -> dict:
    return {"id2label": dict(enumerate(classes)), "label2id": {c: i for i, c in enumerate(classes)}}


# Positions of the built-in BERT: BERT's usual 512, or one per token of a window that has more.
MIN_POSITIONS = 512


def builtin_config(preset: str, kmer: int, stride: int, window_length: int, **settings):
    """The BERT config of a size preset (plus `settings`, e.g. the labels) for windows of `window_length` nt as
    k-mer tokens, and the k-mer tokenizer: of fine-tuning's built-in model and of masked-LM pretraining."""
    max_positions = max(MIN_POSITIONS, n_tokens(window_length, kmer, stride))
    tokenizer = build_kmer_tokenizer(kmer, model_max_length=max_positions)
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=max_positions,
                        pad_token_id=tokenizer.pad_token_id, **PRESETS[preset], **settings)
    return config, tokenizer


def build_builtin(preset: str, *, kmer: int, stride: int, window_length: int, classes: list[str], seed: int):
    """A freshly initialised BERT of the given size preset with a k-mer tokenizer."""
    if preset not in PRESETS:
        raise PlasmidlmError(f"config model.preset: unknown preset {preset!r} ({', '.join(PRESETS)})")
    if not kmer:
        raise PlasmidlmError("config model.kmer: the built-in model needs a k-mer size (1 = single nucleotides)")
    config, tokenizer = builtin_config(preset, kmer, stride, window_length, num_labels=len(classes),
                                       **label_maps(classes))
    torch.manual_seed(seed)
    return BertForSequenceClassification(config), tokenizer


def load_config(name_or_path, trust_remote_code: bool, how_to_trust: str):
    """A model's config; a model with its own code (`auto_map`) needs `trust_remote_code`, never silently.

    Without it transformers would load a custom-code model whose config names a known `model_type` (DNABERT-2
    says "bert") with its own native classes: different layers, randomly initialised weights, no error.
    `how_to_trust` tells the user how to allow the code (a config key or a command-line option).
    """
    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except ValueError as error:
        if "trust_remote_code" not in str(error):
            raise
        config = None
    except OSError as error:
        raise PlasmidlmError(f"{name_or_path}: cannot load the model: {error}") from None
    if config is None or (getattr(config, "auto_map", None) and not trust_remote_code):
        raise PlasmidlmError(f"{name_or_path}: the model ships its own code (auto_map in its config.json); "
                             f"{how_to_trust} if you trust it")
    return config


def load_pretrained(name_or_path: str, classes: list[str], trust_remote_code: bool):
    """A hub id or local HF directory, with a fresh classification head for `classes`."""
    config = load_config(name_or_path, trust_remote_code, "set model.trust_remote_code: true")
    config.num_labels = len(classes)
    for key, value in label_maps(classes).items():
        setattr(config, key, value)
    model = AutoModelForSequenceClassification.from_pretrained(
        name_or_path, config=config, trust_remote_code=trust_remote_code, ignore_mismatched_sizes=True
    )
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    return model, tokenizer


def ensure_pad_token(model, tokenizer) -> list[str]:
    """Give a tokenizer without a pad token one (its end-of-sequence, else unknown, else a new token) and make
    the model's `pad_token_id` agree: batches are padded, and decoders find each sequence's last token by it.
    Returns what it changed, in words."""
    changes = []
    if tokenizer.pad_token is None:
        chosen = tokenizer.eos_token or tokenizer.unk_token
        if chosen is not None:
            tokenizer.pad_token = chosen
        else:
            tokenizer.add_special_tokens({"pad_token": "[PAD]"})
            model.resize_token_embeddings(len(tokenizer))
        changes.append(f"the tokenizer has no pad token: padding with {tokenizer.pad_token!r} "
                       f"(id {tokenizer.pad_token_id})")
    if model.config.pad_token_id != tokenizer.pad_token_id:
        if model.config.pad_token_id is not None:
            changes.append(f"the model's pad_token_id {model.config.pad_token_id} differs from the tokenizer's; "
                           f"using {tokenizer.pad_token_id}")
        model.config.pad_token_id = tokenizer.pad_token_id
    return changes


def token_limit(config, tokenizer) -> tuple[int | None, str]:
    """The most tokens one input may have, and where that limit comes from.

    Position embeddings (less the padding offset of RoBERTa-style models such as ESM), else the tokenizer's
    `model_max_length` (models without position embeddings, e.g. ALiBi), else no limit.
    """
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        if config.model_type in POSITIONS_AFTER_PADDING and config.pad_token_id is not None:
            return positions - config.pad_token_id - 1, (f"max_position_embeddings {positions}, positions starting "
                                                         f"after padding index {config.pad_token_id}")
        return positions, f"max_position_embeddings {positions}"
    if tokenizer.model_max_length < 1_000_000:  # transformers' "no limit" is a huge sentinel
        return tokenizer.model_max_length, f"the tokenizer's model_max_length {tokenizer.model_max_length}"
    return None, "none"


def forward_input_names(model) -> list[str]:
    """The inputs of `MODEL_INPUTS` that the model's forward takes (HyenaDNA's takes no attention mask)."""
    if is_lora_model(model):
        model = model.get_base_model()
    parameters = inspect.signature(model.forward).parameters
    return [name for name in MODEL_INPUTS if name in parameters]


def input_format(model_config: dict, recorded: dict) -> tuple[int | None, int]:
    """(k, stride) of the k-mer text a model is fed, or (None, 1) for the raw sequence.

    `model.kmer` when set; else 6 for the built-in model, what a plasmidlm-trained model directory recorded,
    or the raw sequence (hub models).
    """
    kmer, stride = model_config.get("kmer"), model_config.get("kmer_stride", 1)
    if kmer:
        return kmer, stride
    if model_config["name_or_path"] == BUILTIN:
        return 6, stride
    if recorded.get("kmer"):
        return recorded["kmer"], recorded.get("kmer_stride", 1)
    return None, 1


def unknown_share(tokenizer, ids: list[np.ndarray]) -> float:
    """Share of the unknown token among the non-special tokens of `ids` (0 for a tokenizer without one)."""
    if tokenizer.unk_token_id is None or not ids:
        return 0.0
    tokens = np.concatenate(ids)
    tokens = tokens[~np.isin(tokens, [i for i in tokenizer.all_special_ids if i != tokenizer.unk_token_id])]
    return float((tokens == tokenizer.unk_token_id).mean()) if len(tokens) else 0.0


def checked_token_ids(tokenizer, sample: list[str], kmer: int | None, stride: int) -> list[np.ndarray]:
    """Token ids of the sampled windows in the chosen input format, after checking that the format fits the
    tokenizer: most tokens must not be unknown, and k-mer text is wrong for a tokenizer that reads the raw
    sequence (Nucleotide Transformer would get overlapping 6-mers, ~5 times the tokens it was trained on)."""
    ids = token_ids(tokenizer, sample, kmer, stride)
    unknown = unknown_share(tokenizer, ids)
    if unknown > 0.5:
        given = f"k-mer text (model.kmer: {kmer})" if kmer else "the raw sequence (model.kmer: null)"
        fix = ("set model.kmer: null if the tokenizer reads the raw sequence" if kmer
               else "set model.kmer to the k of its k-mer vocabulary (DNABERT: 6)")
        raise PlasmidlmError(f"config model.kmer: {unknown:.0%} of the tokens of {len(ids)} sampled training windows "
                             f"are the unknown token {tokenizer.unk_token!r} when the model is fed {given}; {fix}")
    if kmer:
        raw = token_ids(tokenizer, sample, None)
        if unknown_share(tokenizer, raw) <= 0.5:
            per_window = np.mean([len(row) for row in ids]), np.mean([len(row) for row in raw])
            raise PlasmidlmError(
                f"config model.kmer: the tokenizer reads the raw sequence ({per_window[1]:.0f} tokens per window), "
                f"so k-mer text (model.kmer: {kmer}) would feed it {per_window[0]:.0f} tokens of another kind; set "
                f"model.kmer: null")
    return ids


def check_window_tokens(lengths: np.ndarray, window_length: int, limit: int | None, source: str) -> None:
    """Stop before training when windows would not fit the model: the longest sampled window, plus a margin
    where token counts vary between windows (BPE), must be within the model's limit."""
    longest = int(lengths.max())
    needed = longest if lengths.min() == longest else math.ceil(longest * (1 + LENGTH_MARGIN))
    if limit is None or needed <= limit:
        return
    fitting = int(window_length * limit / needed)
    raise PlasmidlmError(
        f"config windows.length: {window_length}-nt windows need up to {longest} tokens ({len(lengths)} sampled "
        f"training windows{'' if needed == longest else f'; {needed} with a margin for the others'}), above the "
        f"model's limit of {limit} ({source}); use windows of about {fitting} nt or less")


def build_or_load(model_config: dict, window_length: int, classes: list[str], *, seed: int,
                  sample_windows: list[str] | None = None):
    """Model and tokenizer ready for fine-tuning, with the window metadata stored in the config.

    The input format (k-mer text or raw sequence) is resolved by `input_format` and recorded with the window
    length and whether the model needs its own code. With `sample_windows` (training windows), the input format
    and the length limit are checked on their real tokens before any training. A tokenizer without a pad token
    gets one (`ensure_pad_token`). With `lora.enabled`, the model is a peft model with LoRA adapters.
    """
    trust_remote_code = model_config.get("trust_remote_code", False)
    if model_config["name_or_path"] == BUILTIN:
        kmer, stride = input_format(model_config, {})
        model, tokenizer = build_builtin(model_config["preset"], kmer=kmer, stride=stride, window_length=window_length,
                                         classes=classes, seed=seed)
    else:
        torch.manual_seed(seed)  # the new classification head is initialised at random
        model, tokenizer = load_pretrained(model_config["name_or_path"], classes, trust_remote_code)
        kmer, stride = input_format(model_config, getattr(model.config, METADATA_KEY, None) or {})
    for change in ensure_pad_token(model, tokenizer):
        logger.info(change)
    if sample_windows is None:
        sample_windows = [("ACGT" * window_length)[:window_length]]
    ids = checked_token_ids(tokenizer, sample_windows[:CHECK_SAMPLE], kmer, stride)
    limit, source = token_limit(model.config, tokenizer)
    lengths = np.array([len(row) for row in ids])
    check_window_tokens(lengths, window_length, limit, source)
    logger.info(f"input: {f'{kmer}-mer text (stride {stride})' if kmer else 'the raw sequence'}; {len(ids)} "
                f"sampled windows have {lengths.min()}-{lengths.max()} tokens; the model's limit: "
        f"{f'{limit} ({source})' if limit else 'none'}")
    setattr(model.config, METADATA_KEY, {"window_length": window_length, "kmer": kmer, "kmer_stride": stride,
                                         "custom_code": bool(getattr(model.config, "auto_map", None)),
                                         "versions": versions.library_versions()})
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


def load_checkpoint(path, device: str | torch.device = "cpu", trust_remote_code: bool = False,
                    how_to_trust: str = "pass --trust-remote-code"):
    """A trained classifier directory (checkpoint or copy): model in eval mode, tokenizer, metadata.

    A model with its own code loads with exactly those classes, and only with `trust_remote_code`. Library versions
    other than those it was trained with are logged in one line (`versions.log_version_changes`).
    """
    config = load_config(path, trust_remote_code, how_to_trust)
    model = AutoModelForSequenceClassification.from_pretrained(path, config=config,
                                                               trust_remote_code=trust_remote_code)
    model = model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    ensure_pad_token(model, tokenizer)
    metadata = getattr(model.config, METADATA_KEY, None) or {}
    versions.log_version_changes(metadata.get("versions"), f"checkpoint {path}")
    return model, tokenizer, metadata


def last_hidden_state(model, inputs: dict) -> torch.Tensor:
    """The last hidden state [windows, tokens, hidden] of a model's body, skipping any head.

    Bodies return a ModelOutput, a plain tuple (DNABERT-2) or a bare tensor; the hidden states come first.
    """
    outputs = model.base_model(**inputs)
    return outputs if torch.is_tensor(outputs) else outputs[0]
