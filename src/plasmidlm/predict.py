"""Using a trained model on new sequences: tile into windows, then classify (predict) or embed.

Both stream the FASTA and write results as they go, so memory stays flat whatever the input size.
"""

from __future__ import annotations

import csv
import gzip
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from plasmidlm import PlasmidlmError, io
from plasmidlm.evaluate import classes_of, default_device, embed_windows, strand_averaged_proba
from plasmidlm.evidence import abstain
from plasmidlm.metrics import probability_columns
from plasmidlm.model import load_checkpoint

logger = logging.getLogger(__name__)

PROGRESS_SECONDS = 10
# Windows scored per call: inference batches within a call run without the host waiting for the device.
SCORE_WINDOWS = 16384


def tile_starts(sequence_length: int, length: int, stride: int) -> list[int]:
    """Window starts every `stride` nt, plus one window flush with the end so every base is covered."""
    if sequence_length < length:
        return []
    starts = list(range(0, sequence_length - length + 1, stride))
    if starts[-1] != sequence_length - length:
        starts.append(sequence_length - length)
    return starts


def check_tiling(**values: int | None) -> None:
    """Window length, stride and batch size, where given, are whole numbers of at least 1."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise PlasmidlmError(f"{name.replace('_', ' ')} must be at least 1, got {value}")


def load_model_dir(model_dir, window_length: int | None = None, trust_remote_code: bool = False):
    """Model, tokenizer, metadata and window length of a trained classifier directory.

    A model with its own code loads only with `trust_remote_code` (`--trust-remote-code`).
    """
    check_tiling(window_length=window_length)
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise PlasmidlmError(f"{model_dir}: model directory not found")
    if not (model_dir / "config.json").is_file():
        raise PlasmidlmError(f"{model_dir}: not a Hugging Face model directory (config.json is missing)")
    if not any(model_dir.glob("*.safetensors")) and not any(model_dir.glob("*.bin")):
        raise PlasmidlmError(f"{model_dir}: no model weights (*.safetensors) in the directory")
    model, tokenizer, metadata = load_checkpoint(model_dir, default_device(), trust_remote_code)
    length = window_length or metadata.get("window_length")
    if not length:
        raise PlasmidlmError(f"{model_dir}: the model does not record its window length (plasmidlm.window_length "
                             f"in config.json); give it with --window-length")
    return model, tokenizer, metadata, length


class _SequenceMeans:
    """Per-sequence sums of window rows, handed out as soon as a sequence's windows are all seen."""

    def __init__(self):
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}
        self.lengths: dict[str, int] = {}

    def add(self, record_id: str, record_length: int, row: np.ndarray) -> None:
        self.sums[record_id] = self.sums.get(record_id, 0) + row.astype(np.float64)
        self.counts[record_id] = self.counts.get(record_id, 0) + 1
        self.lengths[record_id] = record_length

    def pop_finished(self, keep: str | None):
        """Yield (id, length, windows, sum) of every sequence but `keep` (the one still being read)."""
        for record_id in [name for name in self.sums if name != keep]:
            yield record_id, self.lengths.pop(record_id), self.counts.pop(record_id), self.sums.pop(record_id)


