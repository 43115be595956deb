"""The steps of rules/evidence.smk: shuffled test windows, contig tiles, and the controls and calibration of an
experiment's best checkpoint and of the k-mer baseline."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from plasmidlm import PlasmidlmError, hub, io, layout
from plasmidlm.training.runs import best_checkpoint
from plasmidlm.steps.baselines import fitted_kmer_baseline
from plasmidlm.steps.common import classes_of_split, split_plasmids

logger = logging.getLogger(__name__)


def shuffled_test_windows(test_windows, seed: int, out):
    """The test windows, each dinucleotide-shuffled (seeded): same composition, order destroyed."""
    from plasmidlm.evidence import shuffled_windows

    test = io.read_table(test_windows)
    io.write_table(shuffled_windows(test, seed), out)
    logger.info(f"{len(test)} test windows shuffled, dinucleotide counts preserved")


def contig_tiles(fasta, split_path, *, length: int, contig_lengths: list[int], seed: int, out_tiles, out_contigs):
    """Non-overlapping windows (tiles) of every test plasmid, and sub-sequences of each length made of them."""
    from plasmidlm import evidence

    plasmids = split_plasmids(split_path, "test")
    tile_table = evidence.tiles(io.iter_fasta(fasta, set(plasmids["id"])), plasmids, length)
    contig_table = evidence.contigs(dict(zip(plasmids["id"], plasmids["length"])), contig_lengths, length, seed)
    counts = contig_table.groupby("contig_length")["plasmid_id"].agg(["size", "nunique"])
    logger.info(f"{len(tile_table)} tiles of {length} nt from {len(plasmids)} test plasmids; contigs per length: "
                + ", ".join(f"{row.Index} nt: {row.size} from {row.nunique} plasmids" for row in counts.itertuples()))
    io.write_table(tile_table, out_tiles)
    io.write_table(contig_table, out_contigs)


def _headline_levels(metrics: dict) -> dict:
    from plasmidlm.metrics import HEADLINE

    return {level: {key: metrics[level][key] for key in ["n", *HEADLINE, "ci95"] if key in metrics[level]}
            for level in ("window", "plasmid")}


def _contig_curve(tiles_path, contigs_path, tile_proba: np.ndarray, *, length: int, classes: list[str],
                  n_bootstrap: int, seed: int) -> pd.DataFrame:
    from plasmidlm import evidence

    tile_table, contig_table = io.read_table(tiles_path), io.read_table(contigs_path)
    proba = evidence.contig_proba(tile_table, tile_proba, contig_table, length)
    labels = dict(zip(tile_table["plasmid_id"], tile_table["label"]))
    return evidence.contig_curve(contig_table, proba, labels, classes=classes, n_bootstrap=n_bootstrap, seed=seed)


def model_evidence(model_dir, *, eval_dir, test_windows, val_windows, shuffled_windows, tiles_path, contigs_path,
                   length: int, evaluate_config: dict, evidence_config: dict, seed: int, trust_remote_code: bool,
                   out_json, out_contig_lengths, out_shuffled_predictions):
    """Controls and calibration of an experiment's best checkpoint (chosen on validation).

    Scores the test windows on both strands (strand flips), their dinucleotide-shuffled copies, the validation
    windows (a temperature fitted on them) and the tiles of the test plasmids (accuracy per contig length, from
    the mean of the calibrated probabilities of a contig's tiles, as `predict` aggregates). The forward-strand
    test probabilities come from the checkpoint's evaluation (`eval_dir`) unless it averaged both strands.
    """
    hub.offline()
    from plasmidlm import evidence
    from plasmidlm.evaluate import classes_of, default_device, predict_proba, resolved_precision
    from plasmidlm.metrics import evaluate_predictions, predictions_table, probability_columns
    from plasmidlm.model import load_checkpoint
    from plasmidlm.windows import reverse_complement

    step = best_checkpoint(model_dir)
    model, tokenizer, metadata = load_checkpoint(Path(layout.checkpoint_in(model_dir, step)), default_device(),
                                                 trust_remote_code, "set model.trust_remote_code: true")
    classes = classes_of(model)

    def score(sequences):
        return predict_proba(model, tokenizer, metadata, sequences, batch_size=evaluate_config["batch_size"],
                             precision=evaluate_config["precision"])

    began = time.perf_counter()
    test, shuffled = io.read_table(test_windows), io.read_table(shuffled_windows)
    val, tile_table = io.read_table(val_windows), io.read_table(tiles_path)
    if evaluate_config["both_strands"]:
        forward = score(test["sequence"])
    else:
        evaluated = io.read_table(layout.checkpoint_predictions_in(eval_dir, step))
        if evaluated["window_id"].tolist() != test["window_id"].tolist():
            raise PlasmidlmError(f"{eval_dir}/checkpoint-{step}: predictions are not of the current test windows")
        forward = evaluated[probability_columns(classes)].to_numpy()
    reverse = score(test["sequence"].map(reverse_complement))
    shuffled_proba = score(shuffled["sequence"])
    calibration = evidence.calibration_report(val, score(val["sequence"]), test, forward, classes=classes,
                                              n_bins=evidence_config["calibration_bins"])
    tile_proba = evidence.scale_temperature(score(tile_table["sequence"]), calibration["temperature"])
    n_windows = (3 if evaluate_config["both_strands"] else 2) * len(test) + len(val) + len(tile_table)
    seconds = time.perf_counter() - began
    n_bootstrap = evaluate_config["bootstrap"]
    shuffled_predictions = predictions_table(shuffled, shuffled_proba, classes)
    result = {
        "checkpoint": step,
        "test": _headline_levels(evaluate_predictions(predictions_table(test, forward, classes), classes,
                                                      n_bootstrap, seed)),
        "shuffled": _headline_levels(evaluate_predictions(shuffled_predictions, classes, n_bootstrap, seed)),
        "strand_flip_fraction": evidence.strand_flip_fraction(forward, reverse),
        "calibration": calibration,
        "inference": {"windows": n_windows, "seconds": seconds, "windows_per_second": n_windows / max(seconds, 1e-9),
                      "precision": resolved_precision(evaluate_config["precision"], default_device())},
    }
    curve = _contig_curve(tiles_path, contigs_path, tile_proba, length=length, classes=classes, n_bootstrap=n_bootstrap,
                          seed=seed)
    logger.info(f"checkpoint-{step}: test window accuracy {result['test']['window']['accuracy']:.4f}, after a "
                f"dinucleotide shuffle {result['shuffled']['window']['accuracy']:.4f}; "
                f"{result['strand_flip_fraction']:.1%} of windows flip class on the other strand; temperature "
                f"{calibration['temperature']:.3f}, window ECE "
                f"{calibration['window']['before']['ece']:.4f} -> {calibration['window']['after']['ece']:.4f}")
    logger.info(curve.to_string(index=False))
    io.write_table(shuffled_predictions, out_shuffled_predictions)
    io.write_table(curve, out_contig_lengths)
    io.write_json(result, out_json)


def kmer_evidence(*, fasta, split_path, shuffled_windows, tiles_path, contigs_path, kmer_config: dict,
                  windows_config: dict, n_bootstrap: int, seed: int, out_json, out_contig_lengths):
    """The k-mer baseline (fitted again, as kmer_baseline fits it) on the shuffled test windows and per contig
    length."""
    from plasmidlm import baselines
    from plasmidlm.metrics import evaluate_predictions, predictions_table

    classes = classes_of_split(io.read_table(split_path))
    length = windows_config["length"]
    model, _ = fitted_kmer_baseline(fasta, split_path, kmer_config=kmer_config, windows_config=windows_config,
                                    seed=seed)

    def score(sequences):
        return baselines.logistic_proba(model, baselines.kmer_frequencies(sequences.tolist(), kmer_config["k"]),
                                        classes)

    shuffled = io.read_table(shuffled_windows)
    metrics = evaluate_predictions(predictions_table(shuffled, score(shuffled["sequence"]), classes), classes,
                                   n_bootstrap, seed)
    curve = _contig_curve(tiles_path, contigs_path, score(io.read_table(tiles_path)["sequence"]), length=length,
                          classes=classes, n_bootstrap=n_bootstrap, seed=seed)
    logger.info(f"{kmer_config['k']}-mer baseline after a dinucleotide shuffle: window accuracy "
                f"{metrics['window']['accuracy']:.4f}")
    logger.info(curve.to_string(index=False))
    io.write_table(curve, out_contig_lengths)
    io.write_json({"shuffled": _headline_levels(metrics)}, out_json)
