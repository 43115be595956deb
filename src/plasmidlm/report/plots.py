"""The report's figures, drawn with matplotlib (Agg backend) and embedded as base64 PNG <img> tags."""

from __future__ import annotations

import base64
import html
import io as stdio
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from plasmidlm import io  # noqa: E402
from plasmidlm.report.tables import LEVELS  # noqa: E402

EXPERIMENT_MARKERS = ("o", "D", "^", "v", "P", "X", "*", "h")


def _figure_html(figure, alt: str) -> str:
    buffer = stdio.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def accuracy_plot(table: pd.DataFrame, metric: str = "accuracy", length: int | None = None) -> str:
    """Test metric per checkpoint, one line per experiment, baselines as horizontal lines (of one window length:
    `length`, named in the title)."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    fine_tuned = table[table["kind"] == "fine-tuned"]
    baselines = table[table["kind"] == "baseline"]
    for axis, level in zip(axes, LEVELS):
        column = f"{level}_{metric}"
        for experiment, rows in fine_tuned.groupby("experiment", sort=True):
            errors = np.vstack([rows[column] - rows[f"{column}_ci_low"], rows[f"{column}_ci_high"] - rows[column]])
            axis.errorbar(rows["checkpoint"].astype(int), rows[column], yerr=np.nan_to_num(errors), marker="o",
                          capsize=3, label=experiment)
            best = rows[rows["best"]]
            axis.scatter(best["checkpoint"].astype(int), best[column], s=160, facecolors="none",
                         edgecolors="black", zorder=3)
        for index, (_, row) in enumerate(baselines.iterrows()):
            axis.axhline(row[column], linestyle="--", color=f"C{index + 5}", label=f"baseline: {row['experiment']}")
        axis.set_title(f"{level} level")
        axis.set_xlabel("training step (checkpoint)")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"test {metric.replace('_', ' ')}")
    axes[1].legend(loc="lower right", fontsize="small")
    figure.suptitle(("" if length is None else f"{length}-nt windows. ") + "Circled: best checkpoint by validation "
                    "accuracy. Bars: 95% bootstrap intervals over test plasmids")
    return _figure_html(figure, f"test {metric} per checkpoint" + ("" if length is None else f" ({length} nt)"))


def window_length_plot(table: pd.DataFrame) -> str:
    """Test accuracy against window length: a dashed line per baseline, a black marker per experiment's best
    checkpoint (experiments of one length side by side)."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    lengths = sorted(table["window_length"].unique())
    best = table[(table["kind"] == "fine-tuned") & table["best"]]
    offset = 0.015 * (lengths[-1] - lengths[0])
    for axis, level in zip(axes, LEVELS):
        column = f"{level}_accuracy"
        for index, (name, rows) in enumerate(table[table["kind"] == "baseline"].groupby("experiment", sort=True)):
            rows = rows.sort_values("window_length")
            errors = np.vstack([rows[column] - rows[f"{column}_ci_low"], rows[f"{column}_ci_high"] - rows[column]])
            axis.errorbar(rows["window_length"], rows[column], yerr=np.nan_to_num(errors), marker="s", capsize=3,
                          linestyle="--", color=f"C{index % 10}", alpha=0.7, label=f"baseline: {name}")
        for index, (_, row) in enumerate(best.iterrows()):
            rank = (best["window_length"].iloc[:index] == row["window_length"]).sum()
            errors = np.nan_to_num([[row[column] - row[f"{column}_ci_low"]], [row[f"{column}_ci_high"] - row[column]]])
            axis.errorbar([row["window_length"] + rank * offset], [row[column]], yerr=errors, capsize=4,
                          marker=EXPERIMENT_MARKERS[index % len(EXPERIMENT_MARKERS)], markersize=8, color="black",
                          linestyle="none", label=f"{row['experiment']} (best checkpoint)")
        axis.set_xticks(lengths, [str(length) for length in lengths])
        axis.set(title=f"{level} level", xlabel="window length (nt)")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    figure.suptitle("Accuracy against window length (bars: 95% bootstrap over test plasmids)")
    return _figure_html(figure, "test accuracy against window length")


