"""One function per pipeline step: read the step's input files, call the library, write its outputs.

Workflow scripts and the command line call these; they never import Snakemake. The model-side modules (torch,
transformers, scikit-learn) are imported by the steps that use them, so that data steps start in a second.
"""

from __future__ import annotations

import math
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from plasmidlm import PlasmidlmError, __version__, io, neardup
from plasmidlm.checkpoints import best_checkpoint, schedule
from plasmidlm.classes import select_classes
from plasmidlm.split import (
    check_deviation,
    cross_class_groups,
    largest_groups,
    split_by_plasmid,
    split_summary,
    stratification,
)
from plasmidlm.windows import (
    assert_no_plasmid_leakage,
    capped_counts,
    draw_balanced_windows,
    draw_windows,
    rng_for,
    sequence_hashes,
    shared_window_sequences,
    windows_covered_by_kmers,
    windows_from_counts,
)

PACKAGES = ["plasmidlm", "torch", "transformers", "accelerate", "tokenizers", "numpy", "pandas",
            "scikit-learn", "biopython", "snakemake"]


LARGEST_GROUPS = 10  # groups listed, with their diameter, in near_duplicate_groups.json and split.json
EMBEDDING_CHUNK = 2048  # test windows embedded at a time: bounds the memory of per-token states


def _noop(message: str) -> None:
    pass


def classes_of_split(split: pd.DataFrame) -> list[str]:
    return sorted(split["label"].unique())


def _split_plasmids(split_path, name: str) -> pd.DataFrame:
    split = io.read_table(split_path)
    return split[split["split"] == name].reset_index(drop=True)


def validate(fasta, labels, data_config: dict, window_length: int, out_table, out_summary, log=_noop):
    table, summary = io.validate_inputs(
        fasta, labels, data_config["id_column"], data_config["label_column"], window_length,
        data_config["short_sequences"], data_config["labels_without_sequence"],
    )
    if summary["skipped_short"]:
        log(f"skipped {summary['skipped_short']} sequence(s) shorter than {window_length} nt")
    if summary["labels_without_sequence"]:
        log(f"warning: {summary['labels_without_sequence']} labelled ID(s) have no sequence in {fasta}")
    log(f"{summary['usable']} usable sequences, {summary['total_length']:,} nt")
    io.write_table(table, out_table)
    io.write_json(summary, out_summary)


def select(validated, classes_config: dict, out_selected, out_classes, log=_noop):
    selected, counts = select_classes(io.read_table(validated), **classes_config)
    log(f"selected {counts['selected'].sum()} of {len(counts)} classes, {len(selected)} plasmids")
    io.write_table(counts, out_classes)
    io.write_table(selected, out_selected)


def sketch(fasta, validated, ksize: int, scaled: int, out, threads: int = 1, log=_noop):
    """FracMinHash sketches of every usable sequence, for finding near-duplicates."""
    usable = set(io.read_table(validated)["id"])
    ids, sketches = neardup.sketch_records(io.iter_fasta(fasta, usable), ksize, scaled, threads)
    log(f"sketched {len(ids)} sequences (k={ksize}, scaled={scaled}): {sum(map(len, sketches)):,} hashes")
    neardup.write_sketches(out, ids, sketches, ksize, scaled)


def near_duplicates(sketches, selected, measure: str, threshold: float, out, log=_noop):
    """Pairs of selected plasmids whose sketches are similar at or above the threshold."""
    chosen = set(io.read_table(selected)["id"])
    ids, hashes = neardup.read_sketches(sketches)
    keep = [index for index, record_id in enumerate(ids) if record_id in chosen]
    pairs = neardup.similar_pairs([ids[i] for i in keep], [hashes[i] for i in keep], threshold, measure)
    log(f"{len(pairs)} pair(s) of the {len(keep)} selected plasmids with {measure} >= {threshold}")
    io.write_table(pairs, out)


