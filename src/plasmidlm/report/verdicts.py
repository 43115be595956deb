"""The report's sentences: whether models beat composition baselines or survive shuffling, the split and the
k-mer leakage in words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from plasmidlm.evidence import COMPOSITION_BASELINES
from plasmidlm.report.tables import LEVELS, by_length


def composition_verdicts(table: pd.DataFrame) -> list[str]:
    """For each best checkpoint and level, whether it beats the strongest composition baseline, in words.

    Composition baselines see only a window's GC content or k-mer frequencies (the k-mer baseline included).
    Beating one means a higher accuracy whose 95% interval lies above the baseline's accuracy.
    Each model is compared with the baselines of its own window length.
    """
    names = {**COMPOSITION_BASELINES, "kmer": "k-mer frequencies"}
    sentences = []
    for _, rows in by_length(table):
        sentences += _composition_verdicts_of(rows, names)
    return sentences


def _composition_verdicts_of(table: pd.DataFrame, names: dict[str, str]) -> list[str]:
    composition = table[(table["kind"] == "baseline") & table["experiment"].isin(names)]
    if composition.empty:
        return []
    sentences = []
    for _, row in table[(table["kind"] == "fine-tuned") & table["best"]].iterrows():
        for level in LEVELS:
            column = f"{level}_accuracy"
            strongest = composition.loc[composition[column].idxmax()]
            base = (f"{row['experiment']} (best checkpoint {row['checkpoint']}), {level} level: test accuracy "
                    f"{row[column]:.3f} against {strongest[column]:.3f} for {names[strongest['experiment']]} alone "
                    f"({strongest['experiment']})")
            if row[column] <= strongest[column]:
                sentences.append(f"{base}: the fine-tuned model does not beat a composition baseline; on this data "
                                 "it may be reading composition rather than sequence order.")
            elif not row[f"{column}_ci_low"] > strongest[column]:
                sentences.append(f"{base}: higher, but the model's 95% interval [{row[f'{column}_ci_low']:.3f}, "
                                 f"{row[f'{column}_ci_high']:.3f}] includes the baseline's accuracy: not clearly "
                                 "better than composition.")
            else:
                sentences.append(f"{base}: the model beats every composition baseline.")
    return sentences


def shuffle_verdict(name: str, *, accuracy: float, ci_low: float, shuffled: float, chance: float = np.nan) -> str:
    """Whether a model keeps its window accuracy on dinucleotide-shuffled windows (within its 95% interval).

    `chance` is the majority baseline's accuracy: a model not above it has nothing to lose.
    """
    change = f"window accuracy {accuracy:.3f} on the test windows, {shuffled:.3f} after shuffling"
    if not pd.isna(chance) and (ci_low if not pd.isna(ci_low) else accuracy) <= chance:
        return f"{name}: {change}: not above chance ({chance:.3f}) to begin with, so the control says nothing."
    if shuffled >= accuracy or (not pd.isna(ci_low) and shuffled >= ci_low):
        return (f"{name}: {change}, within its 95% interval: it keeps its accuracy without the order of the "
                "bases, so it reads composition, not order.")
    return (f"{name}: {change}: it loses {accuracy - shuffled:.3f} when the order goes, so it reads more than "
            "dinucleotide composition.")


def kmer_covered_text(leakage: pd.Series, length: int | None) -> str:
    """The share of test windows (of one window length) that are k-mer-covered by training plasmids, by class."""
    which = f"{length}-nt test windows" if length else "test windows"
    by_class = ", ".join(f"{label}: {value:.1%}" for label, value in leakage["by_class"].items())
    return (f"{leakage['test_windows_kmer_covered_fraction']:.1%} of the {which} have every one of their "
            f"{leakage['kmer']}-mers (either strand) in the training plasmids ({by_class})")


def split_text(split_info: dict) -> str:
    strata = split_info["stratification"]
    if split_info["near_duplicate_grouping"]:
        grouping = (
            f"Near-identical plasmids are kept in one split: {split_info['plasmids_in_merged_groups']} of "
            f"{split_info['plasmids']} plasmids fall in {split_info['merged_groups']} near-duplicate groups "
            f"({split_info['linkage']} linkage; {split_info['linked_pairs_across_splits']} linked pairs straddle "
            f"splits; pairs in data/near_duplicates.tsv). Largest groups: "
            + "; ".join(f"{row['group']}: {row['size']} plasmids ("
                        + ", ".join(f"{label} {n}" for label, n in row["classes"].items())
                        + f") in {row['split']}"
                        + (f", lowest containment inside {row['min_containment']:.2f}" if "min_containment" in row
                           else "")
                        for row in split_info["largest_groups"][:5])
            + ". A lowest containment far below the linking threshold means that chains of near-copies merged "
            "plasmids that are not near-copies of each other."
        )
        spanning = split_info["cross_class_groups"]
        if spanning["groups"]:
            grouping += (f" {len(spanning['groups'])} group(s) ({spanning['plasmids']} plasmids) span several "
                         f"classes: " + ", ".join(row["group"] for row in spanning["groups"][:10])
                         + {"keep": " (split like any group).", "train": " (kept in train, never evaluated).",
                            "drop": " (left out of the split)."}[spanning["handling"]])
    else:
        grouping = "Near-duplicate grouping is off: near-identical plasmids can straddle splits."
    assignment = {
        "stratified": "Groups are assigned largest first, each to the split its seeded hash prefers unless that "
                      "would take a class's share away from the requested fractions.",
        "hash": "Each group's split comes from a seeded hash of its name alone, so classes are stratified only "
                "in expectation.",
    }[split_info["assignment"]]
    return (
        f"{grouping} {assignment} The largest deviation of a class's share from the requested fractions is "
        f"{strata['max_deviation']:.3f} (class {strata['max_deviation_class']})."
    )