def _scored_windows(fasta, *, length: int, stride: int, batch_size: int, score, short: list):
    """Yield (windows, values) per `batch_size` (sequence_id, sequence_length, start, window) tuples.

    A sequence ID that comes twice in `fasta` is an error: its windows would be averaged into one sequence."""
    began, n_windows, last_log = time.perf_counter(), 0, 0.0
    batch = []
    first_record: dict[str, int] = {}

    def flush():
        nonlocal n_windows, last_log
        values = score([window for *_, window in batch])
        n_windows += len(batch)
        seconds = time.perf_counter() - began
        if seconds - last_log >= PROGRESS_SECONDS:
            last_log = seconds
            logger.info(f"{n_windows:,} windows, {n_windows / seconds:,.0f} windows/s")
        return values

    for number, (record_id, sequence) in enumerate(io.iter_fasta(fasta), start=1):
        if record_id in first_record:
            raise PlasmidlmError(f"{fasta}: record {number}: sequence ID {record_id!r} comes twice (first as record "
                                 f"{first_record[record_id]}); give each sequence its own ID")
        first_record[record_id] = number
        starts = tile_starts(len(sequence), length, stride)
        if not starts:
            short.append((record_id, len(sequence)))
        for start in starts:
            batch.append((record_id, len(sequence), start, sequence[start : start + length]))
            if len(batch) == batch_size:
                yield batch, flush()
                batch = []
    if batch:
        yield batch, flush()
    seconds = time.perf_counter() - began
    logger.info(f"{n_windows:,} windows in {seconds:.1f} s, {n_windows / max(seconds, 1e-9):,.0f} windows/s")
    if short:
        logger.info(f"{len(short)} sequence(s) shorter than the model's {length}-nt window were not scored "
                    f"(listed with 0 windows), e.g. {short[0][0]} ({short[0][1]} nt)")


def _mean_rows(batches, on_window):
    """Consume scored batches, call `on_window` per window, and yield per-sequence means in input order."""
    means = _SequenceMeans()
    for batch, values in batches:
        for (record_id, record_length, start, _), row in zip(batch, values):
            on_window(record_id, start, row)
            means.add(record_id, record_length, row)
        last = batch[-1][0]
        for record_id, record_length, count, total in means.pop_finished(keep=last):
            yield record_id, record_length, count, total / count
    for record_id, record_length, count, total in means.pop_finished(keep=None):
        yield record_id, record_length, count, total / count


def _format(values) -> list[str]:
    return [f"{value:.6g}" for value in values]


def predict_fasta(model_dir, fasta, *, out_windows, out_sequences, stride: int | None = None,
                  batch_size: int | None = None, both_strands: bool = False, window_length: int | None = None,
                  trust_remote_code: bool = False, temperature: float = 1.0,
                  min_confidence: float | None = None, precision: str = "auto") -> dict:
    """Write `out_windows` (per window, gzipped TSV) and `out_sequences` (per sequence, TSV), both or neither.

    Windows have the model's training length (read from the model directory) and start every `stride`
    nt (default: one window length). Window probabilities are calibrated by `temperature` (logits / T); a
    sequence's probabilities are the mean of its windows', and its class is `uncertain` when the highest is
    below `min_confidence`. `precision`: see `evaluate.resolved_precision`.
    """
    check_tiling(stride=stride, batch_size=batch_size)
    model, tokenizer, metadata, length = load_model_dir(model_dir, window_length, trust_remote_code)
    classes = classes_of(model)

    def score(windows):
        return strand_averaged_proba(model, tokenizer, metadata, windows, batch_size=batch_size,
                                     both_strands=both_strands, temperature=temperature, precision=precision)

    short: list = []
    n_sequences = n_windows = 0
    with io.atomic_paths(out_windows, out_sequences) as (windows_tmp, sequences_tmp):
        with gzip.open(windows_tmp, "wt", newline="") as window_handle, \
                open(sequences_tmp, "w", newline="") as sequence_handle:
            window_writer = csv.writer(window_handle, delimiter="\t", lineterminator="\n")
            sequence_writer = csv.writer(sequence_handle, delimiter="\t", lineterminator="\n")
            window_writer.writerow(["sequence_id", "start", *probability_columns(classes)])
            sequence_writer.writerow(["sequence_id", "length", "windows", "predicted", *probability_columns(classes)])

            def on_window(record_id, start, row):
                window_writer.writerow([record_id, start, *_format(row)])

            batches = _scored_windows(fasta, length=length, stride=stride or length,
                                      batch_size=max(SCORE_WINDOWS, batch_size or 0), score=score, short=short)
            for record_id, record_length, count, mean in _mean_rows(batches, on_window):
                [predicted] = abstain(mean[None, :], classes, min_confidence)
                sequence_writer.writerow([record_id, record_length, count, predicted, *_format(mean)])
                n_sequences += 1
                n_windows += count
            for record_id, record_length in short:
                sequence_writer.writerow([record_id, record_length, 0, "", *[""] * len(classes)])
    return {"sequences": n_sequences, "too_short": len(short), "windows": n_windows}


