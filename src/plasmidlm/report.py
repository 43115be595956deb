"""The comparison table and the self-contained HTML report of a finished run."""

from __future__ import annotations

import base64
import glob
import html
import io as stdio
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from plasmidlm import __version__, io, layout  # noqa: E402
from plasmidlm.config import resolve_experiments  # noqa: E402
from plasmidlm.evidence import COMPOSITION_BASELINES  # noqa: E402
from plasmidlm.metrics import HEADLINE  # noqa: E402
from plasmidlm.training.checkpointing import set_aside_records  # noqa: E402
from plasmidlm.training.runs import best_checkpoint, validation_accuracy  # noqa: E402

LEVELS = ("window", "plasmid")
EXPERIMENT_MARKERS = ("o", "D", "^", "v", "P", "X", "*", "h")


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


def _with_interval(table: pd.DataFrame, column: str) -> pd.Series:
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


def comparison_table(run_dir, experiments: list[str], baselines: list[str], lengths: dict[str, int],
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


def _by_length(table: pd.DataFrame):
    """(window length, rows) of each length in the table, or (None, table) for a table without lengths."""
    if "window_length" not in table:
        return [(None, table)]
    return list(table.groupby("window_length", sort=True))


def _at_length(name: str, length: int, lengths: list[int]) -> str:
    """A baseline's name, with its window length where the run has several."""
    return f"{name} ({length} nt)" if len(lengths) > 1 else name


def composition_verdicts(table: pd.DataFrame) -> list[str]:
    """For each best checkpoint and level, whether it beats the strongest composition baseline, in words.

    Composition baselines see only a window's GC content or k-mer frequencies (the k-mer baseline included).
    Beating one means a higher accuracy whose 95% interval lies above the baseline's accuracy.
    Each model is compared with the baselines of its own window length.
    """
    names = {**COMPOSITION_BASELINES, "kmer": "k-mer frequencies"}
    sentences = []
    for _, rows in _by_length(table):
        sentences += _composition_verdicts_of(rows, names)
    return sentences


def _composition_verdicts_of(table: pd.DataFrame, names: dict[str, str]) -> list[str]:
    composition = table[(table["kind"] == "baseline") & table["experiment"].isin(names)]
    if composition.empty:
        return []
    sentences = []
    for _, row in table[(table["kind"] == "fine-tuned") & table["best"]].iterrows():
        for level in LEVELS:
            column = f"{level}_accuracy"
            strongest = composition.loc[composition[column].idxmax()]
            base = (f"{row['experiment']} (best checkpoint {row['checkpoint']}), {level} level: test accuracy "
                    f"{row[column]:.3f} against {strongest[column]:.3f} for {names[strongest['experiment']]} alone "
                    f"({strongest['experiment']})")
            if row[column] <= strongest[column]:
                sentences.append(f"{base}: the fine-tuned model does not beat a composition baseline; on this data "
                                 "it may be reading composition rather than sequence order.")
            elif not row[f"{column}_ci_low"] > strongest[column]:
                sentences.append(f"{base}: higher, but the model's 95% interval [{row[f'{column}_ci_low']:.3f}, "
                                 f"{row[f'{column}_ci_high']:.3f}] includes the baseline's accuracy: not clearly "
                                 "better than composition.")
            else:
                sentences.append(f"{base}: the model beats every composition baseline.")
    return sentences


def _evidence_files(run_dir, lengths: dict[str, int], default_length: int) -> list[tuple[str, int, str, str]]:
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
    for name, length, evidence_path, curve in _evidence_files(run_dir, lengths, default_length):
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


def shuffle_verdict(name: str, accuracy: float, ci_low: float, shuffled: float, chance: float = np.nan) -> str:
    """Whether a model keeps its window accuracy on dinucleotide-shuffled windows (within its 95% interval).

    `chance` is the majority baseline's accuracy: a model not above it has nothing to lose.
    """
    change = f"window accuracy {accuracy:.3f} on the test windows, {shuffled:.3f} after shuffling"
    if not pd.isna(chance) and (ci_low if not pd.isna(ci_low) else accuracy) <= chance:
        return f"{name}: {change}: not above chance ({chance:.3f}) to begin with, so the control says nothing."
    if shuffled >= accuracy or (not pd.isna(ci_low) and shuffled >= ci_low):
        return (f"{name}: {change}, within its 95% interval: it keeps its accuracy without the order of the "
                "bases, so it reads composition, not order.")
    return (f"{name}: {change}: it loses {accuracy - shuffled:.3f} when the order goes, so it reads more than "
            "dinucleotide composition.")


def _controls_html(run_dir: Path, table: pd.DataFrame, lengths: dict[str, int], default_length: int) -> list[str]:
    files = _evidence_files(run_dir, lengths, default_length)
    if not files:
        return []
    rows, diagrams, verdicts = [], [], []
    all_lengths = sorted(set(lengths.values()))
    for name, length, evidence_path, _ in files:
        evidence = io.read_json(evidence_path)
        baselines = table[(table["kind"] == "baseline") & (table["window_length"] == length)]
        majority = baselines.loc[baselines["experiment"] == "majority", "window_accuracy"]
        chance = majority.iloc[0] if len(majority) else np.nan
        if name == "kmer":
            original = baselines[baselines["experiment"] == "kmer"].iloc[0]
            row = {"model": f"{_at_length('kmer', length, all_lengths)} (baseline)", "window length": length,
                   "checkpoint": "", **{f"{level} accuracy": original[f"{level}_accuracy"] for level in LEVELS}}
            low = original["window_accuracy_ci_low"]
        else:
            row = {"model": name, "window length": length, "checkpoint": evidence["checkpoint"],
                   **{f"{level} accuracy": evidence["test"][level]["accuracy"] for level in LEVELS}}
            low = (evidence["test"]["window"].get("ci95") or {}).get("accuracy", [np.nan])[0]
        verdicts.append(shuffle_verdict(row["model"], row["window accuracy"], low,
                                        evidence["shuffled"]["window"]["accuracy"], chance))
        for level in LEVELS:
            row[f"{level} accuracy, shuffled windows"] = evidence["shuffled"][level]["accuracy"]
        if "calibration" in evidence:
            calibration = evidence["calibration"]
            row |= {"strand flips": evidence["strand_flip_fraction"], "temperature": calibration["temperature"],
                    "window ECE before → after": f"{calibration['window']['before']['ece']:.3f} → "
                                                 f"{calibration['window']['after']['ece']:.3f}",
                    "sequence ECE before → after": f"{calibration['sequence']['before']['ece']:.3f} → "
                                                   f"{calibration['sequence']['after']['ece']:.3f}"}
            diagrams.append(reliability_plot(name, calibration))
        rows.append(row)
    text = _paragraph(
        "Each test window is shuffled with its dinucleotide counts kept exactly (Altschul-Erickson, seeded): the "
        "composition stays, the order goes. A model that keeps its accuracy on shuffled windows reads composition, "
        "not order; one that falls to chance reads order. Strand flips: the share of test windows whose predicted "
        "class changes between a window and its reverse complement. Temperature scaling divides the logits by one "
        "temperature fitted on the validation windows; it never changes a window's predicted class. Expected "
        "calibration error (ECE): the gap between confidence and accuracy, averaged over equal-width confidence "
        "bins, on the test windows and on test plasmids (mean of their windows' probabilities). Accuracies here "
        "score the forward strand only.")
    return [_section("Controls: shuffled windows, strands and calibration", text
                     + "".join(_paragraph(verdict) for verdict in verdicts)
                     + _table_html(pd.DataFrame(rows)) + f'<div class="grid">{"".join(diagrams)}</div>')]


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


def _contig_lengths_html(run_dir: Path, lengths: dict[str, int], default_length: int) -> list[str]:
    files = _evidence_files(run_dir, lengths, default_length)
    if not files:
        return []
    all_lengths = sorted(set(lengths.values()))
    curves = {(_at_length(name, length, all_lengths) if name == "kmer" else name):
              io.read_table(curve) for name, length, _, curve in files}
    long = pd.concat([curve.assign(model=name) for name, curve in curves.items()], ignore_index=True)
    long = long[["model", *[column for column in long.columns if column != "model"]]]
    for name in ("accuracy", "balanced_accuracy"):
        if f"{name}_ci_low" in long:
            long[name] = _with_interval(long, name)
            long = long.drop(columns=[f"{name}_ci_low", f"{name}_ci_high"])
    return [_section("How long must a contig be?", _paragraph(
        "Every test plasmid is cut into as many non-overlapping sub-sequences (contigs) of each length as fit, at "
        "a seeded offset; a contig's class is the mean of its windows' probabilities (calibrated for fine-tuned "
        "models, as predict does). Best checkpoint of each experiment, and the k-mer baseline (dashed). Plasmids "
        "shorter than a length give no contig of that length.") + contig_length_plot(curves) + _table_html(long))]


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


def _table_html(table: pd.DataFrame) -> str:
    if "checkpoint" in table:  # baselines have none; show an empty cell, not <NA>
        table = table.assign(checkpoint=table["checkpoint"].astype(object).where(table["checkpoint"].notna(), ""))
    return table.to_html(index=False, float_format=lambda value: f"{value:.4f}", na_rep="", border=0,
                         classes="data")


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def _paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1150px;
color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table.data{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
table.data th,table.data td{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}
table.data th{background:#f5f5f5} img{max-width:100%} .muted{color:#666;font-size:.9rem}
.grid{display:flex;flex-wrap:wrap;gap:1rem} pre{background:#f7f7f7;padding:.8rem;overflow-x:auto;font-size:.8rem}
"""


def _pretraining_section(run_dir: Path) -> list[str]:
    log = Path(layout.pretrain_log(run_dir))
    if not log.exists():
        return []
    summary = io.read_json(layout.pretrain_summary(run_dir))
    return [_section("Masked-LM pretraining", _paragraph(
        f"The built-in model ({summary['parameters']:,} parameters) pretrained for {summary['total_steps']} steps "
        "on random windows of the training plasmids only; accuracy = masked tokens predicted right on other "
        "windows of the training plasmids. Experiments with model 'pretrained' fine-tune this model.")
        + training_plot({"pretraining": log}, "masked-token accuracy (held-out training windows)"))]


def _leakage_row(experiment: str, leakage: dict) -> dict:
    by_class = leakage.pop("kmer_covered_fraction_by_class")
    return {"experiment": experiment, **leakage, "by_class": by_class}


def _kmer_covered_text(leakage: pd.Series, length: int | None) -> str:
    """The share of test windows (of one window length) that are k-mer-covered by training plasmids, by class."""
    which = f"{length}-nt test windows" if length else "test windows"
    by_class = ", ".join(f"{label}: {value:.1%}" for label, value in leakage["by_class"].items())
    return (f"{leakage['test_windows_kmer_covered_fraction']:.1%} of the {which} have every one of their "
            f"{leakage['kmer']}-mers (either strand) in the training plasmids ({by_class})")


def _split_text(split_info: dict) -> str:
    strata = split_info["stratification"]
    if split_info["near_duplicate_grouping"]:
        grouping = (
            f"Near-identical plasmids are kept in one split: {split_info['plasmids_in_merged_groups']} of "
            f"{split_info['plasmids']} plasmids fall in {split_info['merged_groups']} near-duplicate groups "
            f"({split_info['linkage']} linkage; {split_info['linked_pairs_across_splits']} linked pairs straddle "
            f"splits; pairs in data/near_duplicates.tsv). Largest groups: "
            + "; ".join(f"{row['group']}: {row['size']} plasmids ("
                        + ", ".join(f"{label} {n}" for label, n in row["classes"].items())
                        + f") in {row['split']}"
                        + (f", lowest containment inside {row['min_containment']:.2f}" if "min_containment" in row
                           else "")
                        for row in split_info["largest_groups"][:5])
            + ". A lowest containment far below the linking threshold means that chains of near-copies merged "
            "plasmids that are not near-copies of each other."
        )
        spanning = split_info["cross_class_groups"]
        if spanning["groups"]:
            grouping += (f" {len(spanning['groups'])} group(s) ({spanning['plasmids']} plasmids) span several "
                         f"classes: " + ", ".join(row["group"] for row in spanning["groups"][:10])
                         + {"keep": " (split like any group).", "train": " (kept in train, never evaluated).",
                            "drop": " (left out of the split)."}[spanning["handling"]])
    else:
        grouping = "Near-duplicate grouping is off: near-identical plasmids can straddle splits."
    assignment = {
        "stratified": "Groups are assigned largest first, each to the split its seeded hash prefers unless that "
                      "would take a class's share away from the requested fractions.",
        "hash": "Each group's split comes from a seeded hash of its name alone, so classes are stratified only "
                "in expectation.",
    }[split_info["assignment"]]
    return (
        f"{grouping} {assignment} The largest deviation of a class's share from the requested fractions is "
        f"{strata['max_deviation']:.3f} (class {strata['max_deviation_class']})."
    )


def _window_length_html(table: pd.DataFrame, lengths: list[int]) -> list[str]:
    if len(lengths) < 2:
        return []
    return [_section("Accuracy per window length", _paragraph(
        f"Experiments use {len(lengths)} window lengths ({', '.join(f'{length} nt' for length in lengths)}). Each "
        "length has its own validation and test windows, drawn from the same validation and test plasmids with the "
        "same number of windows per plasmid, and every baseline runs at each length; a model is compared with the "
        "baselines of its own length.") + window_length_plot(table))]


def render_html(run_dir: Path, table: pd.DataFrame, experiments: list[str], config: dict) -> str:
    resolved = _resolved_experiments(config, experiments)
    lengths = {name: settings["windows"]["length"] for name, settings in resolved.items()}
    all_lengths = sorted(set(lengths.values()))
    default_length = config["windows"]["length"]
    body = [
        f"<h1>plasmidlm report: {html.escape(config['run_name'])}</h1>",
        f'<p class="muted">Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} by plasmidlm '
        f"{html.escape(__version__)}.</p>",
        _summary_section(table),
        *_window_length_html(table, all_lengths),
        _section("Test metrics per checkpoint", "".join(
            accuracy_plot(rows, metric, length if len(all_lengths) > 1 else None)
            for length, rows in _by_length(table) for metric in ("accuracy", "balanced_accuracy"))),
        *_controls_html(run_dir, table, lengths, default_length),
        *_contig_lengths_html(run_dir, lengths, default_length),
        _data_section(run_dir, config, resolved, all_lengths),
        _leakage_section(run_dir, experiments, lengths, all_lengths),
        _confusion_section(run_dir, table),
        _section("Training", training_plot(
            {name: layout.training_log(run_dir, name) for name in experiments})),
        *_pretraining_section(run_dir),
        _section("All checkpoints", _paragraph(
            "Every checkpoint on the same test windows; eval_seconds and windows_per_second are the cost of "
            "scoring them.") + _table_html(table[[column for column in table.columns if "_ci_" not in column]])),
        _provenance_section(run_dir, config),
    ]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>plasmidlm report: '
            f"{html.escape(config['run_name'])}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def _best_checkpoints(table: pd.DataFrame) -> pd.DataFrame:
    fine_tuned = table[table["kind"] == "fine-tuned"]
    return fine_tuned[fine_tuned["best"]]


def _summary_section(table: pd.DataFrame) -> str:
    """Each experiment's best checkpoint beside the baselines, with intervals, and the composition verdicts."""
    chosen = (pd.concat([_best_checkpoints(table), table[table["kind"] == "baseline"]])
              .sort_values("window_length", kind="stable"))
    summary_table = chosen[["experiment", "kind", "window_length", "checkpoint", "val_accuracy"]].copy()
    for level in LEVELS:
        for name in ("accuracy", "balanced_accuracy", "auroc"):
            summary_table[f"{level} {name.replace('_', ' ')} [95% CI]"] = _with_interval(chosen, f"{level}_{name}")
    summary_table["plasmid majority-vote accuracy"] = chosen["plasmid_vote_accuracy"]
    return _section("Best checkpoints and baselines", _paragraph(
        "The best checkpoint of each experiment is the one with the highest validation accuracy "
        "(window level, fixed validation windows from validation plasmids); test metrics never choose it. "
        "Plasmid level = mean of a plasmid's window probabilities; majority vote = the class most of its "
        "windows predict. Intervals: 95% percentile bootstrap over test plasmids (a plasmid's windows are "
        "resampled together, since they are not independent).") + _table_html(summary_table)
        + "".join(_paragraph(sentence) for sentence in composition_verdicts(table)))


def _data_section(run_dir: Path, config: dict, resolved: dict, all_lengths: list[int]) -> str:
    """The input sequences, the classes, the split and the windows of each experiment."""
    classes_table = io.read_table(layout.data_file(run_dir, "classes.tsv"))
    split_summary = io.read_table(layout.data_file(run_dir, "split_summary.tsv"))
    split_info = io.read_json(layout.data_file(run_dir, "split.json"))
    validation = io.read_json(layout.data_file(run_dir, "validate.json"))
    windows = config["windows"]
    experiment_rows = pd.DataFrame([
        {"experiment": name, **{f"windows.{key}": value for key, value in settings["windows"].items()
                                if key not in ("val_count", "test_count")},
         "model": settings["model"]["name_or_path"], "learning_rate": settings["train"]["learning_rate"],
         "epochs": settings["train"]["epochs"]}
        for name, settings in resolved.items()])
    return _section("Data", _paragraph(
        f"{validation['usable']} usable sequences ({validation['total_length']:,} nt) from "
        f"{validation['fasta']}; {validation['skipped_short']} skipped as shorter than a window.")
        + "<h3>Classes</h3>" + _table_html(classes_table)
        + "<h3>Plasmids per split</h3>" + _paragraph(_split_text(split_info)) + _table_html(split_summary)
        + "<h3>Windows</h3>" + _paragraph(
            f"Window length {', '.join(f'{length}' for length in all_lengths)} nt; {windows['val_count']} "
            f"validation and {windows['test_count']} test windows"
            + (" of each length" if len(all_lengths) > 1 else "")
            + ", fixed and shared by every experiment and checkpoint"
            + (" of that length" if len(all_lengths) > 1 else "")
            + ", balanced across classes and across the plasmids of a class.")
        + _table_html(experiment_rows))


def _leakage_section(run_dir: Path, experiments: list[str], lengths: dict[str, int], all_lengths: list[int]) -> str:
    """Test windows shared with, or k-mer-covered by, each experiment's training data."""
    leakage = pd.DataFrame([{**_leakage_row(name, io.read_json(layout.leakage(run_dir, name))),
                             "window_length": lengths[name]} for name in experiments])
    shared = ", ".join(f"{row.experiment}: {row.test_windows_shared_with_train} of {row.test_windows} "
                       f"({row.test_windows_shared_fraction:.1%})" for row in leakage.itertuples())
    near_copies = (
        "; ".join(_kmer_covered_text(rows.iloc[0], length if len(all_lengths) > 1 else None)
                  for length, rows in leakage.groupby("window_length"))
        + ". Such windows are (near-)copies of training sequence although their plasmid is not in training: "
        "near-identical plasmids recur across isolates, so a split by ID alone overstates accuracy. Read "
        "accuracy with this share in mind."
    )
    return _section("Leakage check", _paragraph(
        "Passed: no test plasmid is in the training windows or the validation split (the pipeline "
        f"fails otherwise). Test windows whose exact sequence (either strand) also occurs among an "
        f"experiment's training windows: {shared}.") + _paragraph(near_copies)
        + _table_html(leakage.drop(columns="by_class")))


def _confusion_section(run_dir: Path, table: pd.DataFrame) -> str:
    confusion = []
    for _, row in _best_checkpoints(table).iterrows():
        metrics = io.read_json(layout.checkpoint_metrics(run_dir, row["experiment"], row["checkpoint"]))
        for level in LEVELS:
            confusion.append(confusion_plot(metrics[level]["confusion_matrix"], metrics["classes"],
                                            f"{row['experiment']} step {row['checkpoint']}: {level}"))
    return _section("Confusion matrices of the best checkpoints", f'<div class="grid">{"".join(confusion)}</div>')


def _provenance_section(run_dir: Path, config: dict) -> str:
    """Package versions, input checksums, the configuration and any checkpoints set aside."""
    provenance = io.read_json(layout.provenance(run_dir))
    return _section("Provenance", "<h3>Package versions</h3>" + _table_html(
        pd.DataFrame(list(provenance["versions"].items()), columns=["package", "version"]))
        + "<h3>Inputs</h3>" + _table_html(pd.DataFrame(
            [{"input": name, **value} for name, value in provenance["inputs"].items()]))
        + "<h3>Configuration</h3><pre>" + html.escape(yaml.safe_dump(config, sort_keys=False)) + "</pre>"
        + _set_aside_html(run_dir))


def _set_aside_html(run_dir: Path) -> str:
    """The checkpoints that re-runs set aside (train.old_checkpoints: move_aside), and why."""
    rows = set_aside_records(run_dir)
    text = ("Checkpoints that a re-run with other parameters could not use were moved to these folders (paths "
            "relative to the run folder), not deleted." if rows else "No checkpoint was set aside.")
    return "<h3>Checkpoints set aside</h3>" + _paragraph(text) + (_table_html(pd.DataFrame(rows)) if rows else "")


def _resolved_experiments(config: dict, experiments: list[str]) -> dict:
    resolved = resolve_experiments(config)
    return {name: resolved[name] for name in experiments}


def write_report(run_dir, config: dict, out_comparison, out_html, experiments: list[str] | None = None,
                 baselines: list[str] | None = None, log=print) -> pd.DataFrame:
    """Write `comparison.tsv` and `report.html` for a finished run directory."""
    run_dir = Path(run_dir)
    experiments = experiments if experiments is not None else discover_experiments(run_dir)
    baselines = baselines if baselines is not None else discover_baselines(run_dir)
    lengths = {name: settings["windows"]["length"] for name, settings in
               _resolved_experiments(config, experiments).items()}
    default_length = config["windows"]["length"]
    table = add_evidence_columns(comparison_table(run_dir, experiments, baselines, lengths, default_length), run_dir,
                                 lengths, default_length)
    io.write_table(table, out_comparison)
    page = render_html(run_dir, table, experiments, config)
    io.write_atomic(out_html, lambda tmp: Path(tmp).write_text(page))
    for row in table[table["best"]].itertuples():
        log(f"{row.experiment}: best checkpoint {row.checkpoint} (val accuracy {row.val_accuracy:.4f}): "
            f"test window accuracy {row.window_accuracy:.4f}, plasmid accuracy {row.plasmid_accuracy:.4f}")
    return table
