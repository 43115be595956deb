"""Baselines: canonical k-mer frequencies, majority class, and frozen-embedding classifiers."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import WINDOW, random_windows
from plasmidlm import baselines
from plasmidlm.evaluate import embed_windows
from plasmidlm.windows import WindowPolicy, capped_counts, draw_windows, reverse_complement


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
                               embed_windows(model, tokenizer, model.config.plasmidlm, windows, precision="fp32"),
                               atol=1e-5)


def test_pooled_training_features_equal_the_mean_of_per_token_states(tiny_checkpoint):
    """The baseline pools its training windows with `embed_windows` in fp32: exactly the torch mean of
    `encoder_states`, batch by batch, and the host-side pool of `token_states` within float rounding."""
    directory, _, _ = tiny_checkpoint
    encoder, tokenizer, metadata = baselines.load_encoder(directory)
    windows = random_windows(7, seed=12)
    pooled = embed_windows(encoder, tokenizer, metadata, windows, batch_size=3, precision="fp32")
    expected = []
    for begin in range(0, len(windows), 3):
        hidden, masks = baselines.encoder_states(encoder, tokenizer, metadata, windows[begin : begin + 3])
        weights = masks[..., None].float()
        expected.append(((hidden * weights).sum(dim=1) / weights.sum(dim=1)).numpy())
    np.testing.assert_array_equal(pooled, np.concatenate(expected))
    assert pooled.dtype == np.float32
    np.testing.assert_allclose(pooled, baselines.mean_pool(*baselines.token_states(encoder, tokenizer, metadata,
                                                                                   windows)), atol=1e-5)


def test_capped_counts_spread_the_cap_evenly_and_reproducibly():
    ids = [f"p{i}" for i in range(7)]
    assert capped_counts(ids, 3, 100, np.random.default_rng(0)) == dict.fromkeys(ids, 3)
    assert capped_counts(ids, 3, None, np.random.default_rng(0)) == dict.fromkeys(ids, 3)
    counts = capped_counts(ids, 3, 10, np.random.default_rng(0))
    assert sum(counts.values()) == 10 and sorted(counts.values()) == [1, 1, 1, 1, 2, 2, 2]
    assert capped_counts(ids, 3, 10, np.random.default_rng(0)) == counts


def test_kmer_baseline_caps_its_training_windows(tmp_path, synthetic):
    from plasmidlm import io
    from plasmidlm.steps import baselines as baselines_steps

    split = synthetic.table.assign(split=["test" if i % 4 == 0 else "train" for i in range(len(synthetic.table))])
    io.write_table(split, tmp_path / "split.tsv")
    test = draw_windows(synthetic.sequences, split[split["split"] == "test"], WindowPolicy(60), per_plasmid=2,
                        seed=(0, "t"))
    io.write_table(test, tmp_path / "test.tsv")
    n_train = int((split["split"] == "train").sum())
    for max_windows, expected in [(None, 3 * n_train), (n_train + 5, n_train + 5)]:
        baselines_steps.kmer_baseline(fasta=synthetic.fasta, split_path=tmp_path / "split.tsv",
                                      test_windows=tmp_path / "test.tsv",
                                      kmer_config={"k": 3, "windows_per_plasmid": 3, "max_windows": max_windows,
                                                   "C": 1.0},
                                      windows_config={"length": 60, "circular": False, "ambiguous": "keep",
                                                      "max_n_fraction": 1.0},
                                      n_bootstrap=0, seed=0, out_metrics=tmp_path / "metrics.json",
                                      out_predictions=tmp_path / "predictions.tsv")
        metrics = io.read_json(tmp_path / "metrics.json")
        assert metrics["training_windows"] == expected and metrics["window"]["n"] == len(test)


def _array_batches(states: np.ndarray, masks: np.ndarray):
    import torch

    return lambda rows: (torch.from_numpy(states[rows]), torch.from_numpy(masks[rows]))


def test_token_cnn_learns_a_position_independent_motif():
    rng = np.random.default_rng(0)
    states = rng.normal(0, 1, (200, 20, 4)).astype(np.float32)
    labels = np.arange(200) % 2
    positions = rng.integers(0, 20, size=200)
    states[labels == 1, positions[labels == 1], 0] += 6.0  # class 1 carries one strong token anywhere
    masks = np.ones((200, 20), dtype=bool)
    model = baselines.fit_token_cnn(_array_batches(states, masks), labels, n_classes=2, hidden=4, epochs=60, seed=0,
                                    channels=8, kernel=3)
    proba = baselines.token_cnn_proba(model, states, masks)
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert (proba.argmax(axis=1) == labels).mean() > 0.9
    again = baselines.fit_token_cnn(_array_batches(states, masks), labels, n_classes=2, hidden=4, epochs=60, seed=0,
                                    channels=8, kernel=3)
    np.testing.assert_allclose(baselines.token_cnn_proba(again, states, masks), proba)

