"""Batched inference of a trained classifier on windows, and its metrics."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from plasmidlm.metrics import HEADLINE, evaluate_predictions, predictions_table
from plasmidlm.model import load_checkpoint
from plasmidlm.tokenize import encode
from plasmidlm.windows import reverse_complement


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _batched(model, tokenizer, metadata: dict, sequences, batch_size: int, compute, width: int) -> np.ndarray:
    """Tokenize `sequences` batch by batch and stack `compute(model_inputs)` of each batch."""
    device = next(model.parameters()).device
    kmer, stride = metadata.get("kmer"), metadata.get("kmer_stride", 1)
    sequences = list(sequences)
    out = []
    with torch.inference_mode():
        for begin in range(0, len(sequences), batch_size):
            batch = encode(tokenizer, sequences[begin : begin + batch_size], kmer, stride)
            out.append(compute({key: value.to(device) for key, value in batch.items()}).float().cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, width), dtype=np.float32)


def predict_proba(model, tokenizer, metadata: dict, sequences, batch_size: int = 256) -> np.ndarray:
    """Class probabilities for each DNA window in `sequences` (same order)."""
    return _batched(model, tokenizer, metadata, sequences, batch_size,
                    lambda batch: torch.softmax(model(**batch).logits.float(), dim=-1), model.config.num_labels)


def embed_windows(model, tokenizer, metadata: dict, sequences, batch_size: int = 256) -> np.ndarray:
    """Mean of the last hidden state over each window's non-padding tokens (not the [CLS] token)."""

    def mean_pool(batch):
        hidden = model(**batch, output_hidden_states=True).hidden_states[-1].float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1)

    return _batched(model, tokenizer, metadata, sequences, batch_size, mean_pool, model.config.hidden_size)


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
                        batch_size: int = 256, both_strands: bool = False, n_bootstrap: int = 0, seed: int = 0):
    """Predictions on the test `windows` and metrics (with bootstrap intervals) of one checkpoint.

    With `val_windows`, the headline metrics on the validation windows are added under `validation`.
    The time and throughput of scoring the test windows are recorded under `inference`.
    """
    model, tokenizer, metadata = load_checkpoint(checkpoint_dir, default_device())
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
