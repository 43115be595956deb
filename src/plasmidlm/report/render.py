"""The self-contained HTML page of a finished run, section by section."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from plasmidlm import __version__, io, layout
from plasmidlm.checkpoints import set_aside_records
from plasmidlm.report.plots import (accuracy_plot, confusion_plot, contig_length_plot, reliability_plot,
                                    training_plot, window_length_plot)
from plasmidlm.report.tables import (LEVELS, at_length, best_checkpoints, by_length, evidence_files,
                                     resolved_experiments, with_interval)
from plasmidlm.report.verdicts import composition_verdicts, kmer_covered_text, shuffle_verdict, split_text


def render_html(run_dir: Path, table: pd.DataFrame, experiments: list[str], config: dict) -> str:
    resolved = resolved_experiments(config, experiments)
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
            for length, rows in by_length(table) for metric in ("accuracy", "balanced_accuracy"))),
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


def _summary_section(table: pd.DataFrame) -> str:
    """Each experiment's best checkpoint beside the baselines, with intervals, and the composition verdicts."""
    chosen = (pd.concat([best_checkpoints(table), table[table["kind"] == "baseline"]])
              .sort_values("window_length", kind="stable"))
    summary_table = chosen[["experiment", "kind", "window_length", "checkpoint", "val_accuracy"]].copy()
    for level in LEVELS:
        for name in ("accuracy", "balanced_accuracy", "auroc"):
            summary_table[f"{level} {name.replace('_', ' ')} [95% CI]"] = with_interval(chosen, f"{level}_{name}")
    summary_table["plasmid majority-vote accuracy"] = chosen["plasmid_vote_accuracy"]
    return _section("Best checkpoints and baselines", _paragraph(
        "The best checkpoint of each experiment is the one with the highest validation accuracy "
        "(window level, fixed validation windows from validation plasmids); test metrics never choose it. "
        "Plasmid level = mean of a plasmid's window probabilities; majority vote = the class most of its "
        "windows predict. Intervals: 95% percentile bootstrap over test plasmids (a plasmid's windows are "
        "resampled together, since they are not independent).") + _table_html(summary_table)
        + "".join(_paragraph(sentence) for sentence in composition_verdicts(table)))


def _window_length_html(table: pd.DataFrame, lengths: list[int]) -> list[str]:
    if len(lengths) < 2:
        return []
    return [_section("Accuracy per window length", _paragraph(
        f"Experiments use {len(lengths)} window lengths ({', '.join(f'{length} nt' for length in lengths)}). Each "
        "length has its own validation and test windows, drawn from the same validation and test plasmids with the "
        "same number of windows per plasmid, and every baseline runs at each length; a model is compared with the "
        "baselines of its own length.") + window_length_plot(table))]


def _controls_html(run_dir: Path, table: pd.DataFrame, lengths: dict[str, int], default_length: int) -> list[str]:
    files = evidence_files(run_dir, lengths, default_length)
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
            row = {"model": f"{at_length('kmer', length, all_lengths)} (baseline)", "window length": length,
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


def _contig_lengths_html(run_dir: Path, lengths: dict[str, int], default_length: int) -> list[str]:
    files = evidence_files(run_dir, lengths, default_length)
    if not files:
        return []
    all_lengths = sorted(set(lengths.values()))
    curves = {(at_length(name, length, all_lengths) if name == "kmer" else name):
              io.read_table(curve) for name, length, _, curve in files}
    long = pd.concat([curve.assign(model=name) for name, curve in curves.items()], ignore_index=True)
    long = long[["model", *[column for column in long.columns if column != "model"]]]
    for name in ("accuracy", "balanced_accuracy"):
        if f"{name}_ci_low" in long:
            long[name] = with_interval(long, name)
            long = long.drop(columns=[f"{name}_ci_low", f"{name}_ci_high"])
    return [_section("How long must a contig be?", _paragraph(
        "Every test plasmid is cut into as many non-overlapping sub-sequences (contigs) of each length as fit, at "
        "a seeded offset; a contig's class is the mean of its windows' probabilities (calibrated for fine-tuned "
        "models, as predict does). Best checkpoint of each experiment, and the k-mer baseline (dashed). Plasmids "
        "shorter than a length give no contig of that length.") + contig_length_plot(curves) + _table_html(long))]


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
        + "<h3>Plasmids per split</h3>" + _paragraph(split_text(split_info)) + _table_html(split_summary)
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
        "; ".join(kmer_covered_text(rows.iloc[0], length if len(all_lengths) > 1 else None)
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


def _leakage_row(experiment: str, leakage: dict) -> dict:
    by_class = leakage.pop("kmer_covered_fraction_by_class")
    return {"experiment": experiment, **leakage, "by_class": by_class}


def _confusion_section(run_dir: Path, table: pd.DataFrame) -> str:
    confusion = []
    for _, row in best_checkpoints(table).iterrows():
        metrics = io.read_json(layout.checkpoint_metrics(run_dir, row["experiment"], row["checkpoint"]))
        for level in LEVELS:
            confusion.append(confusion_plot(metrics[level]["confusion_matrix"], metrics["classes"],
                                            f"{row['experiment']} step {row['checkpoint']}: {level}"))
    return _section("Confusion matrices of the best checkpoints", f'<div class="grid">{"".join(confusion)}</div>')


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
