"""Splitting plasmids into train/val/test: disjoint, stratified, seeded, order-independent, stable."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from plasmidlm import PlasmidlmError
from plasmidlm.io import read_table, write_table
from plasmidlm.split import (
    SPLITS,
    assert_disjoint,
    check_deviation,
    cross_class_groups,
    largest_groups,
    split_by_plasmid,
    split_summary,
    stable_uniform,
    stratification,
)


def class_table(counts: dict[str, int], suffix: str = "") -> pd.DataFrame:
    return pd.DataFrame(
        [(f"{label}_{suffix}{i:03d}", label) for label, n in counts.items() for i in range(n)],
        columns=["id", "label"],
    )


@pytest.fixture
def table(synthetic):
    return synthetic.table[["id", "label"]]


def test_every_plasmid_in_exactly_one_split(table):
    split = split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=0)
    assert sorted(split["id"]) == sorted(table["id"])
    assert not split["id"].duplicated().any()
    assert set(split["split"]) == set(SPLITS)
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not set(split.loc[split["split"] == a, "id"]) & set(split.loc[split["split"] == b, "id"])


def test_labels_are_kept(table):
    split = split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=0)
    assert split.set_index("id")["label"].to_dict() == table.set_index("id")["label"].to_dict()


def test_every_class_in_every_split(table):
    split = split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=0)
    summary = split_summary(split).set_index("label")
    assert list(summary.columns) == list(SPLITS)
    assert (summary > 0).all().all()
    assert summary.sum(axis=1).to_dict() == {"alpha": 12, "beta": 9, "delta": 5, "gamma": 7}


def test_hash_assignment_follows_the_seeded_hash_of_each_group():
    """Outside rescues, a group goes to test below test_fraction, to val below test + val, else to train."""
    table = class_table({"a": 200, "b": 200})
    split = split_by_plasmid(table, val_fraction=0.1, test_fraction=0.2, seed=4, assignment="hash")
    hashes = stable_uniform(split["group"], 4)
    expected = np.where(hashes < 0.2, "test", np.where(hashes < 0.3, "val", "train"))
    assert (split["split"].to_numpy() == expected).all()


@pytest.mark.parametrize("assignment", ["hash", "stratified"])
def test_per_class_fractions_close_to_requested(assignment):
    counts = {"big": 1000, "mid": 600, "small": 400}
    split = split_by_plasmid(class_table(counts), val_fraction=0.1, test_fraction=0.2, seed=3, assignment=assignment)
    summary = split_summary(split).set_index("label")
    for label, n in counts.items():
        assert summary.loc[label].sum() == n
        assert abs(summary.loc[label, "test"] / n - 0.2) <= 0.05
        assert abs(summary.loc[label, "val"] / n - 0.1) <= 0.05
    report = stratification(split, 0.1, 0.2)
    shares = summary.div(summary.sum(axis=1), axis=0)
    expected = (shares - pd.Series({"train": 0.7, "val": 0.1, "test": 0.2})).abs().to_numpy().max()
    assert report["max_deviation"] == pytest.approx(expected, abs=1e-4)
    assert report["by_class"]["big"]["test"] == pytest.approx(shares.loc["big", "test"], abs=1e-4)


def test_output_sorted_by_split_then_label_then_id(table):
    split = split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=0)
    keys = list(zip(split["split"].map(SPLITS.index), split["label"], split["id"]))
    assert keys == sorted(keys)


def test_same_seed_gives_byte_identical_split_file(table, tmp_path):
    first, second = tmp_path / "a" / "split.tsv", tmp_path / "b" / "split.tsv"
    write_table(split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=7), first)
    write_table(split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=7), second)
    assert first.read_bytes() == second.read_bytes()
    pd.testing.assert_frame_equal(read_table(first), split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2,
                                                                      seed=7))


def test_different_seed_gives_different_split(table, tmp_path):
    write_table(split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=0), tmp_path / "s0.tsv")
    write_table(split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=1), tmp_path / "s1.tsv")
    assert (tmp_path / "s0.tsv").read_bytes() != (tmp_path / "s1.tsv").read_bytes()
    s0 = split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=0).set_index("id")["split"]
    s1 = split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=1).set_index("id")["split"]
    assert (s0 != s1.loc[s0.index]).sum() >= 5


def test_input_row_order_does_not_matter(table):
    reference = split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=0)
    for state in range(3):
        shuffled = table.sample(frac=1, random_state=state)
        pd.testing.assert_frame_equal(split_by_plasmid(shuffled, val_fraction=0.2, test_fraction=0.2, seed=0),
                                      reference)


def test_extra_columns_are_carried_along(synthetic):
    split = split_by_plasmid(synthetic.table, val_fraction=0.2, test_fraction=0.2, seed=0)
    assert set(split.columns) == {"id", "label", "length", "split", "group"}
    assert split.set_index("id")["length"].to_dict() == synthetic.table.set_index("id")["length"].to_dict()


def test_hash_assignment_never_moves_existing_plasmids_when_plasmids_are_added():
    counts = {"a": 50, "b": 50, "c": 50, "d": 50}
    old = class_table(counts)
    new = class_table({"a": 30, "b": 5, "e": 40}, suffix="new")  # new plasmids and a new class
    before = split_by_plasmid(old, val_fraction=0.15, test_fraction=0.15, seed=0,
                              assignment="hash").set_index("id")["split"]
    after = split_by_plasmid(pd.concat([old, new]), val_fraction=0.15, test_fraction=0.15, seed=0,
                             assignment="hash").set_index("id")["split"]
    assert (before == after.loc[before.index]).all()


def test_near_duplicate_groups_stay_in_one_split():
    table = class_table({"a": 60, "b": 60})
    table["group"] = [f"g{i // 4:03d}" for i in range(len(table))]  # groups of four, some spanning classes
    split = split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert (split.groupby("group")["split"].nunique() == 1).all()
    assert set(split["split"]) == set(SPLITS)


def test_class_without_plasmids_in_a_split_gets_the_nearest_group_and_logs_it(caplog):
    caplog.set_level(logging.INFO)
    split = split_by_plasmid(class_table({"a": 40, "tiny": 3}), val_fraction=0.1, test_fraction=0.1, seed=0,
                             assignment="hash")
    tiny = split[split["label"] == "tiny"]
    assert sorted(tiny["split"]) == ["test", "train", "val"]
    hashes = dict(zip(split["id"], stable_uniform(split["id"], 0)))
    natural = {record_id: "test" if hashes[record_id] < 0.1 else "val" if hashes[record_id] < 0.2 else "train"
               for record_id in tiny["id"]}
    moved = [record_id for record_id, name in zip(tiny["id"], tiny["split"]) if natural[record_id] != name]
    assert len(moved) == len(caplog.messages) >= 1
    assert all("class 'tiny' had no plasmid in" in message for message in caplog.messages)
    untouched = split[split["label"] == "a"]
    assert all(natural_split == name for natural_split, name in zip(
        ["test" if hashes[i] < 0.1 else "val" if hashes[i] < 0.2 else "train" for i in untouched["id"]],
        untouched["split"]))


def test_error_when_a_class_is_one_near_duplicate_group():
    table = pd.concat([class_table({"a": 20}), class_table({"b": 5})])
    table["group"] = table["id"].where(table["label"] == "a", "b_family")
    with pytest.raises(PlasmidlmError, match="class 'b' has 5 plasmid\\(s\\) in 1 near-duplicate group\\(s\\)"):
        split_by_plasmid(table, val_fraction=0.2, test_fraction=0.2, seed=0)


def test_stable_uniform_depends_only_on_id_and_seed():
    values = stable_uniform(["x", "y", "z"], seed=1)
    assert ((values >= 0) & (values < 1)).all()
    assert list(stable_uniform(["z", "x"], seed=1)) == [values[2], values[0]]
    assert not (stable_uniform(["x", "y", "z"], seed=2) == values).any()


def test_error_for_class_too_small(table):
    small = pd.concat([table, pd.DataFrame({"id": ["e1", "e2"], "label": ["epsilon"] * 2})])
    with pytest.raises(PlasmidlmError, match="class 'epsilon' has 2 plasmid\\(s\\) in 2 near-duplicate group"):
        split_by_plasmid(small, val_fraction=0.2, test_fraction=0.2, seed=0)


@pytest.mark.parametrize("assignment", ["hash", "stratified"])
def test_three_plasmids_are_enough_for_a_class(assignment):
    split = split_by_plasmid(class_table({"a": 3, "b": 3}), val_fraction=0.1, test_fraction=0.1, seed=0,
                             assignment=assignment)
    assert split.groupby("label")["split"].apply(sorted).tolist() == [["test", "train", "val"]] * 2


def test_error_when_fractions_leave_no_training_data(table):
    with pytest.raises(PlasmidlmError, match="val_fraction \\+ test_fraction must be below 1"):
        split_by_plasmid(table, val_fraction=0.5, test_fraction=0.5, seed=0)


def test_assert_disjoint_detects_plasmid_in_two_splits():
    split = pd.DataFrame({"id": ["p1", "p2", "p1"], "label": ["x", "x", "x"], "split": ["train", "val", "test"]})
    with pytest.raises(PlasmidlmError, match="plasmid p1 is in more than one split"):
        assert_disjoint(split)


def test_assert_disjoint_detects_group_in_two_splits():
    split = pd.DataFrame({"id": ["p1", "p2"], "label": ["x", "x"], "split": ["train", "test"], "group": ["g", "g"]})
    with pytest.raises(PlasmidlmError, match="near-duplicate group g is in more than one split"):
        assert_disjoint(split)


def grouped_table(sizes_per_class: dict[str, list[int]], prefix: str = "") -> pd.DataFrame:
    """Plasmids in groups of the given sizes per class; group names and IDs start with `prefix`."""
    rows = [(f"{prefix}{label}_g{g:03d}_{i:03d}", label, f"{prefix}{label}_g{g:03d}")
            for label, sizes in sizes_per_class.items() for g, size in enumerate(sizes) for i in range(size)]
    return pd.DataFrame(rows, columns=["id", "label", "group"])


def outbreak_table() -> pd.DataFrame:
    """The issue's case: c_freundii 626 with an outbreak of 249 near-copies, e_coli 573, both with small groups."""
    rng = np.random.default_rng(0)
    small = {label: list(rng.choice([1, 1, 1, 2, 3], size=n)) for label, n in (("c_freundii", 220), ("e_coli", 300))}
    small["c_freundii"] = small["c_freundii"][: np.searchsorted(np.cumsum(small["c_freundii"]), 626 - 249) + 1]
    small["c_freundii"][-1] = 626 - 249 - sum(small["c_freundii"][:-1])
    small["e_coli"] = small["e_coli"][: np.searchsorted(np.cumsum(small["e_coli"]), 573) + 1]
    small["e_coli"][-1] = 573 - sum(small["e_coli"][:-1])
    table = grouped_table(small)
    outbreak = grouped_table({"c_freundii": [249]}, prefix="outbreak_")
    return pd.concat([table, outbreak], ignore_index=True)


