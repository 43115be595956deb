"""End-to-end: the whole Snakemake workflow on the demo data with a reduced config, and workflow checks."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import DEMO_DIR, REPO_ROOT, reduced_config, snakemake

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
            for level in ("window", "plasmid", "plasmid_majority_vote"):
                assert set(metrics[level]["per_class"]) == {"chromosome", "plasmid"}
            assert metrics["validation"]["window"]["n"] == 40
            assert metrics["inference"]["windows"] == 200 and metrics["inference"]["seconds"] > 0
            predictions = read_gzip_table(run / experiment / "eval" / f"checkpoint-{step}" / "predictions.tsv.gz")
            assert list(predictions.columns) == ["window_id", "plasmid_id", "label", "predicted",
                                                 "prob_chromosome", "prob_plasmid"]
            assert len(predictions) == 200
            assert_metrics_follow_from_predictions(metrics, predictions)


def assert_metrics_follow_from_predictions(metrics: dict, predictions: pd.DataFrame) -> None:
    """metrics.json recomputed from predictions.tsv.gz: accuracies by hand at each level, and the bootstrap
    intervals as those of these predictions with the run's evaluate.bootstrap (50) and seed (1)."""
    from plasmidlm.metrics import evaluate_predictions

    predictions = predictions.astype({"prob_chromosome": float, "prob_plasmid": float})
    classes = ["chromosome", "plasmid"]
    assert metrics["window"]["accuracy"] == pytest.approx((predictions["predicted"] == predictions["label"]).mean())
    plasmids = predictions.groupby("plasmid_id").agg(label=("label", "first"), chromosome=("prob_chromosome", "mean"),
                                                      plasmid=("prob_plasmid", "mean"))
    mean_says = np.where(plasmids["chromosome"] >= plasmids["plasmid"], "chromosome", "plasmid")
    assert metrics["plasmid"]["accuracy"] == pytest.approx((mean_says == plasmids["label"]).mean())
    votes = predictions.groupby("plasmid_id")["predicted"].agg(lambda p: (p == "plasmid").sum() / len(p))
    vote_says = np.where(votes.loc[plasmids.index] > 0.5, "plasmid", "chromosome")  # a tie goes to the first class
    assert metrics["plasmid_majority_vote"]["accuracy"] == pytest.approx((vote_says == plasmids["label"]).mean())
    # AUROC ranks probabilities: the stored (rounded) ones may order a near-tie differently in a resample, and a tiny
    # model after 6 steps gives near-ties by the dozen (measured: 0.014 apart at 40 nt). The accuracy intervals, exact,
    # check the resampling itself.
    recomputed = evaluate_predictions(predictions, classes, n_bootstrap=50, seed=1)
    for level in ("window", "plasmid", "plasmid_majority_vote"):
        assert metrics[level]["ci95"].keys() == recomputed[level]["ci95"].keys()
        for name, interval in recomputed[level]["ci95"].items():
            stored = metrics[level]["ci95"][name]
            expected = None if interval is None else pytest.approx(interval, abs=0.03 if name == "auroc" else 1e-9)
            assert stored == expected, (level, name)


def test_comparison_has_one_row_per_checkpoint_and_baseline_with_one_best_each(finished_run):
    _, _, run = finished_run
    comparison = pd.read_csv(run / "report" / "comparison.tsv", sep="\t")
    lengths = comparison["window_length"].nunique()
    assert lengths == 2  # first's and random's (tests/test_window_lengths_workflow.py)
    assert len(comparison) == 2 * len(EXPERIMENTS) + 8 * lengths
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


def _binary_fasta(path):
    path.write_bytes(gzip.compress(bytes(range(256)) * 16))  # gzip-compressed, so it looks like a FASTA.gz
    return path, {}, f"error: {path}: not a text file: byte 0x80 is not UTF-8 text (binary data, or a text " \
                     f"encoding other than UTF-8)"


def _non_iupac_fasta(path):
    path.write_text(">a\nACGTXACGT\n")
    return path, {}, f"error: {path}: record a: character 'X' at position 5 is not an IUPAC nucleotide code"


