"""The self-contained HTML page of a finished run: the numbers, tables and figures of each section, filled into
templates/report.html.j2 (the page's wording, order and CSS live there)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import yaml

from plasmidlm import __version__, io, layout
from plasmidlm.replicates import format_value
from plasmidlm.report.plots import (accuracy_plot, confusion_plot, contig_length_plot, reliability_plot,
                                    replicate_plot, sweep_plot, training_plot, window_length_plot)
from plasmidlm.report.seeds import SEED_METRICS, cost_by_group
from plasmidlm.report.tables import (LEVELS, at_length, best_checkpoints, by_length, evidence_files,
                                     resolved_experiments, with_interval)
from plasmidlm.report.verdicts import composition_verdicts, kmer_covered_text, shuffle_verdict, split_text
from plasmidlm.training.checkpointing import set_aside_records

TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("plasmidlm.report", "templates"),
                               autoescape=jinja2.select_autoescape(("html", "html.j2")),
                               trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                               undefined=jinja2.StrictUndefined)


def render_html(run_dir: Path, table: pd.DataFrame, experiments: list[str], config: dict, *, seeds: dict) -> str:
    """`seeds`: the replicates (plasmidlm.report.seeds.replicate_table), their summary per setting, the paired
    differences, the chosen setting of each experiment and the expansion (plasmidlm.replicates)."""
    resolved = resolved_experiments(config, experiments)
    lengths = {name: settings["windows"]["length"] for name, settings in resolved.items()}
    all_lengths = sorted(set(lengths.values()))
    default_length = config["windows"]["length"]
    return TEMPLATES.get_template("report.html.j2").render(
        run_name=config["run_name"],
        generated=f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}",
        version=__version__,
        window_lengths=all_lengths,
        summary=_summary(table),
        collapsed=[f"{row.experiment}: {row.collapsed}" for row in seeds["replicates"].itertuples() if row.collapsed],
        across_seeds=_across_seeds(seeds, table),
        sweeps=_sweeps(seeds),
        cost=_table_html(cost_by_group(seeds["summary"])),
        window_length_plot=window_length_plot(table) if len(all_lengths) > 1 else None,
        accuracy_plots=[accuracy_plot(rows, metric, length if len(all_lengths) > 1 else None)
                        for length, rows in by_length(table) for metric in ("accuracy", "balanced_accuracy")],
        controls=_controls(run_dir, table, lengths, default_length),
        contig_lengths=_contig_lengths(run_dir, lengths, default_length),
        data=_data(run_dir, config, resolved),
        leakage=_leakage(run_dir, experiments, lengths, all_lengths),
        confusion_plots=_confusion_plots(run_dir, table),
        training_plot=training_plot({name: layout.training_log(run_dir, name) for name in experiments}),
        pretraining=_pretraining(run_dir),
        all_checkpoints=_table_html(table[[column for column in table.columns if "_ci_" not in column]]),
        provenance=_provenance(run_dir, config),
    )


def _summary(table: pd.DataFrame) -> dict:
    """Each experiment's best checkpoint beside the baselines, with intervals, and the composition verdicts."""
    chosen = (pd.concat([best_checkpoints(table), table[table["kind"] == "baseline"]])
              .sort_values("window_length", kind="stable"))
    summary_table = chosen[["experiment", "kind", "window_length", "checkpoint", "val_accuracy"]].copy()
    for level in LEVELS:
        for name in ("accuracy", "balanced_accuracy", "auroc"):
            summary_table[f"{level} {name.replace('_', ' ')} [95% CI]"] = with_interval(chosen, f"{level}_{name}")
    summary_table["plasmid majority-vote accuracy"] = chosen["plasmid_vote_accuracy"]
    return {"table": _table_html(summary_table), "verdicts": composition_verdicts(table)}


def _spread(summary: pd.DataFrame, metric: str) -> pd.Series:
    """'0.728 ± 0.010 (0.718–0.738)': mean ± sd (min–max) over replicates."""
    def text(row):
        if pd.isna(row[f"{metric}_mean"]):
            return ""
        if pd.isna(row[f"{metric}_sd"]):
            return f"{row[f'{metric}_mean']:.3f}"
        return (f"{row[f'{metric}_mean']:.3f} ± {row[f'{metric}_sd']:.3f} "
                f"({row[f'{metric}_min']:.3f}–{row[f'{metric}_max']:.3f})")

    return summary.apply(text, axis=1)


