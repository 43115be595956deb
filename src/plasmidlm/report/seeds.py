"""Replicates and sweeps in the report: one row per replicate's best checkpoint with its seed, collapse and cost;
the spread over replicates of each experiment and sweep setting; the setting a sweep chooses (on validation
only); and paired differences over seeds between experiments and against the k-mer baseline.

Replicates share the test windows, so the test-set part of their variation is common to all: the difference
between two experiments is compared replicate by replicate (replicate r of both trains with the same seed).
An experiment's result is its chosen sweep setting (or itself, without a sweep).
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
from scipy import stats

from plasmidlm import io, layout
from plasmidlm.replicates import Replicate

logger = logging.getLogger(__name__)

# The test metrics of the best checkpoints summarised over replicates and compared between experiments
SEED_METRICS = ("window_accuracy", "plasmid_accuracy")
# Columns that the comparison table gets for each fine-tuned row when the run has replicates or sweeps
REPLICATE_COLUMNS = ("group", "setting", "replicate", "seed", "collapsed")
BASELINE = "kmer"


# --- collapse -------------------------------------------------------------------------------------------------

def majority_share(labels: pd.Series) -> float:
    """The accuracy of always predicting the most common class."""
    return float(labels.value_counts(normalize=True).max())


def predicted_classes(confusion_matrix) -> int:
    """How many classes a model predicts at all (columns of the confusion matrix with a window)."""
    return int((np.asarray(confusion_matrix).sum(axis=0) > 0).sum())


def collapse_reason(val_accuracy: float, *, majority: float, predicted: int) -> str:
    """Why a best checkpoint counts as collapsed ("" when it does not): validation accuracy not above the
    majority rate, or a single predicted class on the test windows."""
    reasons = []
    if val_accuracy <= majority + 1e-9:
        reasons.append(f"validation accuracy {val_accuracy:.3f} at the majority rate {majority:.3f}")
    if predicted <= 1:
        reasons.append("one predicted class on every test window")
    return "; ".join(reasons)


# --- one row per replicate --------------------------------------------------------------------------------------

def replicate_table(run_dir, table: pd.DataFrame, *, expanded: dict[str, Replicate], gpus: dict[str, int],
                    default_length: int) -> pd.DataFrame:
    """One row per experiment: its best checkpoint (`table`: comparison_table), group, setting, replicate, seed,
    collapse reason, and cost (training seconds from its train_summary.json, evaluation seconds of all its
    checkpoints; `gpus`: experiment -> train.gpus)."""
    fine_tuned = table[table["kind"] == "fine-tuned"]
    majority = {}
    rows = []
    for name, checkpoints in fine_tuned.groupby("experiment", sort=False):
        best = checkpoints[checkpoints["best"]].iloc[0]
        length = int(best["window_length"])
        if length not in majority:
            val = layout.data_file(run_dir, "val_windows.tsv.gz", layout.length_dir(length, default_length))
            majority[length] = majority_share(pd.read_csv(val, sep="\t", usecols=["label"])["label"])
        metrics = io.read_json(layout.checkpoint_metrics(run_dir, name, int(best["checkpoint"])))
        summary = io.read_json(layout.train_summary(run_dir, name))
        replicate = expanded[name]
        reason = collapse_reason(best["val_accuracy"], majority=majority[length],
                                 predicted=predicted_classes(metrics["window"]["confusion_matrix"]))
        if reason:
            logger.warning(f"{name}: collapsed ({reason}); counted, and left out of the means over replicates")
        rows.append({"experiment": name, "group": replicate.group, "setting": replicate.setting,
                     "replicate": replicate.index, "seed": replicate.seed, "window_length": length,
                     "checkpoint": int(best["checkpoint"]), "val_accuracy": best["val_accuracy"],
                     **{metric: best[metric] for metric in SEED_METRICS}, "collapsed": reason,
                     "gpus": gpus[name], "train_seconds": summary.get("train_seconds", np.nan),
                     "train_windows_per_second": summary.get("train_windows_per_second", np.nan),
                     "eval_seconds": checkpoints["eval_seconds"].sum(),
                     "eval_windows_per_second": checkpoints["windows_per_second"].mean()})
    return pd.DataFrame(rows)


def with_replicate_columns(table: pd.DataFrame, replicates: pd.DataFrame) -> pd.DataFrame:
    """The comparison table with each fine-tuned row's group, setting, replicate, seed and collapse flag."""
    columns = replicates.set_index("experiment")[list(REPLICATE_COLUMNS)].assign(
        collapsed=lambda frame: frame["collapsed"] != "")
    table = table.join(columns, on="experiment")
    fine_tuned = table["kind"] == "fine-tuned"
    table.loc[~fine_tuned, "group"] = table.loc[~fine_tuned, "experiment"]
    return table.astype({"replicate": "Int64", "seed": "Int64"})


