"""The steps of rules/baselines.smk: k-mer, majority-class, composition, embeddings and one-hot CNN baselines, on
the same splits and test windows as the experiments."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from plasmidlm import hub, io, layout
from plasmidlm.training.runs import best_checkpoint
from plasmidlm.evidence import COMPOSITION_BASELINES
from plasmidlm.steps.common import check_drawn, classes_of_split, split_plasmids, write_baseline
from plasmidlm.windows import WindowPolicy, capped_counts, draw_windows, rng_for, windows_from_counts

logger = logging.getLogger(__name__)


EMBEDDING_CHUNK = 2048  # test windows embedded at a time: bounds the memory of per-token states


def _baseline_training_windows(fasta, plasmids: pd.DataFrame, policy: WindowPolicy, *, config: dict, seed: tuple,
                               what: str) -> pd.DataFrame:
    """`config["windows_per_plasmid"]` random windows of every training plasmid, at most `config["max_windows"]`
    in all (spread evenly over the plasmids, seeded), streamed from the FASTA."""
    counts = capped_counts(plasmids["id"], config["windows_per_plasmid"], config["max_windows"], rng_for(*seed))
    [train] = windows_from_counts(io.iter_fasta(fasta), plasmids, counts, policy, strategy="random",
                                  reverse_complement_p=0.5, seeds=[seed], prefix="w")
    check_drawn(train, plasmids, f"{what} baseline training", policy)
    capped = sum(counts.values())
    if capped < len(plasmids) * config["windows_per_plasmid"]:
        logger.info(f"{what}: {capped:,} training windows instead of "
                    f"{len(plasmids) * config['windows_per_plasmid']:,} ({config['windows_per_plasmid']} per plasmid): "
                    f"capped at baselines.{what}.max_windows = {config['max_windows']:,}")
    return train


def fitted_kmer_baseline(fasta, split_path, *, kmer_config: dict, windows_config: dict, seed: int):
    """The k-mer baseline's logistic regression on k-mer frequencies of random windows of the training plasmids
    (cut as `windows_config` says: length, circular, ambiguous, max_n_fraction), and its training windows."""
    from plasmidlm import baselines

    plasmids = split_plasmids(split_path, "train")
    train = _baseline_training_windows(fasta, plasmids, WindowPolicy.from_config(windows_config), config=kmer_config,
                                       seed=(seed, "baseline", "kmer"), what="kmer")
    features = baselines.kmer_frequencies(train["sequence"].tolist(), kmer_config["k"])
    return baselines.fit_logistic(features, train["label"], kmer_config["C"], seed), train


def kmer_baseline(*, fasta, split_path, test_windows, kmer_config: dict, windows_config: dict, n_bootstrap: int,
                  seed: int, out_metrics, out_predictions):
    """k-mer frequencies + logistic regression (`fitted_kmer_baseline`), scored on the test windows."""
    from plasmidlm import baselines

    classes = classes_of_split(io.read_table(split_path))
    model, train = fitted_kmer_baseline(fasta, split_path, kmer_config=kmer_config, windows_config=windows_config,
                                        seed=seed)
    test = io.read_table(test_windows)
    proba = baselines.logistic_proba(model, baselines.kmer_frequencies(test["sequence"].tolist(), kmer_config["k"]),
                                     classes)
    metrics = write_baseline(test, proba, classes=classes, n_bootstrap=n_bootstrap, seed=seed, out_metrics=out_metrics,
                             out_predictions=out_predictions, training_windows=len(train))
    logger.info(f"{kmer_config['k']}-mer logistic regression on {len(train)} windows: window accuracy "
                f"{metrics['window']['accuracy']:.4f}, plasmid accuracy {metrics['plasmid']['accuracy']:.4f}")


def embeddings_baseline(*, fasta, split_path, test_windows, model: str, from_experiment: bool, embeddings_config: dict,
                        trust_remote_code: bool, windows_config: dict, n_bootstrap: int, seed: int,
                        out_logistic_metrics, out_logistic_predictions, out_cnn_metrics, out_cnn_predictions,
                        model_manifest=None):
    """A model's frozen embeddings of training windows (cut as `windows_config` says): mean-pooled + logistic
    regression, per-token + 1D CNN.

    `model` is an experiment's model folder (`from_experiment`: its best checkpoint by validation is used),
    a local Hugging Face directory or a hub id. `trust_remote_code` allows a model that ships its own code. With
    `model_manifest` (of a hub id or folder `model`), the model is loaded from its checked store folder, offline.
    Per-token states are never held for more than one batch (`EMBEDDING_CHUNK` test windows): the CNN's
    training batches are embedded anew every epoch.
    """
    from plasmidlm import baselines
    from plasmidlm.evaluate import embed_windows

    hub.offline()
    if from_experiment:
        model = Path(layout.checkpoint_in(model, best_checkpoint(model)))
    elif model_manifest is not None:
        model = hub.model_folder(model_manifest)
    logger.info(f"embeddings of {model}")
    encoder, tokenizer, metadata = baselines.load_encoder(model, trust_remote_code, embeddings_config["kmer"])
    plasmids = split_plasmids(split_path, "train")
    classes = classes_of_split(io.read_table(split_path))
    train = _baseline_training_windows(fasta, plasmids, WindowPolicy.from_config(windows_config),
                                       config=embeddings_config, seed=(seed, "baseline", "embeddings"),
                                       what="embeddings")
    sequences = train["sequence"].to_numpy()
    pooled = embed_windows(encoder, tokenizer, metadata, sequences, precision="fp32")  # fp32, as the token states
    logistic = baselines.fit_logistic(pooled, train["label"], embeddings_config["C"], seed)
    cnn = baselines.fit_token_cnn(
        lambda rows: baselines.encoder_states(encoder, tokenizer, metadata, sequences[rows]),
        train["label"].map(classes.index).to_numpy(), n_classes=len(classes), hidden=encoder.config.hidden_size,
        epochs=embeddings_config["cnn_epochs"], seed=seed, channels=embeddings_config["cnn_channels"],
        device=next(encoder.parameters()).device)
    test = io.read_table(test_windows)
    logistic_proba, cnn_proba = [], []
    for begin in range(0, len(test), EMBEDDING_CHUNK):
        states, masks = baselines.token_states(encoder, tokenizer, metadata,
                                               test["sequence"].iloc[begin : begin + EMBEDDING_CHUNK])
        logistic_proba.append(baselines.logistic_proba(logistic, baselines.mean_pool(states, masks), classes))
        cnn_proba.append(baselines.token_cnn_proba(cnn, states, masks))
    for name, proba, out_metrics, out_predictions in [
        ("mean-pooled embeddings + logistic regression", logistic_proba, out_logistic_metrics,
         out_logistic_predictions),
        ("per-token embeddings + 1D CNN", cnn_proba, out_cnn_metrics, out_cnn_predictions),
    ]:
        metrics = write_baseline(test, np.concatenate(proba), classes=classes, n_bootstrap=n_bootstrap, seed=seed,
                                 out_metrics=out_metrics, out_predictions=out_predictions, training_windows=len(train))
        logger.info(f"{name} on {len(train)} windows: window accuracy {metrics['window']['accuracy']:.4f}, plasmid "
                    f"accuracy {metrics['plasmid']['accuracy']:.4f}")


def majority_baseline(split_path, test_windows, *, n_bootstrap: int, seed: int, out_metrics, out_predictions):
    from plasmidlm import baselines

    split_table = io.read_table(split_path)
    classes = classes_of_split(split_table)
    test = io.read_table(test_windows)
    train_labels = split_table.loc[split_table["split"] == "train", "label"]
    metrics = write_baseline(test, baselines.majority_proba(train_labels, len(test), classes), classes=classes,
                             n_bootstrap=n_bootstrap, seed=seed, out_metrics=out_metrics,
                             out_predictions=out_predictions)
    logger.info(f"majority class: window accuracy {metrics['window']['accuracy']:.4f}")


def _composition_features(name: str, sequences) -> np.ndarray:
    from plasmidlm import baselines, evidence

    if name == "composition_gc":
        return evidence.gc_content(sequences)
    return baselines.kmer_frequencies(sequences, int(name.removeprefix("composition_").removesuffix("mer")))


def composition_baselines(*, fasta, split_path, test_windows, composition_config: dict, windows_config: dict,
                          n_bootstrap: int, seed: int, out_metrics: dict, out_predictions: dict):
    """Composition alone (GC content; 2-mer and 4-mer frequencies) + logistic regression, on the training
    windows of the k-mer baseline (same seed and `windows_config`) and the fixed test windows.

    `out_metrics` and `out_predictions` map each name of COMPOSITION_BASELINES to its output path.
    """
    from plasmidlm import baselines

    plasmids = split_plasmids(split_path, "train")
    classes = classes_of_split(io.read_table(split_path))
    policy = WindowPolicy.from_config(windows_config)
    train = draw_windows(io.iter_fasta(fasta), plasmids, policy, per_plasmid=composition_config["windows_per_plasmid"],
                         seed=(seed, "baseline", "kmer"))
    check_drawn(train, plasmids, "composition baseline training", policy)
    test = io.read_table(test_windows)
    for name, description in COMPOSITION_BASELINES.items():
        model = baselines.fit_logistic(_composition_features(name, train["sequence"].tolist()), train["label"],
                                       composition_config["C"], seed)
        proba = baselines.logistic_proba(model, _composition_features(name, test["sequence"].tolist()), classes)
        metrics = write_baseline(test, proba, classes=classes, n_bootstrap=n_bootstrap, seed=seed,
                                 out_metrics=out_metrics[name], out_predictions=out_predictions[name])
        logger.info(f"{description} + logistic regression on {len(train)} windows: window accuracy "
                    f"{metrics['window']['accuracy']:.4f}, plasmid accuracy {metrics['plasmid']['accuracy']:.4f}")


def cnn_baseline(train_windows, *, val_windows, split_path, test_windows, cnn_config: dict, n_bootstrap: int, seed: int,
                 out_metrics, out_predictions):
    """A one-hot 1D CNN trained from scratch on an experiment's training windows (its first epoch's, when they are
    drawn afresh each epoch); the epoch is chosen on the validation windows. Records its training and scoring cost.
    """
    from plasmidlm import cnn
    from plasmidlm.metrics import evaluate_predictions, predictions_table

    classes = classes_of_split(io.read_table(split_path))
    train = io.read_table(train_windows)
    if "epoch" in train:
        train = train[train["epoch"] == 0]
    val = io.read_table(val_windows)
    model, training = cnn.fit(train["sequence"], train["label"].map(classes.index).to_numpy(),
                              val_sequences=val["sequence"], val_labels=val["label"].map(classes.index).to_numpy(),
                              n_classes=len(classes), epochs=cnn_config["epochs"], seed=seed,
                              channels=cnn_config["channels"], kernel=cnn_config["kernel"],
                              batch_size=cnn_config["batch_size"], learning_rate=cnn_config["learning_rate"])
    test = io.read_table(test_windows)
    began = time.perf_counter()
    proba = cnn.predict_proba(model, test["sequence"])
    seconds = time.perf_counter() - began
    predictions = predictions_table(test, proba, classes)
    metrics = evaluate_predictions(predictions, classes, n_bootstrap, seed)
    metrics["training"] = training
    metrics["inference"] = {"windows": len(test), "seconds": seconds,
                            "windows_per_second": len(test) / max(seconds, 1e-9), "device": "cpu"}
    io.write_table(predictions, out_predictions)
    io.write_json(metrics, out_metrics)
    logger.info(f"one-hot CNN ({training['parameters']:,} parameters) on {training['windows']} windows, "
                f"{training['seconds']:.1f} s to train ({training['windows_per_second']:.0f} windows/s), epoch "
                f"{training['best_epoch']} chosen on validation: test window accuracy "
                f"{metrics['window']['accuracy']:.4f}, plasmid accuracy {metrics['plasmid']['accuracy']:.4f}")