def near_duplicate_groups(sketches, selected, pairs, linkage: str, measure: str, out_groups, out_json, log=_noop):
    """Group the selected plasmids by their near-duplicate pairs; describe the largest groups and their diameter."""
    table = io.read_table(selected)
    table["group"] = neardup.group_ids(table["id"].tolist(), io.read_table(pairs), linkage,
                                       table["length"].tolist(), measure).to_numpy()
    largest = largest_groups(table, LARGEST_GROUPS)
    ids, hashes = neardup.read_sketches(sketches)
    diameters = neardup.group_diameters(ids, hashes, table.set_index("id")["group"], [row["group"] for row in largest])
    for row, diameter in zip(largest, diameters.itertuples()):
        row.update(min_containment=round(diameter.min_containment, 4), min_jaccard=round(diameter.min_jaccard, 4))
    sizes = table["group"].value_counts()
    summary = {"linkage": linkage, "measure": measure, "plasmids": len(table), "groups": len(sizes),
               "merged_groups": int((sizes > 1).sum()), "plasmids_in_merged_groups": int(sizes[sizes > 1].sum()),
               "largest_groups": largest}
    log(f"{linkage}: {summary['plasmids_in_merged_groups']} of {len(table)} plasmids in {summary['merged_groups']} "
        f"near-duplicate group(s) of two or more")
    for row in largest:
        mix = ", ".join(f"{label} {n}" for label, n in row["classes"].items())
        log(f"group {row['group']}: {row['size']} plasmids ({mix}), lowest containment {row['min_containment']:.3f}, "
            f"lowest jaccard {row['min_jaccard']:.3f}")
    io.write_json(summary, out_json)
    io.write_table(table[["id", "group"]], out_groups)


def split(selected, groups, group_summary, pairs, split_config: dict, seed: int, out_split, out_summary, out_json,
          log=_noop):
    """Split by plasmid; with `groups` (a table of id → group, or None), near-duplicate groups stay together.

    `group_summary` (near_duplicate_groups.json) gives the diameters of the largest groups, and `pairs` the
    linked pairs, of which those that straddle splits are counted.
    """
    table = io.read_table(selected)
    if groups is not None:
        table["group"] = table["id"].map(io.read_table(groups).set_index("id")["group"])
    else:
        table["group"] = table["id"]
    val_fraction, test_fraction = split_config["val_fraction"], split_config["test_fraction"]
    spanning = cross_class_groups(table)
    handling = split_config["cross_class_groups"]
    spanning_rows = largest_groups(table[table["group"].isin(spanning)], len(spanning))
    if spanning:
        log(f"{len(spanning)} near-duplicate group(s) span several classes: "
            + "; ".join(f"{row['group']} ({', '.join(f'{k} {v}' for k, v in row['classes'].items())})"
                        for row in spanning_rows[:LARGEST_GROUPS])
            + {"keep": "", "train": " (split.cross_class_groups: train, so they are never evaluated)",
               "drop": " (split.cross_class_groups: drop, so they are left out)"}[handling])
    if handling == "drop":
        table = table[~table["group"].isin(spanning)]
    table = split_by_plasmid(table, val_fraction, test_fraction, seed, split_config["assignment"],
                             train_only=spanning if handling == "train" else (), log=log)
    strata = stratification(table, val_fraction, test_fraction)
    if strata["max_deviation"] > split_config["max_deviation"]:
        if not split_config["accept_deviation"]:
            check_deviation(table, val_fraction, test_fraction, split_config["max_deviation"])
        log(f"warning: deviation {strata['max_deviation']:.3f} above split.max_deviation "
            f"{split_config['max_deviation']:g}, accepted (split.accept_deviation: true)")
    group_sizes = table["group"].value_counts()
    diameters = {row["group"]: row for row in io.read_json(group_summary)["largest_groups"]} if group_summary else {}
    largest = largest_groups(table, LARGEST_GROUPS)
    for row in largest:
        row.update({key: diameters[row["group"]][key] for key in ("min_containment", "min_jaccard")
                    if row["group"] in diameters})
    split_of = table.set_index("id")["split"]
    linked = io.read_table(pairs) if pairs is not None else pd.DataFrame(columns=["id_a", "id_b"])
    linked = linked[linked["id_a"].isin(split_of.index) & linked["id_b"].isin(split_of.index)]
    info = {
        "near_duplicate_grouping": groups is not None,
        "linkage": io.read_json(group_summary)["linkage"] if group_summary else None,
        "assignment": split_config["assignment"],
        "plasmids": len(table),
        "groups": len(group_sizes),
        "merged_groups": int((group_sizes > 1).sum()),
        "plasmids_in_merged_groups": int(group_sizes[group_sizes > 1].sum()),
        "largest_group": int(group_sizes.max()),
        "largest_groups": largest,
        "linked_pairs_across_splits": int((linked["id_a"].map(split_of) != linked["id_b"].map(split_of)).sum()),
        "groups_with_several_classes": len(spanning),
        "cross_class_groups": {"handling": handling, "plasmids": int(sum(row["size"] for row in spanning_rows)),
                               "groups": spanning_rows},
    }
    summary = split_summary(table)
    log(f"{info['plasmids']} plasmids in {info['groups']} groups: {info['merged_groups']} near-duplicate "
        f"group(s) merge {info['plasmids_in_merged_groups']} plasmids (largest {info['largest_group']}; "
        f"{info['groups_with_several_classes']} span several classes); {info['linked_pairs_across_splits']} "
        f"linked pair(s) straddle splits")
    log(summary.to_string(index=False))
    log(f"largest deviation of a class's share from the requested fractions: {strata['max_deviation']:.3f} "
        f"(class {strata['max_deviation_class']})")
    io.write_table(summary, out_summary)
    io.write_json(info | {"stratification": strata}, out_json)
    io.write_table(table[["id", "label", "split", "length", "group"]], out_split)