# --- selection ---------------------------------------------------------------------------------------------------

def choose_settings(validation: pd.DataFrame) -> dict[str, str]:
    """{group: setting} with the highest mean validation accuracy over its replicates (collapsed ones included:
    a setting that collapses is a worse setting), the first setting on ties. `validation` holds group, setting
    and val_accuracy of each replicate's best checkpoint; nothing else is read."""
    means = validation.groupby(["group", "setting"], sort=False)["val_accuracy"].mean()
    chosen = {}
    for group, settings in means.groupby(level="group", sort=False):
        chosen[group] = settings.index[int(np.argmax(settings.to_numpy()))][1]
    return chosen


def validation_only(replicates: pd.DataFrame) -> pd.DataFrame:
    return replicates[["group", "setting", "val_accuracy"]]


# --- spread over replicates -------------------------------------------------------------------------------------

def setting_summary(replicates: pd.DataFrame, chosen: dict[str, str]) -> pd.DataFrame:
    """One row per (group, setting): replicates, collapsed ones, validation accuracy (mean, sd; what chooses),
    the test metrics of the best checkpoints over the replicates that did not collapse (mean, sd, min, max),
    and the cost summed over replicates (device-hours = seconds x GPUs / 3600)."""
    rows = []
    for (group, setting), runs in replicates.groupby(["group", "setting"], sort=False):
        kept = runs[runs["collapsed"] == ""]
        row = {"experiment": group, "setting": setting, "window_length": runs["window_length"].iloc[0],
               "replicates": len(runs), "collapsed": int((runs["collapsed"] != "").sum()),
               "chosen": chosen[group] == setting, "val_accuracy_mean": runs["val_accuracy"].mean(),
               "val_accuracy_sd": runs["val_accuracy"].std(ddof=1)}
        for metric in SEED_METRICS:
            row |= {f"{metric}_mean": kept[metric].mean(), f"{metric}_sd": kept[metric].std(ddof=1),
                    f"{metric}_min": kept[metric].min(), f"{metric}_max": kept[metric].max()}
        row |= {"train_device_hours": (runs["train_seconds"] * runs["gpus"]).sum(min_count=1) / 3600,
                "eval_device_hours": runs["eval_seconds"].sum(min_count=1) / 3600,
                "train_windows_per_second": runs["train_windows_per_second"].mean(),
                "eval_windows_per_second": runs["eval_windows_per_second"].mean(),
                "experiments": " ".join(runs["experiment"])}
        rows.append(row)
    return pd.DataFrame(rows)


def cost_by_group(summary: pd.DataFrame) -> pd.DataFrame:
    """Each config experiment's cost summed over its sweep settings and replicates, beside its result."""
    rows = []
    for group, settings in summary.groupby("experiment", sort=False):
        result = settings[settings["chosen"]].iloc[0]
        rows.append({"experiment": group, "settings": len(settings), "trained": int(settings["replicates"].sum()),
                     "train_device_hours": settings["train_device_hours"].sum(min_count=1),
                     "eval_device_hours": settings["eval_device_hours"].sum(min_count=1),
                     "train_windows_per_second": settings["train_windows_per_second"].mean(),
                     "eval_windows_per_second": settings["eval_windows_per_second"].mean(),
                     "result_window_accuracy_mean": result["window_accuracy_mean"]})
    return pd.DataFrame(rows)


# --- paired differences over seeds --------------------------------------------------------------------------------

