"""plasmidlm.layout: the results folder's paths are the public contract (docs/outputs.md), and the rules
declare exactly these paths."""

from __future__ import annotations

import re
import uuid
from pathlib import PurePosixPath

import yaml

from conftest import REPO_ROOT, snakemake
from plasmidlm import layout
from plasmidlm.config import BASELINE_NAMES
from plasmidlm.evidence import COMPOSITION_BASELINES
from plasmidlm.manifest import UNLISTED

RUN = "results/demo"


def test_layout_is_the_output_contract():
    """The paths of docs/outputs.md's table (and DESIGN.md's results directory), written out in full."""
    assert layout.run_folder("demo") == RUN
    assert layout.data_file(RUN, "split.tsv") == "results/demo/data/split.tsv"
    assert layout.data_file(RUN, "test_windows.tsv.gz") == "results/demo/data/test_windows.tsv.gz"
    assert layout.train_windows(RUN, "first100") == "results/demo/first100/train_windows.tsv.gz"
    assert layout.leakage(RUN, "first100") == "results/demo/first100/leakage.json"
    assert layout.checkpoint_dir(RUN, "first100", 500) == "results/demo/first100/model/checkpoint-500"
    assert layout.train_summary(RUN, "first100") == "results/demo/first100/model/train_summary.json"
    assert layout.training_log(RUN, "first100") == "results/demo/first100/model/training_log.tsv"
    assert layout.checkpoint_metrics(RUN, "first100", 500) == "results/demo/first100/eval/checkpoint-500/metrics.json"
    assert (layout.checkpoint_predictions(RUN, "first100", 500)
            == "results/demo/first100/eval/checkpoint-500/predictions.tsv.gz")
    assert layout.baseline_metrics(RUN, "", "kmer") == "results/demo/baselines/kmer/metrics.json"
    assert layout.evidence_metrics(RUN, "first100") == "results/demo/first100/evidence/metrics.json"
    assert layout.contig_lengths(RUN, "first100") == "results/demo/first100/evidence/contig_lengths.tsv"
    assert layout.kmer_contig_lengths(RUN, "") == "results/demo/baselines/kmer/contig_lengths.tsv"
    assert layout.comparison(RUN) == "results/demo/report/comparison.tsv"
    assert layout.report_html(RUN) == "results/demo/report/report.html"
    assert layout.run_config(RUN) == "results/demo/config.yaml"
    assert layout.provenance(RUN) == "results/demo/provenance.json"
    assert layout.manifest(RUN) == "results/demo/manifest.tsv"
    assert layout.predictions(RUN, "assemblies", "first100") == (
        "results/demo/predict/assemblies/first100.windows.tsv.gz",
        "results/demo/predict/assemblies/first100.sequences.tsv")
    assert layout.log(RUN, "first100/train") == "results/demo/logs/first100/train.log"
    assert layout.pretrained_model(RUN) == "results/demo/pretrain/model"


def test_another_window_length_has_its_own_folders():
    assert layout.length_dir(100, 100) == ""
    assert layout.length_dir(500, 100) == "length-500/"
    assert layout.data_file(RUN, "test_windows.tsv.gz", layout.length_dir(500, 100)) == (
        "results/demo/data/length-500/test_windows.tsv.gz")
    assert layout.baseline_metrics(RUN, layout.length_dir(500, 100), "kmer") == (
        "results/demo/baselines/length-500/kmer/metrics.json")


def test_the_run_folders_are_those_of_the_layout():
    """Every folder directly under the run folder that a layout function names is a reserved RUN_FOLDERS name."""
    text = (REPO_ROOT / "src" / "plasmidlm" / "layout.py").read_text()
    assert set(re.findall(r"\{run\}/([A-Za-z0-9_-]+)(?=[/\"])", text)) == set(layout.RUN_FOLDERS)


def test_the_rules_build_every_path_of_the_run_with_the_layout():
    text = "\n".join(path.read_text() for path in [REPO_ROOT / "Snakefile", *(REPO_ROOT / "rules").glob("*.smk")])
    assert "{RUN}/" not in text and '"results/' not in text


def demo_outputs(run: str, experiments: list[str]) -> set[str]:
    """Every file the demo declares before training has run (evaluation outputs depend on the checkpoints)."""
    data = ["validated.tsv", "validate.json", "selected.tsv", "classes.tsv", "sketches.npz", "near_duplicates.tsv",
            "near_duplicate_groups.tsv", "near_duplicate_groups.json", "split.tsv", "split_summary.tsv", "split.json",
            "val_windows.tsv.gz", "test_windows.tsv.gz", "test_kmer_coverage.tsv.gz", "test_windows_shuffled.tsv.gz",
            "test_tiles.tsv.gz", "test_contigs.tsv.gz"]
    outputs = {layout.data_file(run, name) for name in data}
    for experiment in experiments:
        outputs |= {layout.train_windows(run, experiment), layout.leakage(run, experiment),
                    layout.train_summary(run, experiment), layout.training_log(run, experiment),
                    layout.evidence_metrics(run, experiment), layout.contig_lengths(run, experiment),
                    layout.evidence_file(run, experiment, "shuffled_predictions.tsv.gz")}
    for name in BASELINE_NAMES:
        outputs |= {layout.baseline_metrics(run, "", name), layout.baseline_file(run, "", name, "predictions.tsv.gz")}
    outputs |= {layout.kmer_evidence(run, ""), layout.kmer_contig_lengths(run, "")}
    outputs |= {layout.pretrain_summary(run), layout.pretrain_log(run), layout.provenance(run),
                layout.run_config(run), layout.comparison(run), layout.report_html(run), layout.manifest(run),
                layout.experiment_summary(run), layout.seed_differences(run)}
    return outputs


def test_the_demos_declared_outputs_are_the_layouts_paths():
    demo = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    assert {*COMPOSITION_BASELINES, "cnn", "kmer"} <= set(BASELINE_NAMES)
    run_name = f"pytest-layout-{uuid.uuid4().hex[:8]}"  # a run folder that does not exist: the whole plan
    result = snakemake("--config", f"run_name={run_name}", "-n", "--cores", "1")
    declared = {path for line in re.findall(r"^\s+output: (.+)$", result.stdout, flags=re.MULTILINE)
                for path in line.split(", ")}
    assert declared == demo_outputs(layout.run_folder(run_name), list(demo["experiments"]))
    logs = {path for line in re.findall(r"^\s+log: (.+)$", result.stdout, flags=re.MULTILINE)
            for path in line.split(", ")}
    assert logs and all(path.startswith(layout.log(layout.run_folder(run_name), "")[:-len(".log")]) for path in logs)
    run = layout.run_folder(run_name)
    assert layout.manifest_log(run) in logs
    # what the manifest leaves out is the manifest rule's own output and log
    assert {PurePosixPath(path).relative_to(run) for path in (layout.manifest(run), layout.manifest_log(run))} \
        == UNLISTED