def _window_longer_than_every_sequence(path):
    path.write_text(">a\n" + "ACGT" * 100 + "\n")
    return path, {"windows": {"length": 100_000}}, (
        f"error: {path}: all 1 sequences are shorter than the window length 100000 nt (windows.length); the "
        f"longest is 400 nt")


@pytest.mark.parametrize("make_input", [_non_iupac_fasta, _binary_fasta, _window_longer_than_every_sequence])
def test_bad_input_fails_the_job_with_a_one_line_error_and_no_output(tmp_path, make_input):
    fasta, changes, expected = make_input(tmp_path / "bad.fasta")
    labels = tmp_path / "labels.tsv"
    labels.write_text("id\tlabel\na\tplasmid\n")
    config = reduced_config() | {"data": {"fasta": str(fasta), "labels": str(labels)}}
    for section, keys in changes.items():
        config[section] = config.get(section, {}) | keys
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    result = snakemake("--directory", str(tmp_path), "--configfile", str(tmp_path / "bad.yaml"), "--cores", "1",
                       check=False)
    assert result.returncode != 0
    log = (tmp_path / "results" / "e2e" / "logs" / "validate.log").read_text()
    assert log.strip() == expected
    assert "Traceback" not in result.stdout + result.stderr
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


def planned_experiments(output: str) -> set[str]:
    return set(re.findall(r"wildcards: .*\bexperiment=([A-Za-z0-9_-]+)", output))


def planned_rules(output: str) -> set[str]:
    return set(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", output, flags=re.MULTILINE))


def user_config(tmp_path, run_name: str) -> Path:
    """A user's file as the README describes it: own data, run name and experiment; nothing else."""
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump({
        "run_name": run_name,
        "data": {"fasta": str(DEMO_DIR / "sequences.fasta.gz"), "labels": str(DEMO_DIR / "labels.tsv")},
        "experiments": {"mine": {"windows": {"per_plasmid": 2}}},
    }))
    return path


def test_user_configfile_from_the_repository_root_plans_only_its_experiments(tmp_path):
    """`snakemake --configfile my.yaml` in the checkout: my.yaml on the schema's defaults, nothing of the demo."""
    run_name = f"pytest-user-{uuid.uuid4().hex[:8]}"  # a run folder that does not exist: the whole plan
    result = snakemake("--configfile", str(user_config(tmp_path, run_name)), "-n", "--cores", "1", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "workflow specific profile" in output  # the checkout's profiles/default, as for a user
    assert planned_experiments(result.stdout) == {"mine"}
    assert "pretrain" not in planned_rules(result.stdout)
    assert "embeddings_baseline" not in planned_rules(result.stdout)  # off by default, on in the demo
    assert {"train", "kmer_baseline", "report"} <= planned_rules(result.stdout)
    assert f"results/{run_name}/mine/model/train_summary.json" in result.stdout
    assert "results/demo/" not in result.stdout


def test_no_configfile_from_the_repository_root_plans_the_demo():
    demo = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    run_name = f"pytest-demo-{uuid.uuid4().hex[:8]}"
    result = snakemake("--config", f"run_name={run_name}", "-n", "--cores", "1", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert planned_experiments(result.stdout) == set(demo["experiments"])
    assert {"pretrain", "embeddings_baseline"} <= planned_rules(result.stdout)
    assert f"results/{run_name}/random8/model/train_summary.json" in result.stdout


def test_config_keys_on_the_command_line_add_to_a_user_configfile(tmp_path):
    run_name = f"pytest-user-{uuid.uuid4().hex[:8]}"
    result = snakemake("--configfile", str(user_config(tmp_path, "ignored")), "--config", f"run_name={run_name}",
                       "-n", "--cores", "1", check=False)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert planned_experiments(result.stdout) == {"mine"}
    assert f"results/{run_name}/mine/" in result.stdout and "results/ignored/" not in result.stdout


def test_a_spawned_job_reads_the_same_configuration(tmp_path):
    """Jobs on Slurm (or any spawned job) re-read the workflow without the profile, given the --configfiles of
    the main process: they must see the user's file alone, as the plan did (the demo's experiments unknown)."""
    config = user_config(tmp_path, "spawned")

    def job_parse(target):
        return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "Snakefile"),
                               "--mode", "subprocess", "--configfiles", str(config), "-n", "--cores", "1", target],
                              cwd=REPO_ROOT, capture_output=True, text=True)

    mine = job_parse("results/spawned/mine/train_windows.tsv.gz")
    assert mine.returncode == 0, (mine.stdout + mine.stderr)[-3000:]
    demo = job_parse("results/spawned/random8/train_windows.tsv.gz")
    assert demo.returncode != 0 and "No rule to produce" in demo.stdout + demo.stderr


