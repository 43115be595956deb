"""Choosing which classes (labels) of plasmids take part in a run."""

from __future__ import annotations

import pandas as pd

from plasmidlm import PlasmidlmError


def class_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Plasmids per label, ranked by abundance (rank 1 = most plasmids; ties broken by name)."""
    counts = table.groupby("label").size().rename("plasmids").reset_index()
    counts = counts.sort_values(["plasmids", "label"], ascending=[False, True], ignore_index=True)
    counts["rank"] = range(1, len(counts) + 1)
    return counts


def select_classes(
    table: pd.DataFrame,
    *,
    select: str = "all",
    k: int | None = None,
    ranks: list[int] | None = None,
    names: list[str] | None = None,
    min_plasmids: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the plasmids of the chosen classes.

    `select` is `all`, `top` (the `k` most abundant), `ranks` (abundance ranks, e.g. [2, 3]) or `list`
    (`names`). Classes with fewer than `min_plasmids` plasmids are dropped before ranking.
    Returns the filtered table and the per-class table (`label`, `plasmids`, `rank`, `selected`).
    """
    counts = class_counts(table)
    counts = counts[counts["plasmids"] >= min_plasmids].reset_index(drop=True)
    counts["rank"] = range(1, len(counts) + 1)
    chosen = _chosen_labels(counts, select, k=k, ranks=ranks, names=names, min_plasmids=min_plasmids)
    if len(chosen) < 2:
        raise PlasmidlmError(
            f"config classes: selection leaves {len(chosen)} class(es); at least 2 are needed "
            f"(available: {', '.join(f'{name} ({n})' for name, n in zip(counts['label'], counts['plasmids']))})"
        )
    counts["selected"] = counts["label"].isin(chosen)
    selected = table[table["label"].isin(chosen)].reset_index(drop=True)
    return selected, counts


def _chosen_labels(counts: pd.DataFrame, select: str, *, k: int | None, ranks: list[int] | None,
                   names: list[str] | None, min_plasmids: int) -> set[str]:
    """The labels that `select` picks from the ranked classes in `counts`."""
    if select == "all":
        return set(counts["label"])
    elif select == "top":
        if not k:
            raise PlasmidlmError("config classes.k: required (a positive integer) when classes.select is 'top'")
        return set(counts["label"].head(k))
    elif select == "ranks":
        if not ranks:
            raise PlasmidlmError("config classes.ranks: required when classes.select is 'ranks'")
        too_high = [rank for rank in ranks if rank > len(counts)]
        if too_high:
            raise PlasmidlmError(
                f"config classes.ranks: rank {too_high[0]} requested but only {len(counts)} "
                f"classes have at least {min_plasmids} plasmid(s)"
            )
        return set(counts.loc[counts["rank"].isin(ranks), "label"])
    elif select == "list":
        missing = [name for name in names or [] if name not in set(counts["label"])]
        if missing:
            raise PlasmidlmError(
                f"config classes.names: class {missing[0]!r} not found among labels with at least "
                f"{min_plasmids} plasmid(s) (have: {', '.join(counts['label'])})"
            )
        return set(names or [])
    else:
        raise PlasmidlmError(f"config classes.select: unknown value {select!r}")
