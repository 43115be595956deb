"""Choosing the best checkpoint on validation accuracy."""

from __future__ import annotations

import json

import pandas as pd

from plasmidlm.checkpoints import best_checkpoint, validation_accuracy


def write_training_outputs(directory, steps, log_rows):
    (directory / "train_summary.json").write_text(json.dumps({"checkpoints": steps}))
    pd.DataFrame(log_rows).to_csv(directory / "training_log.tsv", sep="\t", index=False)


def test_best_checkpoint_has_the_highest_validation_accuracy(tmp_path):
    write_training_outputs(tmp_path, [10, 20, 30], [
        {"step": 5, "loss": 0.7, "eval_accuracy": None},
        {"step": 10, "loss": 0.6, "eval_accuracy": 0.61},
        {"step": 20, "loss": 0.5, "eval_accuracy": 0.72},
        {"step": 30, "loss": 0.4, "eval_accuracy": 0.70},
    ])
    assert validation_accuracy(tmp_path) == {10: 0.61, 20: 0.72, 30: 0.70}
    assert best_checkpoint(tmp_path) == 20


def test_ties_go_to_the_earliest_checkpoint(tmp_path):
    write_training_outputs(tmp_path, [10, 20], [{"step": 10, "eval_accuracy": 0.7}, {"step": 20, "eval_accuracy": 0.7}])
    assert best_checkpoint(tmp_path) == 10


def test_without_validation_the_last_checkpoint_is_used(tmp_path):
    write_training_outputs(tmp_path, [10, 20], [{"step": 10, "loss": 0.6}, {"step": 20, "loss": 0.5}])
    assert validation_accuracy(tmp_path) == {}
    assert best_checkpoint(tmp_path) == 20