class _NpyRows:
    """Append float32 rows to a raw file beside `path`, then write `path` as a .npy of the right shape: flat
    memory."""

    def __init__(self, path: Path, width: int):
        self.path, self.width, self.rows = path, width, 0
        self.raw = path.with_name(f"{path.name}.raw")
        self.handle = open(self.raw, "wb")

    def append(self, row: np.ndarray) -> None:
        self.handle.write(np.asarray(row, dtype="<f4").tobytes())
        self.rows += 1

    def finish(self) -> None:
        self.handle.close()
        with open(self.path, "wb") as out, open(self.raw, "rb") as raw:
            np.lib.format.write_array_header_1_0(
                out, {"descr": "<f4", "fortran_order": False, "shape": (self.rows, self.width)})
            shutil.copyfileobj(raw, out)

    def cleanup(self) -> None:
        self.handle.close()
        self.raw.unlink(missing_ok=True)


def embed_fasta(model_dir, fasta, *, out_prefix, stride: int | None = None, batch_size: int | None = None,
                window_length: int | None = None, trust_remote_code: bool = False) -> dict:
    """Mean-pooled embeddings per window and per sequence.

    Writes `<out_prefix>.windows.npy` with `<out_prefix>.windows.tsv` (sequence_id, start: one row per
    array row) and `<out_prefix>.sequences.npy` with `<out_prefix>.sequences.tsv` (sequence_id, length,
    windows); a sequence shorter than a window has 0 windows and a row of NaN.
    """
    check_tiling(stride=stride, batch_size=batch_size)
    model, tokenizer, metadata, length = load_model_dir(model_dir, window_length, trust_remote_code)
    width = model.config.hidden_size
    short: list = []
    n_sequences = 0
    outputs = [f"{out_prefix}.{name}" for name in ("windows.npy", "sequences.npy", "windows.tsv", "sequences.tsv")]
    with io.atomic_paths(*outputs) as (window_npy, sequence_npy, window_ids, sequence_ids):
        window_array, sequence_array = _NpyRows(window_npy, width), _NpyRows(sequence_npy, width)
        try:
            with open(window_ids, "w") as window_handle, open(sequence_ids, "w") as sequence_handle:
                window_handle.write("sequence_id\tstart\n")
                sequence_handle.write("sequence_id\tlength\twindows\n")

                def on_window(record_id, start, row):
                    window_handle.write(f"{record_id}\t{start}\n")
                    window_array.append(row)

                batches = _scored_windows(fasta, length=length, stride=stride or length,
                                          batch_size=max(SCORE_WINDOWS, batch_size or 0),
                                          score=lambda windows: embed_windows(model, tokenizer, metadata, windows,
                                                                              batch_size=batch_size),
                                          short=short)
                for record_id, record_length, count, mean in _mean_rows(batches, on_window):
                    sequence_handle.write(f"{record_id}\t{record_length}\t{count}\n")
                    sequence_array.append(mean)
                    n_sequences += 1
                for record_id, record_length in short:
                    sequence_handle.write(f"{record_id}\t{record_length}\t0\n")
                    sequence_array.append(np.full(width, np.nan))
            window_array.finish()
            sequence_array.finish()
        finally:
            window_array.cleanup()
            sequence_array.cleanup()
    return {"sequences": n_sequences, "too_short": len(short), "windows": window_array.rows, "dimensions": width}
