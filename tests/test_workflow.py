"""End-to-end: the whole Snakemake workflow on the demo data with a reduced config, and workflow checks."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import REPO_ROOT, reduced_config, snakemake

WINDOW_COLUMNS = ["window_id", "plasmid_id", "label", "start", "strand", "sequence"]
EXPERIMENTS = ("first", "random")


def read_gzip_table(path):
    with gzip.open(path, "rt") as handle:
        return pd.read_csv(handle, sep="\t", dtype=str)


def test_split_table_has_contract_columns_and_no_shared_ids(finished_run):
    _, _, run = finished_run
    split = pd.read_csv(run / "data" / "split.tsv", sep="\t", dtype=str)
    assert list(split.columns[:3]) == ["id", "label", "split"]
    assert set(split["split"]) == {"train", "val", "test"}
    assert not split["id"].duplicated().any()
    assert set(split["label"]) == {"plasmid", "chromosome"}


def test_test_windows_come_from_test_plasmids_only(finished_run):
    _, _, run = finished_run
    split = pd.read_csv(run / "data" / "split.tsv", sep="\t", dtype=str)
    test = read_gzip_table(run / "data" / "test_windows.tsv.gz")
    assert list(test.columns) == WINDOW_COLUMNS
    assert len(test) == 200
    assert set(test["plasmid_id"]) <= set(split.loc[split["split"] == "test", "id"])
    assert test["sequence"].str.len().eq(60).all()
    for experiment in EXPERIMENTS:
        train = read_gzip_table(run / experiment / "train_windows.tsv.gz")
        assert list(train.columns) == WINDOW_COLUMNS
        assert not set(train["plasmid_id"]) & set(test["plasmid_id"])
        leakage = json.loads((run / experiment / "leakage.json").read_text())
        assert leakage["test_plasmids_in_train"] == 0
        assert leakage["test_windows"] == 200


def test_every_checkpoint_is_an_hf_directory_and_is_evaluated(finished_run):
    _, _, run = finished_run
    for experiment in EXPERIMENTS:
        summary = json.loads((run / experiment / "model" / "train_summary.json").read_text())
        assert summary["checkpoints"] == [3, 6]
        for step in summary["checkpoints"]:
            checkpoint = run / experiment / "model" / f"checkpoint-{step}"
            for name in ("config.json", "model.safetensors", "tokenizer.json"):
                assert (checkpoint / name).is_file()
            metrics = json.loads((run / experiment / "eval" / f"checkpoint-{step}" / "metrics.json").read_text())
            assert metrics["window"]["n"] == 200
            assert metrics["plasmid"]["n"] == pd.read_csv(run / "data" / "split.tsv", sep="\t").eval(
                "split == 'test'").sum()
            assert 0 <= metrics["window"]["accuracy"] <= 1
            for level in ("window", "plasmid", "plasmid_majority_vote"):
                low, high = metrics[level]["ci95"]["accuracy"]
                assert low <= metrics[level]["accuracy"] <= high
                assert set(metrics[level]["per_class"]) == {"chromosome", "plasmid"}
            assert metrics["validation"]["window"]["n"] == 40
            assert metrics["inference"]["windows"] == 200 and metrics["inference"]["seconds"] > 0
            predictions = read_gzip_table(run / experiment / "eval" / f"checkpoint-{step}" / "predictions.tsv.gz")
            assert list(predictions.columns) == ["window_id", "plasmid_id", "label", "predicted",
                                                 "prob_chromosome", "prob_plasmid"]
            assert len(predictions) == 200


def test_comparison_has_one_row_per_checkpoint_and_baseline_with_one_best_each(finished_run):
    _, _, run = finished_run
    comparison = pd.read_csv(run / "report" / "comparison.tsv", sep="\t")
    assert len(comparison) == 2 * len(EXPERIMENTS) + 8
    assert set(comparison.loc[comparison["kind"] == "baseline", "experiment"]) == {
        "kmer", "majority", "embeddings_logistic", "embeddings_cnn", "composition_gc", "composition_2mer",
        "composition_4mer", "cnn"}
    best = comparison[comparison["best"]]
    assert sorted(best["experiment"]) == sorted(EXPERIMENTS)
    for column in ("window_accuracy", "plasmid_accuracy", "window_auroc", "val_accuracy", "window_accuracy_ci_low",
                   "plasmid_accuracy_ci_high", "plasmid_vote_accuracy", "eval_seconds"):
        assert column in comparison.columns
    majority = comparison[comparison["experiment"] == "majority"].iloc[0]
    assert majority["window_accuracy"] == pytest.approx(0.5)


def test_report_is_self_contained_html(finished_run):
    _, _, run = finished_run
    page = (run / "report" / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") >= 4
    assert "src=\"http" not in page and "href=\"http" not in page
    assert "Leakage check" in page and "first" in page and "random" in page


def test_provenance_records_inputs_and_versions(finished_run):
    _, _, run = finished_run
    provenance = json.loads((run / "provenance.json").read_text())
    assert len(provenance["inputs"]["fasta"]["sha256"]) == 64
    assert provenance["versions"]["torch"]
    assert yaml.safe_load((run / "config.yaml").read_text())["run_name"] == "e2e"


def test_finished_run_plans_nothing_more(finished_run):
    workdir, config, _ = finished_run
    result = snakemake("--directory", str(workdir), "--configfile", str(config), "-n", "--cores", "1")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_unknown_config_key_is_rejected(tmp_path):
    config = reduced_config() | {"windos": {"length": 100}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    result = snakemake("--directory", str(tmp_path), "--configfile", str(tmp_path / "bad.yaml"), "-n", check=False)
    assert result.returncode != 0
    assert "windos" in result.stdout + result.stderr


def test_wrong_type_inside_an_experiment_is_rejected(tmp_path):
    config = reduced_config()
    config["experiments"]["random"]["train"] = {"learning_rate": "fast"}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    result = snakemake("--directory", str(tmp_path), "--configfile", str(tmp_path / "bad.yaml"), "-n", check=False)
    assert result.returncode != 0
    assert "experiments.random.train.learning_rate" in result.stdout + result.stderr


def test_bad_input_fails_the_job_with_a_one_line_error_and_no_output(tmp_path):
    fasta = tmp_path / "bad.fasta"
    fasta.write_text(">a\nACGTXACGT\n")
    labels = tmp_path / "labels.tsv"
    labels.write_text("id\tlabel\na\tplasmid\n")
    config = reduced_config() | {"data": {"fasta": str(fasta), "labels": str(labels)}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    result = snakemake("--directory", str(tmp_path), "--configfile", str(tmp_path / "bad.yaml"), "--cores", "1",
                       check=False)
    assert result.returncode != 0
    log = (tmp_path / "results" / "e2e" / "logs" / "validate.log").read_text()
    assert log.strip() == (f"error: {fasta}: record a: character 'X' at position 5 is not an IUPAC "
                           f"nucleotide code")
    assert not (tmp_path / "results" / "e2e" / "data" / "validated.tsv").exists()


def test_workflow_passes_snakemake_lint():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO_ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_workflow_is_snakefmt_formatted():
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_slurm_profile_resolves_from_the_repository_root():
    result = snakemake("--profile", "slurm", "-n", "--config", "run_name=profile-check", "--quiet", "rules",
                       check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Using profiles slurm" in result.stdout + result.stderr


def test_report_regenerates_from_a_moved_results_folder(finished_run, tmp_path):
    from plasmidlm.cli import main

    _, _, run = finished_run
    moved = shutil.copytree(run, tmp_path / "elsewhere" / "e2e")
    (moved / "report" / "comparison.tsv").unlink()
    assert main(["report", str(moved)]) == 0
    original = pd.read_csv(run / "report" / "comparison.tsv", sep="\t")
    regenerated = pd.read_csv(moved / "report" / "comparison.tsv", sep="\t")
    pd.testing.assert_frame_equal(original, regenerated)
    assert "No checkpoint was set aside." in (moved / "report" / "report.html").read_text()


def test_report_lists_checkpoints_set_aside(finished_run, tmp_path):
    from plasmidlm.checkpoints import set_aside
    from plasmidlm.cli import main

    _, _, run = finished_run
    copy = shutil.copytree(run, tmp_path / "e2e")
    folder = set_aside(copy / "first" / "model", {"checkpoint-3": "trained with other parameters (seed: 1 -> 2)"},
                       delete=False, log=lambda message: None)
    shutil.copytree(run / "first" / "model" / "checkpoint-3", copy / "first" / "model" / "checkpoint-3")
    assert main(["report", str(copy)]) == 0
    page = (copy / "report" / "report.html").read_text()
    relative = folder.relative_to(copy).as_posix()
    assert re.search(rf"<td>{relative}</td>\s*<td>[^<]+</td>\s*<td>checkpoint-3</td>\s*<td>trained with other "
                     rf"parameters \(seed: 1 -&gt; 2\)</td>", page), page[page.index("set aside"):][:2000]


def test_predict_rule_uses_the_best_checkpoint_of_each_experiment(finished_run):
    _, _, run = finished_run
    comparison = pd.read_csv(run / "report" / "comparison.tsv", sep="\t")
    for experiment in EXPERIMENTS:
        sequences = pd.read_csv(run / "predict" / "new" / f"{experiment}.sequences.tsv", sep="\t")
        assert list(sequences["sequence_id"]) == ["new_1", "new_2", "tiny"]
        assert list(sequences["windows"]) == [3, 4, 0]
        best = int(comparison[(comparison["experiment"] == experiment) & comparison["best"]]["checkpoint"].item())
        log = (run / "logs" / experiment / "predict_new.log").read_text()
        assert f"best checkpoint by validation accuracy: checkpoint-{best}" in log


def test_snakemake_report_collects_the_marked_outputs(finished_run):
    workdir, config, _ = finished_run
    snakemake("--directory", str(workdir), "--configfile", str(config), "--report", str(workdir / "sm_report.html"))
    page = (workdir / "sm_report.html").read_text()
    assert "comparison.tsv" in page and "report.html" in page
