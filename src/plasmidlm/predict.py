"""Classifying new sequences with a trained model directory: tile into windows, predict, aggregate."""

from __future__ import annotations

import csv
import gzip
import time
from pathlib import Path

import numpy as np

from plasmidlm import PlasmidlmError, io
from plasmidlm.evaluate import classes_of, default_device, predict_proba
from plasmidlm.model import load_checkpoint
from plasmidlm.windows import reverse_complement

PROGRESS_SECONDS = 10


def tile_starts(sequence_length: int, length: int, stride: int) -> list[int]:
    """Window starts every `stride` nt, plus one window flush with the end so every base is covered."""
    if sequence_length < length:
        return []
    starts = list(range(0, sequence_length - length + 1, stride))
    if starts[-1] != sequence_length - length:
        starts.append(sequence_length - length)
    return starts


def _batches(fasta, length: int, stride: int, batch_size: int, short: list):
    """Yield lists of (sequence_id, sequence_length, start, window) across records, streaming the FASTA."""
    batch = []
    for record_id, sequence in io.iter_fasta(fasta):
        starts = tile_starts(len(sequence), length, stride)
        if not starts:
            short.append((record_id, len(sequence)))
        for start in starts:
            batch.append((record_id, len(sequence), start, sequence[start : start + length]))
            if len(batch) == batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def _check_model_dir(model_dir: Path) -> None:
    if not model_dir.is_dir():
        raise PlasmidlmError(f"{model_dir}: model directory not found")
    if not (model_dir / "config.json").is_file():
        raise PlasmidlmError(f"{model_dir}: not a Hugging Face model directory (config.json is missing)")
    if not any(model_dir.glob("*.safetensors")) and not any(model_dir.glob("*.bin")):
        raise PlasmidlmError(f"{model_dir}: no model weights (*.safetensors) in the directory")


def predict_fasta(model_dir, fasta, out_prefix, stride: int | None = None, batch_size: int = 256,
                  both_strands: bool = False, log=print) -> dict:
    """Write `<out_prefix>.windows.tsv.gz` and `<out_prefix>.sequences.tsv` for every sequence of `fasta`.

    The window length and class names come from the model directory. Memory stays flat whatever the
    input size: the FASTA is streamed and windows are written as they are scored.
    """
    model_dir = Path(model_dir)
    _check_model_dir(model_dir)
    model, tokenizer, metadata = load_checkpoint(model_dir, default_device())
    length = metadata.get("window_length")
    if not length:
        raise PlasmidlmError(f"{model_dir}: config.json has no plasmidlm.window_length; pass a model trained "
                             f"by plasmidlm")
    classes = classes_of(model)
    stride = stride or length
    windows_path = Path(f"{out_prefix}.windows.tsv.gz")
    sequences_path = Path(f"{out_prefix}.sequences.tsv")
    windows_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_windows = windows_path.with_name(f".{windows_path.name}.tmp")
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    lengths: dict[str, int] = {}
    short: list = []
    began, n_windows, last_log = time.perf_counter(), 0, 0.0
    try:
        with gzip.open(tmp_windows, "wt", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["sequence_id", "start", *[f"prob_{name}" for name in classes]])
            for batch in _batches(fasta, length, stride, batch_size, short):
                windows = [window for *_, window in batch]
                proba = predict_proba(model, tokenizer, metadata, windows, batch_size)
                if both_strands:
                    reverse = predict_proba(model, tokenizer, metadata, map(reverse_complement, windows), batch_size)
                    proba = (proba + reverse) / 2
                for (record_id, record_length, start, _), row in zip(batch, proba):
                    writer.writerow([record_id, start, *(f"{value:.6g}" for value in row)])
                    sums[record_id] = sums.get(record_id, 0) + row
                    counts[record_id] = counts.get(record_id, 0) + 1
                    lengths[record_id] = record_length
                n_windows += len(batch)
                seconds = time.perf_counter() - began
                if seconds - last_log >= PROGRESS_SECONDS:
                    last_log = seconds
                    log(f"{n_windows:,} windows from {len(counts):,} sequences, {n_windows / seconds:,.0f} windows/s")
        rows = []
        for record_id, total in sums.items():
            mean = total / counts[record_id]
            rows.append([record_id, lengths[record_id], counts[record_id], classes[int(mean.argmax())],
                         *(f"{value:.6g}" for value in mean)])
        rows += [[record_id, record_length, 0, "", *([""] * len(classes))] for record_id, record_length in short]
        header = ["sequence_id", "length", "windows", "predicted", *[f"prob_{name}" for name in classes]]
        io.write_atomic(sequences_path, lambda tmp: Path(tmp).write_text(
            "\n".join("\t".join(map(str, row)) for row in [header, *rows]) + "\n"))
        tmp_windows.replace(windows_path)
        seconds = time.perf_counter() - began
        log(f"{n_windows:,} windows from {len(counts):,} sequences, {n_windows / max(seconds, 1e-9):,.0f} windows/s")
    finally:
        tmp_windows.unlink(missing_ok=True)
    if short:
        log(f"{len(short)} sequence(s) shorter than the model's {length}-nt window were not classified "
            f"(listed with 0 windows), e.g. {short[0][0]} ({short[0][1]} nt)")
    return {"sequences": len(sums), "too_short": len(short), "windows": n_windows,
            "seconds": time.perf_counter() - began}
