"""Batched inference of a trained classifier on windows, and its metrics."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from plasmidlm.metrics import evaluate_predictions, predictions_table
from plasmidlm.model import load_checkpoint
from plasmidlm.tokenize import encode


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


def evaluate_checkpoint(checkpoint_dir, windows: pd.DataFrame, batch_size: int = 256):
    """Predictions table and metrics of one checkpoint on fixed windows, with its throughput."""
    model, tokenizer, metadata = load_checkpoint(checkpoint_dir, default_device())
    classes = classes_of(model)
    began = time.perf_counter()
    proba = predict_proba(model, tokenizer, metadata, windows["sequence"], batch_size)
    seconds = time.perf_counter() - began
    predictions = predictions_table(windows, proba, classes)
    metrics = evaluate_predictions(predictions, classes)
    metrics["inference"] = {"seconds": seconds, "windows_per_second": len(windows) / max(seconds, 1e-9),
                            "device": str(next(model.parameters()).device)}
    return predictions, metrics
