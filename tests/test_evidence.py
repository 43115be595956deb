"""Evidence computations, each checked against an independent computation."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from conftest import random_windows
from plasmidlm import evidence


def pairs(sequence):
    return Counter(zip(sequence, sequence[1:]))


def test_dinucleotide_shuffle_preserves_every_dinucleotide_count_exactly():
    rng = np.random.default_rng(0)
    for sequence in random_windows(50, length=100, seed=3) + ["ACGTNNACGTRYACGGGGGGTTTA", "AAAAAAAA", "AC"]:
        shuffled = evidence.dinucleotide_shuffle(sequence, rng)
        assert pairs(shuffled) == pairs(sequence)
        assert Counter(shuffled) == Counter(sequence)
        assert shuffled[0] == sequence[0] and shuffled[-1] == sequence[-1]


def test_dinucleotide_shuffle_changes_order_and_is_seeded():
    sequence = random_windows(1, length=200, seed=4)[0]
    first = evidence.dinucleotide_shuffle(sequence, np.random.default_rng(1))
    assert first != sequence
    assert first == evidence.dinucleotide_shuffle(sequence, np.random.default_rng(1))


def test_dinucleotide_shuffle_draws_every_sequence_with_the_same_doublets_uniformly():
    sequence = "ACGACTGAC"
    target = pairs(sequence)
    # every arrangement of the same bases that starts alike and has the same doublets, found by brute force
    candidates = {"".join(p) for p in itertools.permutations(sequence)
                  if p[0] == sequence[0] and pairs("".join(p)) == target}
    rng = np.random.default_rng(7)
    draws = Counter(evidence.dinucleotide_shuffle(sequence, rng) for _ in range(4000))
    assert set(draws) == candidates
    expected = 4000 / len(candidates)
    assert all(abs(n - expected) < 5 * np.sqrt(expected) for n in draws.values())


def test_shuffled_windows_keep_ids_and_differ_per_window():
    windows = pd.DataFrame({"window_id": ["a", "b"], "plasmid_id": ["p", "p"], "label": ["x", "x"],
                            "sequence": random_windows(2, length=80, seed=5)})
    shuffled = evidence.shuffled_windows(windows, seed=1)
    assert shuffled["window_id"].tolist() == ["a", "b"]
    assert all(pairs(s) == pairs(o) for s, o in zip(shuffled["sequence"], windows["sequence"]))
    assert shuffled.equals(evidence.shuffled_windows(windows, seed=1))


def test_gc_content_counts_only_acgt():
    np.testing.assert_allclose(evidence.gc_content(["GGCC", "ATGC", "GCNN", "NNNN"]).ravel(), [1, 0.5, 1, 0.5])


def softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_temperature_scaling_equals_dividing_the_logits_and_keeps_the_argmax():
    logits = np.random.default_rng(0).normal(0, 3, (200, 3))
    proba = softmax(logits)
    for temperature in (0.3, 1.0, 2.5):
        scaled = evidence.scale_temperature(proba, temperature)
        np.testing.assert_allclose(scaled, softmax(logits / temperature), atol=1e-9)
        assert (scaled.argmax(axis=1) == proba.argmax(axis=1)).all()


def test_fitted_temperature_recovers_the_temperature_labels_were_drawn_with():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, (20000, 2))
    true_proba = softmax(logits / 2.0)
    y_true = (rng.random(len(logits)) < true_proba[:, 1]).astype(int)
    assert evidence.fit_temperature(softmax(logits), y_true) == pytest.approx(2.0, rel=0.05)


def test_reliability_matches_a_hand_computed_ece():
    proba = np.array([[0.95, 0.05], [0.9, 0.1], [0.35, 0.65], [0.4, 0.6], [0.2, 0.8]])
    y_true = np.array([0, 1, 1, 0, 1])
    # bins: [0.9, 1.0]: confidences 0.95, 0.9 (1 of 2 right); [0.6, 0.7): 0.65, 0.6 (1 of 2); [0.8, 0.9): 0.8 (1 of 1)
    expected = 2 / 5 * abs(0.5 - 0.925) + 2 / 5 * abs(0.5 - 0.625) + 1 / 5 * abs(1 - 0.8)
    result = evidence.reliability(proba, y_true, n_bins=10)
    assert result["ece"] == pytest.approx(expected)
    assert sum(row["n"] for row in result["bins"]) == 5


def test_calibration_report_sequence_level_uses_plasmid_means():
    test = pd.DataFrame({"plasmid_id": ["p", "p", "q"], "label": ["a", "a", "b"]})
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]])
    result = evidence.calibration_report(test, proba, test, proba, classes=["a", "b"], n_bins=10)
    assert result["sequence"]["before"]["n"] == 2
    # p: mean (0.6, 0.4) right with confidence 0.6; q: 0.8 right
    assert result["sequence"]["before"]["ece"] == pytest.approx(0.5 * 0.4 + 0.5 * 0.2)


def test_strand_flips_and_abstention():
    forward = np.array([[0.9, 0.1], [0.4, 0.6], [0.55, 0.45]])
    reverse = np.array([[0.8, 0.2], [0.7, 0.3], [0.45, 0.55]])
    assert evidence.strand_flip_fraction(forward, reverse) == pytest.approx(2 / 3)
    assert evidence.abstain(forward, ["a", "b"], 0.6) == ["a", "b", "uncertain"]
    assert evidence.abstain(forward, ["a", "b"], None) == ["a", "b", "a"]


def test_contigs_are_non_overlapping_whole_tiles_inside_their_plasmid():
    lengths = {"p": 5230, "q": 1999, "r": 800}
    table = evidence.contigs(lengths, [1000, 2000], window=100, seed=3)
    assert (table["start"] % 100 == 0).all()
    assert (table["start"] + table["contig_length"] <= table["plasmid_id"].map(lengths)).all()
    counts = table.groupby(["plasmid_id", "contig_length"]).size().to_dict()
    assert counts == {("p", 1000): 5, ("p", 2000): 2, ("q", 1000): 1}
    for _, rows in table.groupby(["plasmid_id", "contig_length"]):
        starts = np.sort(rows["start"].to_numpy())
        assert (np.diff(starts) >= rows["contig_length"].iloc[0]).all()
    assert table.equals(evidence.contigs(lengths, [1000, 2000], window=100, seed=3))


def test_contig_probabilities_are_the_mean_of_their_tiles():
    sequences = {"p": "A" * 1050, "q": "C" * 730}
    plasmids = pd.DataFrame({"id": ["p", "q"], "label": ["a", "b"]})
    tile_table = evidence.tiles(sequences.items(), plasmids, 100)
    assert tile_table.groupby("plasmid_id").size().to_dict() == {"p": 10, "q": 7}
    assert (tile_table["sequence"].str.len() == 100).all()
    tile_proba = np.random.default_rng(0).dirichlet([1, 1], len(tile_table))
    contig_table = evidence.contigs({"p": 1050, "q": 730}, [300, 500], 100, seed=1)
    proba = evidence.contig_proba(tile_table, tile_proba, contig_table, 100)
    for row, contig in contig_table.iterrows():
        inside = ((tile_table["plasmid_id"] == contig["plasmid_id"]) & (tile_table["start"] >= contig["start"])
                  & (tile_table["start"] + 100 <= contig["start"] + contig["contig_length"])).to_numpy()
        assert inside.sum() == contig["contig_length"] // 100
        np.testing.assert_allclose(proba[row], tile_proba[inside].mean(axis=0))


def test_contig_curve_accuracy_per_length():
    contig_table = pd.DataFrame({"plasmid_id": ["p", "p", "q", "p", "q"], "contig_length": [1, 1, 1, 2, 2],
                                 "start": 0})
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.6, 0.4], [0.7, 0.3]])
    curve = evidence.contig_curve(contig_table, proba, {"p": "a", "q": "b"}, classes=["a", "b"], n_bootstrap=20, seed=0)
    assert curve["accuracy"].tolist() == pytest.approx([2 / 3, 1 / 2])
    assert curve["balanced_accuracy"].tolist() == pytest.approx([(1 / 2 + 1) / 2, (1 + 0) / 2])
    assert curve["plasmids"].tolist() == [2, 2]
    assert (curve["accuracy_ci_low"] <= curve["accuracy"]).all()


def test_contig_curve_without_contigs_keeps_its_columns():
    """Test plasmids all shorter than the shortest contig length: an empty table that the report can read."""
    curve = evidence.contig_curve(pd.DataFrame({"plasmid_id": [], "contig_length": [], "start": []}), np.zeros((0, 2)),
                                  {}, classes=["a", "b"], n_bootstrap=10, seed=0)
    assert curve.empty
    assert {"contig_length", "accuracy", "accuracy_ci_low", "accuracy_ci_high"} <= set(curve.columns)
