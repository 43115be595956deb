"""Baselines on the same splits and test windows: k-mer frequencies + logistic regression."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

_CODE = np.full(256, -1, dtype=np.int64)
for _index, _base in enumerate(b"ACGT"):
    _CODE[_base] = _index

def canonical_kmer_index(k: int) -> np.ndarray:
    """Map every k-mer index (base 4, A=0 … T=3) to the column of its canonical (strand-merged) k-mer."""
    kmers = np.arange(4**k)
    digits = (kmers[:, None] // 4 ** np.arange(k - 1, -1, -1)) % 4
    reverse_complement = ((3 - digits[:, ::-1]) * 4 ** np.arange(k - 1, -1, -1)).sum(axis=1)
    canonical = np.minimum(kmers, reverse_complement)
    _, columns = np.unique(canonical, return_inverse=True)
    return columns

def kmer_frequencies(sequences, k: int) -> np.ndarray:
    """Frequencies of canonical k-mers per sequence; k-mers containing a non-ACGT base are ignored."""
    columns = canonical_kmer_index(k)
    n_columns = int(columns.max()) + 1
    weights = 4 ** np.arange(k - 1, -1, -1)
    out = np.zeros((len(sequences), n_columns))
    for row, sequence in enumerate(sequences):
        codes = _CODE[np.frombuffer(sequence.encode(), dtype=np.uint8)]
        if len(codes) < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)
        valid = (windows >= 0).all(axis=1)
        counts = np.bincount(columns[windows[valid] @ weights], minlength=n_columns)
        out[row] = counts / max(counts.sum(), 1)
    return out

def fit_kmer_classifier(sequences, labels, k: int, C: float, seed: int):
    """Standardised k-mer frequencies + multinomial logistic regression."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
    model.fit(kmer_frequencies(sequences, k), labels)
    return model

def kmer_proba(model, sequences, k: int, classes: list[str]) -> np.ndarray:
    """Probabilities in the order of `classes`."""
    proba = model.predict_proba(kmer_frequencies(sequences, k))
    order = [list(model.classes_).index(name) for name in classes]
    return proba[:, order]

def majority_proba(train_labels, n_windows: int, classes: list[str]) -> np.ndarray:
    """Always predict the most frequent training class (a line that shows what chance looks like)."""
    values, counts = np.unique(np.asarray(train_labels), return_counts=True)
    proba = np.zeros((n_windows, len(classes)))
    proba[:, classes.index(values[counts.argmax()])] = 1.0
    return proba

