"""The step of rules/train.smk: fine-tune a classifier on an experiment's training windows."""

from __future__ import annotations

import logging
import pandas as pd

from plasmidlm import distributed, io
from plasmidlm.steps.common import classes_of_split, launched_in_ranks

logger = logging.getLogger(__name__)


def _training_windows(path):
    """What training needs of a window table: label (categorical) and sequence; with fresh windows every epoch
    (an `epoch` column), a `train.EpochTable` that reads one epoch at a time."""
    if "epoch" in pd.read_csv(path, sep="\t", nrows=0).columns:
        from plasmidlm.train import EpochTable

        return EpochTable(lambda: io.iter_table(path, ["label", "sequence", "epoch"]))
    return pd.read_csv(path, sep="\t", usecols=["label", "sequence"], dtype={"label": "category"})


def train(train_windows, val_windows, split_path, model_config: dict, train_config: dict, window_length: int,
          seed: int, model_dir, out_summary, out_log):
    """Fine-tune; with `train.gpus` above 1, in that many data-parallel processes (`distributed.launch`)."""
    if launched_in_ranks(f"{__name__}:train", "train", train_config, locals()):
        return
    from plasmidlm.train import fine_tune, log_history_table

    classes = classes_of_split(io.read_table(split_path))
    summary = fine_tune(_training_windows(train_windows), io.read_table(val_windows), classes, model_config,
                        train_config, window_length, model_dir, seed, log=logger.info)
    if distributed.is_main():
        io.write_table(log_history_table(summary.pop("log_history")), out_log)
        io.write_json(summary, out_summary)
