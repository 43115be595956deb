"""Splitting plasmids into train/val/test by ID: seeded, stable under additions, near-copies kept together."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from plasmidlm import PlasmidlmError

SPLITS = ("train", "val", "test")


def stable_uniform(ids, seed: int) -> np.ndarray:
    """A number in [0, 1) per ID that depends only on the ID and the seed."""
    values = [
        int.from_bytes(hashlib.sha256(f"{seed}:{record_id}".encode()).digest()[:8], "big") / 2**64
        for record_id in ids
    ]
    return np.asarray(values, dtype=float)


def split_intervals(val_fraction: float, test_fraction: float) -> dict[str, tuple[float, float]]:
    """The interval of the seeded hash that sends a group to each split."""
    if val_fraction + test_fraction >= 1:
        raise PlasmidlmError("config split: val_fraction + test_fraction must be below 1")
    held_out = test_fraction + val_fraction
    return {"test": (0.0, test_fraction), "val": (test_fraction, held_out), "train": (held_out, 1.0)}


def split_by_plasmid(
    table: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int, log=None
) -> pd.DataFrame:
    """Assign each plasmid (row of `id`, `label`, optionally `group`) to train, val or test.

    A group (a plasmid alone when there is no `group` column) goes to test when the seeded hash of its
    name is below test_fraction, to val when below test_fraction + val_fraction, else to train. A
    plasmid's split therefore depends only on its group, the seed and the fractions: adding plasmids
    never moves existing ones, unless a new plasmid joins two groups or a rescue is needed.

    Rescue: a class with no plasmid in some split gets the group whose hash is nearest to that split's
    interval, taken from a split that holds at least two of the class's groups (each move is logged).
    Every class must end up in every split. Classes are stratified only in expectation; `stratification`
    reports the deviation from the requested fractions.
    """
    intervals = split_intervals(val_fraction, test_fraction)
    table = table.copy()
    if "group" not in table.columns:
        table["group"] = table["id"]
    group_names = table["group"].unique()
    group_hash = pd.Series(stable_uniform(group_names, seed), index=group_names)
    table["split"] = "train"
    for name in ("val", "test"):
        low, high = intervals[name]
        table.loc[table["group"].map(group_hash).between(low, high, inclusive="left").to_numpy(), "split"] = name
    _rescue_empty_splits(table, group_hash, intervals, log)
    split = table.sort_values(["split", "label", "id"], key=_split_order, ignore_index=True)
    assert_disjoint(split)
    return split


def _rescue_empty_splits(table: pd.DataFrame, group_hash: pd.Series, intervals: dict, log) -> None:
    for label in sorted(table["label"].unique()):
        for target in ("test", "val", "train"):
            members = table[table["label"] == label]
            if (members["split"] == target).any():
                continue
            groups_per_split = members.groupby("split")["group"].nunique()
            donors = members.loc[members["split"].map(groups_per_split) >= 2, "group"].unique()
            if not len(donors):
                raise PlasmidlmError(
                    f"split: class {label!r} has {len(members)} plasmid(s) in "
                    f"{members['group'].nunique()} near-duplicate group(s), too few for train, val and test "
                    f"(needs at least 3 groups; lower the fractions or drop the class with classes.min_plasmids)"
                )
            low, high = intervals[target]
            distance = group_hash[donors].map(lambda value: max(low - value, value - high, 0.0))
            donor = distance.sort_values(kind="stable").index[0]
            source = table.loc[table["group"] == donor, "split"].iloc[0]
            table.loc[table["group"] == donor, "split"] = target
            if log:
                log(f"class {label!r} had no plasmid in {target}: moved group {donor} from {source}")
    counts = split_summary(table).set_index("label")
    empty = counts[(counts == 0).any(axis=1)]
    if len(empty):
        raise PlasmidlmError(f"split: class {empty.index[0]!r} cannot be given plasmids in every split "
                             f"(its near-duplicate groups are shared with other classes)")


def _split_order(column: pd.Series) -> pd.Series:
    return column.map(SPLITS.index) if column.name == "split" else column


def assert_disjoint(split: pd.DataFrame) -> None:
    """Fail if a plasmid ID, or a near-duplicate group, is assigned to more than one split."""
    for key, what in (("id", "plasmid"), ("group", "near-duplicate group")):
        if key not in split.columns:
            continue
        shared = split.groupby(key)["split"].nunique()
        if (shared > 1).any():
            raise PlasmidlmError(f"split: {what} {shared[shared > 1].index[0]} is in more than one split")


def split_summary(split: pd.DataFrame) -> pd.DataFrame:
    """Plasmids per class and split."""
    summary = split.pivot_table(index="label", columns="split", values="id", aggfunc="count", fill_value=0)
    return summary.reindex(columns=list(SPLITS), fill_value=0).reset_index()


def stratification(split: pd.DataFrame, val_fraction: float, test_fraction: float) -> dict:
    """Each class's share of plasmids per split, and the largest deviation from the requested fractions."""
    shares = split_summary(split).set_index("label")
    shares = shares.div(shares.sum(axis=1), axis=0)
    requested = {"train": 1 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    deviation = (shares - pd.Series(requested)).abs()
    return {
        "requested": requested,
        "by_class": {label: {name: round(float(value), 4) for name, value in row.items()}
                     for label, row in shares.iterrows()},
        "max_deviation": round(float(deviation.to_numpy().max()), 4),
        "max_deviation_class": str(deviation.max(axis=1).idxmax()),
    }
