"""Batched inference of a trained classifier on windows, and its metrics."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from plasmidlm.metrics import evaluate_predictions, probability_columns
from plasmidlm.model import load_checkpoint
from plasmidlm.tokenize import encode


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def predict_proba(model, tokenizer, metadata: dict, sequences, batch_size: int = 256) -> np.ndarray:
    """Class probabilities for each DNA window in `sequences` (same order)."""
    device = next(model.parameters()).device
    kmer, stride = metadata.get("kmer"), metadata.get("kmer_stride", 1)
    sequences = list(sequences)
    out = []
    with torch.inference_mode():
        for begin in range(0, len(sequences), batch_size):
            batch = encode(tokenizer, sequences[begin : begin + batch_size], kmer, stride)
            batch = {key: value.to(device) for key, value in batch.items()}
            logits = model(**batch).logits
            out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    n_classes = model.config.num_labels
    return np.concatenate(out) if out else np.empty((0, n_classes))


def classes_of(model) -> list[str]:
    return [model.config.id2label[i] for i in range(model.config.num_labels)]


def evaluate_checkpoint(checkpoint_dir, windows: pd.DataFrame, batch_size: int = 256):
    """Predictions table and metrics of one checkpoint on fixed windows, with its throughput."""
    model, tokenizer, metadata = load_checkpoint(checkpoint_dir, default_device())
    classes = classes_of(model)
    began = time.perf_counter()
    proba = predict_proba(model, tokenizer, metadata, windows["sequence"], batch_size)
    seconds = time.perf_counter() - began
    predictions = windows[["window_id", "plasmid_id", "label"]].copy()
    predictions["predicted"] = np.asarray(classes)[proba.argmax(axis=1)]
    for column, values in zip(probability_columns(classes), proba.T):
        predictions[column] = values
    metrics = evaluate_predictions(predictions, classes)
    metrics["inference"] = {"seconds": seconds, "windows_per_second": len(windows) / max(seconds, 1e-9),
                            "device": str(next(model.parameters()).device)}
    return predictions, metrics
