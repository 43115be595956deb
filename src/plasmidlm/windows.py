"""Cutting fixed-length windows out of plasmid sequences: first-N or random, either strand."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from plasmidlm import PlasmidlmError

WINDOW_COLUMNS = ["window_id", "plasmid_id", "label", "start", "strand", "sequence"]
_COMPLEMENT = str.maketrans("ACGTURYSWKMBDHVN", "TGCAAYRSWMKVHDBN")


def rng_for(seed: int, *purpose: str) -> np.random.Generator:
    """An independent generator for one purpose (e.g. 'windows', 'test'), derived from the run seed."""
    return np.random.default_rng([seed, *(zlib.crc32(name.encode()) for name in purpose)])


def reverse_complement(sequence: str) -> str:
    return sequence.translate(_COMPLEMENT)[::-1]


def cut(sequence: str, start: int, length: int, circular: bool) -> str:
    """The window [start, start + length), wrapping past the end when `circular`."""
    window = sequence[start : start + length]
    if len(window) < length and circular:
        window += sequence[: length - len(window)]
    return window


def _max_start(sequence_length: int, length: int, circular: bool) -> int:
    """Number of valid start positions."""
    return sequence_length if circular else sequence_length - length + 1


def _make_windows(sequences, picks, length, reverse_complement_p, circular, rng, prefix):
    rows = []
    for index, (plasmid_id, label, start) in enumerate(picks):
        sequence = sequences[plasmid_id]
        window = cut(sequence, start, length, circular)
        if len(window) < length:
            raise PlasmidlmError(
                f"windows: record {plasmid_id}: sequence of {len(sequence)} nt is shorter than "
                f"the window length {length}"
            )
        minus = rng.random() < reverse_complement_p
        rows.append(
            (f"{prefix}{index:07d}", plasmid_id, label, start, "-" if minus else "+",
             reverse_complement(window) if minus else window)
        )
    return pd.DataFrame(rows, columns=WINDOW_COLUMNS)


def draw_windows(
    sequences: dict[str, str],
    plasmids: pd.DataFrame,
    length: int,
    strategy: str,
    per_plasmid: int,
    reverse_complement_p: float,
    circular: bool,
    rng: np.random.Generator,
    prefix: str = "w",
) -> pd.DataFrame:
    """`per_plasmid` windows from every plasmid (`plasmids` has `id`, `label`).

    `first`: the first `length` nt each time (only the strand is drawn); `random`: uniform starts.
    """
    if strategy not in ("first", "random"):
        raise PlasmidlmError(f"config windows.strategy: unknown value {strategy!r} (first or random)")
    picks = []
    for plasmid_id, label in zip(plasmids["id"], plasmids["label"]):
        n_starts = _max_start(len(sequences[plasmid_id]), length, circular)
        for _ in range(per_plasmid):
            start = 0 if strategy == "first" else int(rng.integers(max(n_starts, 1)))
            picks.append((plasmid_id, label, start))
    return _make_windows(sequences, picks, length, reverse_complement_p, circular, rng, prefix)


def draw_balanced_windows(
    sequences: dict[str, str],
    plasmids: pd.DataFrame,
    length: int,
    count: int,
    circular: bool,
    rng: np.random.Generator,
    prefix: str = "w",
    reverse_complement_p: float = 0.5,
) -> pd.DataFrame:
    """`count` random windows, split evenly across classes and, within a class, across plasmids.

    Every plasmid of a class gets the same number of windows (±1), so that one long plasmid cannot
    dominate a class; used for the fixed validation and test windows.
    """
    labels = sorted(plasmids["label"].unique())
    per_class = np.full(len(labels), count // len(labels))
    per_class[: count % len(labels)] += 1
    picks = []
    for label, n_windows in zip(labels, per_class):
        ids = plasmids.loc[plasmids["label"] == label, "id"].to_numpy()
        order = rng.permutation(len(ids))
        for i in range(n_windows):
            plasmid_id = ids[order[i % len(ids)]]
            n_starts = _max_start(len(sequences[plasmid_id]), length, circular)
            picks.append((plasmid_id, label, int(rng.integers(max(n_starts, 1)))))
    return _make_windows(sequences, picks, length, reverse_complement_p, circular, rng, prefix)


def canonical(sequence: str) -> str:
    """The lexicographically smaller of a sequence and its reverse complement (strand-independent)."""
    return min(sequence, reverse_complement(sequence))


def assert_no_plasmid_leakage(test: pd.DataFrame, other: pd.DataFrame, what: str) -> None:
    """Fail if a plasmid of the test windows also occurs in `other` windows."""
    leaked = set(test["plasmid_id"]) & set(other["plasmid_id"])
    if leaked:
        raise PlasmidlmError(
            f"leakage: {len(leaked)} test plasmid(s) also in {what} (e.g. {sorted(leaked)[0]})"
        )


def shared_window_sequences(test: pd.DataFrame, train: pd.DataFrame) -> int:
    """Number of test windows whose sequence (either strand) also occurs verbatim among training windows."""
    train_set = {canonical(sequence) for sequence in train["sequence"]}
    return int(sum(canonical(sequence) in train_set for sequence in test["sequence"]))


_TWO_BIT = np.full(256, 255, dtype=np.uint8)
for _code, _base in enumerate(b"ACGT"):
    _TWO_BIT[_base] = _code


def canonical_kmer_codes(sequence: str, k: int) -> np.ndarray:
    """Every k-mer of `sequence` (k ≤ 31) as a 2-bit integer, the smaller of both strands; k-mers with N etc. left out."""
    codes = _TWO_BIT[np.frombuffer(sequence.encode(), dtype=np.uint8)]
    if len(codes) < k:
        return np.empty(0, dtype=np.uint64)
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)
    valid = (windows != 255).all(axis=1)
    weights = (4 ** np.arange(k - 1, -1, -1, dtype=np.uint64)).astype(np.uint64)
    forward = windows[valid].astype(np.uint64) @ weights
    reverse = (3 - windows[valid][:, ::-1]).astype(np.uint64) @ weights
    return np.minimum(forward, reverse)


def kmer_index(sequences, k: int) -> np.ndarray:
    """Sorted distinct canonical k-mers of all `sequences` (an array to test membership with searchsorted)."""
    parts = [np.unique(canonical_kmer_codes(sequence, k)) for sequence in sequences]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)


def windows_covered_by_kmers(window_sequences, index: np.ndarray, k: int) -> np.ndarray:
    """For each window, whether every one of its k-mers (either strand) occurs in `index`.

    A window whose k-mers all occur in training plasmids is (a near-copy of) training sequence, even when
    its plasmid ID is not in training: the measure of near-duplicate leakage that ID checks miss.
    """
    covered = np.zeros(len(window_sequences), dtype=bool)
    for row, sequence in enumerate(window_sequences):
        codes = canonical_kmer_codes(sequence, k)
        if len(codes) and len(index):
            positions = np.minimum(np.searchsorted(index, codes), len(index) - 1)
            covered[row] = bool((index[positions] == codes).all())
    return covered
