"""Controls, calibration and contig lengths as the workflow writes them, recomputed independently."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from conftest import prediction_outputs, reduced_config, reduced_window_length
from plasmidlm import io, layout
from plasmidlm.training.runs import best_checkpoint
from plasmidlm.evaluate import evaluate_checkpoint
from plasmidlm.predict import predict_fasta
from plasmidlm.windows import reverse_complement

EXPERIMENTS = ["first", "random"]
RUN_LENGTH = reduced_config()["windows"]["length"]


def length_folder(experiment: str) -> str:
    """The folder, under data/ and baselines/, of the files at an experiment's window length ("" for windows.length's,
    first's; random has a length of its own)."""
    return layout.length_folder(reduced_window_length(experiment), RUN_LENGTH)


def pairs(sequence):
    return Counter(zip(sequence, sequence[1:]))


def test_shuffled_test_windows_keep_every_dinucleotide_count(finished_run):
    _, _, run = finished_run
    test = io.read_table(run / "data" / "test_windows.tsv.gz")
    shuffled = io.read_table(run / "data" / "test_windows_shuffled.tsv.gz")
    assert shuffled["window_id"].tolist() == test["window_id"].tolist()
    assert all(pairs(a) == pairs(b) for a, b in zip(test["sequence"], shuffled["sequence"]))
    assert (test["sequence"] != shuffled["sequence"]).mean() > 0.9


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_evidence_of_the_best_checkpoint_matches_the_evaluation_step(finished_run, experiment):
    _, _, run = finished_run
    evidence = io.read_json(run / experiment / "evidence" / "metrics.json")
    step = best_checkpoint(run / experiment / "model")
    assert evidence["checkpoint"] == step
    checkpoint = run / experiment / "model" / f"checkpoint-{step}"
    data = run / "data" / length_folder(experiment)
    test = io.read_table(data / "test_windows.tsv.gz")
    forward, metrics = evaluate_checkpoint(checkpoint, windows=test)
    reverse, _ = evaluate_checkpoint(checkpoint, windows=test.assign(sequence=test["sequence"].map(reverse_complement)))
    assert evidence["test"]["window"]["accuracy"] == pytest.approx(metrics["window"]["accuracy"])
    assert evidence["strand_flip_fraction"] == pytest.approx((forward["predicted"] != reverse["predicted"]).mean())
    _, shuffled = evaluate_checkpoint(checkpoint, windows=io.read_table(data / "test_windows_shuffled.tsv.gz"))
    assert evidence["shuffled"]["window"]["accuracy"] == pytest.approx(shuffled["window"]["accuracy"])
    # the fitted temperature minimises the validation negative log-likelihood
    val = io.read_table(data / "val_windows.tsv.gz")
    val_predictions, _ = evaluate_checkpoint(checkpoint, windows=val)
    proba = val_predictions[["prob_chromosome", "prob_plasmid"]].to_numpy().astype(np.float64)
    y_true = (val["label"] == "plasmid").to_numpy().astype(int)

    def nll(temperature):
        scaled = softmax(np.log(np.clip(proba, 1e-12, None)) / temperature, axis=1)
        return -np.log(scaled[np.arange(len(y_true)), y_true]).mean()

    temperature = evidence["calibration"]["temperature"]  # searched between 0.05 and 20
    neighbours = [1.0, min(temperature * 1.05, 20.0), max(temperature / 1.05, 0.05)]
    assert nll(temperature) <= min(map(nll, neighbours)) + 1e-6


def test_contigs_are_every_whole_sub_sequence_that_fits(finished_run):
    _, _, run = finished_run
    split = io.read_table(run / "data" / "split.tsv")
    test_lengths = split.loc[split["split"] == "test", "length"]
    curve = io.read_table(run / "random" / "evidence" / "contig_lengths.tsv")
    assert curve["contig_length"].tolist() == [1000, 2000, 5000, 10000, 20000]
    for row in curve.itertuples():
        assert row.contigs == (test_lengths // row.contig_length).sum()
        assert row.plasmids == (test_lengths >= row.contig_length).sum()
        assert row.accuracy_ci_low <= row.accuracy <= row.accuracy_ci_high
    kmer = io.read_table(run / "baselines" / length_folder("random") / "kmer" / "contig_lengths.tsv")
    assert kmer["contigs"].tolist() == curve["contigs"].tolist()


def test_comparison_and_report_show_the_evidence(finished_run):
    _, _, run = finished_run
    comparison = pd.read_csv(run / "report" / "comparison.tsv", sep="\t")
    best = comparison[comparison["best"]].set_index("experiment")
    for experiment in EXPERIMENTS:
        evidence = io.read_json(run / experiment / "evidence" / "metrics.json")
        assert best.loc[experiment, "shuffled_window_accuracy"] == pytest.approx(
            evidence["shuffled"]["window"]["accuracy"])
        assert best.loc[experiment, "window_ece_after"] == pytest.approx(
            evidence["calibration"]["window"]["after"]["ece"])
        assert not np.isnan(best.loc[experiment, "contig_1000nt_accuracy"])
    kmer = comparison[(comparison["experiment"] == "kmer") & (comparison["window_length"] == RUN_LENGTH)].iloc[0]
    assert kmer["shuffled_window_accuracy"] == pytest.approx(
        io.read_json(run / "baselines" / "kmer" / "evidence.json")["shuffled"]["window"]["accuracy"])
    assert comparison.loc[~comparison["best"] & (comparison["kind"] == "fine-tuned"), "temperature"].isna().all()
    page = (run / "report" / "report.html").read_text()
    for text in ("Controls: shuffled windows, strands and calibration", "How long must a contig be?",
                 "reliability diagram of random", "accuracy per contig length"):
        assert text in page
    assert "composition" in page and "4-mer frequencies" in page


def test_predict_rule_writes_calibrated_probabilities(finished_run, tmp_path):
    workdir, config, run = finished_run
    experiment = "random"
    temperature = io.read_json(run / experiment / "evidence" / "metrics.json")["calibration"]["temperature"]
    checkpoint = run / experiment / "model" / f"checkpoint-{best_checkpoint(run / experiment / 'model')}"
    predict_fasta(checkpoint, workdir / "new.fasta", **prediction_outputs(tmp_path / "raw"))
    raw = pd.read_csv(tmp_path / "raw.windows.tsv.gz", sep="\t")
    written = pd.read_csv(run / "predict" / "new" / f"{experiment}.windows.tsv.gz", sep="\t")
    columns = ["prob_chromosome", "prob_plasmid"]
    expected = softmax(np.log(raw[columns].to_numpy()) / temperature, axis=1)
    np.testing.assert_allclose(written[columns].to_numpy(), expected, atol=1e-5)


def test_cnn_baseline_records_its_cost_in_the_comparison(finished_run):
    _, _, run = finished_run
    metrics = io.read_json(run / "baselines" / "cnn" / "metrics.json")
    train_windows = io.read_table(run / "first" / "train_windows.tsv.gz")  # the first experiment's windows
    assert metrics["training"]["windows"] == len(train_windows)
    comparison = pd.read_csv(run / "report" / "comparison.tsv", sep="\t")
    comparison = comparison[comparison["window_length"] == RUN_LENGTH].set_index("experiment")
    assert comparison.loc["cnn", "train_seconds"] == pytest.approx(metrics["training"]["seconds"])
    assert comparison.loc["cnn", "windows_per_second"] == pytest.approx(metrics["inference"]["windows_per_second"])
    assert comparison.loc["cnn", "val_accuracy"] == pytest.approx(metrics["training"]["val_accuracy"])
