"""The step of rules/train.smk: fine-tune a classifier on an experiment's training windows."""

from __future__ import annotations

import pandas as pd

from plasmidlm import hub, io
from plasmidlm.steps.common import classes_of_split, launched_in_ranks
from plasmidlm.training import distributed


def _training_windows(path):
    """What training needs of a window table: label (categorical) and sequence; with fresh windows every epoch
    (an `epoch` column), a `training.data.EpochTable` that reads one epoch at a time."""
    if "epoch" in pd.read_csv(path, sep="\t", nrows=0).columns:
        from plasmidlm.training.data import EpochTable

        return EpochTable(lambda: io.iter_table(path, ["label", "sequence", "epoch"]))
    return pd.read_csv(path, sep="\t", usecols=["label", "sequence"], dtype={"label": "category"})


def train(train_windows, *, val_windows, split_path, model_config: dict, train_config: dict, window_length: int,
          seed: int, model_dir, out_summary, out_log, model_manifest=None):
    """Fine-tune; with `train.gpus` above 1, in that many data-parallel processes (`distributed.launch`).

    With `model_manifest` (a hub model or model folder), the model is loaded from its checked store folder with
    the hub switched off (`hub.model_folder`)."""
    if launched_in_ranks(f"{__name__}:train", "train", train_config, locals()):
        return
    if model_manifest is not None:
        model_config = model_config | {"name_or_path": hub.model_folder(model_manifest)}
    from plasmidlm.training.fine_tune import fine_tune
    from plasmidlm.training.trainer import log_history_table, training_cost

    classes = classes_of_split(io.read_table(split_path))
    summary = fine_tune(_training_windows(train_windows), io.read_table(val_windows), classes=classes,
                        model_config=model_config, train_config=train_config, window_length=window_length,
                        output_dir=model_dir, seed=seed)
    summary |= training_cost(summary["log_history"])
    if distributed.is_main():
        io.write_table(log_history_table(summary.pop("log_history")), out_log)
        io.write_json(summary, out_summary)
