"""Cutting fixed-length windows out of plasmid sequences: first-N or random, either strand."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from plasmidlm import PlasmidlmError
from plasmidlm.kmers import OTHER, base_codes

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


AMBIGUITY_POLICIES = ("keep", "replace_n", "drop")
_TO_N = str.maketrans({code: "N" for code in "RYSWKMBDHV"})
MAX_TRIES_PER_WINDOW = 20  # random draws per wanted window before a plasmid is given fewer windows


def ambiguous_count(window: str) -> int:
    """Bases other than A, C, G and T."""
    return len(window) - sum(window.count(base) for base in "ACGT")


@dataclass(frozen=True)
class WindowPolicy:
    """How every window of a run is cut (config windows.length, circular, ambiguous and max_n_fraction): the values
    that travel together from the config to each step that draws windows.

    `circular`: windows may wrap around the end of a sequence. `ambiguous`: `keep` the IUPAC codes, `replace_n`
    (turn those other than N into N), or `drop` every window with one; `keep` and `replace_n` allow up to
    `max_n_fraction` ambiguous bases. The defaults cut linear windows and accept any window.
    """

    length: int
    circular: bool = False
    ambiguous: str = "keep"
    max_n_fraction: float = 1.0

    def __post_init__(self):
        if self.ambiguous not in AMBIGUITY_POLICIES:
            raise PlasmidlmError(f"config windows.ambiguous: unknown value {self.ambiguous!r} "
                                 f"({', '.join(AMBIGUITY_POLICIES)})")

    @classmethod
    def from_config(cls, windows_config: Mapping) -> WindowPolicy:
        """The policy of a `windows` config section (or the part of it that a rule passes on)."""
        return cls(windows_config["length"], windows_config["circular"], windows_config["ambiguous"],
                   windows_config["max_n_fraction"])

    def accepts(self, window: str) -> bool:
        """Whether a window passes the ambiguity policy: `drop` allows no ambiguous base, the others up to
        `max_n_fraction` of them."""
        limit = 0 if self.ambiguous == "drop" else self.max_n_fraction * len(window)
        return ambiguous_count(window) <= limit


def plasmid_windows(sequence: str, n_windows: int, policy: WindowPolicy, *, strategy: str,
                    reverse_complement_p: float, rng: np.random.Generator) -> list[tuple[int, str, str]]:
    """Up to `n_windows` (start, strand, window) of one sequence.

    `first` repeats the first `policy.length` nt (only the strand is drawn) and gives none when they fail the
    ambiguity policy; `random` draws uniform starts, redrawing windows that fail it (up to
    MAX_TRIES_PER_WINDOW draws per window).
    """
    length = policy.length
    if len(sequence) < length:
        raise PlasmidlmError(f"sequence of {len(sequence)} nt is shorter than the window length {length}")
    n_starts = _max_start(len(sequence), length, policy.circular)
    windows = []
    for _ in range(n_windows * (1 if strategy == "first" else MAX_TRIES_PER_WINDOW)):
        if len(windows) == n_windows:
            break
        start = 0 if strategy == "first" else int(rng.integers(n_starts))
        window = cut(sequence, start, length, policy.circular)
        if policy.ambiguous == "replace_n":
            window = window.translate(_TO_N)
        if not policy.accepts(window):
            continue
        minus = rng.random() < reverse_complement_p
        windows.append((start, "-" if minus else "+", reverse_complement(window) if minus else window))
    return windows


def _records(sequences) -> Iterable[tuple[str, str]]:
    return sequences.items() if isinstance(sequences, Mapping) else sequences


def windows_from_counts(sequences, plasmids: pd.DataFrame, counts: dict[str, int], policy: WindowPolicy, *,
                        strategy: str, reverse_complement_p: float, seeds: list[tuple],
                        prefix: str) -> list[pd.DataFrame]:
    """One window table per seed, each with `counts[id]` windows of every plasmid, in one pass over
    `sequences` (a mapping, or (id, sequence) pairs streamed from a FASTA: one sequence is held at a time).

    A plasmid's windows for a seed come from their own generator, `rng_for(*seed, id)`, so they depend
    neither on the order of the records nor on which other plasmids take part. Rows are in the order of
    `plasmids`. A table's `attrs["missing"]` counts windows that could not be drawn (ambiguity policy).
    """
    if strategy not in ("first", "random"):
        raise PlasmidlmError(f"config windows.strategy: unknown value {strategy!r} (first or random)")
    label_of = dict(zip(plasmids["id"], plasmids["label"]))
    drawn = {}
    for plasmid_id, sequence in _records(sequences):
        if counts.get(plasmid_id, 0) == 0 or plasmid_id in drawn:
            continue
        try:
            drawn[plasmid_id] = [
                plasmid_windows(sequence, counts[plasmid_id], policy, strategy=strategy,
                                reverse_complement_p=reverse_complement_p, rng=rng_for(*seed, plasmid_id))
                for seed in seeds
            ]
        except PlasmidlmError as error:
            raise PlasmidlmError(f"windows: record {plasmid_id}: {error}") from None
    absent = [plasmid_id for plasmid_id, n in counts.items() if n and plasmid_id not in drawn]
    if absent:
        raise PlasmidlmError(f"windows: record {absent[0]}: no sequence ({len(absent)} plasmid(s) without one)")
    tables = []
    for index in range(len(seeds)):
        rows = [(plasmid_id, label_of[plasmid_id], start, strand, window)
                for plasmid_id in plasmids["id"] if plasmid_id in drawn
                for start, strand, window in drawn[plasmid_id][index]]
        table = pd.DataFrame(rows, columns=WINDOW_COLUMNS[1:])
        table.insert(0, "window_id", [f"{prefix}{number:07d}" for number in range(len(table))])
        table.attrs["missing"] = sum(counts.values()) - len(table)
        tables.append(table)
    return tables


def draw_windows(sequences, plasmids: pd.DataFrame, policy: WindowPolicy, *, per_plasmid: int, seed: tuple,
                 strategy: str = "random", reverse_complement_p: float = 0.5, prefix: str = "w") -> pd.DataFrame:
    """`per_plasmid` windows from every plasmid (`plasmids` has `id`, `label`).

    `first`: the first `policy.length` nt each time (only the strand is drawn); `random`: uniform starts.
    """
    counts = dict.fromkeys(plasmids["id"], per_plasmid)
    [windows] = windows_from_counts(sequences, plasmids, counts, policy, strategy=strategy,
                                    reverse_complement_p=reverse_complement_p, seeds=[seed], prefix=prefix)
    return windows


def capped_counts(plasmid_ids, per_plasmid: int, max_windows: int | None, rng: np.random.Generator) -> dict[str, int]:
    """`per_plasmid` windows of every plasmid, or, when that exceeds `max_windows`, `max_windows` windows spread
    evenly over the plasmids (±1, the extra ones to a seeded random subset): memory then stays bounded."""
    ids = list(plasmid_ids)
    if not max_windows or len(ids) * per_plasmid <= max_windows:
        return dict.fromkeys(ids, per_plasmid)
    counts = np.full(len(ids), max_windows // len(ids))
    counts[rng.permutation(len(ids))[: max_windows % len(ids)]] += 1
    return dict(zip(ids, counts.tolist()))


def balanced_counts(plasmids: pd.DataFrame, count: int, rng: np.random.Generator) -> dict[str, int]:
    """`count` windows split evenly across classes and, within a class, across its plasmids (±1)."""
    labels = sorted(plasmids["label"].unique())
    per_class = np.full(len(labels), count // len(labels))
    per_class[: count % len(labels)] += 1
    counts = dict.fromkeys(plasmids["id"], 0)
    for label, n_windows in zip(labels, per_class):
        ids = plasmids.loc[plasmids["label"] == label, "id"].to_numpy()
        order = rng.permutation(len(ids))
        for i in range(n_windows):
            counts[ids[order[i % len(ids)]]] += 1
    return counts


def draw_balanced_windows(sequences, plasmids: pd.DataFrame, policy: WindowPolicy, *, count: int, seed: tuple,
                          reverse_complement_p: float = 0.5, prefix: str = "w") -> pd.DataFrame:
    """`count` random windows, split evenly across classes and, within a class, across plasmids.

    Every plasmid of a class gets the same number of windows (±1), so that one long plasmid cannot
    dominate a class; used for the fixed validation and test windows.
    """
    counts = balanced_counts(plasmids, count, rng_for(*seed))
    [windows] = windows_from_counts(sequences, plasmids, counts, policy, strategy="random",
                                    reverse_complement_p=reverse_complement_p, seeds=[seed], prefix=prefix)
    return windows


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


def sequence_hashes(sequences) -> np.ndarray:
    """A 64-bit hash of each sequence's canonical form (either strand): verbatim comparisons without holding the
    sequences (two different windows share a hash with probability about 2^-64 per pair)."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(canonical(sequence).encode(), digest_size=8).digest(), "little")
                        for sequence in sequences), dtype=np.uint64)


