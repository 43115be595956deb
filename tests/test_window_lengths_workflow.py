"""Experiments at two window lengths in one run (the shared finished run): held-out windows, baselines and report
rows per length."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from conftest import reduced_config, reduced_window_length, snakemake
from plasmidlm import io, layout
from plasmidlm.config import BASELINE_NAMES
from plasmidlm.report import write_report
from plasmidlm.steps import data as data_steps

WINDOWS = reduced_config()["windows"]
# "first" takes windows.length (its files where a run of one length has them), "random" a length of its own
LENGTH_OF = {name: reduced_window_length(name) for name in reduced_config()["experiments"]}
RUN_LENGTH, OTHER_LENGTH = LENGTH_OF["first"], LENGTH_OF["random"]
FOLDER = {length: layout.length_folder(length, WINDOWS["length"]) for length in (RUN_LENGTH, OTHER_LENGTH)}
COUNTS = {"val": WINDOWS["val_count"], "test": WINDOWS["test_count"]}


def data_dir(run, length):
    return run / "data" / FOLDER[length]


def baseline_dir(run, length, name):
    return run / "baselines" / FOLDER[length] / name


@pytest.mark.parametrize("held_out", ["val", "test"])
def test_each_length_draws_its_held_out_windows_from_the_same_plasmids(finished_run, tmp_path, held_out):
    workdir, config, run = finished_run
    assert io.read_json(run / "data" / "validate.json")["skipped_short"] == 0
    split = io.read_table(run / "data" / "split.tsv")
    tables = {length: io.read_table(data_dir(run, length) / f"{held_out}_windows.tsv.gz") for length in FOLDER}
    for length, table in tables.items():
        assert len(table) == COUNTS[held_out]
        assert table["sequence"].str.len().eq(length).all()
        assert set(table["plasmid_id"]) <= set(split.loc[split["split"] == held_out, "id"])
    # the same plasmids, each with the same number of windows, at every length
    pd.testing.assert_series_equal(tables[OTHER_LENGTH]["plasmid_id"].value_counts().sort_index(),
                                   tables[RUN_LENGTH]["plasmid_id"].value_counts().sort_index())
    # windows.length's table is the one a run with that one length draws
    settings = yaml.safe_load(config.read_text())
    alone = tmp_path / f"{held_out}_windows.tsv.gz"
    windows = {"length": RUN_LENGTH, "circular": False, "ambiguous": "keep", "max_n_fraction": 0.1}
    data_steps.held_out_windows(settings["data"]["fasta"], run / "data" / "split.tsv", split_name=held_out,
                                windows_config=windows, count=COUNTS[held_out], seed=settings.get("seed", 1), out=alone)
    pd.testing.assert_frame_equal(tables[RUN_LENGTH], io.read_table(alone))


@pytest.mark.parametrize("experiment", sorted(LENGTH_OF))
def test_each_experiment_trains_and_is_scored_at_its_own_length(finished_run, experiment):
    _, _, run = finished_run
    length = LENGTH_OF[experiment]
    train = io.read_table(run / experiment / "train_windows.tsv.gz")
    assert train["sequence"].str.len().eq(length).all()
    checkpoint = run / experiment / "model" / "checkpoint-3"
    assert io.read_json(checkpoint / "config.json")["plasmidlm"]["window_length"] == length
    test = io.read_table(data_dir(run, length) / "test_windows.tsv.gz")
    predictions = io.read_table(run / experiment / "eval" / "checkpoint-3" / "predictions.tsv.gz")
    assert predictions["window_id"].tolist() == test["window_id"].tolist()
    assert predictions["plasmid_id"].tolist() == test["plasmid_id"].tolist()
    leakage = io.read_json(run / experiment / "leakage.json")
    coverage = io.read_table(data_dir(run, length) / "test_kmer_coverage.tsv.gz")
    assert coverage["window_id"].tolist() == test["window_id"].tolist()
    assert leakage["test_windows_kmer_covered"] == coverage["covered"].sum()
    evidence = io.read_json(run / experiment / "evidence" / "metrics.json")
    shuffled = io.read_table(data_dir(run, length) / "test_windows_shuffled.tsv.gz")
    assert shuffled["sequence"].str.len().eq(length).all()
    assert evidence["test"]["window"]["n"] == len(test)
    tiles = io.read_table(data_dir(run, length) / "test_tiles.tsv.gz")
    assert tiles["sequence"].str.len().eq(length).all()


@pytest.mark.parametrize("length", [RUN_LENGTH, OTHER_LENGTH])
def test_every_baseline_runs_at_each_length(finished_run, length):
    _, _, run = finished_run
    test = io.read_table(data_dir(run, length) / "test_windows.tsv.gz")
    for name in BASELINE_NAMES:
        predictions = io.read_table(baseline_dir(run, length, name) / "predictions.tsv.gz")
        assert predictions["window_id"].tolist() == test["window_id"].tolist(), name
        assert io.read_json(baseline_dir(run, length, name) / "metrics.json")["window"]["n"] == len(test)
    # the one-hot CNN trains on the windows of the experiment of that length
    experiment = next(name for name, value in LENGTH_OF.items() if value == length)
    cnn = io.read_json(baseline_dir(run, length, "cnn") / "metrics.json")
    assert cnn["training"]["windows"] == len(io.read_table(run / experiment / "train_windows.tsv.gz"))
    contigs = io.read_table(baseline_dir(run, length, "kmer") / "contig_lengths.tsv")
    assert contigs["contigs"].tolist() == io.read_table(run / experiment / "evidence" / "contig_lengths.tsv")[
        "contigs"].tolist()


def test_comparison_has_each_baseline_once_per_length_and_the_report_plots_lengths(finished_run, tmp_path):
    _, _, run = finished_run
    comparison = pd.read_csv(run / "report" / "comparison.tsv", sep="\t")
    assert comparison["window_length"].is_monotonic_increasing
    fine_tuned = comparison[comparison["kind"] == "fine-tuned"]
    assert dict(zip(fine_tuned["experiment"], fine_tuned["window_length"])) == LENGTH_OF
    baselines = comparison[comparison["kind"] == "baseline"]
    assert sorted(zip(baselines["experiment"], baselines["window_length"])) == sorted(
        (name, length) for name in BASELINE_NAMES for length in FOLDER)
    for row in baselines.itertuples():
        metrics = io.read_json(baseline_dir(run, row.window_length, row.experiment) / "metrics.json")
        assert row.window_accuracy == pytest.approx(metrics["window"]["accuracy"])
    kmer = baselines[baselines["experiment"] == "kmer"].set_index("window_length")
    for length in FOLDER:
        evidence = io.read_json(baseline_dir(run, length, "kmer") / "evidence.json")
        assert kmer.loc[length, "shuffled_window_accuracy"] == pytest.approx(evidence["shuffled"]["window"]["accuracy"])
    # `plasmidlm report` finds the baselines of every length itself
    write_report(run, config=yaml.safe_load((run / "config.yaml").read_text()),
                 out_comparison=tmp_path / "comparison.tsv", out_html=tmp_path / "report.html")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "comparison.tsv", sep="\t"), comparison)
    page = (run / "report" / "report.html").read_text()
    assert "Accuracy per window length" in page
    assert re.search(r'<img alt="test accuracy against window length" src="data:image/png;base64,', page)
    assert all(f'alt="test accuracy per checkpoint ({length} nt)"' in page for length in FOLDER)


def test_a_new_length_for_one_experiment_reruns_only_what_depends_on_it(finished_run, tmp_path):
    workdir, config, _ = finished_run
    settings = yaml.safe_load(config.read_text())
    # a length still below first's: the longest length, which validation and the split follow, stays
    settings["experiments"]["random"]["windows"]["length"] = 50
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(settings))
    result = snakemake("--directory", str(workdir), "--configfile", str(changed), "-n")
    outputs = " ".join(re.findall(r"^\s*output: (.*)$", result.stdout + result.stderr, flags=re.MULTILINE))
    run = f"results/{settings['run_name']}"
    for rerun in ("random/train_windows.tsv.gz", "random/model/train_summary.json",
                  "data/length-50/test_windows.tsv.gz", "baselines/length-50/kmer/metrics.json", "report/comparison.tsv"):
        assert f"{run}/{rerun}" in outputs, rerun
    for untouched in ("data/split.tsv", "data/test_windows.tsv.gz", "first/", "baselines/kmer/",
                      f"data/{FOLDER[OTHER_LENGTH]}/", f"baselines/{FOLDER[OTHER_LENGTH]}/"):
        assert f"{run}/{untouched}" not in outputs, untouched