def training_plot(logs: dict[str, Path], accuracy_title: str = "validation accuracy (window level)") -> str:
    """Training loss and held-out accuracy per step, one line per training log (name -> training_log.tsv)."""
    figure, (loss_axis, val_axis) = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, path in logs.items():
        log = io.read_table(path)
        if "loss" in log:
            rows = log.dropna(subset=["loss"])
            loss_axis.plot(rows["step"], rows["loss"], label=name)
        if "eval_accuracy" in log:
            rows = log.dropna(subset=["eval_accuracy"])
            val_axis.plot(rows["step"], rows["eval_accuracy"], marker="o", label=name)
    loss_axis.set(title="training loss", xlabel="step")
    val_axis.set(title=accuracy_title, xlabel="step")
    for axis in (loss_axis, val_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    return _figure_html(figure, "training curves")


def confusion_plot(matrix, classes: list[str], title: str) -> str:
    matrix = np.asarray(matrix)
    size = 1.2 + 0.6 * len(classes)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    axis.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        axis.text(j, i, str(value), ha="center", va="center",
                  color="white" if value > matrix.max() / 2 else "black")
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axis.set_yticks(range(len(classes)), classes)
    axis.set(xlabel="predicted", ylabel="true", title=title)
    return _figure_html(figure, title)


def reliability_plot(name: str, calibration: dict) -> str:
    """Reliability diagrams (accuracy against confidence per bin) before and after temperature scaling."""
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    for axis, level in zip(axes, ("window", "sequence")):
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
        for stage, marker in (("before", "o"), ("after", "s")):
            bins = calibration[level][stage]["bins"]
            axis.plot([row["confidence"] for row in bins], [row["accuracy"] for row in bins], marker=marker,
                      label=f"{stage} (ECE {calibration[level][stage]['ece']:.3f})")
        axis.set(title=f"{name}: {level} level", xlabel="mean top-class probability in bin", xlim=(0, 1.02),
                 ylim=(0, 1.02))
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small", loc="upper left")
    axes[0].set_ylabel("accuracy in bin")
    figure.suptitle(f"Temperature T = {calibration['temperature']:.3f}, fitted on the validation windows")
    return _figure_html(figure, f"reliability diagram of {name}")


def contig_length_plot(curves: dict[str, pd.DataFrame]) -> str:
    figure, axis = plt.subplots(figsize=(8, 4.2))
    for name, curve in curves.items():
        errors = None
        if "accuracy_ci_low" in curve:
            errors = np.vstack([curve["accuracy"] - curve["accuracy_ci_low"],
                                curve["accuracy_ci_high"] - curve["accuracy"]])
        axis.errorbar(curve["contig_length"] / 1000, curve["accuracy"], yerr=errors, marker="o", capsize=3,
                      label=name, linestyle="--" if name.startswith("kmer") else "-")
    axis.set_xscale("log")
    lengths = sorted({int(length) for curve in curves.values() for length in curve["contig_length"]})
    axis.set_xticks([length / 1000 for length in lengths], [f"{length / 1000:g}" for length in lengths])
    axis.minorticks_off()
    axis.set(xlabel="contig length (kb)", ylabel="sequence-level test accuracy",
             title="Accuracy per contig length (bars: 95% bootstrap over test plasmids)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    return _figure_html(figure, "accuracy per contig length")


def replicate_plot(replicates: pd.DataFrame, baselines: pd.DataFrame) -> str:
    """Each replicate's best checkpoint (a dot; collapsed: a cross) per experiment result, the mean over replicates
    that did not collapse (a bar), the baselines as dashed lines; window and plasmid level."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    names = list(dict.fromkeys(replicates["experiment_result"]))
    for axis, level in zip(axes, LEVELS):
        column = f"{level}_accuracy"
        for position, name in enumerate(names):
            rows = replicates[replicates["experiment_result"] == name]
            collapsed = rows["collapsed"] != ""
            jitter = np.linspace(-0.12, 0.12, len(rows)) if len(rows) > 1 else np.zeros(1)
            axis.scatter(position + jitter[~collapsed.to_numpy()], rows.loc[~collapsed, column], color="C0", zorder=3)
            axis.scatter(position + jitter[collapsed.to_numpy()], rows.loc[collapsed, column], color="C3", marker="x",
                         zorder=3)
            if (~collapsed).any():
                axis.hlines(rows.loc[~collapsed, column].mean(), position - 0.25, position + 0.25, color="black")
        for index, (_, row) in enumerate(baselines.iterrows()):
            axis.axhline(row[column], linestyle="--", color=f"C{index + 5}", label=f"baseline: {row['experiment']}")
        axis.set_xticks(range(len(names)), names, rotation=20, ha="right")
        axis.set_title(f"{level} level")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy of the best checkpoint")
    if len(baselines):
        axes[1].legend(loc="lower right", fontsize="small")
    figure.suptitle("Every replicate (dot; x: collapsed), mean of those that did not collapse (bar)")
    return _figure_html(figure, "test accuracy of every replicate")


def sweep_plot(group: str, replicates: pd.DataFrame, keys: list[str]) -> str | None:
    """Validation accuracy per setting of a sweep over one key (each replicate a dot, the mean a line) or two keys
    (the mean in a heatmap); None for more keys. `replicates` holds one column per swept key."""
    if len(keys) == 1:
        key = keys[0]
        means = replicates.groupby(key, sort=False)["val_accuracy"].mean()
        numeric = all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in means.index)
        figure, axis = plt.subplots(figsize=(6, 4))
        if numeric:
            order = sorted(means.index)
            axis.scatter(replicates[key], replicates["val_accuracy"], color="C0", alpha=0.6)
            axis.plot(order, [means[value] for value in order], marker="o", color="black")
            if min(order) > 0 and max(order) / min(order) >= 10:
                axis.set_xscale("log")
        else:
            positions = {value: index for index, value in enumerate(means.index)}
            axis.scatter(replicates[key].map(positions), replicates["val_accuracy"], color="C0", alpha=0.6)
            axis.plot(range(len(means)), means.to_numpy(), marker="o", color="black")
            axis.set_xticks(range(len(means)), [str(value) for value in means.index])
        axis.set(xlabel=key, ylabel="validation accuracy (best checkpoint)", title=f"{group}: sweep over {key}")
        axis.grid(alpha=0.3)
        return _figure_html(figure, f"validation accuracy per setting of {group}")
    if len(keys) == 2:
        means = replicates.groupby(keys, sort=False)["val_accuracy"].mean().unstack(keys[1])
        figure, axis = plt.subplots(figsize=(1.5 + 1.1 * means.shape[1], 1.2 + 0.7 * means.shape[0]))
        axis.imshow(means.to_numpy(dtype=float), cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(means.to_numpy(dtype=float)):
            axis.text(j, i, "" if np.isnan(value) else f"{value:.3f}", ha="center", va="center", color="white")
        axis.set_xticks(range(means.shape[1]), [str(value) for value in means.columns])
        axis.set_yticks(range(means.shape[0]), [str(value) for value in means.index])
        axis.set(xlabel=keys[1], ylabel=keys[0], title=f"{group}: mean validation accuracy")
        return _figure_html(figure, f"validation accuracy per setting of {group}")
    return None