def _log_missing(windows: pd.DataFrame, what: str, log) -> None:
    if windows.attrs["missing"]:
        log(f"warning: {windows.attrs['missing']} {what} window(s) could not be drawn: their plasmids had too few "
            f"windows that pass windows.ambiguous / windows.max_n_fraction")


def held_out_windows(fasta, split_path, split_name: str, windows_config: dict, count: int, seed: int, out,
                     log=_noop):
    """The fixed validation or test windows: drawn once, balanced across classes and plasmids."""
    plasmids = _split_plasmids(split_path, split_name)
    windows = draw_balanced_windows(io.iter_fasta(fasta), plasmids, windows_config["length"], count,
                                    windows_config["circular"], (seed, "windows", split_name),
                                    prefix=f"{split_name}_", ambiguous=windows_config["ambiguous"],
                                    max_n_fraction=windows_config["max_n_fraction"])
    _log_missing(windows, split_name, log)
    log(f"{len(windows)} {split_name} windows from {windows['plasmid_id'].nunique()} plasmids")
    io.write_table(windows, out)


def training_windows(fasta, split_path, windows_config: dict, length: int, seed: int, experiment: str, out,
                     epoch_schedule: dict | None = None, log=_noop):
    """An experiment's training windows, drawn from training plasmids only.

    With `windows_config["resample_each_epoch"]`, fresh windows for every epoch that `epoch_schedule`
    (batch_size, epochs, max_steps) will train: the table gets an `epoch` column, and epoch 0's windows
    are those of a fixed table.
    """
    plasmids = _split_plasmids(split_path, "train")
    seed_of_epoch = [(seed, "windows", "train", experiment)]
    if windows_config["resample_each_epoch"]:
        # as many epochs as training will run; the number of windows per epoch is known before drawing
        # them unless the ambiguity policy drops some, and then a last epoch reuses the first's windows
        n_windows = len(plasmids) * windows_config["per_plasmid"]
        plan = schedule(n_windows, epoch_schedule["batch_size"], epoch_schedule["epochs"],
                        epoch_schedule["max_steps"], save_steps=1)
        n_epochs = math.ceil(plan["total_steps"] / plan["steps_per_epoch"])
        seed_of_epoch += [(seed, "windows", "train", experiment, f"epoch{epoch}") for epoch in range(1, n_epochs)]
    tables = windows_from_counts(io.iter_fasta(fasta), plasmids, dict.fromkeys(plasmids["id"],
                                 windows_config["per_plasmid"]), length, windows_config["strategy"],
                                 windows_config["reverse_complement_p"], windows_config["circular"], seed_of_epoch,
                                 "train_", windows_config["ambiguous"], windows_config["max_n_fraction"])
    for table in tables:
        _log_missing(table, "training", log)
    if windows_config["resample_each_epoch"]:
        windows = pd.concat([table.assign(epoch=epoch) for epoch, table in enumerate(tables)], ignore_index=True)
        windows["window_id"] = [f"train_{index:07d}" for index in range(len(windows))]
        log(f"fresh windows for each of {len(tables)} epoch(s)")
    else:
        [windows] = tables
    log(f"{len(windows)} training windows from {len(plasmids)} plasmids")
    io.write_table(windows, out)