def seed_preferring(group: str, low: float, high: float) -> int:
    return next(seed for seed in range(1000) if low <= stable_uniform([group], seed)[0] < high)


def test_a_giant_group_that_the_hash_sends_to_validation_goes_to_train(caplog):
    table = outbreak_table()
    assert table["label"].value_counts().to_dict() == {"c_freundii": 626, "e_coli": 573}
    seed = seed_preferring("outbreak_c_freundii_g000", 0.2, 0.3)  # the hash sends the outbreak to val
    hashed = split_by_plasmid(table, val_fraction=0.1, test_fraction=0.2, seed=seed, assignment="hash")
    assert stratification(hashed, 0.1, 0.2)["max_deviation"] > 0.3  # the failure
    caplog.set_level(logging.INFO)
    split = split_by_plasmid(table, val_fraction=0.1, test_fraction=0.2, seed=seed)
    assert (split.loc[split["group"] == "outbreak_c_freundii_g000", "split"] == "train").all()
    assert (split.groupby("group")["split"].nunique() == 1).all()
    assert stratification(split, 0.1, 0.2)["max_deviation"] <= 0.01
    assert any(message.startswith("group outbreak_c_freundii_g000 (249 plasmids: c_freundii 249) is larger than "
                                  "its classes' val share: it goes to train") for message in caplog.messages)


