"""The classic genomics baseline: a 1D CNN on one-hot DNA, trained from scratch (as genomic-benchmarks' CNN)."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from plasmidlm.kmers import BASES, OTHER, base_codes

logger = logging.getLogger(__name__)

# Row c: the channels of base code c (kmers.base_codes); OTHER's row is all zero.
_ONE_HOT = np.eye(OTHER + 1, len(BASES), dtype=np.float32)


def one_hot(sequences) -> np.ndarray:
    """float32 [windows, 4, length] (A, C, G, T channels; other bases all zero), padded to the longest window."""
    sequences = list(sequences)
    width = max((len(sequence) for sequence in sequences), default=0)
    out = np.zeros((len(sequences), 4, width), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        out[row, :, : len(sequence)] = _ONE_HOT[base_codes(sequence)].T
    return out


class OneHotCNN(torch.nn.Module):
    """Two convolution blocks, global max pooling over positions, dropout and a linear head."""

    def __init__(self, n_classes: int, channels: int, kernel: int):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv1d(4, channels, kernel, padding=kernel // 2), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
            torch.nn.Conv1d(channels, channels, kernel, padding=kernel // 2), torch.nn.ReLU(),
        )
        self.head = torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(channels, n_classes))

    def forward(self, x):
        return self.head(self.features(x).amax(dim=2))


def predict_proba(model: OneHotCNN, sequences, batch_size: int = 512) -> np.ndarray:
    x = torch.from_numpy(one_hot(sequences))
    with torch.inference_mode():
        logits = [model(x[begin : begin + batch_size]) for begin in range(0, len(x), batch_size)]
    return torch.softmax(torch.cat(logits), dim=-1).numpy()


def fit(train_sequences, train_labels: np.ndarray, *, val_sequences, val_labels: np.ndarray, n_classes: int,
        epochs: int, seed: int, channels: int = 64, kernel: int = 9, batch_size: int = 64,
        learning_rate: float = 1e-3) -> tuple[OneHotCNN, dict]:
    """Train with AdamW on class indices; keep the epoch with the best validation accuracy (earliest on ties).

    Returns the model and its training cost (seconds, windows/s) and the chosen epoch.
    """
    torch.manual_seed(seed)
    model = OneHotCNN(n_classes, channels, kernel)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    x, y = torch.from_numpy(one_hot(train_sequences)), torch.tensor(np.asarray(train_labels, dtype=np.int64))
    val_sequences = list(val_sequences)
    generator = torch.Generator().manual_seed(seed)
    best = (-1.0, 0, None)
    began = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        for rows in torch.randperm(len(y), generator=generator).split(batch_size):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
            optimizer.step()
        model.eval()
        accuracy = float((predict_proba(model, val_sequences).argmax(axis=1) == val_labels).mean())
        logger.info(f"epoch {epoch}: validation accuracy {accuracy:.4f}")
        if accuracy > best[0]:
            best = (accuracy, epoch, {name: value.clone() for name, value in model.state_dict().items()})
    seconds = time.perf_counter() - began
    model.load_state_dict(best[2])
    cost = {"windows": len(y), "epochs": epochs, "best_epoch": best[1], "val_accuracy": best[0], "seconds": seconds,
            "windows_per_second": len(y) * epochs / max(seconds, 1e-9),
            "parameters": sum(parameter.numel() for parameter in model.parameters())}
    return model.eval(), cost
