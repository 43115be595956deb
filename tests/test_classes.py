"""Choosing which classes take part: all, top k, abundance ranks, explicit list, min_plasmids."""

from __future__ import annotations

import pandas as pd
import pytest

from plasmidlm import PlasmidlmError
from plasmidlm.classes import class_counts, select_classes


@pytest.fixture
def table(synthetic):
    return synthetic.table  # alpha 12, beta 9, gamma 7, delta 5


def selected_labels(selected: pd.DataFrame) -> set[str]:
    return set(selected["label"])


def test_class_counts_ranks_by_abundance(table):
    counts = class_counts(table)
    assert counts.to_dict("list") == {
        "label": ["alpha", "beta", "gamma", "delta"],
        "plasmids": [12, 9, 7, 5],
        "rank": [1, 2, 3, 4],
    }


def test_class_counts_breaks_ties_by_name():
    table = pd.DataFrame({"id": list("abcdef"), "label": ["z", "z", "m", "m", "a", "a"]})
    assert list(class_counts(table)["label"]) == ["a", "m", "z"]


def test_select_all_keeps_every_plasmid(table):
    selected, counts = select_classes(table, select="all")
    pd.testing.assert_frame_equal(selected, table.reset_index(drop=True))
    assert counts["selected"].all()
    assert list(counts.columns) == ["label", "plasmids", "rank", "selected"]


def test_select_top_k_keeps_most_abundant(table):
    selected, counts = select_classes(table, select="top", k=2)
    assert selected_labels(selected) == {"alpha", "beta"}
    assert len(selected) == 12 + 9
    assert counts.set_index("label")["selected"].to_dict() == {
        "alpha": True, "beta": True, "gamma": False, "delta": False}


def test_select_top_k_larger_than_class_count_keeps_all(table):
    selected, _ = select_classes(table, select="top", k=10)
    assert selected_labels(selected) == {"alpha", "beta", "gamma", "delta"}


def test_select_ranks_two_and_three(table):
    selected, counts = select_classes(table, select="ranks", ranks=[2, 3])
    assert selected_labels(selected) == {"beta", "gamma"}
    assert len(selected) == 9 + 7
    assert list(counts.loc[counts["selected"], "rank"]) == [2, 3]


def test_select_list_of_names(table):
    selected, _ = select_classes(table, select="list", names=["delta", "alpha"])
    assert selected_labels(selected) == {"alpha", "delta"}
    assert len(selected) == 12 + 5


def test_selection_preserves_row_order_of_input(table):
    selected, _ = select_classes(table, select="list", names=["beta", "gamma"])
    expected = table[table["label"].isin(["beta", "gamma"])]["id"].tolist()
    assert selected["id"].tolist() == expected


def test_min_plasmids_drops_small_classes_before_ranking(table):
    selected, counts = select_classes(table, select="all", min_plasmids=6)
    assert selected_labels(selected) == {"alpha", "beta", "gamma"}
    assert list(counts["label"]) == ["alpha", "beta", "gamma"]
    assert list(counts["rank"]) == [1, 2, 3]


def test_min_plasmids_ranks_are_renumbered(table):
    # With alpha (12) and beta (9) only kept, rank 2 is beta; gamma and delta no longer have ranks.
    selected, _ = select_classes(table, select="ranks", ranks=[1, 2], min_plasmids=8)
    assert selected_labels(selected) == {"alpha", "beta"}


def test_error_when_fewer_than_two_classes_remain_after_min_plasmids(table):
    with pytest.raises(PlasmidlmError, match="selection leaves 1 class"):
        select_classes(table, select="all", min_plasmids=10)


def test_error_when_top_k_is_one(table):
    with pytest.raises(PlasmidlmError, match="selection leaves 1 class"):
        select_classes(table, select="top", k=1)


def test_error_when_top_without_k(table):
    with pytest.raises(PlasmidlmError, match="classes.k: required"):
        select_classes(table, select="top")


def test_error_when_single_rank(table):
    with pytest.raises(PlasmidlmError, match="selection leaves 1 class"):
        select_classes(table, select="ranks", ranks=[3])


def test_error_when_rank_does_not_exist(table):
    with pytest.raises(PlasmidlmError, match="rank 5 requested but only 4 classes"):
        select_classes(table, select="ranks", ranks=[2, 5])


def test_error_when_rank_removed_by_min_plasmids(table):
    with pytest.raises(PlasmidlmError, match="rank 4 requested but only 3 classes have at least 6"):
        select_classes(table, select="ranks", ranks=[1, 4], min_plasmids=6)


def test_error_when_ranks_missing(table):
    with pytest.raises(PlasmidlmError, match="classes.ranks: required"):
        select_classes(table, select="ranks")


def test_error_when_name_does_not_exist(table):
    with pytest.raises(PlasmidlmError, match="class 'epsilon' not found"):
        select_classes(table, select="list", names=["alpha", "epsilon"])


def test_error_when_name_dropped_by_min_plasmids(table):
    with pytest.raises(PlasmidlmError, match="class 'delta' not found among labels with at least 6"):
        select_classes(table, select="list", names=["alpha", "delta"], min_plasmids=6)


def test_error_when_list_has_one_name(table):
    with pytest.raises(PlasmidlmError, match="selection leaves 1 class"):
        select_classes(table, select="list", names=["alpha"])


def test_error_for_unknown_select_value(table):
    with pytest.raises(PlasmidlmError, match="unknown value 'bottom'"):
        select_classes(table, select="bottom")
