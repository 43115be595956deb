"""Baselines: canonical k-mer frequencies, majority class, and frozen-embedding classifiers."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import WINDOW, random_windows
from plasmidlm import baselines
from plasmidlm.evaluate import embed_windows
from plasmidlm.windows import reverse_complement


def test_canonical_kmers_merge_the_two_strands():
    sequences = random_windows(5, length=200, seed=1)
    forward = baselines.kmer_frequencies(sequences, 4)
    reverse = baselines.kmer_frequencies([reverse_complement(s) for s in sequences], 4)
    np.testing.assert_allclose(forward, reverse)
    assert forward.shape == (5, 136)  # (4**4 + 4**2) / 2: 16 of the 256 4-mers are their own reverse complement
    np.testing.assert_allclose(forward.sum(axis=1), 1)


def test_kmers_with_ambiguous_bases_are_ignored():
    frequencies = baselines.kmer_frequencies(["AAAANAAAA"], 4)
    assert frequencies.sum() == pytest.approx(1)
    assert frequencies.max() == pytest.approx(1)  # only AAAA (and its complement TTTT, the same column)


def test_majority_baseline_predicts_the_most_frequent_training_class():
    proba = baselines.majority_proba(["b", "b", "a"], 4, ["a", "b"])
    assert proba.tolist() == [[0, 1]] * 4


def test_logistic_probabilities_follow_the_requested_class_order():
    rng = np.random.default_rng(0)
    features = np.vstack([rng.normal(0, 1, (50, 3)), rng.normal(3, 1, (50, 3))])
    labels = ["x"] * 50 + ["w"] * 50
    model = baselines.fit_logistic(features, labels, C=1.0, seed=0)
    proba = baselines.logistic_proba(model, features, ["x", "w"])
    assert (proba[:50, 0] > 0.5).mean() > 0.9 and (proba[50:, 1] > 0.5).mean() > 0.9


def test_mean_pool_ignores_padding():
    states = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    masks = np.array([[True, True, False]])
    np.testing.assert_allclose(baselines.mean_pool(states, masks), [[2.0, 3.0]])


def test_encoder_of_a_classifier_checkpoint_gives_the_same_embeddings(tiny_checkpoint):
    directory, model, tokenizer = tiny_checkpoint
    encoder, encoder_tokenizer, metadata = baselines.load_encoder(directory)
    assert metadata["kmer"] == 3
    windows = random_windows(6, seed=11)
    states, masks = baselines.token_states(encoder, encoder_tokenizer, metadata, windows, batch_size=4)
    assert states.shape[:2] == masks.shape == (6, WINDOW - 3 + 1 + 2)
    np.testing.assert_allclose(baselines.mean_pool(states, masks),
                               embed_windows(model, tokenizer, model.config.plasmidlm, windows), atol=1e-5)


def test_token_cnn_learns_a_position_independent_motif():
    rng = np.random.default_rng(0)
    states = rng.normal(0, 1, (200, 20, 4)).astype(np.float32)
    labels = np.arange(200) % 2
    positions = rng.integers(0, 20, size=200)
    states[labels == 1, positions[labels == 1], 0] += 6.0  # class 1 carries one strong token anywhere
    masks = np.ones((200, 20), dtype=bool)
    model = baselines.fit_token_cnn(states, masks, labels, n_classes=2, epochs=60, seed=0, channels=8, kernel=3)
    proba = baselines.token_cnn_proba(model, states, masks)
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert (proba.argmax(axis=1) == labels).mean() > 0.9
    again = baselines.fit_token_cnn(states, masks, labels, n_classes=2, epochs=60, seed=0, channels=8, kernel=3)
    np.testing.assert_allclose(baselines.token_cnn_proba(again, states, masks), proba)