def kmer_coverage(fasta, split_path, test_windows, kmer: int, out, log=_noop):
    """For each test window, whether every one of its k-mers occurs in a training plasmid (streamed, once per run:
    it depends only on the split and the test windows)."""
    split_table = io.read_table(split_path)
    test = io.read_table(test_windows)
    train_ids = set(split_table.loc[split_table["split"] == "train", "id"])
    training_sequences = (sequence for _, sequence in io.iter_fasta(fasta, train_ids))
    covered = windows_covered_by_kmers(test["sequence"].tolist(), training_sequences, kmer)
    log(f"{covered.sum()} of {len(test)} test windows have all their {kmer}-mers in the {len(train_ids)} training "
        f"plasmids")
    io.write_table(pd.DataFrame({"window_id": test["window_id"], "covered": covered}), out)


def leakage(split_path, train_windows, val_windows, test_windows, coverage, kmer: int, out, log=_noop):
    """Fail if a test plasmid is among the training or validation plasmids; measure what ID checks miss.

    Counts test windows found verbatim (either strand) among the training windows (read in pieces, compared by
    hash), and takes from `coverage` (`kmer_coverage`) the test windows whose every k-mer occurs in the training
    plasmids: near-identical plasmids recur across isolates, so a test window can be (nearly) training sequence
    although its plasmid ID is not in training.
    """
    split_table = io.read_table(split_path)
    test = io.read_table(test_windows)
    train_plasmids, hashes, n_train = set(), [], 0
    for piece in io.iter_table(train_windows, ["plasmid_id", "sequence"]):
        train_plasmids.update(piece["plasmid_id"])
        hashes.append(sequence_hashes(piece["sequence"]))
        n_train += len(piece)
    train_plasmids = pd.DataFrame({"plasmid_id": sorted(train_plasmids)})
    assert_no_plasmid_leakage(test, train_plasmids, "the training windows")
    assert_no_plasmid_leakage(test, io.read_table(val_windows), "the validation windows")
    assert_no_plasmid_leakage(test, split_table[split_table["split"] != "test"].rename(columns={"id": "plasmid_id"}),
                              "the train or val split")
    shared = shared_window_sequences(test["sequence"], np.unique(np.concatenate(hashes)) if hashes else [])
    covered_of = io.read_table(coverage).set_index("window_id")["covered"]
    if set(covered_of.index) != set(test["window_id"]):
        raise PlasmidlmError(f"leakage: {coverage} does not list the test windows of {test_windows}")
    covered = covered_of.loc[test["window_id"]].to_numpy(dtype=bool)
    report = {
        "test_plasmids_in_train": 0,
        "test_plasmids_in_val": 0,
        "test_windows": len(test),
        "test_windows_shared_with_train": shared,
        "test_windows_shared_fraction": shared / max(len(test), 1),
        "kmer": kmer,
        "test_windows_kmer_covered": int(covered.sum()),
        "test_windows_kmer_covered_fraction": float(covered.mean()) if len(test) else 0.0,
        "kmer_covered_fraction_by_class": {label: float(values.mean()) for label, values in
                                           pd.Series(covered).groupby(test["label"].to_numpy())},
    }
    log(f"no test plasmid in training or validation; {shared} of {len(test)} test windows occur verbatim "
        f"(either strand) among the {n_train} training windows; {covered.sum()} "
        f"({report['test_windows_kmer_covered_fraction']:.1%}) have all their {kmer}-mers in training plasmids")
    io.write_json(report, out)


