"""Splitting plasmids into train/val/test by ID, stratified by class, seeded and order-independent."""

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


def split_by_plasmid(
    table: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int
) -> pd.DataFrame:
    """Assign each plasmid (row of `id`, `label`) to train, val or test.

    Within each class, plasmids are ordered by a seeded hash of their ID; the first
    round(n * test_fraction) go to test, the next round(n * val_fraction) to val, the rest to train.
    The result does not depend on the row order of `table`. Every class must get at least one
    plasmid in every split.
    """
    if val_fraction + test_fraction >= 1:
        raise PlasmidlmError("config split: val_fraction + test_fraction must be below 1")
    parts = []
    for label, group in table.groupby("label", sort=True):
        group = group.assign(_key=stable_uniform(group["id"], seed)).sort_values(["_key", "id"])
        n = len(group)
        n_test = max(1, round(n * test_fraction))
        n_val = max(1, round(n * val_fraction))
        if n - n_test - n_val < 1:
            raise PlasmidlmError(
                f"config split: class {label!r} has {n} plasmid(s), too few for train, val and test "
                f"(needs at least 3; lower the fractions or drop the class with classes.min_plasmids)"
            )
        group["split"] = ["test"] * n_test + ["val"] * n_val + ["train"] * (n - n_test - n_val)
        parts.append(group.drop(columns="_key"))
    split = pd.concat(parts).sort_values(["split", "label", "id"], key=_split_order, ignore_index=True)
    assert_disjoint(split)
    return split


def _split_order(column: pd.Series) -> pd.Series:
    return column.map(SPLITS.index) if column.name == "split" else column


def assert_disjoint(split: pd.DataFrame) -> None:
    """Fail if any plasmid ID is assigned to more than one split."""
    shared = split.groupby("id")["split"].nunique()
    if (shared > 1).any():
        raise PlasmidlmError(f"split: plasmid {shared[shared > 1].index[0]} is in more than one split")


def split_summary(split: pd.DataFrame) -> pd.DataFrame:
    """Plasmids per class and split."""
    summary = split.pivot_table(index="label", columns="split", values="id", aggfunc="count", fill_value=0)
    return summary.reindex(columns=list(SPLITS), fill_value=0).reset_index()
