"""What a training run is, and what it produces: the record of what determines its trajectory (`run_record`,
compared by `checkpointing.prepare_output_dir` when a run starts), its `schedule` of steps and checkpoints, the
epochs of fresh windows it needs (`epochs_to_draw`), and its best checkpoint (chosen on validation, never on
test). Imports no torch: the data and report steps use it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path

import pandas as pd

from plasmidlm import layout
from plasmidlm import PlasmidlmError

logger = logging.getLogger(__name__)

# The one list of training keys (`train.*`, `pretrain.*`) that do not change what is trained: with any value,
# every step gives the same weights (tests/test_train.py trains with other logging_steps and eval_batch_size
# and compares). Checkpoints stay valid when only these change. Every key not listed here or in LENGTH_KEYS
# invalidates them, including save_steps: each checkpoint's validation pass draws from torch's random
# generator, so the cadence changes the dropout of later steps.
NEUTRAL_KEYS = frozenset({"logging_steps", "eval_batch_size", "continue_from_last", "old_checkpoints"})
# Keys added after runs were first recorded, with the value that trains as before them: a record leaves them out
# at that value, so that checkpoints recorded before the keys existed stay valid.
LATER_KEYS = {"gpus": 1, "compile": False}
# Keys that only set how long a run trains; the record holds the total steps they give (`run_record`).
LENGTH_KEYS = frozenset({"epochs", "max_steps"})
# Learning-rate schedules whose value at a step does not depend on the total steps: a longer or shorter run
# follows the trajectory of the recorded one up to the shorter one's end. constant_with_warmup only when the
# warm-up (warmup_ratio x total steps, rounded up) keeps its number of steps.
CONTINUABLE_SCHEDULES = ("constant", "constant_with_warmup")
DIGEST_SUFFIX = "_sha256"


# --- what a run is ------------------------------------------------------------------------------------------


def update_windows_digest(digest, block: pd.DataFrame) -> None:
    """Feed the windows of `block` (label and sequence, in order) to `digest`: a table read in pieces gets the
    digest of the whole table."""
    columns = [block[column].astype(str) for column in ("label", "sequence") if column in block.columns]
    for values in zip(*columns):
        digest.update(("\t".join(values) + "\n").encode())


def _sha256(block: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    update_windows_digest(digest, block)
    return digest.hexdigest()


def windows_sha256(windows: pd.DataFrame) -> list[str]:
    """SHA-256 of the windows (label and sequence, in order); one per epoch when there is an `epoch` column.

    Windows drawn afresh for each epoch depend on the epoch alone, so a longer run's list starts with a
    shorter run's.
    """
    if "epoch" not in windows.columns:
        return [_sha256(windows)]
    return [_sha256(block) for _, block in windows.groupby("epoch", sort=True)]


def run_record(section: str, config: dict, total_steps: int, **fixed) -> dict:
    """What determines a run's trajectory: the `section` (train or pretrain) settings less NEUTRAL_KEYS,
    LENGTH_KEYS and LATER_KEYS at their old value, the total steps, and `fixed` (model, seed, classes; keys
    ending in DIGEST_SUFFIX are digests of the data, a list per epoch for `train_windows_sha256`)."""
    kept = {key: value for key, value in config.items() if key not in NEUTRAL_KEYS | LENGTH_KEYS
            and not (key in LATER_KEYS and value == LATER_KEYS[key])}
    return {section: kept, "total_steps": total_steps, **fixed}


def warmup_steps(warmup_ratio: float, total_steps: int) -> int:
    """The warm-up steps the Trainer derives from a warm-up given as a fraction of the total steps."""
    return math.ceil(total_steps * warmup_ratio)


def schedule_continues(config: dict, old_total: int, new_total: int) -> str | None:
    """None when a run of `new_total` steps has the learning rate of one of `old_total` steps at every step
    both have; otherwise why not."""
    name = config["lr_scheduler"]
    if name not in CONTINUABLE_SCHEDULES:
        return f"the learning rate of the {name} schedule at every step depends on the total steps"
    if name == "constant_with_warmup":
        old, new = (warmup_steps(config["warmup_ratio"], total) for total in (old_total, new_total))
        if old != new:
            return f"the warm-up of the constant_with_warmup schedule changes from {old} to {new} steps"
    return None


def _flatten(record: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(old: dict, new: dict, limit: int = 6) -> str:
    """The keys whose values differ, as 'key: old -> new' (digests as 'changed')."""
    old, new = _flatten(old), _flatten(new)
    missing = object()
    lines = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key, missing), new.get(key, missing)
        if before == after:
            continue
        if key.endswith(DIGEST_SUFFIX):
            lines.append(f"{key.removesuffix(DIGEST_SUFFIX)}: changed")
        else:
            lines.append(f"{key}: {'(none)' if before is missing else json.dumps(before)} -> "
                         f"{'(none)' if after is missing else json.dumps(after)}")
    return "; ".join(lines[:limit]) + ("; ..." if len(lines) > limit else "")


# --- the schedule and the best checkpoint -------------------------------------------------------------------


def schedule(n_windows: int, *, batch_size: int, epochs: float, max_steps: int | None, save_steps: int) -> dict:
    """Steps per epoch, total steps and checkpoints that a run will produce."""
    steps_per_epoch = math.ceil(n_windows / batch_size)
    total = max_steps if max_steps else math.ceil(steps_per_epoch * epochs)
    checkpoints = sorted(set(range(save_steps, total + 1, save_steps)) | {total})
    return {"steps_per_epoch": steps_per_epoch, "total_steps": total, "checkpoints": checkpoints}


def epochs_to_draw(n_windows: int, batch_size: int, epochs: float, max_steps: int | None) -> int:
    """The epochs, whole or begun, that a run on `n_windows` windows per epoch trains: how many epochs of fresh
    windows (`windows.resample_each_epoch`) the data stage draws."""
    plan = schedule(n_windows, batch_size=batch_size, epochs=epochs, max_steps=max_steps, save_steps=1)
    return math.ceil(plan["total_steps"] / plan["steps_per_epoch"])


def validation_accuracy(model_dir) -> dict[int, float]:
    """Validation accuracy per checkpoint step, from the `training_log.tsv` beside the checkpoints."""
    training_log = pd.read_csv(layout.training_log_in(model_dir), sep="\t")
    if "eval_accuracy" not in training_log:
        return {}
    rows = training_log.dropna(subset=["eval_accuracy"])
    return dict(zip(rows["step"].astype(int), rows["eval_accuracy"].astype(float)))


def best_checkpoint(model_dir) -> int:
    """The checkpoint step with the highest validation accuracy (the earliest on ties; never test metrics).

    Checkpoints without a validation score (a training log cut short) cannot be chosen: a warning names them,
    and when none has one this is an error rather than a silent choice of the last.
    """
    steps = json.loads(Path(layout.summary_in(model_dir)).read_text())["checkpoints"]
    scores = validation_accuracy(model_dir)
    scored = [step for step in steps if step in scores]
    if not scored:
        raise PlasmidlmError(f"{layout.training_log_in(model_dir)}: no checkpoint has a validation accuracy "
                             f"(eval_accuracy), so none can be chosen as the best; re-run its train job")
    unscored = [step for step in steps if step not in scores]
    if unscored:
        logger.warning(f"{layout.training_log_in(model_dir)}: checkpoints {', '.join(map(str, unscored))} have no "
                       f"validation accuracy and are not considered for the best checkpoint")
    return max(scored, key=lambda step: (scores[step], -step))
