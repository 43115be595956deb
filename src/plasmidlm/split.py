"""Splitting plasmids into train/val/test by ID: seeded, near-copies kept together, stratified by class."""

from __future__ import annotations

import logging
import hashlib

import numpy as np
import pandas as pd

from plasmidlm import PlasmidlmError

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
ASSIGNMENTS = ("stratified", "hash")


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
    table: pd.DataFrame, *, val_fraction: float, test_fraction: float, seed: int, assignment: str = "stratified",
    train_only=(),
) -> pd.DataFrame:
    """Assign each plasmid (row of `id`, `label`, optionally `group`) to train, val or test; groups stay whole.

    Each group has a preferred split from the seeded hash of its name: test below test_fraction, val below
    test_fraction + val_fraction, else train.
    - assignment "hash": every group goes to its preferred split. Classes are stratified only in
      expectation, and one large group can take a class's share away from a split.
    - assignment "stratified": groups are placed largest first; a group goes to its preferred split when
      that brings the split closer to each of the group's classes' requested share, else to the split whose
      per-class deficit it fills best. A group larger than a class's val or test share can only go to train.
      Since most groups keep their preferred split, adding plasmids moves few existing ones.
    Groups in `train_only` go to train. A class with no plasmid in some split then gets a group (the
    smallest, then the one whose hash is nearest that split) from a split that holds two or more of its
    groups. Every move away from the preferred split that is not a matter of filling deficits is logged.
    """
    if assignment not in ASSIGNMENTS:
        raise PlasmidlmError(f"config split: assignment must be one of {ASSIGNMENTS}, not {assignment!r}")
    intervals = split_intervals(val_fraction, test_fraction)
    table = table.copy()
    if "group" not in table.columns:
        table["group"] = table["id"]
    group_names = np.sort(table["group"].unique())
    group_hash = pd.Series(stable_uniform(group_names, seed), index=group_names)
    preferred = pd.Series("train", index=group_names)
    for name in ("val", "test"):
        preferred[group_hash.between(*intervals[name], inclusive="left")] = name
    pinned = preferred.index.isin(list(train_only))
    preferred[pinned] = "train"
    if assignment == "hash":
        chosen = preferred
    else:
        fractions = {name: high - low for name, (low, high) in intervals.items()}
        chosen = _stratified(table, preferred, group_hash, fractions, pinned=set(preferred.index[pinned]))
    table["split"] = table["group"].map(chosen)
    _rescue_empty_splits(table, group_hash, intervals, set(preferred.index[pinned]))
    split = table.sort_values(["split", "label", "id"], key=_split_order, ignore_index=True)
    assert_disjoint(split)
    return split


def _stratified(table: pd.DataFrame, preferred: pd.Series, group_hash: pd.Series, fractions: dict,
                *, pinned: set) -> pd.Series:
    counts = pd.crosstab(table["group"], table["label"])
    totals = counts.sum().to_numpy(dtype=float)
    targets = np.outer(totals, [fractions[name] for name in SPLITS])  # classes × splits
    values = counts.to_numpy(dtype=float)
    preferred_index = preferred[counts.index].map(SPLITS.index).to_numpy()
    placed = np.zeros_like(targets)
    pending = np.zeros_like(targets)  # plasmids of groups not yet placed, by their preferred split
    np.add.at(pending.T, preferred_index, values)
    sizes = counts.sum(axis=1)
    order = sorted(range(len(counts)), key=lambda row: (counts.index[row] not in pinned, -sizes.iloc[row],
                                                        group_hash[counts.index[row]], counts.index[row]))
    chosen = {}
    for row in order:
        name, wanted = counts.index[row], preferred_index[row]
        classes = np.flatnonzero(values[row])
        members = values[row, classes][:, None]
        pending[classes, wanted] -= members[:, 0]
        deficit = targets[classes] - placed[classes]
        change = _change(deficit, members, totals[classes])
        fits = ~(members > np.maximum(targets[classes], 1)).any(axis=0)
        fits[0] = True  # train takes any group
        if name in pinned:
            target = 0
        elif fits[wanted] and change[wanted] < 0:
            target = wanted
        else:
            # the split that will be short once every group still to come sits in its preferred split
            shortfall = _change(deficit - pending[classes], members, totals[classes])
            target = min(np.flatnonzero(fits), key=lambda index: (shortfall[index], change[index], index))
            if not fits[wanted]:
                mix = ", ".join(f"{label} {int(n)}" for label, n in counts.loc[name][counts.loc[name] > 0].items())
                logger.info(f"group {name} ({sizes[name]} plasmids: {mix}) is larger than its classes' "
                            f"{SPLITS[wanted]} share: it goes to {SPLITS[target]}")
        placed[classes, target] += members[:, 0]
        chosen[name] = SPLITS[target]
    return pd.Series(chosen)