def _across_seeds(seeds: dict, table: pd.DataFrame) -> dict | None:
    """The spread over replicates of each experiment's result, every replicate drawn, and the paired differences."""
    summary, replicates = seeds["summary"], seeds["replicates"]
    if summary["replicates"].max() < 2:
        return None
    results = summary[summary["chosen"]]
    shown = results[["experiment", "setting", "window_length", "replicates", "collapsed", "val_accuracy_mean"]].copy()
    for metric in SEED_METRICS:
        shown[f"{metric.replace('_', ' ')}: mean ± sd (min–max)"] = _spread(results, metric)
    chosen = seeds["chosen"]
    drawn = replicates[[chosen[group] == setting for group, setting in zip(replicates["group"], replicates["setting"])]]
    drawn = drawn.assign(experiment_result=[f"{group}.{setting}" if setting else group
                                            for group, setting in zip(drawn["group"], drawn["setting"])])
    differences = seeds["differences"]
    return {"table": _table_html(shown),
            "plot": replicate_plot(drawn, table[(table["kind"] == "baseline") & (table["experiment"] == "kmer")]
                                   .drop_duplicates("experiment")),
            "verdicts": differences[differences["metric"] == "window_accuracy"]["verdict"].tolist(),
            "differences": _table_html(differences.drop(columns="verdict"))}


def _sweeps(seeds: dict) -> list[dict]:
    """Per experiment with a sweep: validation accuracy per setting (table, plot) and the chosen setting's result."""
    sections = []
    summary, replicates, expanded = seeds["summary"], seeds["replicates"], seeds["expanded"]
    for group, settings in summary.groupby("experiment", sort=False):
        if settings["setting"].iloc[0] == "":
            continue
        values = {replicate.setting: replicate.values for replicate in expanded.values() if replicate.group == group}
        keys = list(dict.fromkeys(key for setting in values.values() for key in setting))
        rows = settings[["setting", "replicates", "collapsed", "val_accuracy_mean", "val_accuracy_sd", "chosen"]]
        # the values as the names write them (the tables' 4 decimals would show 1e-05 as 0.0000)
        written = [{key: format_value(value) for key, value in values[setting].items()} for setting in rows["setting"]]
        rows = pd.concat([pd.DataFrame(written, index=rows.index), rows], axis=1)
        runs = replicates[replicates["group"] == group]
        runs = pd.concat([pd.DataFrame([values[setting] for setting in runs["setting"]], index=runs.index), runs],
                         axis=1)
        result = settings[settings["chosen"]].iloc[0]
        sections.append({
            "group": group, "chosen": result["setting"], "replicates": int(result["replicates"]),
            "val_accuracy": result["val_accuracy_mean"], "cost": settings["train_device_hours"].sum(min_count=1),
            "test": {metric.replace("_", " "): _spread(settings[settings["chosen"]], metric).iloc[0]
                     for metric in SEED_METRICS},
            "table": _table_html(rows), "plot": sweep_plot(group, runs, keys)})
    return sections


def _controls(run_dir: Path, table: pd.DataFrame, lengths: dict[str, int], default_length: int) -> dict | None:
    """Shuffled-window verdicts, strand flips and calibration of each model the evidence step ran on."""
    files = evidence_files(run_dir, lengths, default_length)
    if not files:
        return None
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
        verdicts.append(shuffle_verdict(row["model"], accuracy=row["window accuracy"], ci_low=low,
                                        shuffled=evidence["shuffled"]["window"]["accuracy"], chance=chance))
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
    return {"verdicts": verdicts, "table": _table_html(pd.DataFrame(rows)), "diagrams": diagrams}


def _contig_lengths(run_dir: Path, lengths: dict[str, int], default_length: int) -> dict | None:
    """Accuracy per contig length of each model the evidence step ran on: a plot and its table."""
    files = evidence_files(run_dir, lengths, default_length)
    if not files:
        return None
    all_lengths = sorted(set(lengths.values()))
    curves = {(at_length(name, length, all_lengths) if name == "kmer" else name):
              io.read_table(curve) for name, length, _, curve in files}
    long = pd.concat([curve.assign(model=name) for name, curve in curves.items()], ignore_index=True)
    long = long[["model", *[column for column in long.columns if column != "model"]]]
    for name in ("accuracy", "balanced_accuracy"):
        if f"{name}_ci_low" in long:
            long[name] = with_interval(long, name)
            long = long.drop(columns=[f"{name}_ci_low", f"{name}_ci_high"])
    return {"plot": contig_length_plot(curves), "table": _table_html(long)}


