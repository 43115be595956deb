"""The data steps as the workflow runs them (plasmidlm.steps.data): files in, files out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plasmidlm import PlasmidlmError, io
from plasmidlm.steps import data as data_steps
from plasmidlm.config import load_schema
from plasmidlm.windows import WindowPolicy, reverse_complement, windows_covered_by_kmers

from conftest import logged_messages, make_dataset, random_sequence, write_fasta

WINDOW_DEFAULTS = {key: spec["default"] for key, spec in load_schema()["properties"]["windows"]["properties"].items()}
SPLIT_CONFIG = {key: spec["default"] for key, spec in load_schema()["properties"]["split"]["properties"].items()
                if key != "near_duplicates"} | {"val_fraction": 0.2, "test_fraction": 0.2}


@pytest.fixture
def split_run(tmp_path):
    """A synthetic data set (two families of near-copies among unrelated plasmids), validated, sketched, split."""
    rng = np.random.default_rng(5)
    founders = {label: random_sequence(rng, 4_000) for label in ("alpha", "beta")}
    records, labels = [], []
    for label in ("alpha", "beta"):
        for i in range(4):  # copies of the founder with a few substitutions
            copy = list(founders[label])
            for position in rng.integers(0, len(copy), 2):
                copy[position] = "ACGT"[(("ACGT".index(copy[position])) + 1) % 4]
            records.append((f"{label}_copy{i}", "".join(copy)))
            labels.append(label)
        for i in range(16):
            records.append((f"{label}_{i:02d}", random_sequence(rng, int(rng.integers(1_000, 3_000)))))
            labels.append(label)
    fasta = write_fasta(tmp_path / "plasmids.fasta", records)
    label_path = tmp_path / "labels.tsv"
    pd.DataFrame({"id": [record_id for record_id, _ in records], "label": labels}).to_csv(label_path, sep="\t",
                                                                                       index=False)
    data_config = {"id_column": "id", "label_column": "label", "short_sequences": "skip",
                   "labels_without_sequence": "error"}
    data_steps.validate(fasta, label_path, data_config=data_config, window_length=100,
                        out_table=tmp_path / "validated.tsv", out_summary=tmp_path / "validate.json")
    data_steps.sketch(fasta, tmp_path / "validated.tsv", ksize=21, scaled=10, out=tmp_path / "sketches.npz")
    data_steps.near_duplicates(tmp_path / "sketches.npz", selected=tmp_path / "validated.tsv", measure="containment",
                               threshold=0.95, out=tmp_path / "pairs.tsv")
    data_steps.near_duplicate_groups(tmp_path / "sketches.npz", selected=tmp_path / "validated.tsv",
                                     pairs=tmp_path / "pairs.tsv", linkage="components", measure="containment",
                                     out_groups=tmp_path / "groups.tsv", out_json=tmp_path / "groups.json")
    with logged_messages() as messages:
        data_steps.split(tmp_path / "validated.tsv", groups=tmp_path / "groups.tsv",
                         group_summary=tmp_path / "groups.json", pairs=tmp_path / "pairs.tsv",
                         split_config=SPLIT_CONFIG, seed=1, out_split=tmp_path / "split.tsv",
                         out_summary=tmp_path / "split_summary.tsv", out_json=tmp_path / "split.json")
    return tmp_path, fasta, messages


def test_near_copies_share_a_group_and_a_split(split_run):
    directory, _, messages = split_run
    split = io.read_table(directory / "split.tsv")
    assert list(split.columns) == ["id", "label", "split", "length", "group"]
    for label in ("alpha", "beta"):
        family = split[split["id"].str.startswith(f"{label}_copy")]
        assert family["group"].nunique() == 1 and family["split"].nunique() == 1
        assert family["group"].iloc[0] == f"{label}_copy0"
    summary = io.read_json(directory / "split.json")
    assert summary["merged_groups"] == 2 and summary["plasmids_in_merged_groups"] == 8
    assert summary["largest_group"] == 4 and summary["groups"] == 40 - 6
    # the largest deviation, recomputed from split.tsv: a class's share of its plasmids in a split minus the
    # requested fraction (train 0.6, val 0.2, test 0.2)
    shares = pd.crosstab(split["label"], split["split"], normalize="index")
    deviations = (shares - pd.Series({"train": 0.6, "val": 0.2, "test": 0.2})).abs()
    assert summary["stratification"]["max_deviation"] == pytest.approx(deviations.to_numpy().max(), abs=1e-4)
    assert summary["stratification"]["max_deviation_class"] == deviations.max(axis=1).idxmax()
    assert "2 near-duplicate group(s) merge 8 plasmids" in messages[0]
    pairs = io.read_table(directory / "pairs.tsv")
    assert len(pairs) == 2 * 6 and (pairs["containment"] >= 0.95).all()


def test_group_summary_lists_the_largest_groups_with_their_diameter(split_run):
    directory, _, _ = split_run
    groups = io.read_json(directory / "groups.json")
    assert groups["linkage"] == "components" and groups["merged_groups"] == 2
    assert [(row["group"], row["size"], row["classes"]) for row in groups["largest_groups"]] == [
        ("alpha_copy0", 4, {"alpha": 4}), ("beta_copy0", 4, {"beta": 4})]
    assert all(0.95 <= row["min_containment"] <= 1 for row in groups["largest_groups"])
    summary = io.read_json(directory / "split.json")
    assert summary["linkage"] == "components" and summary["assignment"] == "stratified"
    assert summary["linked_pairs_across_splits"] == 0
    assert [row["min_containment"] for row in summary["largest_groups"]] == [
        row["min_containment"] for row in groups["largest_groups"]]


def split_with(directory, groups, **settings):
    outputs = {"out_split": directory / "s.tsv", "out_summary": directory / "s_summary.tsv",
               "out_json": directory / "s.json"}
    with logged_messages() as messages:
        data_steps.split(directory / "validated.tsv", groups=groups, group_summary=None, pairs=directory / "pairs.tsv",
                         split_config=SPLIT_CONFIG | settings, seed=1, **outputs)
    return io.read_table(outputs["out_split"]), io.read_json(outputs["out_json"]), messages


def test_deviation_above_the_maximum_stops_the_split_unless_accepted(split_run):
    directory, _, _ = split_run
    uneven = {"test_fraction": 0.33, "max_deviation": 0.001}  # 20 plasmids per class: 6.6 cannot be met
    with pytest.raises(PlasmidlmError, match="above split.max_deviation 0.001: .*Options: "):
        split_with(directory, directory / "groups.tsv", **uneven)
    assert not {"s.tsv", "s_summary.tsv", "s.json"} & {path.name for path in directory.iterdir()}
    _, summary, messages = split_with(directory, directory / "groups.tsv", **uneven, accept_deviation=True)
    assert summary["stratification"]["max_deviation"] > 0.001
    assert any(message.startswith("warning: deviation") and "accepted" in message for message in messages)


@pytest.fixture
def spanning_groups(split_run):
    """The groups of split_run, with both families of near-copies merged into one group across classes."""
    directory, _, _ = split_run
    groups = io.read_table(directory / "groups.tsv")
    groups.loc[groups["group"] == "beta_copy0", "group"] = "alpha_copy0"
    io.write_table(groups, directory / "spanning.tsv")
    return directory, directory / "spanning.tsv"


@pytest.mark.parametrize("handling", ["keep", "train", "drop"])
def test_groups_spanning_classes_are_listed_and_can_be_kept_out_of_evaluation(spanning_groups, handling):
    directory, groups = spanning_groups
    split, summary, messages = split_with(directory, groups, cross_class_groups=handling)
    assert summary["groups_with_several_classes"] == 1
    assert summary["cross_class_groups"] == {"handling": handling, "plasmids": 8, "groups": [
        {"group": "alpha_copy0", "size": 8, "classes": {"alpha": 4, "beta": 4}}]}
    assert "1 near-duplicate group(s) span several classes: alpha_copy0 (alpha 4, beta 4)" in messages[0]
    family = split[split["group"] == "alpha_copy0"]
    assert len(family) == (0 if handling == "drop" else 8)
    if handling == "train":
        assert (family["split"] == "train").all()
    assert len(split) == 40 - (8 if handling == "drop" else 0)


def test_split_without_grouping_keeps_every_plasmid_alone(split_run):
    directory, _, _ = split_run
    data_steps.split(directory / "validated.tsv", groups=None, group_summary=None, pairs=None,
                     split_config=SPLIT_CONFIG, seed=1, out_split=directory / "s.tsv",
                     out_summary=directory / "s_summary.tsv", out_json=directory / "s.json")
    split = io.read_table(directory / "s.tsv")
    assert (split["group"] == split["id"]).all()
    assert io.read_json(directory / "s.json")["near_duplicate_grouping"] is False


def test_fresh_windows_every_epoch(split_run):
    directory, fasta, _ = split_run
    settings = WINDOW_DEFAULTS | {"per_plasmid": 2}
    fixed, fresh = directory / "fixed.tsv.gz", directory / "fresh.tsv.gz"
    data_steps.training_windows(fasta, directory / "split.tsv", windows_config=settings, length=100, seed=1,
                                experiment="exp", out=fixed)
    # batch 4: steps per epoch = ceil(windows / 4); 2.5 epochs need 3 blocks of windows
    data_steps.training_windows(fasta, directory / "split.tsv", windows_config=settings | {"resample_each_epoch": True},
                                length=100, seed=1, experiment="exp", out=fresh,
                                epoch_schedule={"batch_size": 4, "epochs": 2.5, "max_steps": None})
    fixed, fresh = io.read_table(fixed), io.read_table(fresh)
    assert sorted(fresh["epoch"].unique()) == [0, 1, 2]
    assert (fresh.groupby("epoch").size() == len(fixed)).all()
    columns = ["plasmid_id", "label", "start", "strand", "sequence"]
    pd.testing.assert_frame_equal(fresh.loc[fresh["epoch"] == 0, columns].reset_index(drop=True), fixed[columns])
    assert set(fresh.loc[fresh["epoch"] == 1, "sequence"]) != set(fixed["sequence"])
    assert fresh["window_id"].is_unique


def test_fresh_windows_are_drawn_one_epoch_per_pass_as_all_epochs_in_one(split_run, monkeypatch):
    directory, fasta, _ = split_run
    settings = WINDOW_DEFAULTS | {"per_plasmid": 3, "resample_each_epoch": True}
    seeds = []
    draw = data_steps.windows_from_counts

    def one_pass(*arguments, **keywords):
        seeds.append(keywords["seeds"])
        return draw(*arguments, **keywords)

    monkeypatch.setattr(data_steps, "windows_from_counts", one_pass)
    data_steps.training_windows(fasta, directory / "split.tsv", windows_config=settings, length=100, seed=1,
                                experiment="exp", out=directory / "fresh.tsv.gz",
                                epoch_schedule={"batch_size": 4, "epochs": 3, "max_steps": None})
    assert [len(epoch_seeds) for epoch_seeds in seeds] == [1, 1, 1]  # a pass per epoch, one epoch held
    plasmids = io.read_table(directory / "split.tsv").query("split == 'train'")[["id", "label"]]
    all_at_once = draw(io.iter_fasta(fasta), plasmids, dict.fromkeys(plasmids["id"], 3),
                       WindowPolicy.from_config(settings | {"length": 100}), strategy="random",
                       reverse_complement_p=settings["reverse_complement_p"], seeds=[seed for [seed] in seeds],
                       prefix="train_")
    expected = pd.concat([table.assign(epoch=epoch) for epoch, table in enumerate(all_at_once)], ignore_index=True)
    expected["window_id"] = [f"train_{index:07d}" for index in range(len(expected))]
    io.write_table(expected, directory / "expected.tsv.gz")  # read back: the same dtypes as the output's
    pd.testing.assert_frame_equal(io.read_table(directory / "fresh.tsv.gz"),
                                  io.read_table(directory / "expected.tsv.gz"))


def test_epochs_follow_max_steps(split_run):
    directory, fasta, _ = split_run
    settings = WINDOW_DEFAULTS | {"per_plasmid": 2, "resample_each_epoch": True}
    out = directory / "fresh.tsv.gz"
    train_plasmids = (io.read_table(directory / "split.tsv")["split"] == "train").sum()
    steps_per_epoch = -(-2 * train_plasmids // 8)
    data_steps.training_windows(fasta, directory / "split.tsv", windows_config=settings, length=100, seed=1,
                                experiment="exp", out=out,
                                epoch_schedule={"batch_size": 8, "epochs": 1, "max_steps": 2 * steps_per_epoch + 1})
    assert io.read_table(out)["epoch"].nunique() == 3


def test_held_out_windows_respect_the_ambiguity_policy(tmp_path):
    dataset = make_dataset(tmp_path, counts={"a": 3, "b": 3}, min_length=400, max_length=400)
    sequences = {record_id: sequence[:150] + "N" * 100 + sequence[250:]
                 for record_id, sequence in dataset.sequences.items()}
    fasta = write_fasta(tmp_path / "with_n.fasta", sequences.items())
    split = dataset.table.assign(split="test", group=dataset.table["id"])
    io.write_table(split, tmp_path / "split.tsv")
    out = tmp_path / "test_windows.tsv.gz"
    data_steps.held_out_windows(fasta, tmp_path / "split.tsv", split_name="test",
                                windows_config=WINDOW_DEFAULTS | {"ambiguous": "drop"}, count=60, seed=0, out=out)
    windows = io.read_table(out)
    assert len(windows) == 60 and not windows["sequence"].str.contains("N").any()


def test_leakage_counts_verbatim_windows_by_hash_and_takes_coverage_from_the_run(split_run):
    directory, fasta, _ = split_run
    windows = {**WINDOW_DEFAULTS, "per_plasmid": 3}
    data_steps.training_windows(fasta, directory / "split.tsv", windows_config=windows, length=100, seed=1,
                                experiment="e", out=directory / "train.tsv.gz")
    for name in ("val", "test"):
        data_steps.held_out_windows(fasta, directory / "split.tsv", split_name=name, windows_config=windows, count=40,
                                    seed=1, out=directory / f"{name}.tsv.gz")
    test = io.read_table(directory / "test.tsv.gz")
    train = io.read_table(directory / "train.tsv.gz")
    # two test windows that are training windows verbatim (one reverse-complemented): counted by their hashes
    train.loc[[0, 1], "sequence"] = [test["sequence"][0], reverse_complement(test["sequence"][1])]
    io.write_table(train, directory / "train.tsv.gz")
    data_steps.kmer_coverage(fasta, directory / "split.tsv", test_windows=directory / "test.tsv.gz", kmer=31,
                             out=directory / "coverage.tsv.gz")
    data_steps.leakage(directory / "split.tsv", train_windows=directory / "train.tsv.gz",
                       val_windows=directory / "val.tsv.gz", test_windows=directory / "test.tsv.gz",
                       coverage=directory / "coverage.tsv.gz", kmer=31, out=directory / "leakage.json")
    report = io.read_json(directory / "leakage.json")
    assert report["test_windows_shared_with_train"] == 2
    split = io.read_table(directory / "split.tsv")
    sequences = io.read_fasta(fasta, set(split.loc[split["split"] == "train", "id"]))
    expected = windows_covered_by_kmers(test["sequence"].tolist(), sequences.values(), 31)
    assert report["test_windows_kmer_covered"] == int(expected.sum())
    io.write_table(io.read_table(directory / "coverage.tsv.gz").iloc[1:], directory / "coverage.tsv.gz")
    with pytest.raises(PlasmidlmError, match="does not list the test windows"):
        data_steps.leakage(directory / "split.tsv", train_windows=directory / "train.tsv.gz",
                           val_windows=directory / "val.tsv.gz", test_windows=directory / "test.tsv.gz",
                           coverage=directory / "coverage.tsv.gz", kmer=31, out=directory / "leakage.json")


# --- errors that name their cause, not a consequence in a later step ---------------------------------------


def _n_rich_split(tmp_path, n_for: set[str], split_name="train"):
    """6 plasmids of classes a and b, all in one split; those of the classes in `n_for` are mostly N."""
    dataset = make_dataset(tmp_path, counts={"a": 3, "b": 3}, min_length=400, max_length=400)
    sequences = {record_id: ("N" * 300 + sequence[300:]) if label in n_for else sequence
                 for (record_id, sequence), label in zip(dataset.sequences.items(), dataset.table["label"])}
    fasta = write_fasta(tmp_path / "n_rich.fasta", sequences.items())
    io.write_table(dataset.table.assign(split=split_name, group=dataset.table["id"]), tmp_path / "split.tsv")
    return fasta, tmp_path / "split.tsv"


@pytest.mark.parametrize("n_for, which", [({"b"}, "class\\(es\\) b"), ({"a", "b"}, "any class")])
def test_training_windows_that_lose_a_class_to_the_ambiguity_policy_name_it(tmp_path, n_for, which):
    fasta, split = _n_rich_split(tmp_path, n_for)
    config = WINDOW_DEFAULTS | {"strategy": "first", "per_plasmid": 2, "ambiguous": "drop"}
    with pytest.raises(PlasmidlmError, match=rf"^windows: no training window of {which} passes windows\.ambiguous "
                                             r"\(drop\) and windows\.max_n_fraction \(0\.1\)"):
        data_steps.training_windows(fasta, split, windows_config=config, length=100, seed=0, experiment="e",
                                    out=tmp_path / "train.tsv.gz")
    assert not (tmp_path / "train.tsv.gz").exists()


def test_held_out_windows_that_lose_a_class_to_the_ambiguity_policy_name_it(tmp_path):
    """400-nt plasmids whose first 300 nt are N: no 200-nt window of class b has at most 10% N."""
    fasta, split = _n_rich_split(tmp_path, {"b"}, "val")
    config = WINDOW_DEFAULTS | {"length": 200}
    with pytest.raises(PlasmidlmError, match=r"^windows: no val window of class\(es\) b passes"):
        data_steps.held_out_windows(fasta, split, split_name="val", windows_config=config, count=20, seed=0,
                                    out=tmp_path / "val.tsv.gz")


def test_fewer_held_out_windows_than_classes_is_a_config_error(tmp_path):
    dataset = make_dataset(tmp_path, counts={"a": 3, "b": 3, "c": 3})
    io.write_table(dataset.table.assign(split="test", group=dataset.table["id"]), tmp_path / "split.tsv")
    with pytest.raises(PlasmidlmError, match=r"^config windows\.test_count: 2 window\(s\) for 3 classes"):
        data_steps.held_out_windows(dataset.fasta, tmp_path / "split.tsv", split_name="test",
                                    windows_config=WINDOW_DEFAULTS, count=2, seed=0, out=tmp_path / "test.tsv.gz")


def test_class_selection_error_names_sequences_skipped_as_too_short(tmp_path):
    """Class b's plasmids are all shorter than the window: the selection's error says where b went."""
    dataset = make_dataset(tmp_path, counts={"a": 4, "b": 4}, min_length=300, max_length=300)
    sequences = {record_id: sequence[:80] if label == "b" else sequence
                 for (record_id, sequence), label in zip(dataset.sequences.items(), dataset.table["label"])}
    fasta = write_fasta(tmp_path / "short_b.fasta", sequences.items())
    data_config = {"id_column": "id", "label_column": "label", "short_sequences": "skip",
                   "labels_without_sequence": "error"}
    data_steps.validate(fasta, dataset.labels, data_config=data_config, window_length=100,
                        out_table=tmp_path / "validated.tsv", out_summary=tmp_path / "validate.json")
    classes = {"select": "all", "min_plasmids": 3}
    with pytest.raises(PlasmidlmError, match=r"^config classes: selection leaves 1 class\(es\).*Sequences shorter "
                                             r"than the window length \(windows\.length\) were skipped before: 4 of "
                                             r"class b \(data/validate\.json\)$"):
        data_steps.select(tmp_path / "validated.tsv", classes_config=classes, out_selected=tmp_path / "selected.tsv",
                          out_classes=tmp_path / "classes.tsv", validation=tmp_path / "validate.json")
