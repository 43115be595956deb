"""Checkpoints: which ones a re-run keeps, setting the others aside (never deleting them as a side effect),
repairing a kill during that, and choosing the best checkpoint on validation accuracy."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from plasmidlm import PlasmidlmError
from plasmidlm.config import load_schema
from plasmidlm.training.checkpointing import (
    DELETING,
    MOVING,
    PARAMS_FILE,
    SET_ASIDE_DIR,
    SET_ASIDE_RECORD,
    TRAINER_STATE,
    is_complete_checkpoint,
    prepare_output_dir,
    set_aside_records,
)
from plasmidlm.training.runs import (
    LENGTH_KEYS,
    NEUTRAL_KEYS,
    best_checkpoint,
    run_record,
    validation_accuracy,
    windows_sha256,
)

from conftest import SRC

SCHEMA = load_schema()["properties"]
TRAIN = {key: spec["default"] for key, spec in SCHEMA["train"]["properties"].items()}
FIXED = {"model": {"name_or_path": "builtin", "preset": "tiny"}, "window_length": 60, "seed": 1,
         "classes": ["a", "b"], "steps_per_epoch": 6, "train_windows_sha256": ["1" * 64],
         "val_windows_sha256": ["2" * 64]}


def record(config: dict = TRAIN, total_steps: int = 12, **fixed) -> dict:
    return run_record("train", config, total_steps, **(FIXED | fixed))


def make_checkpoint(output_dir: Path, step: int, complete: bool = True) -> Path:
    path = output_dir / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(f"weights {step}".encode())
    if complete:
        (path / TRAINER_STATE).write_text(json.dumps({"global_step": step}))
    return path


def trained(output_dir: Path, steps=(4, 8, 12), config: dict = TRAIN, **fixed) -> Path:
    """An output directory as a finished run of `record(config, **fixed)` leaves it."""
    output_dir.mkdir(parents=True, exist_ok=True)
    for step in steps:
        make_checkpoint(output_dir, step)
    (output_dir / PARAMS_FILE).write_text(json.dumps(record(config, max(steps), **fixed)))
    return output_dir


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob("checkpoint-*"))


def set_aside_folders(output_dir: Path) -> list[Path]:
    parent = output_dir / SET_ASIDE_DIR
    return sorted(parent.iterdir()) if parent.exists() else []


class Logged:
    def __init__(self, caplog):
        self.caplog = caplog

    def has(self, text: str) -> bool:
        return any(text in message for message in self.caplog.messages)


@pytest.fixture
def log(caplog) -> Logged:
    """What the code under test logs (INFO and above)."""
    caplog.set_level(logging.INFO)
    return Logged(caplog)


def test_first_run_records_its_parameters(tmp_path):
    assert prepare_output_dir(tmp_path / "model", record(), TRAIN) is None
    assert json.loads((tmp_path / "model" / PARAMS_FILE).read_text()) == record()


def test_same_run_resumes_from_the_last_complete_checkpoint(tmp_path, log):
    output_dir = trained(tmp_path)
    assert prepare_output_dir(output_dir, record(), TRAIN) == output_dir / "checkpoint-12"
    assert names(output_dir) == ["checkpoint-12", "checkpoint-4", "checkpoint-8"]
    assert set_aside_folders(output_dir) == [] and log.has("resuming from checkpoint-12, the last of 3")


# --- one test per class of key --------------------------------------------------------------------------


def other_value(spec: dict, value):
    """A valid value of a train key other than `value`."""
    if "enum" in spec:
        return next(option for option in spec["enum"] if option != value)
    if spec.get("type") == "boolean":
        return not value
    if value is None:
        return 7
    return value * 2 if value else 1


def test_the_key_classes_name_schema_keys_of_train_and_pretrain():
    for section in ("train", "pretrain"):
        assert NEUTRAL_KEYS | LENGTH_KEYS <= set(SCHEMA[section]["properties"]), section


@pytest.mark.parametrize("key", sorted(NEUTRAL_KEYS))
def test_a_key_that_does_not_change_the_trajectory_keeps_the_checkpoints(tmp_path, key):
    output_dir = trained(tmp_path)
    changed = TRAIN | {key: other_value(SCHEMA["train"]["properties"][key], TRAIN[key])}
    assert prepare_output_dir(output_dir, record(changed), changed) == output_dir / "checkpoint-12"
    assert names(output_dir) == ["checkpoint-12", "checkpoint-4", "checkpoint-8"]
    assert set_aside_folders(output_dir) == []


TRAJECTORY_TRAIN_KEYS = sorted(set(TRAIN) - NEUTRAL_KEYS - LENGTH_KEYS)
OTHER_FIXED = {"model": {"name_or_path": "builtin", "preset": "small"}, "window_length": 100, "seed": 2,
               "classes": ["a", "c"], "steps_per_epoch": 3, "train_windows_sha256": ["3" * 64],
               "val_windows_sha256": ["4" * 64]}


@pytest.mark.parametrize("key", [f"train.{key}" for key in TRAJECTORY_TRAIN_KEYS] + sorted(OTHER_FIXED))
def test_every_other_key_sets_the_checkpoints_aside(tmp_path, key, log):
    output_dir = trained(tmp_path)
    config, fixed = dict(TRAIN), {}
    if key.startswith("train."):
        name = key.removeprefix("train.")
        config[name] = other_value(SCHEMA["train"]["properties"][name], TRAIN[name])
    else:
        fixed[key] = OTHER_FIXED[key]
    assert prepare_output_dir(output_dir, record(config, **fixed), config) is None
    assert names(output_dir) == []
    [folder] = set_aside_folders(output_dir)
    assert names(folder) == ["checkpoint-12", "checkpoint-4", "checkpoint-8"]
    assert (folder / "checkpoint-8" / "model.safetensors").read_bytes() == b"weights 8"
    aside = json.loads((folder / SET_ASIDE_RECORD).read_text())
    assert all(f"trained with other parameters ({key.removesuffix('_sha256')}" in reason
               for reason in aside["checkpoints"].values()), aside
    assert json.loads((folder / PARAMS_FILE).read_text()) == record()  # what trained them
    assert json.loads((output_dir / PARAMS_FILE).read_text()) == record(config, **fixed)
    assert log.has(f"3 checkpoint(s) moved to {folder}")


def test_checkpoints_without_a_record_are_set_aside(tmp_path):
    output_dir = trained(tmp_path)
    (output_dir / PARAMS_FILE).unlink()
    assert prepare_output_dir(output_dir, record(), TRAIN) is None
    [folder] = set_aside_folders(output_dir)
    assert names(folder) == ["checkpoint-12", "checkpoint-4", "checkpoint-8"]


def test_old_checkpoints_delete_removes_what_is_set_aside(tmp_path, log):
    output_dir = trained(tmp_path)
    config = TRAIN | {"learning_rate": 1.0, "old_checkpoints": "delete"}
    assert prepare_output_dir(output_dir, record(config), config) is None
    assert names(output_dir) == [] and set_aside_folders(output_dir) == []
    assert log.has("deleted the 3 checkpoint(s) set aside (old_checkpoints: delete)")


# --- another length -------------------------------------------------------------------------------------

CONSTANT = TRAIN | {"lr_scheduler": "constant"}


def test_a_longer_run_with_a_constant_schedule_continues_from_the_last_checkpoint(tmp_path, log):
    output_dir = trained(tmp_path, config=CONSTANT)
    assert prepare_output_dir(output_dir, record(CONSTANT, 20), CONSTANT) == output_dir / "checkpoint-12"
    assert log.has("the total steps changed from 12 to 20; the constant learning-rate schedule does not depend on it")
    assert set_aside_folders(output_dir) == []


def test_a_shorter_run_with_a_constant_schedule_sets_aside_the_checkpoints_beyond_it(tmp_path):
    output_dir = trained(tmp_path, config=CONSTANT)
    assert prepare_output_dir(output_dir, record(CONSTANT, 10), CONSTANT) == output_dir / "checkpoint-8"
    [folder] = set_aside_folders(output_dir)
    assert names(folder) == ["checkpoint-12"]
    assert json.loads((folder / SET_ASIDE_RECORD).read_text())["checkpoints"] == {
        "checkpoint-12": "beyond the new total of 10 steps"}


# warm-up steps = ceil(warmup_ratio x total): 0 -> 0, ceil(1.2) = 2 -> ceil(1.4) = 2, ceil(2.4) = 3 -> 4
@pytest.mark.parametrize("warmup_ratio, total_steps, continues", [(0.0, 20, True), (0.1, 14, True), (0.2, 20, False)])
def test_constant_with_warmup_continues_when_the_warmup_keeps_its_steps(tmp_path, warmup_ratio, total_steps,
                                                                       continues, log):
    config = TRAIN | {"lr_scheduler": "constant_with_warmup", "warmup_ratio": warmup_ratio}
    output_dir = trained(tmp_path, config=config)
    resumed = prepare_output_dir(output_dir, record(config, total_steps), config)
    assert (resumed == output_dir / "checkpoint-12") is continues
    assert log.has("the warm-up of the constant_with_warmup schedule changes from 3 to 4 steps") is not continues


@pytest.mark.parametrize("scheduler", ["linear", "cosine"])
def test_a_longer_run_with_a_schedule_that_depends_on_the_length_starts_again(tmp_path, scheduler, log):
    config = TRAIN | {"lr_scheduler": scheduler}
    output_dir = trained(tmp_path, config=config)
    assert prepare_output_dir(output_dir, record(config, 20), config) is None
    [folder] = set_aside_folders(output_dir)
    assert names(folder) == ["checkpoint-12", "checkpoint-4", "checkpoint-8"]
    assert log.has(f"the total steps changed from 12 to 20 and the learning rate of the {scheduler} schedule at "
                   f"every step depends on the total steps; set train.continue_from_last: true")


def test_continue_from_last_continues_any_schedule_and_is_recorded(tmp_path, log):
    output_dir = trained(tmp_path)
    config = TRAIN | {"continue_from_last": True}
    assert prepare_output_dir(output_dir, record(config, 20), config) == output_dir / "checkpoint-12"
    assert log.has("train.continue_from_last is set, so the run continues from checkpoint-12 with the learning "
                   "rate of a 20-step schedule")
    continued = [{"from_step": 12, "total_steps_before": 12}]
    assert json.loads((output_dir / PARAMS_FILE).read_text())["continued"] == continued
    # a re-run of the continued run resumes and keeps the history, whatever continue_from_last says now
    make_checkpoint(output_dir, 16)
    assert prepare_output_dir(output_dir, record(TRAIN, 20), TRAIN) == output_dir / "checkpoint-16"
    assert json.loads((output_dir / PARAMS_FILE).read_text())["continued"] == continued


def test_fresh_windows_per_epoch_continue_when_the_first_epochs_are_the_same(tmp_path):
    two_epochs = {"train_windows_sha256": ["e0" * 32, "e1" * 32]}
    output_dir = trained(tmp_path, config=CONSTANT, **two_epochs)
    longer = record(CONSTANT, 18, train_windows_sha256=["e0" * 32, "e1" * 32, "e2" * 32])
    assert prepare_output_dir(output_dir, longer, CONSTANT) == output_dir / "checkpoint-12"
    redrawn = record(CONSTANT, 24, train_windows_sha256=["e0" * 32, "ff" * 32, "e2" * 32, "e3" * 32])
    assert prepare_output_dir(output_dir, redrawn, CONSTANT) is None


def test_windows_sha256_is_one_digest_per_epoch_and_depends_on_label_and_sequence():
    windows = pd.DataFrame({"label": ["a", "b", "a", "b"], "sequence": ["AC", "GT", "AA", "CC"], "epoch": [0, 0, 1, 1]})
    per_epoch = windows_sha256(windows)
    assert len(per_epoch) == 2 and per_epoch[0] == windows_sha256(windows.iloc[:2].drop(columns="epoch"))[0]
    assert windows_sha256(windows.assign(epoch=0))[0] != per_epoch[0]
    assert windows_sha256(windows.assign(label=["b", "b", "a", "b"]))[0] != per_epoch[0]
    assert windows_sha256(windows.assign(sequence=["AC", "GA", "AA", "CC"]))[0] != per_epoch[0]


# --- half-written checkpoints and I/O errors ----------------------------------------------------------------


def test_is_complete_checkpoint(tmp_path):
    checkpoint = tmp_path / "checkpoint-4"
    checkpoint.mkdir()
    assert not is_complete_checkpoint(checkpoint)
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    assert not is_complete_checkpoint(checkpoint)
    (checkpoint / TRAINER_STATE).write_text('{"global_step": 4')  # cut off while being written
    assert not is_complete_checkpoint(checkpoint)
    (checkpoint / TRAINER_STATE).write_text('{"global_step": 4}')
    assert is_complete_checkpoint(checkpoint)
    (checkpoint / "model.safetensors").unlink()
    assert not is_complete_checkpoint(checkpoint)


def test_a_half_written_checkpoint_is_removed_only_below_a_complete_one(tmp_path, log):
    output_dir = trained(tmp_path, steps=(4, 12))
    make_checkpoint(output_dir, 8, complete=False)  # no later job can be writing it: checkpoint-12 is complete
    make_checkpoint(output_dir, 16, complete=False)  # the job stopped while saving it
    assert prepare_output_dir(output_dir, record(), TRAIN) == output_dir / "checkpoint-12"
    assert names(output_dir) == ["checkpoint-12", "checkpoint-4"]
    assert log.has("removing checkpoint-8: half-written (no readable trainer_state.json) and older than the "
                   "complete checkpoint-12")
    [folder] = set_aside_folders(output_dir)
    assert names(folder) == ["checkpoint-16"]
    assert "half-written" in json.loads((folder / SET_ASIDE_RECORD).read_text())["checkpoints"]["checkpoint-16"]


@pytest.mark.parametrize("unreadable", [f"checkpoint-8/{TRAINER_STATE}", PARAMS_FILE])
def test_an_io_error_stops_the_job_and_touches_nothing(tmp_path, monkeypatch, unreadable):
    output_dir = trained(tmp_path)
    failing = output_dir / unreadable
    read_text = Path.read_text

    def read_or_fail(path, *args, **kwargs):
        if path == failing:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_or_fail)
    other = TRAIN | {"learning_rate": 1.0}  # a run that would set every checkpoint aside
    with pytest.raises(PlasmidlmError, match=rf"^{failing}: cannot be read \(Input/output error\); stopping "
                                             r"without touching any checkpoint"):
        prepare_output_dir(output_dir, record(other), other)
    assert names(output_dir) == ["checkpoint-12", "checkpoint-4", "checkpoint-8"]
    assert set_aside_folders(output_dir) == []


# --- a kill while setting checkpoints aside -----------------------------------------------------------------

# Runs prepare_output_dir, and SIGKILLs itself at the kill_at-th call of os.rename, os.unlink or os.rmdir
# (0: never; it then prints how many calls there were).
KILLED_PREPARE = """
import json, os, signal, sys
from plasmidlm.training.checkpointing import prepare_output_dir