def _change(deficit: np.ndarray, members: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Per split: how much adding the group changes the distance to the classes' targets (in class shares)."""
    return ((np.abs(deficit - members) - np.abs(deficit)) / totals[:, None]).sum(axis=0)


def _rescue_empty_splits(table: pd.DataFrame, group_hash: pd.Series, intervals: dict, pinned: set) -> None:
    sizes = table["group"].value_counts()
    for label in sorted(table["label"].unique()):
        for target in ("test", "val", "train"):
            members = table[table["label"] == label]
            if (members["split"] == target).any():
                continue
            groups_per_split = members.groupby("split")["group"].nunique()
            donors = members.loc[members["split"].map(groups_per_split) >= 2, "group"].unique()
            donors = [name for name in donors if name not in pinned]
            if not len(donors):
                raise PlasmidlmError(
                    f"split: class {label!r} has {len(members)} plasmid(s) in "
                    f"{members['group'].nunique()} near-duplicate group(s), too few for train, val and test "
                    f"(needs at least 3 groups; lower the fractions or drop the class with classes.min_plasmids)"
                )
            low, high = intervals[target]
            donor = min(donors, key=lambda name: (sizes[name], max(low - group_hash[name], group_hash[name] - high,
                                                                   0.0), name))
            source = table.loc[table["group"] == donor, "split"].iloc[0]
            table.loc[table["group"] == donor, "split"] = target
            logger.info(f"class {label!r} had no plasmid in {target}: moved group {donor} from {source}")
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


def _deviations(split: pd.DataFrame, val_fraction: float, test_fraction: float) -> tuple[pd.DataFrame, dict]:
    shares = split_summary(split).set_index("label")
    shares = shares.div(shares.sum(axis=1), axis=0)
    requested = {"train": 1 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    return shares, requested


def stratification(split: pd.DataFrame, val_fraction: float, test_fraction: float) -> dict:
    """Each class's share of plasmids per split, and the largest deviation from the requested fractions."""
    shares, requested = _deviations(split, val_fraction, test_fraction)
    deviation = (shares - pd.Series(requested)).abs()
    return {
        "requested": requested,
        "by_class": {label: {name: round(float(value), 4) for name, value in row.items()}
                     for label, row in shares.iterrows()},
        "max_deviation": round(float(deviation.to_numpy().max()), 4),
        "max_deviation_class": str(deviation.max(axis=1).idxmax()),
    }


def largest_groups(split: pd.DataFrame, count: int = 10) -> list[dict]:
    """The `count` largest groups of two or more plasmids: name, size, plasmids per class (and split, if known)."""
    sizes = split["group"].value_counts()
    names = sorted(sizes[sizes > 1].index, key=lambda name: (-sizes[name], name))[:count]
    rows = []
    for name in names:
        members = split[split["group"] == name]
        rows.append({"group": name, "size": int(sizes[name]),
                     "classes": {str(label): int(n)
                                 for label, n in members["label"].value_counts().sort_index().items()}}
                    | ({"split": members["split"].iloc[0]} if "split" in members.columns else {}))
    return rows


def cross_class_groups(table: pd.DataFrame) -> list[str]:
    """Groups whose plasmids carry more than one label (the same plasmid in two hosts, say), sorted."""
    labels = table.groupby("group")["label"].nunique()
    return sorted(labels.index[labels > 1])


def check_deviation(split: pd.DataFrame, val_fraction: float, test_fraction: float, max_deviation: float) -> None:
    """Fail, naming the classes, the largest groups and the ways out, if a class's share is too far off."""
    shares, requested = _deviations(split, val_fraction, test_fraction)
    deviation = (shares - pd.Series(requested)).abs()
    over = deviation.max(axis=1)
    over = over[over > max_deviation].sort_values(ascending=False)
    if over.empty:
        return
    classes = "; ".join(
        f"{label} " + "/".join(f"{shares.loc[label, name]:.2f}" for name in SPLITS) for label in over.index)
    concerned = split[split["group"].isin(split.loc[split["label"].isin(over.index), "group"])]
    groups = "; ".join(f"{row['group']} ({row['size']} plasmids: "
                       + ", ".join(f"{label} {n}" for label, n in row["classes"].items()) + f"; in {row['split']})"
                       for row in largest_groups(concerned, 3))
    raise PlasmidlmError(
        f"split: the share of class(es) {', '.join(map(repr, over.index))} per split deviates from the requested "
        f"{'/'.join(f'{requested[name]:g}' for name in SPLITS)} (train/val/test) by up to {over.iloc[0]:.3f}, "
        f"above split.max_deviation {max_deviation:g}: {classes}. Largest near-duplicate groups: "
        f"{groups or 'none'}. Options: raise split.near_duplicates.threshold (fewer links), use "
        f"split.near_duplicates.linkage: centroid (no chaining), or accept it with split.accept_deviation: true "
        f"(or a higher split.max_deviation)"
    )