def _training_columns(path) -> pd.DataFrame:
    """What training needs of a window table: label (categorical), sequence and, with fresh windows every epoch,
    epoch."""
    columns = [column for column in ("label", "sequence", "epoch") if column in pd.read_csv(path, sep="\t", nrows=0)]
    return pd.read_csv(path, sep="\t", usecols=columns, dtype={"label": "category"})


def train(train_windows, val_windows, split_path, model_config: dict, train_config: dict, window_length: int,
          seed: int, model_dir, out_summary, out_log, log=_noop):
    from plasmidlm.train import fine_tune, log_history_table

    classes = classes_of_split(io.read_table(split_path))
    summary = fine_tune(_training_columns(train_windows), io.read_table(val_windows), classes, model_config,
                        train_config, window_length, model_dir, seed, log)
    io.write_table(log_history_table(summary.pop("log_history")), out_log)
    io.write_json(summary, out_summary)


def pretrain(fasta, split_path, extra_fasta: list, pretrain_config: dict, window_length: int, seed: int, output_dir,
             out_summary, out_log, log=_noop):
    """Masked-LM pretraining on random windows of the training plasmids (and any extra unlabeled FASTA).

    Validation and test plasmids never enter the corpus: the job fails if one would.
    """
    from plasmidlm.pretrain import pretrain_mlm
    from plasmidlm.train import log_history_table

    split_table = io.read_table(split_path)
    plasmids = split_table[split_table["split"] == "train"][["id", "label", "length"]]
    for path in extra_fasta:
        extra = pd.DataFrame([(record_id, "unlabeled", len(sequence)) for record_id, sequence in io.iter_fasta(path)],
                             columns=["id", "label", "length"])
        plasmids = pd.concat([plasmids, extra])
        log(f"{len(extra)} extra unlabeled sequence(s) from {path}")
    held_out = split_table.loc[split_table["split"] != "train", "id"]
    assert_no_plasmid_leakage(pd.DataFrame({"plasmid_id": held_out}), plasmids.rename(columns={"id": "plasmid_id"}),
                              "the pretraining corpus")
    plasmids = plasmids[plasmids["length"] >= window_length]
    train_ids = set(split_table.loc[split_table["split"] == "train", "id"])

    def sequences():  # streamed, one record at a time
        yield from io.iter_fasta(fasta, train_ids)
        for path in extra_fasta:
            yield from io.iter_fasta(path)

    corpus = draw_windows(sequences(), plasmids, window_length, "random", pretrain_config["windows_per_plasmid"], 0.5,
                          False, (seed, "pretrain", "corpus"))
    heldout = draw_balanced_windows(sequences(), plasmids.assign(label="all"), window_length,
                                    pretrain_config["heldout_windows"], False, (seed, "pretrain", "heldout"))
    summary = pretrain_mlm(corpus, heldout, pretrain_config, window_length, output_dir, seed, log)
    io.write_table(log_history_table(summary.pop("log_history")), out_log)
    io.write_json(summary, out_summary)


