"""The comparison table and the self-contained HTML report of a finished run.

- `tables`: which experiments and baselines a run holds, the comparison table (one row per checkpoint and per
  baseline) and the evidence columns of the best checkpoints;
- `verdicts`: the sentences that judge a model (against composition baselines, on shuffled windows) and
  describe the split and the leakage;
- `plots`: the figures (matplotlib, embedded as base64 PNG);
- `seeds`: replicates and sweeps: the spread over seeds, the setting a sweep chooses (on validation), paired
  differences, collapsed models, cost;
- `render`: the HTML page, section by section;
- here: `write_report`, the entry point of the report rule and of `plasmidlm report`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from plasmidlm import io, layout
from plasmidlm.replicates import expand_experiments, is_expanded
from plasmidlm.report.render import render_html
from plasmidlm.report.seeds import (choose_settings, replicate_table, seed_differences, setting_summary,
                                    validation_only, with_replicate_columns)
from plasmidlm.report.tables import (add_evidence_columns, comparison_table, discover_baselines,
                                     discover_experiments, resolved_experiments)

logger = logging.getLogger(__name__)


def write_report(run_dir, *, config: dict, out_comparison, out_html, out_experiments=None, out_seed_differences=None,
                 experiments: list[str] | None = None, baselines: list[str] | None = None) -> pd.DataFrame:
    """Write `comparison.tsv`, `experiments.tsv` (per experiment and sweep setting, over replicates),
    `seed_differences.tsv` (the last two beside comparison.tsv unless given) and `report.html` for a finished run
    directory."""
    run_dir = Path(run_dir)
    out_experiments = out_experiments or Path(out_comparison).with_name(Path(layout.experiment_summary("")).name)
    out_seed_differences = out_seed_differences or Path(out_comparison).with_name(
        Path(layout.seed_differences("")).name)
    experiments = experiments if experiments is not None else discover_experiments(run_dir)
    baselines = baselines if baselines is not None else discover_baselines(run_dir)
    resolved = resolved_experiments(config, experiments)
    lengths = {name: settings["windows"]["length"] for name, settings in resolved.items()}
    default_length = config["windows"]["length"]
    table = comparison_table(run_dir, experiments=experiments, baselines=baselines, lengths=lengths,
                             default_length=default_length)
    table = add_evidence_columns(table, run_dir, lengths, default_length)
    expanded = expand_experiments(config)
    replicates = replicate_table(run_dir, table, expanded=expanded, default_length=default_length,
                                 gpus={name: settings["train"]["gpus"] for name, settings in resolved.items()})
    chosen = choose_settings(validation_only(replicates))
    summary = setting_summary(replicates, chosen)
    differences = seed_differences(replicates, table, chosen)
    if is_expanded(config):
        table = with_replicate_columns(table, replicates)
    io.write_table(table, out_comparison)
    io.write_table(summary, out_experiments)
    io.write_table(differences, out_seed_differences)
    page = render_html(run_dir, table, experiments, config, seeds={
        "replicates": replicates, "summary": summary, "differences": differences, "chosen": chosen,
        "expanded": expanded})
    io.write_atomic(out_html, lambda tmp: Path(tmp).write_text(page))
    for row in table[table["best"]].itertuples():
        logger.info(f"{row.experiment}: best checkpoint {row.checkpoint} (val accuracy {row.val_accuracy:.4f}): "
                    f"test window accuracy {row.window_accuracy:.4f}, plasmid accuracy {row.plasmid_accuracy:.4f}")
    return table
