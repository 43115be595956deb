"""What several step modules share: the classes and plasmids of a split, the check of drawn windows, writing a
baseline's outputs, and handing a step over to data-parallel ranks."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from plasmidlm import PlasmidlmError, io
from plasmidlm.training import distributed
from plasmidlm.windows import WindowPolicy

logger = logging.getLogger(__name__)


def launched_in_ranks(step: str, section: str, section_config: dict, arguments: dict) -> bool:
    """With `<section>.gpus` above 1, outside a rank: run `step` ("package.module:function") with `arguments` (its
    parameters) in that many data-parallel processes (`distributed.launch`) and return True; otherwise False."""
    gpus = section_config.get("gpus", 1)
    if gpus <= 1 or distributed.in_rank():
        return False
    distributed.per_process_batch(section_config["batch_size"], gpus, section)
    # JSON-ready values (paths as strings), to hand to the ranks
    plain = json.loads(json.dumps(arguments, default=str))
    distributed.launch(step, plain, gpus)
    return True


def classes_of_split(split: pd.DataFrame) -> list[str]:
    return sorted(split["label"].unique())


def split_plasmids(split_path, name: str) -> pd.DataFrame:
    split = io.read_table(split_path)
    return split[split["split"] == name].reset_index(drop=True)


def check_drawn(windows: pd.DataFrame, plasmids: pd.DataFrame, what: str, policy: WindowPolicy) -> None:
    """Log the windows that the ambiguity policy left undrawn, and stop where a class got none: training or scoring
    without the class would fail later, or quietly mean something else."""
    if windows.attrs["missing"]:
        logger.warning(f"warning: {windows.attrs['missing']} {what} window(s) could not be drawn: their plasmids had "
                       f"too few windows that pass windows.ambiguous / windows.max_n_fraction")
    empty = sorted(set(plasmids["label"]) - set(windows["label"]))
    if empty:
        which = "any class" if len(empty) == len(set(plasmids["label"])) else f"class(es) {', '.join(empty)}"
        raise PlasmidlmError(
            f"windows: no {what} window of {which} passes windows.ambiguous ({policy.ambiguous}) and "
            f"windows.max_n_fraction ({policy.max_n_fraction}): their plasmids hold too many ambiguous "
            f"bases (N etc.); allow more with windows.max_n_fraction or windows.ambiguous: keep / replace_n")


def write_baseline(test: pd.DataFrame, proba: np.ndarray, *, classes: list[str], n_bootstrap: int, seed: int,
                    out_metrics, out_predictions, training_windows: int | None = None):
    from plasmidlm.metrics import evaluate_predictions, predictions_table

    predictions = predictions_table(test, proba, classes)
    metrics = evaluate_predictions(predictions, classes, n_bootstrap, seed)
    if training_windows is not None:
        metrics["training_windows"] = training_windows
    io.write_table(predictions, out_predictions)
    io.write_json(metrics, out_metrics)
    return metrics
