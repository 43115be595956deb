"""Batched inference of a trained classifier on windows, and its metrics."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from plasmidlm import PlasmidlmError
from plasmidlm.metrics import HEADLINE, evaluate_predictions, predictions_table
from plasmidlm.model import forward_input_names, last_hidden_state, load_checkpoint, token_limit
from plasmidlm.tokenize import encode
from plasmidlm.windows import reverse_complement


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_token_counts(attention_mask: torch.Tensor, limit: int | None, source: str, first_window: int) -> None:
    """Stop, rather than truncate, when a window has more tokens than the model takes."""
    if limit is None:
        return
    lengths = attention_mask.sum(dim=1)
    if int(lengths.max()) > limit:
        row = int(lengths.argmax())
        raise PlasmidlmError(f"window {first_window + row + 1} tokenizes to {int(lengths[row])} tokens, above the "
                             f"model's limit of {limit} ({source}); use shorter windows (--window-length)")


def _batched(model, tokenizer, metadata: dict, sequences, batch_size: int, compute, width: int) -> np.ndarray:
    """Tokenize `sequences` batch by batch and stack `compute(model_inputs, attention_mask)` of each batch.

    The model gets only the inputs its forward takes; windows it cannot take whole are an error.
    """
    device = next(model.parameters()).device
    kmer, stride = metadata.get("kmer"), metadata.get("kmer_stride", 1)
    names = forward_input_names(model)
    limit, source = token_limit(model.config, tokenizer)
    sequences = list(sequences)
    out = []
    with torch.inference_mode():
        for begin in range(0, len(sequences), batch_size):
            batch = encode(tokenizer, sequences[begin : begin + batch_size], kmer, stride)
            check_token_counts(batch["attention_mask"], limit, source, begin)
            inputs = {name: batch[name].to(device) for name in names}
            out.append(compute(inputs, batch["attention_mask"].to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, width), dtype=np.float32)


def predict_proba(model, tokenizer, metadata: dict, sequences, batch_size: int = 256) -> np.ndarray:
    """Class probabilities for each DNA window in `sequences` (same order)."""
    return _batched(model, tokenizer, metadata, sequences, batch_size,
                    lambda inputs, mask: torch.softmax(model(**inputs).logits.float(), dim=-1),
                    model.config.num_labels)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over each window's non-padding tokens."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1)


def embed_windows(model, tokenizer, metadata: dict, sequences, batch_size: int = 256) -> np.ndarray:
    """Mean of the last hidden state over each window's non-padding tokens (not the [CLS] token)."""
    return _batched(model, tokenizer, metadata, sequences, batch_size,
                    lambda inputs, mask: mean_pool(last_hidden_state(model, inputs).float(), mask),
                    model.config.hidden_size)


def classes_of(model) -> list[str]:
    return [model.config.id2label[i] for i in range(model.config.num_labels)]


def strand_averaged_proba(model, tokenizer, metadata: dict, sequences, batch_size: int = 256,
                          both_strands: bool = False) -> np.ndarray:
    """Class probabilities, optionally averaged over each window and its reverse complement."""
    sequences = list(sequences)
    proba = predict_proba(model, tokenizer, metadata, sequences, batch_size)
    if both_strands:
        reverse = predict_proba(model, tokenizer, metadata, map(reverse_complement, sequences), batch_size)
        proba = (proba + reverse) / 2
    return proba


def evaluate_checkpoint(checkpoint_dir, windows: pd.DataFrame, val_windows: pd.DataFrame | None = None,
                        batch_size: int = 256, both_strands: bool = False, n_bootstrap: int = 0, seed: int = 0,
                        trust_remote_code: bool = False):
    """Predictions on the test `windows` and metrics (with bootstrap intervals) of one checkpoint.

    A checkpoint of a model with its own code loads only with `trust_remote_code`.

    With `val_windows`, the headline metrics on the validation windows are added under `validation`.
    The time and throughput of scoring the test windows are recorded under `inference`.
    """
    model, tokenizer, metadata = load_checkpoint(checkpoint_dir, default_device(), trust_remote_code,
                                                 "set model.trust_remote_code: true")
    classes = classes_of(model)
    began = time.perf_counter()
    proba = strand_averaged_proba(model, tokenizer, metadata, windows["sequence"], batch_size, both_strands)
    seconds = time.perf_counter() - began
    predictions = predictions_table(windows, proba, classes)
    metrics = evaluate_predictions(predictions, classes, n_bootstrap, seed)
    metrics["inference"] = {"windows": len(windows), "seconds": seconds,
                            "windows_per_second": len(windows) / max(seconds, 1e-9), "both_strands": both_strands,
                            "device": str(next(model.parameters()).device)}
    if val_windows is not None:
        val_proba = strand_averaged_proba(model, tokenizer, metadata, val_windows["sequence"], batch_size,
                                          both_strands)
        validation = evaluate_predictions(predictions_table(val_windows, val_proba, classes), classes)
        metrics["validation"] = {level: {key: validation[level][key] for key in ["n", *HEADLINE]}
                                 for level in ("window", "plasmid")}
    return predictions, metrics
