"""Nucleotide tokenizers: DNABERT-style k-mer text and a standard HF fast tokenizer for it."""

from __future__ import annotations

import json

import numpy as np

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from plasmidlm.kmers import OTHER, base_codes, kmer_strings, place_values

SPECIAL_TOKENS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                  "mask_token": "[MASK]"}


def kmer_text(sequence: str, k: int, stride: int = 1) -> str:
    """Space-separated k-mers of `sequence` starting every `stride` nt (stride 1 = overlapping)."""
    return " ".join(sequence[i : i + k] for i in range(0, len(sequence) - k + 1, stride))


def model_text(sequence: str, kmer: int | None, stride: int = 1) -> str:
    """The text a model's tokenizer expects: k-mer text when `kmer` is set, else the raw sequence."""
    return kmer_text(sequence, kmer, stride) if kmer else sequence


def n_tokens(window_length: int, kmer: int, stride: int = 1) -> int:
    """Tokens for one window with a k-mer tokenizer, [CLS] and [SEP] included."""
    return (window_length - kmer) // stride + 1 + 2


def kmer_vocabulary(k: int) -> dict[str, int]:
    """The special tokens, then every k-mer of ACGT in index order (`kmers.kmer_strings`)."""
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS.values())}
    for kmer in kmer_strings(k):
        vocab[kmer] = len(vocab)
    return vocab


def build_kmer_tokenizer(k: int, model_max_length: int) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over all 4**k k-mers of ACGT; any k-mer with another letter is [UNK].

    It is a plain `tokenizers` JSON, so `AutoTokenizer.from_pretrained` loads it without project code;
    its input is k-mer text (see `kmer_text`), as for DNABERT.
    """
    vocab = kmer_vocabulary(k)
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    cls, sep = SPECIAL_TOKENS["cls_token"], SPECIAL_TOKENS["sep_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=model_max_length, **SPECIAL_TOKENS
    )


TOKENIZE_CHUNK = 4096  # windows tokenized per call: bounds the tokenizer's temporary Python lists


def token_ids(tokenizer, sequences, kmer: int | None, stride: int = 1) -> list[np.ndarray]:
    """Token ids of each DNA window, special tokens included, unpadded (int32 arrays). Windows of one length
    through a k-mer tokenizer that `kmer_id_table` recognises take the numpy path (`kmer_ids`), 10-30 times
    faster (bench/README.md), with the same ids."""
    sequences = list(sequences)
    table = kmer_id_table(tokenizer, kmer) if kmer else None
    ids = []
    for begin in range(0, len(sequences), TOKENIZE_CHUNK):
        chunk = sequences[begin : begin + TOKENIZE_CHUNK]
        if table is not None and len({len(sequence) for sequence in chunk}) == 1:
            ids.extend(kmer_ids(table, chunk, kmer, stride).astype(np.int32))
            continue
        texts = [model_text(sequence, kmer, stride) for sequence in chunk]
        encoded = tokenizer(texts, truncation=False, return_attention_mask=False, return_token_type_ids=False,
                            verbose=False)["input_ids"]
        ids.extend(np.asarray(row, dtype=np.int32) for row in encoded)
    return ids


def flat_token_ids(tokenizer, sequences, kmer: int | None, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of all DNA windows in one flat int32 array, and the offsets where each window starts (windows + 1
    of them): tokenized by `token_ids` (numpy k-mer path included) `TOKENIZE_CHUNK` windows at a time, so that
    no per-window object outlives its chunk."""
    pieces, lengths = [], []
    for begin in range(0, len(sequences), TOKENIZE_CHUNK):
        ids = token_ids(tokenizer, list(sequences[begin : begin + TOKENIZE_CHUNK]), kmer, stride)
        lengths.append(np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)))
        pieces.append(np.concatenate(ids) if ids else np.empty(0, dtype=np.int32))
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]) if lengths else np.zeros(1, dtype=np.int64)
    return (np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int32)), offsets


def encode(tokenizer, sequences, *, kmer: int | None, stride: int = 1, input_names=("input_ids", "attention_mask")
           ) -> dict:
    """Tokenize DNA windows into `input_names` tensors (of `input_ids`, `attention_mask`), padded to the longest."""
    texts = [model_text(sequence, kmer, stride) for sequence in sequences]
    encoded = tokenizer(texts, padding=True, truncation=False, return_tensors="pt", return_token_type_ids=False,
                        verbose=False)
    return {name: encoded[name] for name in input_names}


def kmer_id_table(tokenizer, k: int) -> dict | None:
    """For a plain k-mer word-level tokenizer (the built-in one, or any with the same pipeline): the id of every
    ACGT k-mer in index order (`kmers.kmer_strings`), [CLS], [SEP] and [UNK], so
    that `kmer_ids` gives its ids without building k-mer text. None for any other tokenizer (no normaliser, a
    whitespace split, a word-level model and a [CLS] $A [SEP] template are required)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    spec = json.loads(backend.to_str())
    processor = spec.get("post_processor") or {}
    template = [next(iter(piece.values()))["id"] for piece in processor.get("single", [])]
    cls, sep, unk = SPECIAL_TOKENS["cls_token"], SPECIAL_TOKENS["sep_token"], SPECIAL_TOKENS["unk_token"]
    if (spec.get("normalizer") is not None or (spec.get("pre_tokenizer") or {}).get("type") != "WhitespaceSplit"
            or spec["model"].get("type") != "WordLevel" or spec["model"].get("unk_token") != unk
            or processor.get("type") != "TemplateProcessing" or template != [cls, "A", sep]):
        return None
    vocab = spec["model"]["vocab"]
    return {"kmers": np.array([vocab.get(kmer, vocab[unk]) for kmer in kmer_strings(k)], dtype=np.int32),
            "cls": vocab[cls], "sep": vocab[sep], "unk": vocab[unk]}


def kmer_ids(table: dict, sequences: list[str], k: int, stride: int = 1) -> np.ndarray:
    """Token ids [windows, tokens] of windows of one length through a `kmer_id_table`: what the tokenizer gives
    for their k-mer text. A k-mer with a letter other than A, C, G, T is [UNK], as in the tokenizer."""
    codes = base_codes("".join(sequences)).reshape(len(sequences), -1)
    starts = np.arange(0, codes.shape[1] - k + 1, stride)
    windows = codes[:, starts[:, None] + np.arange(k)]  # [windows, k-mers, k]
    index = (np.minimum(windows, 3) * place_values(k)).sum(axis=-1)
    ids = np.where((windows == OTHER).any(axis=-1), table["unk"], table["kmers"][index])
    ends = np.broadcast_to(np.array([table["cls"], table["sep"]], dtype=ids.dtype), (len(sequences), 2))
    return np.concatenate([ends[:, :1], ids, ends[:, 1:]], axis=1)
