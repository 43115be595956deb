"""Batched inference on windows (a classifier's probabilities, a model body's mean-pooled embeddings), and the
metrics of a checkpoint."""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import torch

from plasmidlm import PlasmidlmError
from plasmidlm.config import CPU_BATCH_SIZE, GPU_BATCH_SIZE, INFERENCE_PRECISIONS
from plasmidlm.metrics import HEADLINE, evaluate_predictions, predictions_table
from plasmidlm.model import forward_input_names, last_hidden_state, load_checkpoint, token_limit
from plasmidlm.precision import cpu_precision, gpu_precision
from plasmidlm.tokenize import encode, kmer_id_table, kmer_ids
from plasmidlm.windows import reverse_complement

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_token_counts(attention_mask: torch.Tensor, limit: int | None, source: str, first_window: int) -> None:
    """Stop, rather than truncate, when a window has more tokens than the model takes."""
    if limit is None:
        return
    lengths = attention_mask.sum(dim=1)
    if int(lengths.max()) > limit:
        row = int(lengths.argmax())
        raise PlasmidlmError(f"window {first_window + row + 1} tokenizes to {int(lengths[row])} tokens, above the "
                             f"model's limit of {limit} ({source}); use shorter windows (--window-length)")


def default_batch_size(device: torch.device) -> int:
    """Windows per inference batch when none is given: larger on a GPU, where a batch must fill the device."""
    return GPU_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE


def resolved_precision(precision: str, device: torch.device) -> str:
    """The precision inference runs in: `precision` itself, or for "auto" what the device runs fast: on a CUDA GPU
    by its compute capability (`precision.gpu_precision`: bf16 from 8.0, fp16 on 7.x, fp32 below), on a CPU bf16
    where it has AMX (`precision.cpu_precision`), fp32 elsewhere."""
    if precision not in INFERENCE_PRECISIONS:
        raise PlasmidlmError(f"unknown inference precision {precision!r} ({', '.join(INFERENCE_PRECISIONS)})")
    if precision == "auto":
        return gpu_precision(device) if device.type == "cuda" else cpu_precision()
    return precision


def inference_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of inference (`resolved_precision`), None for fp32."""
    return DTYPES[resolved_precision(precision, device)]


def _prefetched(items: list, prepare):
    """`prepare(item)` for each item in order, the next one prepared in a thread while the caller uses this one."""
    with ThreadPoolExecutor(1) as pool:
        pending = None
        for item in items:
            following = pool.submit(prepare, item)
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()


def _host_batch(tokenizer, table: dict | None, sequences: list[str], *, kmer: int | None, stride: int) -> dict:
    """input_ids and attention_mask of a batch: numpy k-mer ids when the tokenizer allows and the windows have one
    length, the tokenizer otherwise."""
    if table is not None and len({len(sequence) for sequence in sequences}) == 1:
        ids = torch.from_numpy(kmer_ids(table, sequences, kmer, stride).astype(np.int64))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    return encode(tokenizer, sequences, kmer=kmer, stride=stride)


def _batched(model, tokenizer, metadata: dict, sequences, *, batch_size: int | None, compute, width: int,
             precision: str = "auto") -> np.ndarray:
    """Stack `compute(model_inputs, attention_mask)` of `sequences`, batch by batch.

    The model gets only the inputs its forward takes; windows it cannot take whole are an error. Token ids of the
    next batch are prepared in a thread while the device runs this one; on a GPU they are copied from pinned
    memory without blocking, results come back the same way, and the host waits for the device once, at the
    end. `batch_size` None: `default_batch_size`; a batch that does not fit in memory is halved until it does
    (with a warning). `precision`: see `inference_precision`.
    """
    device = next(model.parameters()).device
    batch_size = batch_size or default_batch_size(device)
    dtype = inference_precision(precision, device)
    kmer, stride = metadata.get("kmer"), metadata.get("kmer_stride", 1)
    table = kmer_id_table(tokenizer, kmer) if kmer else None
    names = forward_input_names(model)
    limit, source = token_limit(model.config, tokenizer)
    sequences = list(sequences)
    pinned = device.type == "cuda"

    def prepare(begin: int) -> dict:
        batch = _host_batch(tokenizer, table, sequences[begin : begin + batch_size], kmer=kmer, stride=stride)
        check_token_counts(batch["attention_mask"], limit, source, begin)
        return {name: tensor.pin_memory() if pinned else tensor for name, tensor in batch.items()}

    out = torch.empty((len(sequences), width), dtype=torch.float32, pin_memory=pinned)
    starts = list(range(0, len(sequences), batch_size))
    size = batch_size  # halved while a batch does not fit in the GPU's memory
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        for begin, batch in zip(starts, _prefetched(starts, prepare)):
            batch = {name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()}
            done = 0
            while done < len(batch["attention_mask"]):
                part = {name: tensor[done : done + size] for name, tensor in batch.items()}
                try:
                    values = compute({name: part[name] for name in names}, part["attention_mask"]).float()
                except torch.cuda.OutOfMemoryError:  # torch.OutOfMemoryError is its name from torch 2.5 only
                    if size == 1:
                        raise
                    size //= 2
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    warnings.warn(f"inference batches of {size * 2} windows do not fit in the device's memory; "
                                  f"using {size}", stacklevel=2)
                    continue
                out[begin + done : begin + done + len(values)].copy_(values, non_blocking=True)
                done += len(values)
    if pinned:
        torch.cuda.synchronize(device)
    return out.numpy()


def predict_proba(model, tokenizer, metadata: dict, sequences, *, batch_size: int | None = None,
                  precision: str = "auto") -> np.ndarray:
    """Class probabilities for each DNA window in `sequences` (same order)."""
    return _batched(model, tokenizer, metadata, sequences, batch_size=batch_size,
                    compute=lambda inputs, mask: torch.softmax(model(**inputs).logits.float(), dim=-1),
                    width=model.config.num_labels, precision=precision)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over each window's non-padding tokens."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1)


def embed_windows(model, tokenizer, metadata: dict, sequences, *, batch_size: int | None = None,
                  precision: str = "auto") -> np.ndarray:
    """Mean of the last hidden state over each window's non-padding tokens (not the [CLS] token)."""
    return _batched(model, tokenizer, metadata, sequences, batch_size=batch_size,
                    compute=lambda inputs, mask: mean_pool(last_hidden_state(model, inputs).float(), mask),
                    width=model.config.hidden_size, precision=precision)