def evaluate(checkpoint_dir, test_windows, val_windows, evaluate_config: dict, seed: int, trust_remote_code: bool,
             out_metrics, out_predictions, log=_noop):
    from plasmidlm.evaluate import evaluate_checkpoint

    predictions, metrics = evaluate_checkpoint(
        checkpoint_dir, io.read_table(test_windows), io.read_table(val_windows), evaluate_config["batch_size"],
        evaluate_config["both_strands"], evaluate_config["bootstrap"], seed, trust_remote_code,
    )
    inference = metrics["inference"]
    log(f"test window accuracy {metrics['window']['accuracy']:.4f}, plasmid accuracy "
        f"{metrics['plasmid']['accuracy']:.4f}; validation window accuracy "
        f"{metrics['validation']['window']['accuracy']:.4f}; {inference['windows']} test windows in "
        f"{inference['seconds']:.1f} s ({inference['windows_per_second']:.0f} windows/s on {inference['device']})")
    io.write_table(predictions, out_predictions)
    io.write_json(metrics, out_metrics)


def _write_baseline(test: pd.DataFrame, proba: np.ndarray, classes: list[str], n_bootstrap: int, seed: int,
                    out_metrics, out_predictions, training_windows: int | None = None):
    from plasmidlm.metrics import evaluate_predictions, predictions_table

    predictions = predictions_table(test, proba, classes)
    metrics = evaluate_predictions(predictions, classes, n_bootstrap, seed)
    if training_windows is not None:
        metrics["training_windows"] = training_windows
    io.write_table(predictions, out_predictions)
    io.write_json(metrics, out_metrics)
    return metrics


def _baseline_training_windows(fasta, plasmids: pd.DataFrame, length: int, config: dict, seed: tuple,
                               what: str, log) -> pd.DataFrame:
    """`config["windows_per_plasmid"]` random windows of every training plasmid, at most `config["max_windows"]`
    in all (spread evenly over the plasmids, seeded), streamed from the FASTA."""
    counts = capped_counts(plasmids["id"], config["windows_per_plasmid"], config["max_windows"], rng_for(*seed))
    [train] = windows_from_counts(io.iter_fasta(fasta), plasmids, counts, length, "random", 0.5, False, [seed], "w")
    wanted = len(plasmids) * config["windows_per_plasmid"]
    if len(train) < wanted:
        log(f"{what}: {len(train):,} training windows instead of {wanted:,} ({config['windows_per_plasmid']} per "
            f"plasmid): capped at baselines.{what}.max_windows = {config['max_windows']:,}")
    return train


def kmer_baseline(fasta, split_path, test_windows, kmer_config: dict, length: int, n_bootstrap: int, seed: int,
                  out_metrics, out_predictions, log=_noop):
    """k-mer frequencies + logistic regression, trained on random windows of the training plasmids."""
    from plasmidlm import baselines

    plasmids = _split_plasmids(split_path, "train")
    classes = classes_of_split(io.read_table(split_path))
    train = _baseline_training_windows(fasta, plasmids, length, kmer_config, (seed, "baseline", "kmer"), "kmer", log)
    features = baselines.kmer_frequencies(train["sequence"].tolist(), kmer_config["k"])
    model = baselines.fit_logistic(features, train["label"], kmer_config["C"], seed)
    del features
    test = io.read_table(test_windows)
    proba = baselines.logistic_proba(model, baselines.kmer_frequencies(test["sequence"].tolist(), kmer_config["k"]),
                                     classes)
    metrics = _write_baseline(test, proba, classes, n_bootstrap, seed, out_metrics, out_predictions,
                              training_windows=len(train))
    log(f"{kmer_config['k']}-mer logistic regression on {len(train)} windows: window accuracy "
        f"{metrics['window']['accuracy']:.4f}, plasmid accuracy {metrics['plasmid']['accuracy']:.4f}")


