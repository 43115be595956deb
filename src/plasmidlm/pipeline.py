"""One function per pipeline step: read the step's input files, call the library, write its outputs.

The workflow scripts call these (the `plasmidlm` command calls the library's modules itself); they never import
Snakemake. The model-side modules (torch, transformers, scikit-learn) are imported by the steps that use them,
so that data steps start in a second.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from plasmidlm import PlasmidlmError, __version__, distributed, io, layout, neardup
from plasmidlm.classes import select_classes
from plasmidlm.evidence import COMPOSITION_BASELINES
from plasmidlm.split import (
    check_deviation,
    cross_class_groups,
    largest_groups,
    split_by_plasmid,
    split_summary,
    stratification,
)
from plasmidlm.training.runs import best_checkpoint, epochs_to_draw
from plasmidlm.windows import (
    WindowPolicy,
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


def _launched_in_ranks(step: str, section_config: dict, arguments: dict, log) -> bool:
    """With `<step>.gpus` above 1, outside a rank: run the step `step` with `arguments` (its parameters but `log`)
    in that many data-parallel processes (`distributed.launch`) and return True; otherwise False."""
    gpus = section_config.get("gpus", 1)
    if gpus <= 1 or distributed.in_rank():
        return False
    distributed.per_process_batch(section_config["batch_size"], gpus, step)
    # JSON-ready values (paths as strings), to hand to the ranks
    plain = json.loads(json.dumps({key: value for key, value in arguments.items() if key != "log"}, default=str))
    distributed.launch(step, plain, gpus, log)
    return True


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


def select(validated, classes_config: dict, out_selected, out_classes, validation=None, log=_noop):
    """Select the classes; `validation` (validate.json) lets an error name the sequences skipped as too short."""
    try:
        selected, counts = select_classes(io.read_table(validated), **classes_config)
    except PlasmidlmError as error:
        skipped = io.read_json(validation).get("skipped_short_by_label") if validation else None
        if not skipped:
            raise
        raise PlasmidlmError(
            f"{error}. Sequences shorter than the window length (windows.length) were skipped before: "
            f"{', '.join(f'{n} of class {label}' for label, n in skipped.items())} (data/validate.json)") from None
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


def _check_drawn(windows: pd.DataFrame, plasmids: pd.DataFrame, what: str, policy: WindowPolicy, log) -> None:
    """Log the windows that the ambiguity policy left undrawn, and stop where a class got none: training or scoring
    without the class would fail later, or quietly mean something else."""
    if windows.attrs["missing"]:
        log(f"warning: {windows.attrs['missing']} {what} window(s) could not be drawn: their plasmids had too few "
            f"windows that pass windows.ambiguous / windows.max_n_fraction")
    empty = sorted(set(plasmids["label"]) - set(windows["label"]))
    if empty:
        which = "any class" if len(empty) == len(set(plasmids["label"])) else f"class(es) {', '.join(empty)}"
        raise PlasmidlmError(
            f"windows: no {what} window of {which} passes windows.ambiguous ({policy.ambiguous}) and "
            f"windows.max_n_fraction ({policy.max_n_fraction}): their plasmids hold too many ambiguous "
            f"bases (N etc.); allow more with windows.max_n_fraction or windows.ambiguous: keep / replace_n")


def held_out_windows(fasta, split_path, split_name: str, windows_config: dict, count: int, seed: int, out,
                     log=_noop):
    """The fixed validation or test windows: drawn once, balanced across classes and plasmids."""
    plasmids = _split_plasmids(split_path, split_name)
    n_classes = plasmids["label"].nunique()
    if count < n_classes:
        raise PlasmidlmError(f"config windows.{split_name}_count: {count} window(s) for {n_classes} classes; every "
                             f"class needs at least one")
    policy = WindowPolicy.from_config(windows_config)
    windows = draw_balanced_windows(io.iter_fasta(fasta), plasmids, policy, count=count,
                                    seed=(seed, "windows", split_name), prefix=f"{split_name}_")
    _check_drawn(windows, plasmids, split_name, policy, log)
    log(f"{len(windows)} {split_name} windows from {windows['plasmid_id'].nunique()} plasmids")
    io.write_table(windows, out)


def training_windows(fasta, split_path, windows_config: dict, length: int, seed: int, experiment: str, out,
                     epoch_schedule: dict | None = None, log=_noop):
    """An experiment's training windows, drawn from training plasmids only.

    With `windows_config["resample_each_epoch"]`, fresh windows for every epoch that `epoch_schedule`
    (batch_size, epochs, max_steps) will train: the table gets an `epoch` column, and epoch 0's windows
    are those of a fixed table. Each epoch is drawn in a pass of its own over the FASTA and written before the
    next is drawn, so that one epoch's windows are held at a time.
    """
    plasmids = _split_plasmids(split_path, "train")
    seed_of_epoch = [(seed, "windows", "train", experiment)]
    fresh = windows_config["resample_each_epoch"]
    if fresh:
        # as many epochs as training will run; the number of windows per epoch is known before drawing
        # them unless the ambiguity policy drops some, and then a last epoch reuses the first's windows
        n_epochs = epochs_to_draw(len(plasmids) * windows_config["per_plasmid"], **epoch_schedule)
        seed_of_epoch += [(seed, "windows", "train", experiment, f"epoch{epoch}") for epoch in range(1, n_epochs)]
    policy = WindowPolicy.from_config(windows_config | {"length": length})
    drawn = []

    def epochs():
        for epoch, epoch_seed in enumerate(seed_of_epoch):
            [table] = windows_from_counts(io.iter_fasta(fasta), plasmids,
                                          dict.fromkeys(plasmids["id"], windows_config["per_plasmid"]), policy,
                                          strategy=windows_config["strategy"],
                                          reverse_complement_p=windows_config["reverse_complement_p"],
                                          seeds=[epoch_seed], prefix="train_")
            _check_drawn(table, plasmids, "training", policy, log)
            if fresh:
                first = sum(drawn)  # window ids run on across epochs
                table["window_id"] = [f"train_{first + index:07d}" for index in range(len(table))]
                table["epoch"] = epoch
            drawn.append(len(table))
            yield table

    io.write_tables(epochs(), out)
    if fresh:
        log(f"fresh windows for each of {len(drawn)} epoch(s)")
    log(f"{sum(drawn)} training windows from {len(plasmids)} plasmids")


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


def _training_windows(path):
    """What training needs of a window table: label (categorical) and sequence; with fresh windows every epoch
    (an `epoch` column), a `training.data.EpochTable` that reads one epoch at a time."""
    if "epoch" in pd.read_csv(path, sep="\t", nrows=0).columns:
        from plasmidlm.training.data import EpochTable

        return EpochTable(lambda: io.iter_table(path, ["label", "sequence", "epoch"]))
    return pd.read_csv(path, sep="\t", usecols=["label", "sequence"], dtype={"label": "category"})


def train(train_windows, val_windows, split_path, model_config: dict, train_config: dict, window_length: int,
          seed: int, model_dir, out_summary, out_log, log=_noop):
    """Fine-tune; with `train.gpus` above 1, in that many data-parallel processes (`distributed.launch`)."""
    if _launched_in_ranks("train", train_config, locals(), log):
        return
    from plasmidlm.training.fine_tune import fine_tune
    from plasmidlm.training.trainer import log_history_table

    classes = classes_of_split(io.read_table(split_path))
    summary = fine_tune(_training_windows(train_windows), io.read_table(val_windows), classes=classes,
                        model_config=model_config, train_config=train_config, window_length=window_length,
                        output_dir=model_dir, seed=seed)
    if distributed.is_main():
        io.write_table(log_history_table(summary.pop("log_history")), out_log)
        io.write_json(summary, out_summary)


def pretrain(*, fasta, split_path, extra_fasta: list, pretrain_config: dict, windows_config: dict, seed: int,
             output_dir, out_summary, out_log, log=_noop):
    """Masked-LM pretraining on random windows of the training plasmids (and any extra unlabeled FASTA), cut as
    `windows_config` (length, circular, ambiguous, max_n_fraction) says.

    Validation and test plasmids never enter the corpus: the job fails if one would. With `pretrain.gpus` above
    1, in that many data-parallel processes (`distributed.launch`).
    """
    if _launched_in_ranks("pretrain", pretrain_config, locals(), log):
        return
    from plasmidlm.training.pretrain import pretrain_mlm
    from plasmidlm.training.trainer import log_history_table

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
    policy = WindowPolicy.from_config(windows_config)
    plasmids = plasmids[plasmids["length"] >= policy.length]
    train_ids = set(split_table.loc[split_table["split"] == "train", "id"])

    def sequences():  # streamed, one record at a time
        yield from io.iter_fasta(fasta, train_ids)
        for path in extra_fasta:
            yield from io.iter_fasta(path)

    corpus = draw_windows(sequences(), plasmids, policy, per_plasmid=pretrain_config["windows_per_plasmid"],
                          seed=(seed, "pretrain", "corpus"))
    plasmids = plasmids.assign(label="all")
    heldout = draw_balanced_windows(sequences(), plasmids, policy, count=pretrain_config["heldout_windows"],
                                    seed=(seed, "pretrain", "heldout"))
    _check_drawn(corpus.assign(label="all"), plasmids, "pretraining corpus", policy, log)
    _check_drawn(heldout, plasmids, "pretraining held-out", policy, log)
    summary = pretrain_mlm(corpus, heldout, pretrain_config=pretrain_config, window_length=policy.length,
                           output_dir=output_dir, seed=seed)
    if distributed.is_main():
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


def _baseline_training_windows(fasta, plasmids: pd.DataFrame, policy: WindowPolicy, *, config: dict, seed: tuple,
                               what: str, log) -> pd.DataFrame:
    """`config["windows_per_plasmid"]` random windows of every training plasmid, at most `config["max_windows"]`
    in all (spread evenly over the plasmids, seeded), streamed from the FASTA."""
    counts = capped_counts(plasmids["id"], config["windows_per_plasmid"], config["max_windows"], rng_for(*seed))
    [train] = windows_from_counts(io.iter_fasta(fasta), plasmids, counts, policy, strategy="random",
                                  reverse_complement_p=0.5, seeds=[seed], prefix="w")
    _check_drawn(train, plasmids, f"{what} baseline training", policy, log)
    capped = sum(counts.values())
    if capped < len(plasmids) * config["windows_per_plasmid"]:
        log(f"{what}: {capped:,} training windows instead of {len(plasmids) * config['windows_per_plasmid']:,} "
            f"({config['windows_per_plasmid']} per plasmid): capped at baselines.{what}.max_windows = "
            f"{config['max_windows']:,}")
    return train


def _fitted_kmer_baseline(fasta, split_path, kmer_config: dict, windows_config: dict, seed: int, log):
    """The k-mer baseline's logistic regression on k-mer frequencies of random windows of the training plasmids
    (cut as `windows_config` says: length, circular, ambiguous, max_n_fraction), and its training windows."""
    from plasmidlm import baselines

    plasmids = _split_plasmids(split_path, "train")
    train = _baseline_training_windows(fasta, plasmids, WindowPolicy.from_config(windows_config), config=kmer_config,
                                       seed=(seed, "baseline", "kmer"), what="kmer", log=log)
    features = baselines.kmer_frequencies(train["sequence"].tolist(), kmer_config["k"])
    return baselines.fit_logistic(features, train["label"], kmer_config["C"], seed), train


def kmer_baseline(*, fasta, split_path, test_windows, kmer_config: dict, windows_config: dict, n_bootstrap: int,
                  seed: int, out_metrics, out_predictions, log=_noop):
    """k-mer frequencies + logistic regression (`_fitted_kmer_baseline`), scored on the test windows."""
    from plasmidlm import baselines

    classes = classes_of_split(io.read_table(split_path))
    model, train = _fitted_kmer_baseline(fasta, split_path, kmer_config, windows_config, seed, log)
    test = io.read_table(test_windows)
    proba = baselines.logistic_proba(model, baselines.kmer_frequencies(test["sequence"].tolist(), kmer_config["k"]),
                                     classes)
    metrics = _write_baseline(test, proba, classes, n_bootstrap, seed, out_metrics, out_predictions,
                              training_windows=len(train))
    log(f"{kmer_config['k']}-mer logistic regression on {len(train)} windows: window accuracy "
        f"{metrics['window']['accuracy']:.4f}, plasmid accuracy {metrics['plasmid']['accuracy']:.4f}")


def embeddings_baseline(*, fasta, split_path, test_windows, model: str, from_experiment: bool, embeddings_config: dict,
                        trust_remote_code: bool, windows_config: dict, n_bootstrap: int, seed: int,
                        out_logistic_metrics, out_logistic_predictions, out_cnn_metrics, out_cnn_predictions,
                        log=_noop):
    """A model's frozen embeddings of training windows (cut as `windows_config` says): mean-pooled + logistic
    regression, per-token + 1D CNN.

    `model` is an experiment's model folder (`from_experiment`: its best checkpoint by validation is used),
    a local Hugging Face directory or a hub id. `trust_remote_code` allows a model that ships its own code.
    Per-token states are never held for more than one batch (`EMBEDDING_CHUNK` test windows): the CNN's
    training batches are embedded anew every epoch.
    """
    from plasmidlm import baselines
    from plasmidlm.evaluate import embed_windows

    if from_experiment:
        model = Path(layout.checkpoint_in(model, best_checkpoint(model)))
    log(f"embeddings of {model}")
    encoder, tokenizer, metadata = baselines.load_encoder(model, trust_remote_code, embeddings_config["kmer"])
    plasmids = _split_plasmids(split_path, "train")
    classes = classes_of_split(io.read_table(split_path))
    train = _baseline_training_windows(fasta, plasmids, WindowPolicy.from_config(windows_config),
                                       config=embeddings_config, seed=(seed, "baseline", "embeddings"),
                                       what="embeddings", log=log)
    sequences = train["sequence"].to_numpy()
    pooled = embed_windows(encoder, tokenizer, metadata, sequences, precision="fp32")  # fp32, as the token states
    logistic = baselines.fit_logistic(pooled, train["label"], embeddings_config["C"], seed)
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


def _composition_features(name: str, sequences) -> np.ndarray:
    from plasmidlm import baselines, evidence

    if name == "composition_gc":
        return evidence.gc_content(sequences)
    return baselines.kmer_frequencies(sequences, int(name.removeprefix("composition_").removesuffix("mer")))


def composition_baselines(*, fasta, split_path, test_windows, composition_config: dict, windows_config: dict,
                          n_bootstrap: int, seed: int, out_metrics: dict, out_predictions: dict, log=_noop):
    """Composition alone (GC content; 2-mer and 4-mer frequencies) + logistic regression, on the training
    windows of the k-mer baseline (same seed and `windows_config`) and the fixed test windows.

    `out_metrics` and `out_predictions` map each name of COMPOSITION_BASELINES to its output path.
    """
    from plasmidlm import baselines

    plasmids = _split_plasmids(split_path, "train")
    classes = classes_of_split(io.read_table(split_path))
    policy = WindowPolicy.from_config(windows_config)
    train = draw_windows(io.iter_fasta(fasta), plasmids, policy, per_plasmid=composition_config["windows_per_plasmid"],
                         seed=(seed, "baseline", "kmer"))
    _check_drawn(train, plasmids, "composition baseline training", policy, log)
    test = io.read_table(test_windows)
    for name, description in COMPOSITION_BASELINES.items():
        model = baselines.fit_logistic(_composition_features(name, train["sequence"].tolist()), train["label"],
                                       composition_config["C"], seed)
        proba = baselines.logistic_proba(model, _composition_features(name, test["sequence"].tolist()), classes)
        metrics = _write_baseline(test, proba, classes, n_bootstrap, seed, out_metrics[name], out_predictions[name])
        log(f"{description} + logistic regression on {len(train)} windows: window accuracy "
            f"{metrics['window']['accuracy']:.4f}, plasmid accuracy {metrics['plasmid']['accuracy']:.4f}")


def cnn_baseline(train_windows, val_windows, split_path, test_windows, cnn_config: dict, n_bootstrap: int, seed: int,
                 out_metrics, out_predictions, log=_noop):
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
    model, training = cnn.fit(train["sequence"], train["label"].map(classes.index).to_numpy(), val["sequence"],
                              val["label"].map(classes.index).to_numpy(), len(classes), cnn_config["epochs"], seed,
                              cnn_config["channels"], cnn_config["kernel"], cnn_config["batch_size"],
                              cnn_config["learning_rate"], log)
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
    log(f"one-hot CNN ({training['parameters']:,} parameters) on {training['windows']} windows, "
        f"{training['seconds']:.1f} s to train ({training['windows_per_second']:.0f} windows/s), epoch "
        f"{training['best_epoch']} chosen on validation: test window accuracy {metrics['window']['accuracy']:.4f}, "
        f"plasmid accuracy {metrics['plasmid']['accuracy']:.4f}")


def shuffled_test_windows(test_windows, seed: int, out, log=_noop):
    """The test windows, each dinucleotide-shuffled (seeded): same composition, order destroyed."""
    from plasmidlm.evidence import shuffled_windows

    test = io.read_table(test_windows)
    io.write_table(shuffled_windows(test, seed), out)
    log(f"{len(test)} test windows shuffled, dinucleotide counts preserved")


def contig_tiles(fasta, split_path, length: int, contig_lengths: list[int], seed: int, out_tiles, out_contigs,
                 log=_noop):
    """Non-overlapping windows (tiles) of every test plasmid, and sub-sequences of each length made of them."""
    from plasmidlm import evidence

    plasmids = _split_plasmids(split_path, "test")
    tile_table = evidence.tiles(io.iter_fasta(fasta, set(plasmids["id"])), plasmids, length)
    contig_table = evidence.contigs(dict(zip(plasmids["id"], plasmids["length"])), contig_lengths, length, seed)
    counts = contig_table.groupby("contig_length")["plasmid_id"].agg(["size", "nunique"])
    log(f"{len(tile_table)} tiles of {length} nt from {len(plasmids)} test plasmids; contigs per length: "
        + ", ".join(f"{row.Index} nt: {row.size} from {row.nunique} plasmids" for row in counts.itertuples()))
    io.write_table(tile_table, out_tiles)
    io.write_table(contig_table, out_contigs)


def _headline_levels(metrics: dict) -> dict:
    from plasmidlm.metrics import HEADLINE

    return {level: {key: metrics[level][key] for key in ["n", *HEADLINE, "ci95"] if key in metrics[level]}
            for level in ("window", "plasmid")}


def _contig_curve(tiles_path, contigs_path, tile_proba: np.ndarray, length: int, classes: list[str],
                  n_bootstrap: int, seed: int) -> pd.DataFrame:
    from plasmidlm import evidence

    tile_table, contig_table = io.read_table(tiles_path), io.read_table(contigs_path)
    proba = evidence.contig_proba(tile_table, tile_proba, contig_table, length)
    labels = dict(zip(tile_table["plasmid_id"], tile_table["label"]))
    return evidence.contig_curve(contig_table, proba, labels, classes, n_bootstrap, seed)


def model_evidence(model_dir, eval_dir, test_windows, val_windows, shuffled_windows, tiles_path, contigs_path,
                   length: int, evaluate_config: dict, evidence_config: dict, seed: int, trust_remote_code: bool,
                   out_json, out_contig_lengths, out_shuffled_predictions, log=_noop):
    """Controls and calibration of an experiment's best checkpoint (chosen on validation).

    Scores the test windows on both strands (strand flips), their dinucleotide-shuffled copies, the validation
    windows (a temperature fitted on them) and the tiles of the test plasmids (accuracy per contig length, from
    the mean of the calibrated probabilities of a contig's tiles, as `predict` aggregates). The forward-strand
    test probabilities come from the checkpoint's evaluation (`eval_dir`) unless it averaged both strands.
    """
    from plasmidlm import evidence
    from plasmidlm.evaluate import classes_of, default_device, predict_proba
    from plasmidlm.metrics import evaluate_predictions, predictions_table, probability_columns
    from plasmidlm.model import load_checkpoint
    from plasmidlm.windows import reverse_complement

    step = best_checkpoint(model_dir)
    model, tokenizer, metadata = load_checkpoint(Path(layout.checkpoint_in(model_dir, step)), default_device(),
                                                 trust_remote_code, "set model.trust_remote_code: true")
    classes = classes_of(model)

    def score(sequences):
        return predict_proba(model, tokenizer, metadata, sequences, evaluate_config["batch_size"])

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
    calibration = evidence.calibration_report(val, score(val["sequence"]), test, forward, classes,
                                              evidence_config["calibration_bins"])
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
        "inference": {"windows": n_windows, "seconds": seconds, "windows_per_second": n_windows / max(seconds, 1e-9)},
    }
    curve = _contig_curve(tiles_path, contigs_path, tile_proba, length, classes, n_bootstrap, seed)
    log(f"checkpoint-{step}: test window accuracy {result['test']['window']['accuracy']:.4f}, after a dinucleotide "
        f"shuffle {result['shuffled']['window']['accuracy']:.4f}; {result['strand_flip_fraction']:.1%} of windows "
        f"flip class on the other strand; temperature {calibration['temperature']:.3f}, window ECE "
        f"{calibration['window']['before']['ece']:.4f} -> {calibration['window']['after']['ece']:.4f}")
    log(curve.to_string(index=False))
    io.write_table(shuffled_predictions, out_shuffled_predictions)
    io.write_table(curve, out_contig_lengths)
    io.write_json(result, out_json)


def kmer_evidence(*, fasta, split_path, shuffled_windows, tiles_path, contigs_path, kmer_config: dict,
                  windows_config: dict, n_bootstrap: int, seed: int, out_json, out_contig_lengths, log=_noop):
    """The k-mer baseline (fitted again, as kmer_baseline fits it) on the shuffled test windows and per contig
    length."""
    from plasmidlm import baselines
    from plasmidlm.metrics import evaluate_predictions, predictions_table

    classes = classes_of_split(io.read_table(split_path))
    length = windows_config["length"]
    model, _ = _fitted_kmer_baseline(fasta, split_path, kmer_config, windows_config, seed, log)

    def score(sequences):
        return baselines.logistic_proba(model, baselines.kmer_frequencies(sequences.tolist(), kmer_config["k"]),
                                        classes)

    shuffled = io.read_table(shuffled_windows)
    metrics = evaluate_predictions(predictions_table(shuffled, score(shuffled["sequence"]), classes), classes,
                                   n_bootstrap, seed)
    curve = _contig_curve(tiles_path, contigs_path, score(io.read_table(tiles_path)["sequence"]), length, classes,
                          n_bootstrap, seed)
    log(f"{kmer_config['k']}-mer baseline after a dinucleotide shuffle: window accuracy "
        f"{metrics['window']['accuracy']:.4f}")
    log(curve.to_string(index=False))
    io.write_table(curve, out_contig_lengths)
    io.write_json({"shuffled": _headline_levels(metrics)}, out_json)


def predict_with_best(model_dir, fasta, predict_config: dict, batch_size: int, trust_remote_code: bool, out_windows,
                      out_sequences, evidence=None, log=_noop):
    """Predictions for a user's FASTA from an experiment's best checkpoint (chosen on validation).

    With `evidence` (that checkpoint's evidence metrics.json) and `predict.calibrated`, probabilities are
    calibrated with the temperature fitted on the validation windows.
    """
    from plasmidlm.predict import predict_fasta

    step = best_checkpoint(model_dir)
    log(f"best checkpoint by validation accuracy: checkpoint-{step}")
    temperature = 1.0
    if evidence is not None and predict_config["calibrated"]:
        temperature = io.read_json(evidence)["calibration"]["temperature"]
        log(f"calibrated with temperature {temperature:.4f} (fitted on the validation windows)")
    predict_fasta(Path(layout.checkpoint_in(model_dir, step)), fasta, out_windows, out_sequences,
                  stride=predict_config["stride"], batch_size=batch_size, both_strands=predict_config["both_strands"],
                  trust_remote_code=trust_remote_code, temperature=temperature,
                  min_confidence=predict_config["min_confidence"], log=log)


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

