"""The one-hot 1D CNN baseline trained from scratch."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from conftest import random_windows

torch = pytest.importorskip("torch")
from plasmidlm import cnn  # noqa: E402


def test_one_hot_has_one_channel_per_base_and_zeros_elsewhere():
    x = cnn.one_hot(["ACGTN", "GG"])
    assert x.shape == (2, 4, 5)
    assert x[0].argmax(axis=0)[:4].tolist() == [0, 1, 2, 3]
    assert x[0, :, 4].sum() == 0 and x[1, :, 2:].sum() == 0
    assert x.sum() == 6


def with_motif(sequences, rng, motif="GATTACAGATTACA"):
    out = []
    for sequence in sequences:
        start = int(rng.integers(0, len(sequence) - len(motif)))
        out.append(sequence[:start] + motif + sequence[start + len(motif):])
    return out


def test_cnn_learns_a_motif_anywhere_and_keeps_the_best_validation_epoch(caplog):
    rng = np.random.default_rng(0)
    plain, motif = random_windows(400, length=80, seed=1), with_motif(random_windows(400, length=80, seed=2), rng)
    sequences, labels = plain[:300] + motif[:300], np.array([0] * 300 + [1] * 300)
    val, val_labels = plain[300:350] + motif[300:350], np.array([0] * 50 + [1] * 50)
    test, test_labels = plain[350:] + motif[350:], np.array([0] * 50 + [1] * 50)
    caplog.set_level(logging.INFO, logger="plasmidlm.cnn")
    torch.set_num_threads(1)
    model, cost = cnn.fit(sequences, labels, val_sequences=val, val_labels=val_labels, n_classes=2, epochs=4, seed=0,
                          channels=16)
    accuracies = [float(message.rsplit(" ", 1)[1]) for message in caplog.messages]
    assert cost["best_epoch"] == int(np.argmax(accuracies)) + 1 and cost["val_accuracy"] == max(accuracies)
    assert (cnn.predict_proba(model, val).argmax(axis=1) == val_labels).mean() == pytest.approx(max(accuracies))
    assert (cnn.predict_proba(model, test).argmax(axis=1) == test_labels).mean() > 0.9
    assert cost["windows"] == 600 and cost["seconds"] > 0
    assert cost["parameters"] == sum(p.numel() for p in model.parameters())
