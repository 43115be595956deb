"""Bases as codes, the one encoding under every k-mer computation of the project.

A, C, G, T are 0, 1, 2, 3 (the complement of code c is 3 - c) and any other byte is `OTHER`; a k-mer's index
is its codes read in base 4, first base most significant (`place_values`), which is also the order of
`kmer_strings`. Built on these, each for its own use:

- `windows.canonical_kmer_codes`: the k-mers of a long sequence as 2-bit integers, the smaller of both strands
  (any k up to 31; the held-out windows' k-mer coverage by training sequence);
- `baselines.kmer_frequencies`: canonical k-mer frequencies per window (the k-mer and composition baselines);
- `tokenize.kmer_text` (the k-mer text that k-mer tokenizers read), `tokenize.kmer_vocabulary` and
  `tokenize.kmer_ids` (the same token ids without building the text);
- `cnn.one_hot`: the one-hot channels of the CNN baseline.
"""

from __future__ import annotations

import itertools

import numpy as np

BASES = "ACGT"
OTHER = 4  # the code of every byte other than A, C, G, T (N and the other IUPAC codes)

_CODES = np.full(256, OTHER, dtype=np.uint8)
_CODES[np.frombuffer(BASES.encode(), dtype=np.uint8)] = np.arange(len(BASES))


def base_codes(sequence: str) -> np.ndarray:
    """The code of each base of an (upper-case) DNA sequence, uint8."""
    return _CODES[np.frombuffer(sequence.encode(), dtype=np.uint8)]


def place_values(k: int) -> np.ndarray:
    """Weights that turn the codes of a k-mer into its index: 4 ** (k - 1), …, 4, 1."""
    return 4 ** np.arange(k - 1, -1, -1)


def kmer_strings(k: int) -> list[str]:
    """Every k-mer of ACGT, in index order."""
    return ["".join(letters) for letters in itertools.product(BASES, repeat=k)]
