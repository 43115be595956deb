"""The comparison table and the self-contained HTML report of a finished run.

- `tables`: which experiments and baselines a run holds, the comparison table (one row per checkpoint and per
  baseline) and the evidence columns of the best checkpoints;
- `verdicts`: the sentences that judge a model (against composition baselines, on shuffled windows) and
  describe the split and the leakage;
- `plots`: the figures (matplotlib, embedded as base64 PNG);
- `render`: the HTML page, section by section;
- here: `write_report`, the entry point of the report rule and of `plasmidlm report`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from plasmidlm import io
from plasmidlm.report.render import render_html
from plasmidlm.report.tables import (add_evidence_columns, comparison_table, discover_baselines,
                                     discover_experiments, resolved_experiments)

logger = logging.getLogger(__name__)


def write_report(run_dir, *, config: dict, out_comparison, out_html, experiments: list[str] | None = None,
                 baselines: list[str] | None = None) -> pd.DataFrame:
    """Write `comparison.tsv` and `report.html` for a finished run directory."""
    run_dir = Path(run_dir)
    experiments = experiments if experiments is not None else discover_experiments(run_dir)
    baselines = baselines if baselines is not None else discover_baselines(run_dir)
    lengths = {name: settings["windows"]["length"] for name, settings in
               resolved_experiments(config, experiments).items()}
    default_length = config["windows"]["length"]
    table = comparison_table(run_dir, experiments=experiments, baselines=baselines, lengths=lengths,
                             default_length=default_length)
    table = add_evidence_columns(table, run_dir, lengths, default_length)
    io.write_table(table, out_comparison)
    page = render_html(run_dir, table, experiments, config)
    io.write_atomic(out_html, lambda tmp: Path(tmp).write_text(page))
    for row in table[table["best"]].itertuples():
        logger.info(f"{row.experiment}: best checkpoint {row.checkpoint} (val accuracy {row.val_accuracy:.4f}): "
                    f"test window accuracy {row.window_accuracy:.4f}, plasmid accuracy {row.plasmid_accuracy:.4f}")
    return table