def shared_window_sequences(test_sequences, train_hashes: np.ndarray) -> int:
    """Number of test windows whose sequence (either strand) also occurs verbatim among training windows, given the
    `sequence_hashes` of those."""
    return int(np.isin(sequence_hashes(test_sequences), train_hashes).sum())


KMER_CHUNK = 1 << 20  # reference nucleotides whose k-mers are computed at a time (about 32 bytes per nucleotide)


def canonical_kmer_codes(sequence: str, k: int) -> np.ndarray:
    """Every k-mer of `sequence` (k ≤ 31) as a 2-bit integer, the smaller of both strands; k-mers with N etc. left
    out.

    Built by shifting in one base at a time, so that memory is a few 8-byte integers per nucleotide, whatever k.
    """
    codes = base_codes(sequence)
    n = len(codes) - k + 1
    if n <= 0:
        return np.empty(0, dtype=np.uint64)
    invalid = np.concatenate([[0], np.cumsum(codes == OTHER)])
    valid = invalid[k:] == invalid[:-k]
    forward, reverse = np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=np.uint64)
    complement = (3 - codes).astype(np.uint64)
    codes = codes.astype(np.uint64)
    for j in range(k):
        np.left_shift(forward, np.uint64(2), out=forward)
        np.bitwise_or(forward, codes[j : j + n], out=forward)
        np.bitwise_or(reverse, np.left_shift(complement[j : j + n], np.uint64(2 * j)), out=reverse)
    return np.minimum(forward, reverse)[valid]