def classes_of(model) -> list[str]:
    return [model.config.id2label[i] for i in range(model.config.num_labels)]


def strand_averaged_proba(model, tokenizer, metadata: dict, sequences, *, batch_size: int | None = None,
                          both_strands: bool = False, temperature: float = 1.0, precision: str = "auto") -> np.ndarray:
    """Class probabilities, calibrated by `temperature` (softmax(logits / T)), optionally averaged over each window
    and its reverse complement. The temperature is fitted on one strand's probabilities (the evidence step), so
    each strand is calibrated before the two are averaged."""
    from plasmidlm.evidence import scale_temperature

    def calibrated(windows):
        proba = predict_proba(model, tokenizer, metadata, windows, batch_size=batch_size, precision=precision)
        return proba if temperature == 1.0 else scale_temperature(proba, temperature)

    sequences = list(sequences)
    proba = calibrated(sequences)
    if both_strands:
        proba = (proba + calibrated(map(reverse_complement, sequences))) / 2
    return proba


def evaluate_checkpoint(checkpoint_dir, *, windows: pd.DataFrame, val_windows: pd.DataFrame | None = None,
                        batch_size: int | None = None, both_strands: bool = False, n_bootstrap: int = 0, seed: int = 0,
                        trust_remote_code: bool = False, precision: str = "auto"):
    """Predictions on the test `windows` and metrics (with bootstrap intervals) of one checkpoint.

    A checkpoint of a model with its own code loads only with `trust_remote_code`. `precision`: see
    `resolved_precision`.

    With `val_windows`, the headline metrics on the validation windows are added under `validation`.
    The time and throughput of scoring the test windows are recorded under `inference`.
    """
    device = default_device()
    model, tokenizer, metadata = load_checkpoint(checkpoint_dir, device, trust_remote_code,
                                                 "set model.trust_remote_code: true")
    classes = classes_of(model)
    began = time.perf_counter()
    proba = strand_averaged_proba(model, tokenizer, metadata, windows["sequence"], batch_size=batch_size,
                                  both_strands=both_strands, precision=precision)
    seconds = time.perf_counter() - began
    predictions = predictions_table(windows, proba, classes)
    metrics = evaluate_predictions(predictions, classes, n_bootstrap, seed)
    metrics["inference"] = {"windows": len(windows), "seconds": seconds,
                            "windows_per_second": len(windows) / max(seconds, 1e-9), "both_strands": both_strands,
                            "device": str(device),
                            "precision": resolved_precision(precision, device)}
    if val_windows is not None:
        val_proba = strand_averaged_proba(model, tokenizer, metadata, val_windows["sequence"], batch_size=batch_size,
                                          both_strands=both_strands, precision=precision)
        validation = evaluate_predictions(predictions_table(val_windows, val_proba, classes), classes)
        metrics["validation"] = {level: {key: validation[level][key] for key in ["n", *HEADLINE]}
                                 for level in ("window", "plasmid")}
    return predictions, metrics
