"""The demo's figures in docs/demo.md, written from a finished run's report/comparison.tsv and provenance.json
(scripts/demo_figures.py), so that the documentation shows one run's numbers and the machine they came from,
never numbers typed by hand; and, given a second run, what moved between the two."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from plasmidlm import PlasmidlmError, io, layout
from plasmidlm.report.tables import at_length, best_checkpoints, with_interval

BEGIN = "<!-- demo-figures:begin -->"
END = "<!-- demo-figures:end -->"
CONTIG_COLUMN = re.compile(r"^contig_(\d+)nt_accuracy$")


def _lengths(table: pd.DataFrame) -> list[int]:
    return sorted(table["window_length"].unique())


def _name(row, lengths: list[int]) -> str:
    return f"`{at_length(row.experiment, row.window_length, lengths)}`"


def _step(value) -> str:
    return "" if pd.isna(value) else str(int(value))


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _number(value, digits: int = 3) -> str:
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def best_checkpoint_table(table: pd.DataFrame) -> str:
    """Each experiment's best checkpoint (chosen on validation): step, validation accuracy, and test accuracy per
    window and per plasmid with their 95% bootstrap intervals."""
    best = best_checkpoints(table).sort_values(["window_length", "experiment"])
    window, plasmid = with_interval(best, "window_accuracy"), with_interval(best, "plasmid_accuracy")
    lengths = _lengths(table)
    rows = [[_name(row, lengths), _step(row.checkpoint), _number(row.val_accuracy), window[index], plasmid[index]]
            for index, row in zip(best.index, best.itertuples())]
    return _markdown(["experiment", "best step", "validation accuracy", "test accuracy per window [95% CI]",
                      "per plasmid [95% CI]"], rows)


def baseline_table(table: pd.DataFrame) -> str:
    baselines = table[table["kind"] == "baseline"].sort_values(["window_length", "experiment"])
    window, plasmid = with_interval(baselines, "window_accuracy"), with_interval(baselines, "plasmid_accuracy")
    lengths = _lengths(table)
    rows = [[_name(row, lengths), window[index], plasmid[index]]
            for index, row in zip(baselines.index, baselines.itertuples())]
    return _markdown(["baseline", "test accuracy per window [95% CI]", "per plasmid [95% CI]"], rows)


def controls_table(table: pd.DataFrame) -> str:
    """The controls of the best checkpoints and of the k-mer baseline (the rows that have them)."""
    if "shuffled_window_accuracy" not in table:
        return ""
    rows_with_controls = table[table["shuffled_window_accuracy"].notna()].sort_values(
        ["window_length", "kind", "experiment"], ascending=[True, False, True])
    contig_lengths = sorted(int(match[1]) for match in map(CONTIG_COLUMN.match, table.columns) if match)
    lengths = _lengths(table)
    rows = []
    for row in rows_with_controls.itertuples():
        values = row._asdict()
        calibration = "" if pd.isna(values.get("temperature")) else (
            f"{values['temperature']:.2f}; {values['window_ece_before']:.3f} → {values['window_ece_after']:.3f}")
        flips = values.get("strand_flip_fraction")
        rows.append([_name(row, lengths),
                     f"{row.window_accuracy:.3f} / {row.shuffled_window_accuracy:.3f}",
                     "" if pd.isna(flips) else f"{flips:.0%}", calibration,
                     " / ".join(_number(values[f"contig_{length}nt_accuracy"]) for length in contig_lengths)])
    contigs = " / ".join(f"{length / 1000:g}" for length in contig_lengths)
    return _markdown(["experiment", "test windows / dinucleotide-shuffled", "strand flips",
                      "temperature; window ECE before → after", f"per contig of {contigs} kb"], rows)


def machine_line(provenance: dict, recorded_fallback: str) -> str:
    """The machine and date of a run, from its provenance.json (runs from before it recorded the machine give
    the platform alone and `recorded_fallback`)."""
    versions = provenance.get("versions", {})
    machine = provenance.get("machine")
    if machine:
        where = f"{machine['cpu']} ({machine['logical_cpus']} logical CPUs)"
        when = machine["recorded_utc"][:10]
    else:
        where, when = "a machine it did not record", recorded_fallback
    software = ", ".join(f"{name} {versions[name]}" for name in ("python", "torch") if versions.get(name))
    return f"{when}, on {where}, {versions.get('platform', 'platform not recorded')}; {software}"


def read_run(run_dir) -> tuple[pd.DataFrame, str]:
    """A finished run's comparison table and the line naming its machine and date."""
    comparison = Path(layout.comparison(run_dir))
    provenance_path = Path(layout.provenance(run_dir))
    provenance = io.read_json(provenance_path) if provenance_path.is_file() else {}
    written = datetime.fromtimestamp(comparison.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d")
    return io.read_table(comparison), machine_line(provenance, written)


def differences_table(table: pd.DataFrame, other: pd.DataFrame) -> str:
    """Per experiment (best checkpoint) and baseline present in both runs: the best step and the test accuracy per
    window in each, and their difference."""
    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        rows = pd.concat([best_checkpoints(frame), frame[frame["kind"] == "baseline"]])
        return rows.set_index(["window_length", "experiment"])[["kind", "checkpoint", "window_accuracy"]]

    both = keyed(table).merge(keyed(other), left_index=True, right_index=True, suffixes=("", "_other"))
    both = both.reset_index().sort_values(
        ["window_length", "kind", "experiment"], ascending=[True, False, True])  # experiments, then baselines
    lengths = _lengths(table)
    rows = []
    for row in both.itertuples():
        steps = "" if row.kind == "baseline" else f"{_step(row.checkpoint)} / {_step(row.checkpoint_other)}"
        rows.append([_name(row, lengths), steps, f"{row.window_accuracy:.3f} / {row.window_accuracy_other:.3f}",
                     f"{row.window_accuracy - row.window_accuracy_other:+.3f}"])
    return _markdown(["experiment or baseline", "best step (this run / other)",
                      "test accuracy per window (this run / other)", "difference"], rows)


def figures_block(run_dir, other_run_dir=None) -> str:
    """The Markdown between the page's markers: the run's tables, and with `other_run_dir` the differences."""
    table, machine = read_run(run_dir)
    parts = [f"Figures of the run `{run_dir}` of {machine} (written by `scripts/demo_figures.py` from "
             "its `report/comparison.tsv` and `provenance.json`).",
             "Each experiment's best checkpoint, chosen on validation accuracy; intervals are 95% bootstrap "
             "intervals over test plasmids:", best_checkpoint_table(table),
             "The baselines, on the same test windows:", baseline_table(table)]
    controls = controls_table(table)
    if controls:
        parts += ["The controls of the best checkpoints (report section \"Controls: shuffled windows, strands and "
                  "calibration\" and \"How long must a contig be?\"):", controls]
    if other_run_dir is not None:
        other, other_machine = read_run(other_run_dir)
        parts += [f"The same against the run `{other_run_dir}` of {other_machine}: what moved from one "
                  "run (or machine) to the other.", differences_table(table, other)]
    return "\n\n".join(parts)


def with_figures(page: str, block: str) -> str:
    """`page` with the text between its demo-figures markers replaced by `block`."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise PlasmidlmError(f"the page has no {BEGIN} ... {END} block")
    return f"{page[:start + len(BEGIN)]}\n{block}\n{page[end:]}"
