"""The memory and run time each workflow job asks for, from the size of its inputs and its attempt.

Each job's memory is a fixed part (Python, its libraries, a model) plus a part per MB of each input that it
holds or whose content it turns into arrays; the figures come from `bench/model_scale.py` and
`bench/data_scale.py` (bench/README.md), with headroom. Gzip-compressed inputs count as `GZ_EXPANSION` times
their size. A retry (Snakemake's `attempt`, with `--retries` or a rule's `retries`) asks for `attempt` times as
much memory and time, up to a `cap` (on Slurm: the partition's largest node and time limit, `plasmidlm.cluster`).

Jobs that load a hub model or model folder add a part from its manifest (plasmidlm.hub), `model_mb`, in MB:

    training:   P × 12 B  +  batch × tokens × hidden × layers × 16 × 4 B
    inference:  P × 8 B   +  batch × tokens × hidden × 16 × 4 B

P is the manifest's parameter count; 12 bytes per parameter when training are the fp32 weights, the pinned host
copy that background checkpoint writes fill, and the serialised checkpoint; 8 when only loading (the weights and
the state dict they are read from). Activations: 16 floats per token, hidden unit and layer kept for the backward
pass of a training batch; one layer's at a time for inference. Tokens are the window length (at most one token per
nucleotide), batch the job's batch size, hidden and layers from the model's config.json. The built-in and
pretrained models have no manifest: their fixed part covers them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

GZ_EXPANSION = 4.0  # uncompressed / gzip-compressed size of FASTA and window tables
ROUND_MB = 100

# job: (fixed MB, {input: MB of memory per uncompressed MB of that input})
MEMORY = {
    "validate": (1000, {"fasta": 0.0, "labels": 4.0}),
    "select_classes": (1000, {"validated": 4.0}),
    "sketch": (1000, {"fasta": 0.15}),
    "near_duplicates": (1000, {"sketches": 3.0}),
    "near_duplicate_groups": (1000, {"sketches": 3.0}),
    "split": (1000, {"selected": 8.0}),
    "held_out_windows": (1000, {"split": 8.0}),
    # windows: how many are drawn per epoch (a count, not MB); fresh windows are drawn and written epoch by epoch
    "training_windows": (1000, {"windows": 0.001}),
    "kmer_coverage": (1000, {"split": 4.0, "test": 60.0}),
    "leakage": (1000, {"split": 4.0, "train": 0.1, "test": 8.0, "val": 8.0}),
    # windows: the table's MB per epoch drawn; model: `model_mb` of a hub model or model folder
    "train": (3000, {"windows": 6.0, "val": 8.0, "split": 4.0, "model": 1.0}),
    "pretrain": (3000, {"split": 4.0, "corpus_windows": 0.001}),  # corpus_windows: a count, not MB
    "evaluate_checkpoint": (3000, {"checkpoint": 3.0, "test": 8.0, "val": 8.0, "model": 1.0}),
    "kmer_baseline": (1000, {"split": 4.0, "test": 8.0, "features": 3.5}),  # features: MB of the training matrix
    "majority_baseline": (1000, {"split": 4.0, "test": 8.0}),
    "embeddings_baseline": (4000, {"split": 4.0, "test": 8.0, "model": 1.0}),
    "composition_baselines": (3000, {"split": 4.0, "test": 8.0}),
    "cnn_baseline": (3000, {"train": 8.0, "val": 8.0, "test": 8.0}),
    "shuffled_test_windows": (1000, {"test": 8.0}),
    "contig_tiles": (1000, {"split": 4.0}),
    "model_evidence": (3000, {"test": 8.0, "val": 8.0, "shuffled": 8.0, "tiles": 8.0, "contigs": 4.0, "model": 1.0}),
    "kmer_evidence": (3000, {"split": 4.0, "shuffled": 8.0, "tiles": 8.0, "contigs": 4.0}),
    "report": (2000, {}),
    "provenance": (1000, {}),
    "predict": (3000, {"fasta": 0.0, "model": 1.0}),
    "manifest": (1000, {}),
    "fetch_model": (1000, {}),
    "local_model_manifest": (1000, {}),
}

# job: (fixed minutes, {input: minutes per uncompressed GB of that input}); training jobs resume from their last
# checkpoint when a time limit stops them.
RUNTIME = {
    "validate": (10, {"fasta": 1.0}),
    "sketch": (10, {"fasta": 4.0}),
    "near_duplicates": (10, {"sketches": 30.0}),
    "held_out_windows": (10, {"fasta": 1.0}),
    "training_windows": (10, {"fasta": 2.0}),
    "kmer_coverage": (10, {"fasta": 10.0}),
    "leakage": (10, {"train": 10.0}),
    "train": (1440, {}),
    "pretrain": (1440, {}),
    "evaluate_checkpoint": (60, {"test": 600.0}),
    "kmer_baseline": (60, {"fasta": 4.0}),
    "embeddings_baseline": (120, {"fasta": 4.0}),
    "composition_baselines": (60, {"fasta": 4.0}),
    "cnn_baseline": (120, {"train": 100.0}),
    "shuffled_test_windows": (10, {"test": 10.0}),
    "contig_tiles": (10, {"fasta": 2.0}),
    "model_evidence": (60, {"test": 600.0, "tiles": 600.0}),
    "kmer_evidence": (60, {"fasta": 4.0}),
    "predict": (60, {"fasta": 20.0}),
}
# Host bytes per parameter, and floats of activations per token and hidden unit (times layers when training)
PARAMETER_BYTES = {"train": 12, "inference": 8}
ACTIVATION_FLOATS = 16
DEFAULT_MEMORY = (1000, {})
DEFAULT_RUNTIME = (10, {})


def _path_mb(path: str) -> float:
    """Uncompressed MB of a file (estimated for gzip), or of the files directly in a directory."""
    if os.path.isdir(path):
        return sum(_path_mb(str(child)) for child in Path(path).iterdir() if child.is_file())
    # A FileNotFoundError naming the input (not there yet, e.g. in a dry run) tells Snakemake to decide later.
    size = os.path.getsize(path) / 1e6
    return size * GZ_EXPANSION if path.endswith(".gz") else size


def input_mb(inputs) -> dict[str, float]:
    """{input name: uncompressed MB} for (name, path or list of paths) pairs, e.g. a Snakemake job's input.items()."""
    return {name: sum(_path_mb(str(path)) for path in ([paths] if isinstance(paths, (str, os.PathLike)) else paths))
            for name, paths in inputs}


