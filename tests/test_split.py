"""Splitting plasmids into train/val/test: disjoint, stratified, seeded, order-independent, stable."""

from __future__ import annotations

import pandas as pd
import pytest

from plasmidlm import PlasmidlmError
from plasmidlm.io import read_table, write_table
from plasmidlm.split import SPLITS, assert_disjoint, split_by_plasmid, split_summary, stable_uniform


def class_table(counts: dict[str, int], suffix: str = "") -> pd.DataFrame:
    return pd.DataFrame(
        [(f"{label}_{suffix}{i:03d}", label) for label, n in counts.items() for i in range(n)],
        columns=["id", "label"],
    )


@pytest.fixture
def table(synthetic):
    return synthetic.table[["id", "label"]]


def test_every_plasmid_in_exactly_one_split(table):
    split = split_by_plasmid(table, 0.2, 0.2, seed=0)
    assert sorted(split["id"]) == sorted(table["id"])
    assert not split["id"].duplicated().any()
    assert set(split["split"]) == set(SPLITS)
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not set(split.loc[split["split"] == a, "id"]) & set(split.loc[split["split"] == b, "id"])


def test_labels_are_kept(table):
    split = split_by_plasmid(table, 0.2, 0.2, seed=0)
    assert split.set_index("id")["label"].to_dict() == table.set_index("id")["label"].to_dict()


def test_every_class_in_every_split(table):
    split = split_by_plasmid(table, 0.2, 0.2, seed=0)
    summary = split_summary(split).set_index("label")
    assert list(summary.columns) == list(SPLITS)
    assert (summary > 0).all().all()
    assert summary.sum(axis=1).to_dict() == {"alpha": 12, "beta": 9, "delta": 5, "gamma": 7}


def test_split_sizes_follow_the_documented_rounding(table):
    split = split_by_plasmid(table, 0.2, 0.2, seed=0)
    summary = split_summary(split).set_index("label")
    # n_test = n_val = max(1, round(0.2 n)); train gets the rest.
    expected = {"alpha": (8, 2, 2), "beta": (5, 2, 2), "gamma": (5, 1, 1), "delta": (3, 1, 1)}
    for label, (train, val, test) in expected.items():
        assert tuple(summary.loc[label, ["train", "val", "test"]]) == (train, val, test)


def test_per_class_fractions_close_to_requested():
    counts = {"big": 100, "mid": 60, "small": 40, "tiny": 20}
    split = split_by_plasmid(class_table(counts), val_fraction=0.1, test_fraction=0.2, seed=3)
    summary = split_summary(split).set_index("label")
    for label, n in counts.items():
        assert abs(summary.loc[label, "test"] / n - 0.2) <= 0.5 / n
        assert abs(summary.loc[label, "val"] / n - 0.1) <= 0.5 / n
        assert summary.loc[label].sum() == n


def test_output_sorted_by_split_then_label_then_id(table):
    split = split_by_plasmid(table, 0.2, 0.2, seed=0)
    keys = list(zip(split["split"].map(SPLITS.index), split["label"], split["id"]))
    assert keys == sorted(keys)


def test_same_seed_gives_byte_identical_split_file(table, tmp_path):
    first, second = tmp_path / "a" / "split.tsv", tmp_path / "b" / "split.tsv"
    write_table(split_by_plasmid(table, 0.2, 0.2, seed=7), first)
    write_table(split_by_plasmid(table, 0.2, 0.2, seed=7), second)
    assert first.read_bytes() == second.read_bytes()
    pd.testing.assert_frame_equal(read_table(first), split_by_plasmid(table, 0.2, 0.2, seed=7))