@pytest.mark.parametrize("seed_range", [(0.0, 0.2), (0.3, 1.0)])
def test_a_giant_group_preferring_test_or_train_is_still_balanced(seed_range):
    table = outbreak_table()
    split = split_by_plasmid(table, val_fraction=0.1, test_fraction=0.2,
                             seed=seed_preferring("outbreak_c_freundii_g000", *seed_range))
    assert (split.loc[split["group"] == "outbreak_c_freundii_g000", "split"] == "train").all()
    assert stratification(split, 0.1, 0.2)["max_deviation"] <= 0.01


def test_a_group_larger_than_the_test_share_only_goes_to_train(caplog):
    # class a: 100 plasmids, test share 20, val share 10; a group of 30 fits neither, one of 15 fits test only
    table = pd.concat([grouped_table({"a": [30, 15] + [1] * 55}), grouped_table({"b": [1] * 100})], ignore_index=True)
    caplog.set_level(logging.INFO)
    for low, high in ((0.0, 0.2), (0.2, 0.3)):
        caplog.clear()
        split = split_by_plasmid(table, val_fraction=0.1, test_fraction=0.2, seed=seed_preferring("a_g000", low, high))
        assert (split.loc[split["group"] == "a_g000", "split"] == "train").all()
        assert any(message.startswith("group a_g000 (30 plasmids: a 30) is larger than")
                   for message in caplog.messages)
    split = split_by_plasmid(table, val_fraction=0.1, test_fraction=0.2, seed=seed_preferring("a_g001", 0.2, 0.3))
    assert split.loc[split["group"] == "a_g001", "split"].iloc[0] != "val"
    assert stratification(split, 0.1, 0.2)["max_deviation"] <= 0.02