def _data(run_dir: Path, config: dict, resolved: dict) -> dict:
    """The input sequences, the classes, the split and the windows of each experiment."""
    validation = io.read_json(layout.data_file(run_dir, "validate.json"))
    experiment_rows = pd.DataFrame([
        {"experiment": name, **{f"windows.{key}": value for key, value in settings["windows"].items()
                                if key not in ("val_count", "test_count")},
         "model": settings["model"]["name_or_path"], "learning_rate": settings["train"]["learning_rate"],
         "epochs": settings["train"]["epochs"]}
        for name, settings in resolved.items()])
    return {
        **{key: validation[key] for key in ("usable", "total_length", "fasta", "skipped_short")},
        "classes": _table_html(io.read_table(layout.data_file(run_dir, "classes.tsv"))),
        "split_text": split_text(io.read_json(layout.data_file(run_dir, "split.json"))),
        "split_summary": _table_html(io.read_table(layout.data_file(run_dir, "split_summary.tsv"))),
        "val_count": config["windows"]["val_count"],
        "test_count": config["windows"]["test_count"],
        "experiments": _table_html(experiment_rows),
    }


def _leakage(run_dir: Path, experiments: list[str], lengths: dict[str, int], all_lengths: list[int]) -> dict:
    """Test windows shared with, or k-mer-covered by, each experiment's training data."""
    leakage = pd.DataFrame([{**_leakage_row(name, io.read_json(layout.leakage(run_dir, name))),
                             "window_length": lengths[name]} for name in experiments])
    return {
        "shared": [{"experiment": row.experiment, "shared": row.test_windows_shared_with_train,
                    "test_windows": row.test_windows, "fraction": row.test_windows_shared_fraction}
                   for row in leakage.itertuples()],
        "kmer_covered": [kmer_covered_text(rows.iloc[0], length if len(all_lengths) > 1 else None)
                         for length, rows in leakage.groupby("window_length")],
        "table": _table_html(leakage.drop(columns="by_class")),
    }


def _leakage_row(experiment: str, leakage: dict) -> dict:
    by_class = leakage.pop("kmer_covered_fraction_by_class")
    return {"experiment": experiment, **leakage, "by_class": by_class}


def _confusion_plots(run_dir: Path, table: pd.DataFrame) -> list[str]:
    plots = []
    for _, row in best_checkpoints(table).iterrows():
        metrics = io.read_json(layout.checkpoint_metrics(run_dir, row["experiment"], row["checkpoint"]))
        for level in LEVELS:
            plots.append(confusion_plot(metrics[level]["confusion_matrix"], metrics["classes"],
                                        f"{row['experiment']} step {row['checkpoint']}: {level}"))
    return plots


def _pretraining(run_dir: Path) -> dict | None:
    log = Path(layout.pretrain_log(run_dir))
    if not log.exists():
        return None
    summary = io.read_json(layout.pretrain_summary(run_dir))
    return {"parameters": summary["parameters"], "total_steps": summary["total_steps"],
            "plot": training_plot({"pretraining": log}, "masked-token accuracy (held-out training windows)")}


def _provenance(run_dir: Path, config: dict) -> dict:
    """Package versions, input checksums, the configuration and the checkpoints that re-runs set aside
    (train.old_checkpoints: move_aside)."""
    provenance = io.read_json(layout.provenance(run_dir))
    set_aside = set_aside_records(run_dir)
    return {
        "versions": _table_html(pd.DataFrame(list(provenance["versions"].items()), columns=["package", "version"])),
        "inputs": _table_html(pd.DataFrame([{"input": name, **value} for name, value in provenance["inputs"].items()])),
        "models": _models_html(provenance.get("models") or {}),
        "config": yaml.safe_dump(config, sort_keys=False),
        "set_aside": _table_html(pd.DataFrame(set_aside)) if set_aside else "",
    }


def _models_html(models: dict) -> str:
    """One row per file of each model the run loaded: repository, commit (or local folder), SHA-256."""
    rows = [{"model": entry["repository"] or entry["path"], "revision": entry["revision"] or "",
             "commit": entry["commit"] or "(local folder)", "file": name, "bytes": listed["bytes"],
             "sha256": listed["sha256"]}
            for entry in models.values() for name, listed in entry["files"].items()]
    return _table_html(pd.DataFrame(rows)) if rows else ""


def _table_html(table: pd.DataFrame) -> str:
    if "checkpoint" in table:  # baselines have none; show an empty cell, not <NA>
        table = table.assign(checkpoint=table["checkpoint"].astype(object).where(table["checkpoint"].notna(), ""))
    return table.to_html(index=False, float_format=lambda value: f"{value:.4f}", na_rep="", border=0,
                         classes="data")
