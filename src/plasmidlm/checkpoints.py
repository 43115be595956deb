"""The checkpoints of a training run: which ones a re-run keeps, setting aside the others (never deleting them
as a side effect), and which one is best (chosen on validation, never on test).

A training output directory holds Hugging Face Trainer checkpoints, `checkpoint-<step>/`, and PARAMS_FILE,
the record (`run_record`) of what determines their training trajectory. When a run starts,
`prepare_output_dir` compares the recorded run with the new one:
- the same trajectory (only NEUTRAL_KEYS changed): the checkpoints stay; training resumes from the last one;
- only the length changed (LENGTH_KEYS): checkpoints up to the new length stay and training continues from
  the last of them when the learning-rate schedule does not depend on the total steps (`schedule_continues`)
  or the config says `continue_from_last: true`; otherwise all are set aside;
- anything else: all are set aside.
Setting aside moves checkpoints into `set_aside/<UTC time>/` inside the output directory, with SET_ASIDE_RECORD
saying why (the report lists these folders); `old_checkpoints: delete` removes them instead. A job killed while
setting aside leaves a marker from which the next run moves everything back before deciding again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from plasmidlm import PlasmidlmError, layout
from plasmidlm.io import write_json

PARAMS_FILE = "plasmidlm_train_params.json"
TRAINER_STATE = "trainer_state.json"  # the Trainer writes it last into a checkpoint directory
CHECKPOINT = re.compile(r"checkpoint-(\d+)")
SET_ASIDE_DIR = "set_aside"
SET_ASIDE_RECORD = "set_aside.json"
MOVING = "moving.json"  # inside a set-aside folder while checkpoints are being moved into it
DELETING = "deleting-"  # prefix of a set-aside folder being deleted (old_checkpoints: delete)

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
OLD_CHECKPOINTS = ("move_aside", "delete")
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


def _without(record: dict, *keys: str) -> dict:
    return {key: value for key, value in record.items() if key not in keys}


def _prefix_of_each_other(first: list, second: list) -> bool:
    shorter = min(len(first), len(second))
    return first[:shorter] == second[:shorter]


# --- the checkpoints in a directory -------------------------------------------------------------------------


def checkpoint_step(path: Path) -> int:
    """The step of a `checkpoint-<step>` directory."""
    return int(CHECKPOINT.fullmatch(Path(path).name).group(1))


def checkpoint_dirs(directory: Path) -> list[Path]:
    """The `checkpoint-<step>` directories in `directory`, by step."""
    with os.scandir(directory) as entries:
        found = [Path(entry.path) for entry in entries if CHECKPOINT.fullmatch(entry.name) and entry.is_dir()]
    return sorted(found, key=checkpoint_step)


def _io_error(path: Path, error: OSError) -> PlasmidlmError:
    return PlasmidlmError(f"{path}: cannot be read ({error.strerror or error}); stopping without touching any "
                          f"checkpoint. Re-run once the file system reads it again")


def is_complete_checkpoint(path: Path) -> bool:
    """Whether the Trainer finished writing `path`: model weights and a readable trainer_state.json (its last
    file). False only when that is certain (the file is missing or cut off); any other I/O error is raised as
    a PlasmidlmError, so that a checkpoint that cannot be read now is never taken for a half-written one."""
    path = Path(path)
    try:
        names = os.listdir(path)
        json.loads((path / TRAINER_STATE).read_text())
    except FileNotFoundError:
        return False
    except ValueError:  # cut off while being written (also a UnicodeDecodeError)
        return False
    except OSError as error:
        raise _io_error(path / TRAINER_STATE, error) from error
    return any(name.endswith(".safetensors") for name in names)


def read_params(output_dir: Path) -> dict | None:
    """The recorded run of `output_dir`, None when there is none (or it was cut off while being written)."""
    path = Path(output_dir) / PARAMS_FILE
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    except OSError as error:
        raise _io_error(path, error) from error
    return record if isinstance(record, dict) else None


# --- setting checkpoints aside ------------------------------------------------------------------------------


def _new_folder(parent: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    folder, number = parent / stamp, 1
    while folder.exists():
        number += 1
        folder = parent / f"{stamp}-{number}"
    return folder


def set_aside(output_dir: Path, reasons: dict[str, str], delete: bool, log) -> Path | None:
    """Move the checkpoints named in `reasons` (name -> why) into a new `set_aside/<UTC time>/` folder with a
    copy of PARAMS_FILE and SET_ASIDE_RECORD; with `delete`, then remove that folder. Returns the folder kept.

    While the checkpoints move, the folder holds MOVING; `repair_set_aside` undoes a move that a kill stopped.
    """
    output_dir = Path(output_dir)
    folder = _new_folder(output_dir / SET_ASIDE_DIR)
    folder.mkdir(parents=True)
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "checkpoints": reasons,
              "delete": delete}
    write_json(record, folder / MOVING)
    if (output_dir / PARAMS_FILE).exists():
        shutil.copy2(output_dir / PARAMS_FILE, folder / PARAMS_FILE)
    for name in sorted(reasons, key=lambda name: checkpoint_step(Path(name))):
        os.rename(output_dir / name, folder / name)
    os.rename(folder / MOVING, folder / SET_ASIDE_RECORD)
    for name, reason in reasons.items():
        log(f"set aside {name}: {reason}")
    if delete:
        _delete(folder)
        log(f"deleted the {len(reasons)} checkpoint(s) set aside (old_checkpoints: delete)")
        return None
    log(f"{len(reasons)} checkpoint(s) moved to {folder}")
    return folder


def _delete(folder: Path) -> None:
    """Remove a set-aside folder; renamed first, so that a kill midway leaves a name `repair_set_aside` finishes."""
    doomed = folder.with_name(DELETING + folder.name)
    os.rename(folder, doomed)
    shutil.rmtree(doomed)


def repair_set_aside(output_dir: Path, log) -> None:
    """Finish what a job killed while setting checkpoints aside left: a move is undone (its checkpoints go
    back, so that this run decides afresh), a deletion is completed."""
    parent = Path(output_dir) / SET_ASIDE_DIR
    if not parent.is_dir():
        return
    for folder in sorted(parent.iterdir()):
        if not folder.is_dir():
            continue
        if folder.name.startswith(DELETING):
            shutil.rmtree(folder)
            log(f"finished deleting {folder.name.removeprefix(DELETING)}, which a stopped job had set aside")
        elif (folder / MOVING).exists():
            moved = checkpoint_dirs(folder)
            for path in moved:
                target = Path(output_dir) / path.name
                if target.exists():
                    raise PlasmidlmError(f"{folder}: a stopped job was setting {path.name} aside, and {target} "
                                         f"exists too; keep the one you want and remove {folder / MOVING}")
                os.rename(path, target)
            with contextlib.suppress(FileNotFoundError):
                (folder / PARAMS_FILE).unlink()
            (folder / MOVING).unlink()
            folder.rmdir()
            log(f"a stopped job was setting checkpoints aside into {folder}: moved {len(moved)} back")
        elif (folder / SET_ASIDE_RECORD).exists():
            if json.loads((folder / SET_ASIDE_RECORD).read_text()).get("delete"):
                _delete(folder)
                log(f"deleted {folder.name}, which a stopped job had set aside to delete")
        elif not any(folder.iterdir()):
            folder.rmdir()


def set_aside_records(run_dir) -> list[dict]:
    """Every folder of set-aside checkpoints under `run_dir`: {"folder" (relative), "time", "checkpoint",
    "reason"}, one row per checkpoint."""
    run_dir = Path(run_dir)
    rows = []
    for record_path in sorted(run_dir.glob(f"**/{SET_ASIDE_DIR}/*/{SET_ASIDE_RECORD}")):
        if record_path.parent.name.startswith(DELETING):
            continue
        record = json.loads(record_path.read_text())
        folder = record_path.parent.relative_to(run_dir).as_posix()
        rows += [{"folder": folder, "time": record["time"], "checkpoint": name, "reason": reason}
                 for name, reason in record["checkpoints"].items()]
    return rows


# --- deciding at the start of a run -------------------------------------------------------------------------


def _length_change(old: dict, new: dict) -> bool:
    """Whether two records differ in their length alone (epoch windows: one list starts the other)."""
    windows = "train_windows" + DIGEST_SUFFIX
    rest = ("total_steps", windows, "continued")
    return (_without(old, *rest) == _without(new, *rest) and old["total_steps"] != new["total_steps"]
            and _prefix_of_each_other(old.get(windows, []), new.get(windows, [])))


def _keep(old: dict | None, new: dict, config: dict, steps: list[int], section: str
          ) -> tuple[list[int], str, str | None, dict | None]:
    """Which complete checkpoint steps a run recorded as `new` keeps: (kept, why the others are not, what the
    log says about the kept ones, a continuation to record or None)."""
    if not steps:
        return [], "", None, None
    if old is None:
        return [], f"no readable {PARAMS_FILE} says which parameters trained it", None, None
    if _without(old, "continued") == _without(new, "continued"):
        return steps, "", None, None
    if not _length_change(old, new):
        return [], f"trained with other parameters ({differences(_without(old, 'continued'), new)})", None, None
    before, after = old["total_steps"], new["total_steps"]
    kept = [step for step in steps if step <= after]
    why_not = schedule_continues(config, before, after)
    if not kept:
        return [], f"beyond the new total of {after} steps", None, None
    if why_not is None:
        return (kept, f"beyond the new total of {after} steps",
                f"the total steps changed from {before} to {after}; the {config['lr_scheduler']} learning-rate "
                f"schedule does not depend on it, so the run continues from checkpoint-{kept[-1]} exactly as a "
                f"run of {after} steps from scratch would", None)
    if config.get("continue_from_last", False):
        return (kept, f"beyond the new total of {after} steps",
                f"the total steps changed from {before} to {after} and {why_not}; {section}.continue_from_last "
                f"is set, so the run continues from checkpoint-{kept[-1]} with the learning rate of a {after}-step "
                f"schedule (not what a run of {after} steps from scratch would do)",
                {"from_step": kept[-1], "total_steps_before": before})
    return ([], f"the total steps changed from {before} to {after} and {why_not}; set "
                f"{section}.continue_from_last: true to continue from the last checkpoint anyway, or use a "
                f"{' or '.join(CONTINUABLE_SCHEDULES)} schedule", None, None)


def prepare_output_dir(output_dir, record: dict, config: dict, log, section: str = "train") -> Path | None:
    """Make `output_dir` ready for the run `record` (see `run_record`); return the checkpoint to resume from.

    `config` holds the run's `section` settings (lr_scheduler, warmup_ratio, continue_from_last,
    old_checkpoints). Checkpoints the run cannot use are set aside (see the module's description). A
    half-written checkpoint (no readable trainer_state.json) is removed only where that is proven: a later
    checkpoint is complete, so no job is still writing it; otherwise it is set aside too. An I/O error while
    reading a checkpoint or the record stops the run (PlasmidlmError) before anything is moved.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    repair_set_aside(output_dir, log)
    try:
        found = checkpoint_dirs(output_dir)
    except OSError as error:
        raise _io_error(output_dir, error) from error
    complete = {checkpoint_step(path): path for path in found if is_complete_checkpoint(path)}
    old = read_params(output_dir)
    reasons = {}
    for path in found:
        step = checkpoint_step(path)
        if step in complete:
            continue
        if complete and step < max(complete):
            log(f"removing {path.name}: half-written (no readable {TRAINER_STATE}) and older than the complete "
                f"checkpoint-{max(complete)}")
            shutil.rmtree(path)
        else:
            reasons[path.name] = f"half-written: no readable {TRAINER_STATE} (the job stopped while saving it)"
    kept, why, message, continued = _keep(old, record, config, sorted(complete), section)
    reasons |= {complete[step].name: why for step in sorted(complete) if step not in kept}
    if reasons:
        set_aside(output_dir, reasons, config.get("old_checkpoints", "move_aside") == "delete", log)
    history = (old or {}).get("continued", []) if kept else []
    write_json(record | ({"continued": history + [continued]} if continued else
                         {"continued": history} if history else {}), output_dir / PARAMS_FILE)
    if message:
        log(message)
    if not kept:
        return None
    log(f"resuming from checkpoint-{kept[-1]}, the last of {len(kept)} checkpoint(s) in {output_dir}")
    return complete[kept[-1]]


# --- the best checkpoint ------------------------------------------------------------------------------------


def schedule(n_windows: int, batch_size: int, epochs: float, max_steps: int | None, save_steps: int) -> dict:
    """Steps per epoch, total steps and checkpoints that a run will produce."""
    steps_per_epoch = math.ceil(n_windows / batch_size)
    total = max_steps if max_steps else math.ceil(steps_per_epoch * epochs)
    checkpoints = sorted(set(range(save_steps, total + 1, save_steps)) | {total})
    return {"steps_per_epoch": steps_per_epoch, "total_steps": total, "checkpoints": checkpoints}


def epochs_to_draw(n_windows: int, batch_size: int, epochs: float, max_steps: int | None) -> int:
    """The epochs, whole or begun, that a run on `n_windows` windows per epoch trains: how many epochs of fresh
    windows (`windows.resample_each_epoch`) the data stage draws."""
    plan = schedule(n_windows, batch_size, epochs, max_steps, save_steps=1)
    return math.ceil(plan["total_steps"] / plan["steps_per_epoch"])


def validation_accuracy(model_dir) -> dict[int, float]:
    """Validation accuracy per checkpoint step, from the `training_log.tsv` beside the checkpoints."""
    log = pd.read_csv(layout.training_log_in(model_dir), sep="\t")
    if "eval_accuracy" not in log:
        return {}
    rows = log.dropna(subset=["eval_accuracy"])
    return dict(zip(rows["step"].astype(int), rows["eval_accuracy"].astype(float)))


def best_checkpoint(model_dir) -> int:
    """The checkpoint step with the highest validation accuracy (the earliest on ties; never test metrics)."""
    steps = json.loads(Path(layout.summary_in(model_dir)).read_text())["checkpoints"]
    scores = validation_accuracy(model_dir)
    scored = [step for step in steps if step in scores]
    if not scored:
        return steps[-1]
    return max(scored, key=lambda step: (scores[step], -step))