def test_stratified_keeps_groups_in_their_preferred_split_unless_a_share_needs_them():
    table = grouped_table({"a": [1] * 300, "b": [1] * 200})
    hashed = split_by_plasmid(table, val_fraction=0.1, test_fraction=0.2, seed=2,
                              assignment="hash").set_index("id")["split"]
    split = split_by_plasmid(table, val_fraction=0.1, test_fraction=0.2, seed=2)
    assert stratification(split, 0.1, 0.2)["max_deviation"] <= 0.005  # to within a plasmid
    moved = (split.set_index("id")["split"] != hashed.loc[split["id"]].to_numpy()).sum()
    surplus = (split_summary(hashed.rename("split").reset_index().merge(table, on="id")).set_index("label")
               - split_summary(split).set_index("label")).abs().sum().sum() / 2
    assert moved == surplus  # only the plasmids that the hash put in an over-full split move


def random_groups(rng: np.random.Generator, n_plasmids: int, prefix: str) -> list[int]:
    """Group sizes as in plasmid collections: mostly singletons, a long tail of families."""
    sizes = []
    while sum(sizes) < n_plasmids:
        sizes.append(int(min(rng.zipf(2.2), 60)))
    return sizes


def test_stability_under_ten_percent_additions():
    """Adding 10% new plasmids (new groups, and new members of existing groups) moves few existing ones."""
    rng = np.random.default_rng(1)
    old = grouped_table({label: random_groups(rng, 600, label) for label in ("a", "b", "c")})
    new = grouped_table({label: random_groups(rng, 60, label) for label in ("a", "b", "c")}, prefix="new_")
    joined = old.sample(n=30, random_state=0).assign(id=lambda frame: "new_member_" + frame["id"])
    moved = {}
    for assignment in ("hash", "stratified"):
        before = split_by_plasmid(old, val_fraction=0.1, test_fraction=0.2, seed=1,
                                  assignment=assignment).set_index("id")["split"]
        after = split_by_plasmid(pd.concat([old, new, joined]), val_fraction=0.1, test_fraction=0.2, seed=1,
                                 assignment=assignment)
        moved[assignment] = (after.set_index("id")["split"].loc[before.index] != before).mean()
        assert stratification(after, 0.1, 0.2)["max_deviation"] <= (0.1 if assignment == "hash" else 0.02)
    assert moved["hash"] == 0
    assert moved["stratified"] <= 0.1


def test_deviation_above_the_maximum_is_an_error_naming_classes_groups_and_options():
    table = pd.concat([grouped_table({"a": [80] + [1] * 20}), grouped_table({"b": [1] * 100})], ignore_index=True)
    # a's group of 80 can only go to train: a is 0.8+ train
    split = split_by_plasmid(table, val_fraction=0.1, test_fraction=0.2, seed=0)
    check_deviation(split, 0.1, 0.2, max_deviation=0.2)
    with pytest.raises(PlasmidlmError) as error:
        check_deviation(split, 0.1, 0.2, max_deviation=0.05)
    message = str(error.value)
    assert "class(es) 'a' per split deviates" in message and "'b'" not in message.split("Largest")[0]
    assert "above split.max_deviation 0.05" in message
    assert "a_g000 (80 plasmids: a 80; in train)" in message
    for option in ("split.near_duplicates.threshold", "linkage: centroid", "split.accept_deviation: true"):
        assert option in message


def test_largest_groups_and_groups_spanning_classes():
    table = grouped_table({"a": [3, 1, 2], "b": [1, 1]})
    table.loc[table["id"] == "b_g000_000", "group"] = "a_g000"  # the same plasmid in a second host
    assert cross_class_groups(table) == ["a_g000"]
    assert largest_groups(table, 5) == [{"group": "a_g000", "size": 4, "classes": {"a": 3, "b": 1}},
                                        {"group": "a_g002", "size": 2, "classes": {"a": 2}}]


def test_train_only_groups_go_to_train():
    table = grouped_table({"a": [4] * 10 + [1] * 60, "b": [1] * 100})
    pinned = [f"a_g{g:03d}" for g in range(10)]
    split = split_by_plasmid(table, val_fraction=0.1, test_fraction=0.2, seed=0, train_only=pinned)
    assert (split.loc[split["group"].isin(pinned), "split"] == "train").all()
    assert (split_summary(split).set_index("label") > 0).all().all()
