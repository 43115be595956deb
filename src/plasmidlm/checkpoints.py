"""The checkpoints a training run will write and has left, and which one is best (chosen on validation, never on
test)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd


def schedule(n_windows: int, batch_size: int, epochs: float, max_steps: int | None, save_steps: int) -> dict:
    """Steps per epoch, total steps and checkpoints that a run will produce."""
    steps_per_epoch = math.ceil(n_windows / batch_size)
    total = max_steps if max_steps else math.ceil(steps_per_epoch * epochs)
    checkpoints = sorted(set(range(save_steps, total + 1, save_steps)) | {total})
    return {"steps_per_epoch": steps_per_epoch, "total_steps": total, "checkpoints": checkpoints}


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