def windows_covered_by_kmers(window_sequences, reference_sequences: Iterable[str], k: int) -> np.ndarray:
    """For each window, whether every one of its k-mers (either strand) occurs in a reference sequence.

    A window whose k-mers all occur in training plasmids is (a near-copy of) training sequence, even when
    its plasmid ID is not in training: the measure of near-duplicate leakage that ID checks miss. Only the
    windows' k-mers are held in memory; the references are streamed one at a time, in pieces of `KMER_CHUNK` nt.
    """
    window_codes = [canonical_kmer_codes(sequence, k) for sequence in window_sequences]
    wanted = np.unique(np.concatenate(window_codes)) if window_codes else np.empty(0, dtype=np.uint64)
    found = np.zeros(len(wanted), dtype=bool)
    for sequence in reference_sequences:
        for begin in range(0, max(len(sequence) - k + 1, 0), KMER_CHUNK):
            codes = canonical_kmer_codes(sequence[begin : begin + KMER_CHUNK + k - 1], k)
            if len(wanted) and len(codes):
                positions = np.minimum(np.searchsorted(wanted, codes), len(wanted) - 1)
                found[positions[wanted[positions] == codes]] = True
    return np.array([len(codes) > 0 and bool(found[np.searchsorted(wanted, codes)].all()) for codes in window_codes],
                    dtype=bool)
