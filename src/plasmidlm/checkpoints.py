"""The checkpoints a training run left, and which one is best (chosen on validation, never on test)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def validation_accuracy(model_dir) -> dict[int, float]:
    """Validation accuracy per checkpoint step, from the `training_log.tsv` beside the checkpoints."""
    log = pd.read_csv(Path(model_dir) / "training_log.tsv", sep="\t")
    if "eval_accuracy" not in log:
        return {}
    rows = log.dropna(subset=["eval_accuracy"])
    return dict(zip(rows["step"].astype(int), rows["eval_accuracy"].astype(float)))


def best_checkpoint(model_dir) -> int:
    """The checkpoint step with the highest validation accuracy (the earliest on ties; never test metrics)."""
    steps = json.loads((Path(model_dir) / "train_summary.json").read_text())["checkpoints"]
    scores = validation_accuracy(model_dir)
    scored = [step for step in steps if step in scores]
    if not scored:
        return steps[-1]
    return max(scored, key=lambda step: (scores[step], -step))