def paired_statistic(differences) -> dict:
    """Mean paired difference, its sd and 95% t interval, the seeds on each side, and whether it holds across
    seeds: at least 2 pairs, and every pair on the same side of 0 or the interval excluding 0."""
    differences = np.asarray(differences, dtype=float)
    n = len(differences)
    mean = differences.mean() if n else np.nan
    sd = differences.std(ddof=1) if n > 1 else np.nan
    half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n) if n > 1 else np.nan
    higher, lower = int((differences > 0).sum()), int((differences < 0).sum())
    same_sign = n > 1 and (higher == n or lower == n)
    excludes_zero = n > 1 and sd > 0 and abs(mean) > half
    return {"pairs": n, "mean_difference": mean, "sd_difference": sd, "ci_low": mean - half, "ci_high": mean + half,
            "higher": higher, "lower": lower, "same_sign": same_sign, "interval_excludes_zero": bool(excludes_zero),
            "holds_across_seeds": bool(same_sign or excludes_zero)}


def difference_verdict(name: str, versus: str, metric: str, statistic: dict) -> str:
    n = statistic["pairs"]
    if n < 2:
        return (f"{name} against {versus} ({metric}): {n} seed(s) to pair, too few to tell whether the "
                f"difference holds across seeds (replicates: 2 or more)")
    side = "above" if statistic["mean_difference"] > 0 else "below"
    text = (f"{name} against {versus} ({metric}): mean paired difference {statistic['mean_difference']:+.3f}, 95% "
            f"interval [{statistic['ci_low']:+.3f}, {statistic['ci_high']:+.3f}] over {n} seeds; higher in "
            f"{statistic['higher']}, lower in {statistic['lower']}")
    if not statistic["holds_across_seeds"]:
        return f"{text}: the difference does not hold across seeds."
    if statistic["interval_excludes_zero"]:
        return f"{text}: {side}, and that holds across seeds (the interval excludes 0)."
    return (f"{text}: {side} in every seed, so it holds across these seeds; with {n} seeds agreeing by chance "
            f"half the time each (sign test p = {2 * 0.5 ** n:.2g}), more replicates would make it firmer.")


def seed_differences(replicates: pd.DataFrame, table: pd.DataFrame, chosen: dict[str, str]) -> pd.DataFrame:
    """Paired differences of each experiment's result (its chosen setting) against every other of the same window
    length, replicate by replicate, and against the k-mer baseline of its length; collapsed replicates are left
    out of the pairs (and counted)."""
    results = replicates[[chosen[group] == setting for group, setting
                          in zip(replicates["group"], replicates["setting"])]]
    kept = results[results["collapsed"] == ""]
    names = {group: f"{group}.{setting}" if setting else group for group, setting in chosen.items()}
    baselines = table[(table["kind"] == "baseline") & (table["experiment"] == BASELINE)]
    rows = []
    for metric in SEED_METRICS:
        by_group = {group: runs.set_index("replicate")[metric] for group, runs in kept.groupby("group", sort=False)}
        lengths = results.groupby("group", sort=False)["window_length"].first()
        left_out = results[results["collapsed"] != ""].groupby("group").size()
        for first, second in itertools.combinations(lengths.index, 2):
            if lengths[first] != lengths[second]:
                continue
            a, b = by_group.get(first, pd.Series(dtype=float)), by_group.get(second, pd.Series(dtype=float))
            common = a.index.intersection(b.index)
            rows.append(_difference_row(metric, names[first], names[second], (a[common] - b[common]).to_numpy(),
                                        int(left_out.get(first, 0) + left_out.get(second, 0))))
        for group, length in lengths.items():
            baseline = baselines[baselines["window_length"] == length]
            if baseline.empty:
                continue
            values = by_group.get(group, pd.Series(dtype=float))
            rows.append(_difference_row(metric, names[group], f"{BASELINE} (baseline)",
                                        (values - baseline[metric].iloc[0]).to_numpy(), int(left_out.get(group, 0))))
    columns = ["metric", "experiment", "versus", "pairs", "collapsed_left_out", "mean_difference", "sd_difference",
               "ci_low", "ci_high", "higher", "lower", "same_sign", "interval_excludes_zero", "holds_across_seeds",
               "verdict"]
    return pd.DataFrame(rows, columns=columns)


def _difference_row(metric: str, name: str, versus: str, differences: np.ndarray, left_out: int) -> dict:
    statistic = paired_statistic(differences)
    return {"metric": metric, "experiment": name, "versus": versus, "collapsed_left_out": left_out, **statistic,
            "verdict": difference_verdict(name, versus, metric, statistic)}
