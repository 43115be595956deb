"""plasmidlm.report.demo_figures: docs/demo.md's figures come from a run's comparison.tsv and provenance.json."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import REPO_ROOT
from plasmidlm import PlasmidlmError, layout
from plasmidlm.report.demo_figures import BEGIN, END, figures_block, with_figures
from plasmidlm.steps.report import machine

NAN = np.nan


def comparison(random8_best: int, random8_accuracy: float) -> pd.DataFrame:
    """A comparison.tsv in small: two experiments (two checkpoints each) and two baselines, one window length."""
    def row(experiment, kind, checkpoint, val, window, plasmid, best=False, **controls):
        return {"experiment": experiment, "kind": kind, "window_length": 100, "checkpoint": checkpoint,
                "val_accuracy": val, "window_accuracy": window, "window_accuracy_ci_low": window - 0.02,
                "window_accuracy_ci_high": window + 0.02, "plasmid_accuracy": plasmid,
                "plasmid_accuracy_ci_low": plasmid - 0.05, "plasmid_accuracy_ci_high": min(plasmid + 0.05, 1.0),
                "best": best, **controls}

    controls = {"strand_flip_fraction": 0.24, "temperature": 2.29, "window_ece_before": 0.144,
                "window_ece_after": 0.03}
    other_step = 200 if random8_best == 288 else 288
    return pd.DataFrame([
        row("first100", "fine-tuned", 100, 0.61, 0.626, 0.549, best=True, shuffled_window_accuracy=0.58,
            contig_1000nt_accuracy=0.572, contig_5000nt_accuracy=0.533, **controls),
        row("first100", "fine-tuned", 200, 0.60, 0.63, 0.55),
        row("random8", "fine-tuned", random8_best, 0.74, random8_accuracy, 0.976, best=True,
            shuffled_window_accuracy=0.612, contig_1000nt_accuracy=0.826, contig_5000nt_accuracy=0.874, **controls),
        row("random8", "fine-tuned", other_step, 0.70, 0.70, 0.93),
        row("kmer", "baseline", NAN, NAN, 0.716, 0.976, shuffled_window_accuracy=0.6,
            contig_1000nt_accuracy=0.844, contig_5000nt_accuracy=0.897),
        row("majority", "baseline", NAN, NAN, 0.5, 0.5),
    ])


def finished_run(tmp_path, name: str, *, random8_best: int, random8_accuracy: float, provenance: dict):
    run = tmp_path / name / "results" / "demo"
    (run / "report").mkdir(parents=True)
    comparison(random8_best, random8_accuracy).to_csv(layout.comparison(run), sep="\t", index=False)
    (run / "provenance.json").write_text(json.dumps(provenance))
    return run


PROVENANCE = {"versions": {"python": "3.11.2", "platform": "Linux-6.1-x86_64", "torch": "2.13.0"},
              "machine": {"cpu": "AMD EPYC 7B13", "logical_cpus": 2, "recorded_utc": "2026-12-02T15:00:00Z"}}


def test_the_figures_of_a_run_name_its_machine_and_every_best_checkpoint_and_baseline(tmp_path):
    run = finished_run(tmp_path, "a", random8_best=288, random8_accuracy=0.722, provenance=PROVENANCE)
    block = figures_block(run)
    assert "2026-12-02, on AMD EPYC 7B13 (2 logical CPUs), Linux-6.1-x86_64; python 3.11.2, torch 2.13.0" in block
    assert "| `random8` | 288 | 0.740 | 0.722 [0.702, 0.742] | 0.976 [0.926, 1.000] |" in block
    assert "| `first100` | 100 | 0.610 | 0.626 [0.606, 0.646] | 0.549 [0.499, 0.599] |" in block
    assert "| `kmer` | 0.716 [0.696, 0.736] | 0.976 [0.926, 1.000] |" in block
    assert "| `majority` |" in block
    assert "| `random8` | 0.722 / 0.612 | 24% | 2.29; 0.144 → 0.030 | 0.826 / 0.874 |" in block
    assert "| `kmer` | 0.716 / 0.600 |  |  | 0.844 / 0.897 |" in block
    assert "per contig of 1 / 5 kb" in block
    assert "against the run" not in block


def test_a_second_run_gives_what_moved_per_experiment(tmp_path):
    run = finished_run(tmp_path, "a", random8_best=288, random8_accuracy=0.722, provenance=PROVENANCE)
    older = finished_run(tmp_path, "b", random8_best=200, random8_accuracy=0.728, provenance={"versions": {}})
    block = figures_block(run, older)
    assert "| `random8` | 288 / 200 | 0.722 / 0.728 | -0.006 |" in block
    assert "| `first100` | 100 / 100 | 0.626 / 0.626 | +0.000 |" in block
    assert "| `kmer` |  | 0.716 / 0.716 | +0.000 |" in block
    assert "a machine it did not record, platform not recorded" in block  # a run from before provenance had it


def test_the_page_keeps_everything_outside_the_markers():
    page = f"# Demo\n\nbefore\n{BEGIN}\nold figures\n{END}\nafter\n"
    assert with_figures(page, "new figures") == f"# Demo\n\nbefore\n{BEGIN}\nnew figures\n{END}\nafter\n"
    assert BEGIN in (REPO_ROOT / "docs" / "demo.md").read_text()
    with pytest.raises(PlasmidlmError, match="demo-figures"):
        with_figures("# no markers", "new figures")


def test_provenance_records_the_machine_and_date():
    recorded = machine()
    assert recorded["cpu"] and recorded["logical_cpus"] >= 1
    assert recorded["recorded_utc"].endswith("Z")