def read_model(manifest_path: str) -> dict:
    """The manifest of a model (plasmidlm.hub); a FileNotFoundError while it is not fetched yet (a dry run) tells
    Snakemake to decide the memory later."""
    with open(manifest_path) as handle:
        return json.load(handle)


def model_mb(job: str, model: dict, *, batch_size: int, tokens: int) -> float:
    """MB a job needs for a model of the manifest `model`: parameters and activations (module docstring)."""
    training = job == "train"
    weights = model["parameters"] * PARAMETER_BYTES["train" if training else "inference"]
    layers = (model.get("layers") or 1) if training else 1
    activations = batch_size * tokens * (model.get("hidden_size") or 0) * layers * ACTIVATION_FLOATS * 4
    return (weights + activations) / 1e6


def kmer_features_mb(windows: int, k: int) -> float:
    """MB of the k-mer baseline's float32 training matrix: windows × canonical k-mers."""
    columns = (4**k + (4 ** (k // 2) if k % 2 == 0 else 0)) // 2
    return windows * columns * 4 / 1e6


def training_plasmids(split_path: str) -> int:
    """Plasmids of the training split in split.tsv."""
    with open(split_path) as handle:
        column = handle.readline().rstrip("\n").split("\t").index("split")
        return sum(line.rstrip("\n").split("\t")[column] == "train" for line in handle)


def _estimate(table: dict, default: tuple, job: str, *, sizes: dict[str, float], scale: float) -> float:
    fixed, per_input = table.get(job, default)
    return fixed + sum(factor * sizes.get(name, 0.0) * scale for name, factor in per_input.items())


def mem_mb(job: str, sizes: dict[str, float], attempt: int = 1, *, cap: int | None = None) -> int:
    """Memory to ask for: the job's estimate from its input sizes (MB, `input_mb`), times `attempt`; a retry
    asks for at most `cap`."""
    memory = _estimate(MEMORY, DEFAULT_MEMORY, job, sizes=sizes, scale=1.0)
    first = int(math.ceil(memory / ROUND_MB) * ROUND_MB)
    # A first request above the cap does not grow; plasmidlm.cluster.check_fits reports it.
    return first * attempt if cap is None else min(first * attempt, max(first, cap))


def runtime(job: str, sizes: dict[str, float], attempt: int = 1, *, cap: int | None = None) -> int:
    """Minutes to ask for: the job's estimate from its input sizes (MB, `input_mb`), times `attempt`, at most
    `cap`."""
    first = int(math.ceil(_estimate(RUNTIME, DEFAULT_RUNTIME, job, sizes=sizes, scale=1e-3)))
    return first * attempt if cap is None else min(first * attempt, cap)