def embeddings_baseline(fasta, split_path, test_windows, model: str, from_experiment: bool, embeddings_config: dict,
                        trust_remote_code: bool, length: int, n_bootstrap: int, seed: int, out_logistic_metrics,
                        out_logistic_predictions, out_cnn_metrics, out_cnn_predictions, log=_noop):
    """A model's frozen embeddings of training windows: mean-pooled + logistic regression, per-token + 1D CNN.

    `model` is an experiment's model folder (`from_experiment`: its best checkpoint by validation is used),
    a local Hugging Face directory or a hub id. `trust_remote_code` allows a model that ships its own code.
    Per-token states are never held for more than one batch (`EMBEDDING_CHUNK` test windows): the CNN's
    training batches are embedded anew every epoch.
    """
    from plasmidlm import baselines

    if from_experiment:
        model = Path(model) / f"checkpoint-{best_checkpoint(model)}"
    log(f"embeddings of {model}")
    encoder, tokenizer, metadata = baselines.load_encoder(model, trust_remote_code, embeddings_config["kmer"])
    plasmids = _split_plasmids(split_path, "train")
    classes = classes_of_split(io.read_table(split_path))
    train = _baseline_training_windows(fasta, plasmids, length, embeddings_config, (seed, "baseline", "embeddings"),
                                       "embeddings", log)
    sequences = train["sequence"].to_numpy()
    logistic = baselines.fit_logistic(baselines.pooled_states(encoder, tokenizer, metadata, sequences),
                                      train["label"], embeddings_config["C"], seed)
    cnn = baselines.fit_token_cnn(
        lambda rows: baselines.encoder_states(encoder, tokenizer, metadata, sequences[rows]),
        train["label"].map(classes.index).to_numpy(), len(classes), encoder.config.hidden_size,
        embeddings_config["cnn_epochs"], seed, embeddings_config["cnn_channels"],
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
        metrics = _write_baseline(test, np.concatenate(proba), classes, n_bootstrap, seed, out_metrics,
                                  out_predictions, training_windows=len(train))
        log(f"{name} on {len(train)} windows: window accuracy {metrics['window']['accuracy']:.4f}, plasmid "
            f"accuracy {metrics['plasmid']['accuracy']:.4f}")


def majority_baseline(split_path, test_windows, n_bootstrap: int, seed: int, out_metrics, out_predictions,
                      log=_noop):
    from plasmidlm import baselines

    split_table = io.read_table(split_path)
    classes = classes_of_split(split_table)
    test = io.read_table(test_windows)
    train_labels = split_table.loc[split_table["split"] == "train", "label"]
    metrics = _write_baseline(test, baselines.majority_proba(train_labels, len(test), classes), classes,
                              n_bootstrap, seed, out_metrics, out_predictions)
    log(f"majority class: window accuracy {metrics['window']['accuracy']:.4f}")


def predict_with_best(model_dir, fasta, predict_config: dict, batch_size: int, trust_remote_code: bool, out_sequences,
                      log=_noop):
    """Predictions for a user's FASTA from an experiment's best checkpoint (chosen on validation)."""
    from plasmidlm.predict import predict_fasta

    step = best_checkpoint(model_dir)
    log(f"best checkpoint by validation accuracy: checkpoint-{step}")
    out_prefix = str(out_sequences).removesuffix(".sequences.tsv")
    predict_fasta(Path(model_dir) / f"checkpoint-{step}", fasta, out_prefix, stride=predict_config["stride"],
                  batch_size=batch_size, both_strands=predict_config["both_strands"],
                  trust_remote_code=trust_remote_code, log=log)


def package_versions() -> dict:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = __version__ if package == "plasmidlm" else None
    return versions


def provenance(inputs: dict, config: dict, out, out_config, log=_noop):
    """Resolved config, package versions and input checksums: what is needed to reproduce the run."""
    checksums = {name: {"path": str(path), "sha256": io.sha256sum(path)} for name, path in inputs.items()}
    io.write_atomic(out_config, lambda tmp: Path(tmp).write_text(yaml.safe_dump(config, sort_keys=False)))
    io.write_json({"versions": package_versions(), "inputs": checksums}, out)
    log(f"recorded {len(checksums)} input checksum(s)")