def test_different_seed_gives_different_split(table, tmp_path):
    write_table(split_by_plasmid(table, 0.2, 0.2, seed=0), tmp_path / "s0.tsv")
    write_table(split_by_plasmid(table, 0.2, 0.2, seed=1), tmp_path / "s1.tsv")
    assert (tmp_path / "s0.tsv").read_bytes() != (tmp_path / "s1.tsv").read_bytes()
    s0 = split_by_plasmid(table, 0.2, 0.2, seed=0).set_index("id")["split"]
    s1 = split_by_plasmid(table, 0.2, 0.2, seed=1).set_index("id")["split"]
    assert (s0 != s1.loc[s0.index]).sum() >= 5


def test_input_row_order_does_not_matter(table):
    reference = split_by_plasmid(table, 0.2, 0.2, seed=0)
    for state in range(3):
        shuffled = table.sample(frac=1, random_state=state)
        pd.testing.assert_frame_equal(split_by_plasmid(shuffled, 0.2, 0.2, seed=0), reference)


def test_extra_columns_are_carried_along(synthetic):
    split = split_by_plasmid(synthetic.table, 0.2, 0.2, seed=0)
    assert set(split.columns) == {"id", "label", "length", "split"}
    assert split.set_index("id")["length"].to_dict() == synthetic.table.set_index("id")["length"].to_dict()


def test_adding_plasmids_keeps_most_existing_assignments():
    counts = {"a": 50, "b": 50, "c": 50, "d": 50}
    old = class_table(counts)
    new = class_table({label: 5 for label in counts}, suffix="new")  # 10% more plasmids per class
    before = split_by_plasmid(old, 0.15, 0.15, seed=0).set_index("id")["split"]
    after = split_by_plasmid(pd.concat([old, new]), 0.15, 0.15, seed=0).set_index("id")["split"]
    stable = (before == after.loc[before.index]).mean()
    # Plasmids keep their hash order; only those near a boundary (which shifts with n) can move.
    assert stable >= 0.9


def test_existing_plasmids_keep_their_relative_hash_order_across_splits():
    """Within a class, test < val < train in hash order, whatever else is added."""
    old = class_table({"a": 30, "b": 30})
    grown = pd.concat([old, class_table({"a": 7, "b": 3}, suffix="new")])
    for table in (old, grown):
        split = split_by_plasmid(table, 0.2, 0.2, seed=5)
        split["key"] = stable_uniform(split["id"], 5)
        for _, group in split.groupby("label"):
            ranks = group.sort_values("key")["split"].map({"test": 0, "val": 1, "train": 2})
            assert ranks.is_monotonic_increasing


def test_stable_uniform_depends_only_on_id_and_seed():
    values = stable_uniform(["x", "y", "z"], seed=1)
    assert ((values >= 0) & (values < 1)).all()
    assert list(stable_uniform(["z", "x"], seed=1)) == [values[2], values[0]]
    assert not (stable_uniform(["x", "y", "z"], seed=2) == values).any()


def test_error_for_class_too_small(table):
    small = pd.concat([table, pd.DataFrame({"id": ["e1", "e2"], "label": ["epsilon"] * 2})])
    with pytest.raises(PlasmidlmError, match="class 'epsilon' has 2 plasmid\\(s\\), too few"):
        split_by_plasmid(small, 0.2, 0.2, seed=0)


def test_three_plasmids_are_enough_for_a_class():
    split = split_by_plasmid(class_table({"a": 3, "b": 3}), 0.1, 0.1, seed=0)
    assert split.groupby("label")["split"].apply(sorted).tolist() == [["test", "train", "val"]] * 2


def test_error_when_fractions_leave_no_training_data(table):
    with pytest.raises(PlasmidlmError, match="val_fraction \\+ test_fraction must be below 1"):
        split_by_plasmid(table, 0.5, 0.5, seed=0)


def test_assert_disjoint_detects_plasmid_in_two_splits():
    split = pd.DataFrame({"id": ["p1", "p2", "p1"], "label": ["x", "x", "x"], "split": ["train", "val", "test"]})
    with pytest.raises(PlasmidlmError, match="plasmid p1 is in more than one split"):
        assert_disjoint(split)
