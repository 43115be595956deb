"""The steps of rules/data.smk: validate the inputs, select classes, find near-duplicates, split by plasmid, draw
the held-out and training windows, and check for leakage."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from plasmidlm import PlasmidlmError, io, neardup
from plasmidlm.training.runs import epochs_to_draw
from plasmidlm.classes import select_classes
from plasmidlm.split import (
    check_deviation,
    cross_class_groups,
    largest_groups,
    split_by_plasmid,
    split_summary,
    stratification,
)
from plasmidlm.steps.common import check_drawn, split_plasmids
from plasmidlm.windows import (
    WindowPolicy,
    assert_no_plasmid_leakage,
    draw_balanced_windows,
    sequence_hashes,
    shared_window_sequences,
    windows_covered_by_kmers,
    windows_from_counts,
)

logger = logging.getLogger(__name__)


LARGEST_GROUPS = 10  # groups listed, with their diameter, in near_duplicate_groups.json and split.json


def validate(fasta, labels, *, data_config: dict, window_length: int, out_table, out_summary):
    table, summary = io.validate_inputs(
        fasta, labels, id_column=data_config["id_column"], label_column=data_config["label_column"],
        min_length=window_length, short_sequences=data_config["short_sequences"],
        labels_without_sequence=data_config["labels_without_sequence"],
    )
    if summary["skipped_short"]:
        logger.info(f"skipped {summary['skipped_short']} sequence(s) shorter than {window_length} nt")
    if summary["labels_without_sequence"]:
        logger.warning(f"warning: {summary['labels_without_sequence']} labelled ID(s) have no sequence in {fasta}")
    logger.info(f"{summary['usable']} usable sequences, {summary['total_length']:,} nt")
    io.write_table(table, out_table)
    io.write_json(summary, out_summary)


def select(validated, *, classes_config: dict, out_selected, out_classes, validation=None):
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
    logger.info(f"selected {counts['selected'].sum()} of {len(counts)} classes, {len(selected)} plasmids")
    io.write_table(counts, out_classes)
    io.write_table(selected, out_selected)


def sketch(fasta, validated, *, ksize: int, scaled: int, out, threads: int = 1):
    """FracMinHash sketches of every usable sequence, for finding near-duplicates."""
    usable = set(io.read_table(validated)["id"])
    ids, sketches = neardup.sketch_records(io.iter_fasta(fasta, usable), ksize=ksize, scaled=scaled, threads=threads)
    logger.info(f"sketched {len(ids)} sequences (k={ksize}, scaled={scaled}): {sum(map(len, sketches)):,} hashes")
    neardup.write_sketches(out, ids, sketches, ksize=ksize, scaled=scaled)


def near_duplicates(sketches, *, selected, measure: str, threshold: float, out):
    """Pairs of selected plasmids whose sketches are similar at or above the threshold."""
    chosen = set(io.read_table(selected)["id"])
    ids, hashes = neardup.read_sketches(sketches)
    keep = [index for index, record_id in enumerate(ids) if record_id in chosen]
    pairs = neardup.similar_pairs([ids[i] for i in keep], [hashes[i] for i in keep], threshold=threshold,
                                  measure=measure)
    logger.info(f"{len(pairs)} pair(s) of the {len(keep)} selected plasmids with {measure} >= {threshold}")
    io.write_table(pairs, out)


def near_duplicate_groups(sketches, *, selected, pairs, linkage: str, measure: str, out_groups, out_json):
    """Group the selected plasmids by their near-duplicate pairs; describe the largest groups and their diameter."""
    table = io.read_table(selected)
    table["group"] = neardup.group_ids(table["id"].tolist(), io.read_table(pairs), linkage=linkage,
                                       lengths=table["length"].tolist(), measure=measure).to_numpy()
    largest = largest_groups(table, LARGEST_GROUPS)
    ids, hashes = neardup.read_sketches(sketches)
    diameters = neardup.group_diameters(ids, hashes, table.set_index("id")["group"],
                                        names=[row["group"] for row in largest])
    for row, diameter in zip(largest, diameters.itertuples()):
        row.update(min_containment=round(diameter.min_containment, 4), min_jaccard=round(diameter.min_jaccard, 4))
    sizes = table["group"].value_counts()
    summary = {"linkage": linkage, "measure": measure, "plasmids": len(table), "groups": len(sizes),
               "merged_groups": int((sizes > 1).sum()), "plasmids_in_merged_groups": int(sizes[sizes > 1].sum()),
               "largest_groups": largest}
    logger.info(f"{linkage}: {summary['plasmids_in_merged_groups']} of {len(table)} plasmids in "
                f"{summary['merged_groups']} near-duplicate group(s) of two or more")
    for row in largest:
        mix = ", ".join(f"{label} {n}" for label, n in row["classes"].items())
        logger.info(f"group {row['group']}: {row['size']} plasmids ({mix}), lowest containment "
                    f"{row['min_containment']:.3f}, lowest jaccard {row['min_jaccard']:.3f}")
    io.write_json(summary, out_json)
    io.write_table(table[["id", "group"]], out_groups)


def split(selected, *, groups, group_summary, pairs, split_config: dict, seed: int, out_split, out_summary, out_json):
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
        logger.info(f"{len(spanning)} near-duplicate group(s) span several classes: "
                    + "; ".join(f"{row['group']} ({', '.join(f'{k} {v}' for k, v in row['classes'].items())})"
                                for row in spanning_rows[:LARGEST_GROUPS])
                    + {"keep": "", "train": " (split.cross_class_groups: train, so they are never evaluated)",
                       "drop": " (split.cross_class_groups: drop, so they are left out)"}[handling])
    if handling == "drop":
        table = table[~table["group"].isin(spanning)]
    table = split_by_plasmid(table, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                             assignment=split_config["assignment"], train_only=spanning if handling == "train" else ())
    strata = stratification(table, val_fraction, test_fraction)
    if strata["max_deviation"] > split_config["max_deviation"]:
        if not split_config["accept_deviation"]:
            check_deviation(table, val_fraction, test_fraction, split_config["max_deviation"])
        logger.warning(f"warning: deviation {strata['max_deviation']:.3f} above split.max_deviation "
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
    logger.info(f"{info['plasmids']} plasmids in {info['groups']} groups: {info['merged_groups']} near-duplicate "
                f"group(s) merge {info['plasmids_in_merged_groups']} plasmids (largest {info['largest_group']}; "
                f"{info['groups_with_several_classes']} span several classes); {info['linked_pairs_across_splits']} "
                f"linked pair(s) straddle splits")
    logger.info(summary.to_string(index=False))
    logger.info(f"largest deviation of a class's share from the requested fractions: {strata['max_deviation']:.3f} "
                f"(class {strata['max_deviation_class']})")
    io.write_table(summary, out_summary)
    io.write_json(info | {"stratification": strata}, out_json)
    io.write_table(table[["id", "label", "split", "length", "group"]], out_split)


def held_out_windows(fasta, split_path, *, split_name: str, windows_config: dict, count: int, seed: int, out):
    """The fixed validation or test windows: drawn once, balanced across classes and plasmids."""
    plasmids = split_plasmids(split_path, split_name)
    n_classes = plasmids["label"].nunique()
    if count < n_classes:
        raise PlasmidlmError(f"config windows.{split_name}_count: {count} window(s) for {n_classes} classes; every "
                             f"class needs at least one")
    policy = WindowPolicy.from_config(windows_config)
    windows = draw_balanced_windows(io.iter_fasta(fasta), plasmids, policy, count=count,
                                    seed=(seed, "windows", split_name), prefix=f"{split_name}_")
    check_drawn(windows, plasmids, split_name, policy)
    logger.info(f"{len(windows)} {split_name} windows from {windows['plasmid_id'].nunique()} plasmids")
    io.write_table(windows, out)


def training_windows(fasta, split_path, *, windows_config: dict, length: int, seed: int, experiment: str, out,
                     epoch_schedule: dict | None = None):
    """An experiment's training windows, drawn from training plasmids only.

    With `windows_config["resample_each_epoch"]`, fresh windows for every epoch that `epoch_schedule`
    (batch_size, epochs, max_steps) will train: the table gets an `epoch` column, and epoch 0's windows
    are those of a fixed table. Each epoch is drawn in a pass of its own over the FASTA and written before the
    next is drawn, so that one epoch's windows are held at a time.
    """
    plasmids = split_plasmids(split_path, "train")
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
            check_drawn(table, plasmids, "training", policy)
            if fresh:
                first = sum(drawn)  # window ids run on across epochs
                table["window_id"] = [f"train_{first + index:07d}" for index in range(len(table))]
                table["epoch"] = epoch
            drawn.append(len(table))
            yield table

    io.write_tables(epochs(), out)
    if fresh:
        logger.info(f"fresh windows for each of {len(drawn)} epoch(s)")
    logger.info(f"{sum(drawn)} training windows from {len(plasmids)} plasmids")


def kmer_coverage(fasta, split_path, *, test_windows, kmer: int, out):
    """For each test window, whether every one of its k-mers occurs in a training plasmid (streamed, once per run:
    it depends only on the split and the test windows)."""
    split_table = io.read_table(split_path)
    test = io.read_table(test_windows)
    train_ids = set(split_table.loc[split_table["split"] == "train", "id"])
    training_sequences = (sequence for _, sequence in io.iter_fasta(fasta, train_ids))
    covered = windows_covered_by_kmers(test["sequence"].tolist(), training_sequences, kmer)
    logger.info(f"{covered.sum()} of {len(test)} test windows have all their {kmer}-mers in the {len(train_ids)} "
                f"training plasmids")
    io.write_table(pd.DataFrame({"window_id": test["window_id"], "covered": covered}), out)


def leakage(split_path, *, train_windows, val_windows, test_windows, coverage, kmer: int, out):
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
    logger.info(f"no test plasmid in training or validation; {shared} of {len(test)} test windows occur verbatim "
                f"(either strand) among the {n_train} training windows; {covered.sum()} "
                f"({report['test_windows_kmer_covered_fraction']:.1%}) have all their {kmer}-mers in training plasmids")
    io.write_json(report, out)