def test_partial_user_configfile_says_it_replaces_the_demo(tmp_path):
    (tmp_path / "partial.yaml").write_text(yaml.safe_dump({"train": {"epochs": 2}}))
    result = snakemake("--configfile", str(tmp_path / "partial.yaml"), "-n", check=False)
    assert result.returncode != 0
    assert ("config data.fasta and data.labels: required, they have no default; a --configfile replaces the "
            "demo's config.yaml") in result.stdout + result.stderr


def test_experiment_named_like_a_run_folder_is_rejected(tmp_path):
    config = reduced_config()
    config["experiments"]["report"] = {}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    result = snakemake("--directory", str(tmp_path), "--configfile", str(tmp_path / "bad.yaml"), "-n", check=False)
    assert result.returncode != 0
    assert "config experiments.report: name taken by the run's folder results/<run_name>/report/" in (
        result.stdout + result.stderr)


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
    from plasmidlm.training.checkpointing import set_aside
    from plasmidlm.cli import main

    _, _, run = finished_run
    copy = shutil.copytree(run, tmp_path / "e2e")
    folder = set_aside(copy / "first" / "model", {"checkpoint-3": "trained with other parameters (seed: 1 -> 2)"},
                       delete=False)
    shutil.copytree(run / "first" / "model" / "checkpoint-3", copy / "first" / "model" / "checkpoint-3")
    assert main(["report", str(copy)]) == 0
    page = (copy / "report" / "report.html").read_text()
    relative = folder.relative_to(copy).as_posix()
    assert re.search(rf"<td>{relative}</td>\s*<td>[^<]+</td>\s*<td>checkpoint-3</td>\s*<td>trained with other "
                     rf"parameters \(seed: 1 -&gt; 2\)</td>", page), page[page.index("set aside"):][:2000]


def test_predict_rule_uses_the_best_checkpoint_of_each_experiment(finished_run):
    _, _, run = finished_run
    comparison = pd.read_csv(run / "report" / "comparison.tsv", sep="\t")
    # 160 and 210 nt in tiles of each experiment's window length (60 and 40 nt), the last flush with the end; 4 nt
    # is shorter than a window
    tiles = {"first": [3, 4, 0], "random": [4, 6, 0]}
    for experiment in EXPERIMENTS:
        sequences = pd.read_csv(run / "predict" / "new" / f"{experiment}.sequences.tsv", sep="\t")
        assert list(sequences["sequence_id"]) == ["new_1", "new_2", "tiny"]
        assert list(sequences["windows"]) == tiles[experiment]
        best = int(comparison[(comparison["experiment"] == experiment) & comparison["best"]]["checkpoint"].item())
        log = (run / "logs" / experiment / "predict_new.log").read_text()
        assert f"best checkpoint by validation accuracy: checkpoint-{best}" in log


def test_snakemake_report_collects_the_marked_outputs(finished_run):
    workdir, config, _ = finished_run
    snakemake("--directory", str(workdir), "--configfile", str(config), "--report", str(workdir / "sm_report.html"))
    page = (workdir / "sm_report.html").read_text()
    assert "comparison.tsv" in page and "report.html" in page
