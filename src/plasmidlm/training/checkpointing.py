"""The checkpoints in a training output directory: which are complete, which ones a re-run keeps and resumes
from, and setting aside the others (never deleting them as a side effect).

A training output directory holds Hugging Face Trainer checkpoints, `checkpoint-<step>/`, and PARAMS_FILE,
the record (`runs.run_record`) of what determines their training trajectory. When a run starts,
`prepare_output_dir` compares the recorded run with the new one:
- the same trajectory (only `runs.NEUTRAL_KEYS` changed): the checkpoints stay; training resumes from the last one;
- only the length changed (`runs.LENGTH_KEYS`): checkpoints up to the new length stay and training continues from
  the last of them when the learning-rate schedule does not depend on the total steps (`schedule_continues`)
  or the config says `continue_from_last: true`; otherwise all are set aside;
- anything else: all are set aside.
Setting aside moves checkpoints into `set_aside/<UTC time>/` inside the output directory, with SET_ASIDE_RECORD
saying why (the report lists these folders); `old_checkpoints: delete` removes them instead. A job killed while
setting aside leaves a marker from which the next run moves everything back before deciding again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from plasmidlm import PlasmidlmError
from plasmidlm.io import remove_temporaries, write_json
from plasmidlm.training.runs import CONTINUABLE_SCHEDULES, DIGEST_SUFFIX, differences, schedule_continues

PARAMS_FILE = "plasmidlm_train_params.json"
TRAINER_STATE = "trainer_state.json"  # the Trainer writes it last into a checkpoint directory
CHECKPOINT = re.compile(r"checkpoint-(\d+)")
SET_ASIDE_DIR = "set_aside"
SET_ASIDE_RECORD = "set_aside.json"
MOVING = "moving.json"  # inside a set-aside folder while checkpoints are being moved into it
DELETING = "deleting-"  # prefix of a set-aside folder being deleted (old_checkpoints: delete)

logger = logging.getLogger(__name__)


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


def set_aside(output_dir: Path, reasons: dict[str, str], delete: bool) -> Path | None:
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
        logger.info(f"set aside {name}: {reason}")
    if delete:
        _delete(folder)
        logger.info(f"deleted the {len(reasons)} checkpoint(s) set aside (old_checkpoints: delete)")
        return None
    logger.info(f"{len(reasons)} checkpoint(s) moved to {folder}")
    return folder


def _delete(folder: Path) -> None:
    """Remove a set-aside folder; renamed first, so that a kill midway leaves a name `repair_set_aside` finishes."""
    doomed = folder.with_name(DELETING + folder.name)
    os.rename(folder, doomed)
    shutil.rmtree(doomed)


def repair_set_aside(output_dir: Path) -> None:
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
            logger.info(f"finished deleting {folder.name.removeprefix(DELETING)}, which a stopped job had set aside")
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
            remove_temporaries(folder)
            folder.rmdir()
            logger.info(f"a stopped job was setting checkpoints aside into {folder}: moved {len(moved)} back")
        elif (folder / SET_ASIDE_RECORD).exists():
            if json.loads((folder / SET_ASIDE_RECORD).read_text()).get("delete"):
                _delete(folder)
                logger.info(f"deleted {folder.name}, which a stopped job had set aside to delete")
        else:
            remove_temporaries(folder)
            if not any(folder.iterdir()):
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


def _without(record: dict, *keys: str) -> dict:
    return {key: value for key, value in record.items() if key not in keys}


def _prefix_of_each_other(first: list, second: list) -> bool:
    shorter = min(len(first), len(second))
    return first[:shorter] == second[:shorter]


def _length_change(old: dict, new: dict) -> bool:
    """Whether two records differ in their length alone (epoch windows: one list starts the other)."""
    windows = "train_windows" + DIGEST_SUFFIX
    rest = ("total_steps", windows, "continued")
    return (_without(old, *rest) == _without(new, *rest) and old["total_steps"] != new["total_steps"]
            and _prefix_of_each_other(old.get(windows, []), new.get(windows, [])))


def _keep(old: dict | None, new: dict, *, config: dict, steps: list[int], section: str
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


def prepare_output_dir(output_dir, record: dict, config: dict, section: str = "train") -> Path | None:
    """Make `output_dir` ready for the run `record` (see `run_record`); return the checkpoint to resume from.

    `config` holds the run's `section` settings (lr_scheduler, warmup_ratio, continue_from_last,
    old_checkpoints). Checkpoints the run cannot use are set aside (see the module's description). A
    half-written checkpoint (no readable trainer_state.json) is removed only where that is proven: a later
    checkpoint is complete, so no job is still writing it; otherwise it is set aside too. An I/O error while
    reading a checkpoint or the record stops the run (PlasmidlmError) before anything is moved.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    repair_set_aside(output_dir)
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
            logger.info(f"removing {path.name}: half-written (no readable {TRAINER_STATE}) and older than the complete "
                        f"checkpoint-{max(complete)}")
            shutil.rmtree(path)
        else:
            reasons[path.name] = f"half-written: no readable {TRAINER_STATE} (the job stopped while saving it)"
    kept, why, message, continued = _keep(old, record, config=config, steps=sorted(complete), section=section)
    reasons |= {complete[step].name: why for step in sorted(complete) if step not in kept}
    if reasons:
        set_aside(output_dir, reasons, config.get("old_checkpoints", "move_aside") == "delete")
    history = (old or {}).get("continued", []) if kept else []
    write_json(record | ({"continued": history + [continued]} if continued else
                         {"continued": history} if history else {}), output_dir / PARAMS_FILE)
    if message:
        logger.info(message)
    if not kept:
        return None
    logger.info(f"resuming from checkpoint-{kept[-1]}, the last of {len(kept)} checkpoint(s) in {output_dir}")
    return complete[kept[-1]]