args = json.loads(sys.argv[1])
calls = 0

def killing(function):
    def call(*positional, **keywords):
        global calls
        calls += 1
        if calls == args["kill_at"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return function(*positional, **keywords)
    return call

for name in ("rename", "unlink", "rmdir"):
    setattr(os, name, killing(getattr(os, name)))
prepare_output_dir(args["output_dir"], args["record"], args["config"])
print(calls)
"""


def killed_prepare(output_dir: Path, new: dict, config: dict, kill_at: int) -> subprocess.CompletedProcess:
    arguments = {"output_dir": str(output_dir), "record": new, "config": config, "kill_at": kill_at}
    return subprocess.run([sys.executable, "-c", KILLED_PREPARE, json.dumps(arguments)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(SRC)})


@pytest.mark.parametrize("old_checkpoints", ["move_aside", "delete"])
def test_a_kill_at_any_point_of_setting_aside_leaves_a_state_the_next_run_repairs(tmp_path, old_checkpoints):
    config = TRAIN | {"learning_rate": 1.0, "old_checkpoints": old_checkpoints}
    new = record(config)
    uninterrupted = killed_prepare(trained(tmp_path / "uninterrupted"), new, config, kill_at=0)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    interrupted = Counter()
    for kill_at in range(1, int(uninterrupted.stdout) + 1):
        output_dir = trained(tmp_path / f"kill_at_{kill_at}")
        killed = killed_prepare(output_dir, new, config, kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)
        interrupted["move"] += any(output_dir.glob(f"{SET_ASIDE_DIR}/*/{MOVING}"))
        interrupted["deletion"] += any(output_dir.glob(f"{SET_ASIDE_DIR}/{DELETING}*"))

        # the user re-runs the old config: nothing is lost, and what is still in place resumes
        reverted = prepare_output_dir(output_dir, record(), TRAIN)
        assert not list(output_dir.glob(f"{SET_ASIDE_DIR}/*/{MOVING}")), kill_at
        aside = [path for path in output_dir.glob(f"{SET_ASIDE_DIR}/*/checkpoint-*")]
        if old_checkpoints == "move_aside":
            assert sorted(names(output_dir) + [path.name for path in aside]) == [
                "checkpoint-12", "checkpoint-4", "checkpoint-8"], kill_at
            assert all((path.parent / SET_ASIDE_RECORD).exists() for path in aside), kill_at
        assert reverted == (output_dir / "checkpoint-12" if names(output_dir) else None), kill_at

        # the new config again: the same end state as without a kill
        prepare_output_dir(output_dir, new, config)
        assert names(output_dir) == [], kill_at
        assert json.loads((output_dir / PARAMS_FILE).read_text()) == new
        if old_checkpoints == "delete":
            assert set_aside_folders(output_dir) == [], kill_at
        else:
            moved = sorted(path.name for path in output_dir.glob(f"{SET_ASIDE_DIR}/*/checkpoint-*"))
            assert moved == ["checkpoint-12", "checkpoint-4", "checkpoint-8"], kill_at
            for path in output_dir.glob(f"{SET_ASIDE_DIR}/*/checkpoint-*"):
                assert is_complete_checkpoint(path)
                assert (path / "model.safetensors").read_bytes() == f"weights {path.name[11:]}".encode()
    # the kills hit both a move (3 checkpoints, one by one) and, when deleting, a deletion under way
    assert interrupted["move"] >= 3 and (interrupted["deletion"] > 0) == (old_checkpoints == "delete"), interrupted


def test_set_aside_records_list_every_folder_for_the_report(tmp_path):
    run_dir = tmp_path / "run"
    output_dir = trained(run_dir / "first" / "model")
    other = TRAIN | {"learning_rate": 1.0}
    prepare_output_dir(output_dir, record(other), other)
    rows = set_aside_records(run_dir)
    [folder] = set_aside_folders(output_dir)
    assert [row["checkpoint"] for row in rows] == ["checkpoint-4", "checkpoint-8", "checkpoint-12"]
    assert {row["folder"] for row in rows} == {folder.relative_to(run_dir).as_posix()}
    assert all(row["reason"].startswith("trained with other parameters (train.learning_rate: 5e-05 -> 1.0)")
               for row in rows)


# --- the best checkpoint ------------------------------------------------------------------------------------


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


def test_without_validation_scores_no_checkpoint_is_chosen_as_best(tmp_path):
    write_training_outputs(tmp_path, [10, 20], [{"step": 10, "loss": 0.6}, {"step": 20, "loss": 0.5}])
    assert validation_accuracy(tmp_path) == {}
    with pytest.raises(PlasmidlmError, match=r"training_log.tsv: no checkpoint has a validation accuracy"):
        best_checkpoint(tmp_path)


def test_checkpoints_without_validation_scores_are_named_and_left_out(tmp_path, caplog):
    write_training_outputs(tmp_path, [10, 20, 30], [{"step": 10, "eval_accuracy": 0.6}, {"step": 20, "loss": 0.5},
                                                    {"step": 30, "loss": 0.4}])
    assert best_checkpoint(tmp_path) == 10
    assert "checkpoints 20, 30 have no validation accuracy" in caplog.text
