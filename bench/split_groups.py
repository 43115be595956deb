"""Near-duplicate linkage and split assignment on a synthetic plasmid database with drifting lineages.

For each linkage (none = every plasmid alone, components, centroid) the script reports the group sizes, the
diameter of the largest group (lowest containment between two of its members), the groups that span classes,
the largest deviation of a class's share from the requested fractions, the linked pairs that straddle
splits, and the 31-mer leakage share: test windows whose every 31-mer occurs in a training plasmid. Then,
for each assignment (hash, stratified) and linkage, the share of plasmids that change split when 10% new
plasmids are added (groups recomputed on the larger set), averaged over a few random additions.
The database comes from data_scale.generate with lineages (README.md next to this file), or from
--fasta/--labels. Example:

    PYTHONPATH=src python bench/split_groups.py --gbp 0.05 --workdir /tmp/plasmidlm-groups
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from data_scale import default, generate

from plasmidlm import io, neardup
from plasmidlm.split import cross_class_groups, split_by_plasmid, stratification
from plasmidlm.windows import WindowPolicy, draw_balanced_windows, windows_covered_by_kmers

LINKAGES = ("none", "components", "centroid")


def groups_of(table: pd.DataFrame, pairs: pd.DataFrame, linkage: str, measure: str) -> pd.DataFrame:
    table = table.copy()
    if linkage == "none":
        table["group"] = table["id"]
    else:
        table["group"] = neardup.group_ids(table["id"].tolist(), pairs, linkage=linkage,
                                           lengths=table["length"].tolist(), measure=measure).to_numpy()
    return table


def leakage_share(fasta: Path, split: pd.DataFrame, count: int, length: int, seed: int) -> float:
    """Share of `count` balanced test windows whose every 31-mer is in a training plasmid."""
    test = split[split["split"] == "test"].reset_index(drop=True)
    windows = draw_balanced_windows(io.iter_fasta(fasta, set(test["id"])), test, WindowPolicy(length), count=count,
                                    seed=(seed, "windows", "test"))
    training = (sequence for _, sequence in io.iter_fasta(fasta, set(split.loc[split["split"] == "train", "id"])))
    return float(windows_covered_by_kmers(windows["sequence"].tolist(), training, 31).mean())


def linkage_row(fasta, table, pairs, linkage, ids, sketches, fractions, seed, windows, length) -> dict:
    grouped = groups_of(table, pairs, linkage, default("split", "near_duplicates", "measure"))
    split = split_by_plasmid(grouped, val_fraction=fractions[0], test_fraction=fractions[1], seed=seed)
    sizes = grouped["group"].value_counts()
    diameter = neardup.group_diameters(ids, sketches, grouped.set_index("id")["group"], names=[sizes.index[0]])
    split_of = split.set_index("id")["split"]
    return {
        "linkage": linkage,
        "groups of 2+": int((sizes > 1).sum()),
        "plasmids in them": int(sizes[sizes > 1].sum()),
        "largest groups": " ".join(map(str, sizes.iloc[:5])),
        "largest: lowest containment": round(float(diameter["min_containment"].iloc[0]), 3) if sizes.iloc[0] > 1
        else None,
        "groups spanning classes": len(cross_class_groups(grouped)),
        "max deviation (stratified)": stratification(split, *fractions)["max_deviation"],
        "linked pairs across splits": int((pairs["id_a"].map(split_of) != pairs["id_b"].map(split_of)).sum()),
        "31-mer leakage share": round(leakage_share(fasta, split, windows, length, seed), 3),
    }


def stability(table, pairs, linkage, assignment, fractions, seed, repeats) -> tuple[float, float]:
    """Mean share of plasmids that change split when 10% are added; mean max deviation of the larger split."""
    measure = default("split", "near_duplicates", "measure")
    after = split_by_plasmid(groups_of(table, pairs, linkage, measure), val_fraction=fractions[0],
                             test_fraction=fractions[1], seed=seed, assignment=assignment)
    after = after.set_index("id")["split"]
    moved, deviation = [], []
    for repeat in range(repeats):
        # the plasmids "before": all but a random 1/11, so that the rest adds 10% to them
        rng = np.random.default_rng([seed, repeat])
        before_ids = set(table["id"][rng.random(len(table)) >= 1 / 11])
        subset = table[table["id"].isin(before_ids)]
        subset_pairs = pairs[pairs["id_a"].isin(before_ids) & pairs["id_b"].isin(before_ids)]
        before = split_by_plasmid(groups_of(subset, subset_pairs, linkage, measure), val_fraction=fractions[0],
                                  test_fraction=fractions[1], seed=seed, assignment=assignment)
        moved.append(float((before.set_index("id")["split"] != after.loc[before["id"]].to_numpy()).mean()))
        deviation.append(stratification(before, *fractions)["max_deviation"])
    return float(np.mean(moved)), float(np.mean(deviation))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gbp", type=float, default=0.05, help="size of the synthetic database in Gbp")
    parser.add_argument("--fasta", type=Path, help="use this FASTA (with --labels) instead of a synthetic database")
    parser.add_argument("--labels", type=Path, help="TSV with columns id and label")
    parser.add_argument("--workdir", type=Path, default=Path("bench-groups"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-windows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5, help="random additions per stability figure")
    arguments = parser.parse_args()
    started = time.perf_counter()
    arguments.workdir.mkdir(parents=True, exist_ok=True)
    fasta, labels = arguments.fasta, arguments.labels
    if fasta is None:
        fasta, labels = arguments.workdir / "plasmids.fasta", arguments.workdir / "labels.tsv"
        plasmids, bases = generate(fasta, labels, arguments.gbp, arguments.seed, lineages=True)
        print(f"synthetic database with lineages: {plasmids:,} plasmids, {bases / 1e6:.0f} Mbp")
    length = default("windows", "length")
    table, _ = io.validate_inputs(fasta, labels, id_column="id", label_column="label", min_length=length)
    ksize, scaled = (default("split", "near_duplicates", key) for key in ("ksize", "scaled"))
    measure, threshold = (default("split", "near_duplicates", key) for key in ("measure", "threshold"))
    ids, sketches = neardup.sketch_records(io.iter_fasta(fasta), ksize=ksize, scaled=scaled, threads=2)
    pairs = neardup.similar_pairs(ids, sketches, threshold=threshold, measure=measure)
    pairs = pairs[pairs["id_a"].isin(table["id"]) & pairs["id_b"].isin(table["id"])]
    fractions = (default("split", "val_fraction"), default("split", "test_fraction"))
    print(f"{len(table):,} plasmids, {table['length'].sum() / 1e6:.0f} Mbp, {table['label'].nunique()} classes; "
          f"{len(pairs):,} pairs with {measure} >= {threshold} (k {ksize}, scaled {scaled}); "
          f"val/test {fractions[0]}/{fractions[1]}, seed {arguments.seed}\n")
    rows = [linkage_row(fasta, table, pairs, linkage, ids, sketches, fractions, arguments.seed,
                        arguments.test_windows, length) for linkage in LINKAGES]
    print(pd.DataFrame(rows).to_markdown(index=False))
    print(f"\nstability: share of plasmids that change split when 10% are added (mean of {arguments.repeats}); "
          f"mean max deviation")
    stable = []
    for linkage in LINKAGES:
        row = {"linkage": linkage}
        for assignment in ("hash", "stratified"):
            moved, deviation = stability(table, pairs, linkage, assignment, fractions, arguments.seed,
                                         arguments.repeats)
            row[f"{assignment}: moved"], row[f"{assignment}: max deviation"] = round(moved, 4), round(deviation, 3)
        stable.append(row)
    print(pd.DataFrame(stable).to_markdown(index=False))
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
