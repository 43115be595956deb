"""The comparison table of a finished run: what it holds (experiments, baselines), one row per checkpoint and per
baseline with headline metrics and intervals, and the evidence columns of the best checkpoints."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd

from plasmidlm import io, layout
from plasmidlm.config import resolve_experiments
from plasmidlm.metrics import HEADLINE
from plasmidlm.training.runs import best_checkpoint, validation_accuracy

LEVELS = ("window", "plasmid")


def discover_experiments(run_dir: Path) -> list[str]:
    return sorted(Path(path).parent.parent.name
                  for path in glob.glob(layout.train_summary(glob.escape(str(run_dir)), "*")))


def discover_baselines(run_dir: Path) -> list[str]:
    """The baselines of any window length (baselines/<name>/, baselines/length-<L>/<name>/)."""
    return sorted({Path(path).parent.name for path in
                   glob.glob(layout.baseline_metrics(glob.escape(str(run_dir)), "**/", "*"), recursive=True)})


def _metric_row(metrics: dict) -> dict:
    """Headline metrics at window and plasmid level, each with its bootstrap interval when there is one."""
    row = {}
    for level in LEVELS:
        intervals = metrics[level].get("ci95") or {}
        for name in HEADLINE:
            low, high = intervals.get(name) or (np.nan, np.nan)
            row.update({f"{level}_{name}": metrics[level][name], f"{level}_{name}_ci_low": low,
                        f"{level}_{name}_ci_high": high})
    row["plasmid_vote_accuracy"] = metrics["plasmid_majority_vote"]["accuracy"]
    return row


def with_interval(table: pd.DataFrame, column: str) -> pd.Series:
    """'0.736 [0.706, 0.766]' (or the bare value where there is no interval)."""
    def text(row):
        value, low, high = row[column], row[f"{column}_ci_low"], row[f"{column}_ci_high"]
        if pd.isna(value):
            return ""
        return f"{value:.3f}" if pd.isna(low) else f"{value:.3f} [{low:.3f}, {high:.3f}]"

    return table.apply(text, axis=1)


def _baseline_cost(metrics: dict) -> dict:
    """Training and scoring cost of a baseline that records them (the one-hot CNN)."""
    cost = {}
    if "training" in metrics:
        cost |= {"val_accuracy": metrics["training"]["val_accuracy"], "train_seconds": metrics["training"]["seconds"],
                 "train_windows_per_second": metrics["training"]["windows_per_second"]}
    if "inference" in metrics:
        cost |= {"eval_seconds": metrics["inference"]["seconds"],
                 "windows_per_second": metrics["inference"]["windows_per_second"]}
    return cost


def comparison_table(run_dir, *, experiments: list[str], baselines: list[str], lengths: dict[str, int],
                     default_length: int) -> pd.DataFrame:
    """One row per (experiment, checkpoint) and per (baseline, window length), with the best checkpoint marked;
    rows grouped by window length (`lengths`: experiment -> its windows.length; `default_length`: the run's
    windows.length, whose baselines are in baselines/, another length's in baselines/length-<L>/).

    The best checkpoint of an experiment is the one with the highest validation accuracy (earliest on
    ties); the test metrics play no part in choosing it.
    """
    experiments, baselines = sorted(experiments), sorted(baselines)
    rows = []
    for experiment in experiments:
        model_dir = layout.model_dir(run_dir, experiment)
        summary = io.read_json(layout.summary_in(model_dir))
        val_accuracy = validation_accuracy(model_dir)
        best = best_checkpoint(model_dir)
        for step in summary["checkpoints"]:
            metrics = io.read_json(layout.checkpoint_metrics(run_dir, experiment, step))
            rows.append({"experiment": experiment, "kind": "fine-tuned", "window_length": lengths[experiment],
                         "checkpoint": step,
                         "val_accuracy": val_accuracy.get(step, np.nan), **_metric_row(metrics),
                         "test_windows": metrics["window"]["n"],
                         "eval_seconds": metrics["inference"]["seconds"],
                         "windows_per_second": metrics["inference"]["windows_per_second"],
                         "best": step == best})
    for length in sorted({lengths[experiment] for experiment in experiments}):
        for baseline in baselines:
            metrics = io.read_json(layout.baseline_metrics(run_dir, layout.length_dir(length, default_length),
                                                           baseline))
            rows.append({"experiment": baseline, "kind": "baseline", "window_length": length, "checkpoint": None,
                         "val_accuracy": np.nan, **_metric_row(metrics), "test_windows": metrics["window"]["n"],
                         **_baseline_cost(metrics), "best": False})
    table = pd.DataFrame(rows).sort_values("window_length", kind="stable", ignore_index=True)
    table["checkpoint"] = table["checkpoint"].astype("Int64")
    return table


def by_length(table: pd.DataFrame):
    """(window length, rows) of each length in the table, or (None, table) for a table without lengths."""
    if "window_length" not in table:
        return [(None, table)]
    return list(table.groupby("window_length", sort=True))


def at_length(name: str, length: int, lengths: list[int]) -> str:
    """A baseline's name, with its window length where the run has several."""
    return f"{name} ({length} nt)" if len(lengths) > 1 else name


def best_checkpoints(table: pd.DataFrame) -> pd.DataFrame:
    fine_tuned = table[table["kind"] == "fine-tuned"]
    return fine_tuned[fine_tuned["best"]]


def resolved_experiments(config: dict, experiments: list[str]) -> dict:
    resolved = resolve_experiments(config)
    return {name: resolved[name] for name in experiments}


def evidence_files(run_dir, lengths: dict[str, int], default_length: int) -> list[tuple[str, int, str, str]]:
    """(name, window length, evidence JSON, contig-length curve) of each experiment and of the k-mer baseline at
    each window length, where the evidence step ran."""
    files = [(name, lengths[name], layout.evidence_metrics(run_dir, name), layout.contig_lengths(run_dir, name))
             for name in sorted(lengths)]
    for length in sorted(set(lengths.values())):
        length_dir = layout.length_dir(length, default_length)
        files.append(("kmer", length, layout.kmer_evidence(run_dir, length_dir),
                      layout.kmer_contig_lengths(run_dir, length_dir)))
    return [(name, length, evidence, curve) for name, length, evidence, curve in files if Path(evidence).is_file()]


def add_evidence_columns(table: pd.DataFrame, run_dir: Path, lengths: dict[str, int],
                         default_length: int) -> pd.DataFrame:
    """Shuffled-window accuracy, strand flips, temperature, ECE and accuracy per contig length, on the rows of
    the best checkpoints (and of the k-mer baseline at each window length, without calibration or strands)."""
    table = table.copy()
    for name, length, evidence_path, curve in evidence_files(run_dir, lengths, default_length):
        evidence = io.read_json(evidence_path)
        rows = (table["experiment"] == name) & (
            table["best"] if name != "kmer" else (table["kind"] == "baseline") & (table["window_length"] == length))
        values = {f"shuffled_{level}_accuracy": evidence["shuffled"][level]["accuracy"] for level in LEVELS}
        if "calibration" in evidence:
            calibration = evidence["calibration"]
            values |= {"strand_flip_fraction": evidence["strand_flip_fraction"],
                       "temperature": calibration["temperature"]}
            for level in ("window", "sequence"):
                for stage in ("before", "after"):
                    values[f"{level}_ece_{stage}"] = calibration[level][stage]["ece"]
        for row in io.read_table(curve).itertuples():
            values[f"contig_{row.contig_length}nt_accuracy"] = row.accuracy
        for column, value in values.items():
            table.loc[rows, column] = value
    return table
