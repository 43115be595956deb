"""Fine-tuning: class balance, exact resume after SIGKILL or SIGTERM, checkpoint hygiene, TensorBoard."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import SchedulerType, Trainer, TrainerCallback

from plasmidlm import PlasmidlmError
from plasmidlm.config import load_schema
from plasmidlm.model import build_or_load
from plasmidlm.io import write_table
from plasmidlm.training import arguments
from plasmidlm.training.arguments import training_arguments
from plasmidlm.training.checkpointing import SET_ASIDE_DIR, TRAINER_STATE, is_complete_checkpoint
from plasmidlm.training.data import (
    EpochSampler,
    EpochTable,
    EpochWindows,
    WindowDataset,
    class_loss_weights,
    make_dataset,
    sampling_weights,
)
from plasmidlm.training.fine_tune import fine_tune
from plasmidlm.training.runs import windows_sha256
from plasmidlm.training.trainer import WindowTrainer

from conftest import SRC, TINY, WINDOW, assert_same_weights, losses, random_windows

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN_DEFAULTS = {key: spec["default"] for key, spec in load_schema()["properties"]["train"]["properties"].items()}
# 48 windows in batches of 8: 6 steps per epoch, 12 steps = 2 epochs, checkpoints at 4, 8 and 12.
RESUME_TRAIN = TRAIN_DEFAULTS | {"batch_size": 8, "eval_batch_size": 16, "max_steps": 12, "save_steps": 4,
                                 "logging_steps": 2, "learning_rate": 1.0e-3}


def windows_table(labels: list[str], seed: int) -> pd.DataFrame:
    return pd.DataFrame({"label": labels, "sequence": random_windows(len(labels), WINDOW, seed)})


TRAIN_WINDOWS = windows_table(["a"] * 36 + ["b"] * 12, seed=1)
VAL_WINDOWS = windows_table(["a", "b"] * 8, seed=2)


def run_fine_tune(output_dir, balance: str) -> dict:
    return fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY),
                     train_config=RESUME_TRAIN | {"balance": balance}, window_length=WINDOW, output_dir=output_dir,
                     seed=3)


def final_weights(output_dir) -> dict:
    return load_file(output_dir / "checkpoint-12" / "model.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted run per balance mode used below: {balance: (output_dir, summary)}."""
    runs = {}
    for balance in ("none", "weighted_sampler"):
        output_dir = tmp_path_factory.mktemp(f"uninterrupted_{balance}")
        runs[balance] = output_dir, run_fine_tune(output_dir, balance)
    return runs


# --- resume -------------------------------------------------------------------------------------------

# Runs fine_tune as `run_fine_tune` does, but hangs in step 5, after checkpoint-4 is written, until killed.
KILLED_RUN = """
import json, sys, time
import pandas as pd, torch
from transformers import Trainer, TrainerCallback
from plasmidlm.training.fine_tune import fine_tune

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
step = Trainer.training_step

def hang_after_first_checkpoint(self, *positional, **keywords):
    if self.state.global_step >= 4:
        time.sleep(600)
    return step(self, *positional, **keywords)

Trainer.training_step = hang_after_first_checkpoint
fine_tune(pd.read_json(args["train"]), pd.read_json(args["val"]), classes=["a", "b"], model_config=args["model"],
          train_config=args["config"], window_length=args["window"], output_dir=args["output_dir"], seed=3)
"""


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, uninterrupted, caplog):
    output_dir = tmp_path / "model"
    (tmp_path / "train.json").write_text(TRAIN_WINDOWS.to_json())
    (tmp_path / "val.json").write_text(VAL_WINDOWS.to_json())
    arguments = {"train": str(tmp_path / "train.json"), "val": str(tmp_path / "val.json"), "model": dict(TINY),
                 "config": RESUME_TRAIN | {"balance": "none"}, "window": WINDOW, "output_dir": str(output_dir),
                 "threads": torch.get_num_threads()}
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, json.dumps(arguments)],
                               env={**os.environ, "PYTHONPATH": str(SRC)}, stderr=subprocess.PIPE, text=True)
    state = output_dir / "checkpoint-4" / TRAINER_STATE
    deadline = time.monotonic() + 120
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    _, stderr = process.communicate()
    assert process.returncode == -signal.SIGKILL, stderr[-3000:]
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == ["checkpoint-4"]
    # As if the kill had also hit the save of checkpoint-8: weights half-written, no trainer state yet.
    (output_dir / "checkpoint-8").mkdir()
    (output_dir / "checkpoint-8" / "model.safetensors").write_bytes(b"\0" * 100)

    caplog.set_level(logging.INFO)
    summary = run_fine_tune(output_dir, "none")

    assert any("set aside checkpoint-8: half-written" in message for message in caplog.messages)
    assert any("resuming from checkpoint-4" in message for message in caplog.messages)
    [aside] = (output_dir / SET_ASIDE_DIR).iterdir()
    assert (aside / "checkpoint-8" / "model.safetensors").read_bytes() == b"\0" * 100
    assert summary["checkpoints"] == [4, 8, 12]
    reference_dir, reference = uninterrupted["none"]
    assert_same_weights(final_weights(output_dir), final_weights(reference_dir))
    assert losses(summary) == pytest.approx(losses(reference), abs=1e-6)


TRAINING_STEP = Trainer.training_step


def sigterm_in_step_10(self, *positional, **keywords):
    """Trainer.training_step, sending this process SIGTERM as step 10 begins."""
    if self.state.global_step == 9:
        os.kill(os.getpid(), signal.SIGTERM)
    return TRAINING_STEP(self, *positional, **keywords)


def test_sigterm_stops_after_the_current_step_and_the_run_resumes_exactly(tmp_path, monkeypatch, uninterrupted):
    output_dir = tmp_path / "model"
    handler = signal.getsignal(signal.SIGTERM)
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "training_step", sigterm_in_step_10)
        with pytest.raises(PlasmidlmError, match="stopped by SIGTERM after step 10 of 12; re-run to resume "
                                                 "from checkpoint-8"):
            run_fine_tune(output_dir, "weighted_sampler")
    assert signal.getsignal(signal.SIGTERM) == handler
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-8"]

    summary = run_fine_tune(output_dir, "weighted_sampler")  # resumes in epoch 2: tests the per-epoch draws

    assert summary["checkpoints"] == [4, 8, 12]
    reference_dir, reference = uninterrupted["weighted_sampler"]
    assert_same_weights(final_weights(output_dir), final_weights(reference_dir))
    assert losses(summary) == pytest.approx(losses(reference), abs=1e-6)


def two_sigterms_in_step_10(self, *positional, **keywords):
    """Trainer.training_step, sending this process SIGTERM twice as step 10 begins, as Slurm does at a time limit."""
    if self.state.global_step == 9:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
    return TRAINING_STEP(self, *positional, **keywords)


def test_repeated_sigterms_stop_after_the_current_step_as_one_does(tmp_path, monkeypatch):
    reached = []
    previous = signal.signal(signal.SIGTERM, lambda *_: reached.append("the handler before training"))
    try:
        with monkeypatch.context() as patch:
            patch.setattr(Trainer, "training_step", two_sigterms_in_step_10)
            with pytest.raises(PlasmidlmError, match="stopped by SIGTERM after step 10 of 12"):
                run_fine_tune(tmp_path / "model", "none")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert reached == []


def test_rerun_of_a_finished_run_trains_nothing(tmp_path, uninterrupted):
    reference_dir, reference = uninterrupted["none"]
    output_dir = shutil.copytree(reference_dir, tmp_path / "model")
    summary = run_fine_tune(output_dir, "none")
    assert summary["checkpoints"] == [4, 8, 12]
    assert losses(summary) == losses(reference)
    assert_same_weights(final_weights(output_dir), final_weights(reference_dir))


def test_rerun_of_a_run_finished_mid_epoch_trains_nothing(tmp_path):
    config = RESUME_TRAIN | {"balance": "none", "max_steps": 10}  # 6 steps per epoch: ends in the second
    first = fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY), train_config=config,
                      window_length=WINDOW, output_dir=tmp_path, seed=3)
    weights = load_file(tmp_path / "checkpoint-10" / "model.safetensors")
    again = fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY), train_config=config,
                      window_length=WINDOW, output_dir=tmp_path, seed=3)
    assert first["checkpoints"] == again["checkpoints"] == [4, 8, 10]
    assert losses(again) == losses(first)
    assert [entry for entry in again["log_history"] if "eval_accuracy" in entry] == [
        entry for entry in first["log_history"] if "eval_accuracy" in entry]
    assert_same_weights(load_file(tmp_path / "checkpoint-10" / "model.safetensors"), weights)


def checkpoint_files(directory) -> dict:
    """{relative path: (inode, mtime)} of every file of every checkpoint: equal only if none was rewritten."""
    return {str(path.relative_to(directory)): (path.stat().st_ino, path.stat().st_mtime_ns)
            for path in sorted(directory.glob("checkpoint-*/**/*")) if path.is_file()}


def test_keys_that_do_not_change_the_trajectory_give_the_same_weights(tmp_path, uninterrupted):
    """Why logging_steps and eval_batch_size are in runs.NEUTRAL_KEYS (save_steps is not: see there)."""
    summary = fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY),
                        train_config=RESUME_TRAIN | {"balance": "none", "logging_steps": 3, "eval_batch_size": 5},
                        window_length=WINDOW, output_dir=tmp_path, seed=3)
    reference_dir, reference = uninterrupted["none"]
    assert_same_weights(final_weights(tmp_path), final_weights(reference_dir))
    assert summary["checkpoints"] == reference["checkpoints"]


def test_rerun_with_other_logging_steps_keeps_every_checkpoint_and_trains_nothing(tmp_path, uninterrupted, caplog):
    reference_dir, reference = uninterrupted["none"]
    output_dir = shutil.copytree(reference_dir, tmp_path / "model")
    before = checkpoint_files(output_dir)
    caplog.set_level(logging.INFO)
    summary = fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY),
                        train_config=RESUME_TRAIN | {"balance": "none", "logging_steps": 3, "eval_batch_size": 5},
                        window_length=WINDOW, output_dir=output_dir, seed=3)
    assert checkpoint_files(output_dir) == before
    assert not (output_dir / SET_ASIDE_DIR).exists()
    assert any("resuming from checkpoint-12" in message for message in caplog.messages)
    assert summary["checkpoints"] == [4, 8, 12] and losses(summary) == losses(reference)


def test_run_with_another_learning_rate_sets_the_old_checkpoints_aside(tmp_path, uninterrupted, caplog):
    reference_dir, _ = uninterrupted["none"]
    output_dir = shutil.copytree(reference_dir, tmp_path / "model")
    caplog.set_level(logging.INFO)
    summary = fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY),
                        train_config=RESUME_TRAIN | {"balance": "none", "learning_rate": 2.0e-3}, window_length=WINDOW,
                        output_dir=output_dir, seed=3)
    [aside] = (output_dir / SET_ASIDE_DIR).iterdir()
    assert sorted(path.name for path in aside.glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-4",
                                                                         "checkpoint-8"]
    assert_same_weights(final_weights(aside), final_weights(reference_dir))
    assert any("train.learning_rate: 0.001 -> 0.002" in message for message in caplog.messages)
    assert summary["checkpoints"] == [4, 8, 12]  # trained anew; the set-aside ones are not this run's
    assert (final_weights(output_dir)["classifier.weight"] != final_weights(aside)["classifier.weight"]).any()


# 48 windows in batches of 8 with a constant learning rate: 8 steps, then extended to 12.
CONSTANT = RESUME_TRAIN | {"balance": "none", "lr_scheduler": "constant"}


def test_longer_run_with_a_constant_schedule_continues_exactly(tmp_path, caplog):
    reference_dir = tmp_path / "reference"
    reference = fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY),
                          train_config=CONSTANT, window_length=WINDOW, output_dir=reference_dir, seed=3)
    output_dir = tmp_path / "model"
    fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY),
              train_config=CONSTANT | {"max_steps": 8}, window_length=WINDOW, output_dir=output_dir, seed=3)
    before = checkpoint_files(output_dir)
    caplog.set_level(logging.INFO)
    summary = fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY), train_config=CONSTANT,
                        window_length=WINDOW, output_dir=output_dir, seed=3)
    assert any("the total steps changed from 8 to 12; the constant learning-rate schedule does not depend on it"
               in message for message in caplog.messages)
    assert any("resuming from checkpoint-8" in message for message in caplog.messages)
    assert summary["checkpoints"] == [4, 8, 12]
    assert {path: stat for path, stat in checkpoint_files(output_dir).items() if path in before} == before
    assert_same_weights(final_weights(output_dir), final_weights(reference_dir))
    assert losses(summary) == pytest.approx(losses(reference), abs=1e-6)


def test_longer_run_with_a_linear_schedule_continues_only_when_asked(tmp_path, uninterrupted, caplog):
    reference_dir, _ = uninterrupted["none"]
    longer = RESUME_TRAIN | {"balance": "none", "max_steps": 16}
    output_dir = shutil.copytree(reference_dir, tmp_path / "asked" / "model")
    before = checkpoint_files(output_dir)
    caplog.set_level(logging.INFO)
    summary = fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY),
                        train_config=longer | {"continue_from_last": True, "logging_steps": 1}, window_length=WINDOW,
                        output_dir=output_dir, seed=3)
    assert any("train.continue_from_last is set, so the run continues from checkpoint-12" in message
               for message in caplog.messages)
    assert summary["checkpoints"] == [4, 8, 12, 16]
    assert list(losses(summary)) == [2, 4, 6, 8, 10, 12, 13, 14, 15, 16]  # the new logging_steps after resuming
    assert {path: stat for path, stat in checkpoint_files(output_dir).items() if path in before} == before

    output_dir = shutil.copytree(reference_dir, tmp_path / "not_asked" / "model")
    caplog.clear()
    summary = fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY), train_config=longer,
                        window_length=WINDOW, output_dir=output_dir, seed=3)
    assert any("the total steps changed from 12 to 16 and the learning rate of the linear schedule at every step "
               "depends on the total steps; set train.continue_from_last: true" in message
               for message in caplog.messages)
    [aside] = (output_dir / SET_ASIDE_DIR).iterdir()
    assert_same_weights(final_weights(aside), final_weights(reference_dir))
    assert summary["checkpoints"] == [4, 8, 12, 16]


# --- class balance ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imbalanced():
    """A tiny model and 100 training windows, 90 of class a and 10 of class b."""
    model, tokenizer = build_or_load(dict(TINY), WINDOW, ["a", "b"], seed=0)
    dataset = make_dataset(windows_table(["a"] * 90 + ["b"] * 10, seed=4), tokenizer, model.config.plasmidlm,
                           ["a", "b"])
    return model, tokenizer, dataset


def make_trainer(imbalanced, tmp_path, balance: str) -> WindowTrainer:
    model, tokenizer, dataset = imbalanced
    arguments = training_arguments(TRAIN_DEFAULTS | {"batch_size": 10}, tmp_path, seed=5)
    return WindowTrainer(model=model, args=arguments, train_dataset=dataset, eval_dataset=dataset,
                         processing_class=tokenizer, balance=balance)


def test_balance_weights():
    labels = torch.tensor([0] * 90 + [1] * 10)
    torch.testing.assert_close(sampling_weights(labels)[[0, -1]], torch.tensor([1 / 90, 1 / 10], dtype=torch.float64))
    torch.testing.assert_close(class_loss_weights(torch.bincount(labels)),
                               torch.tensor([100 / (2 * 90), 100 / (2 * 10)]))
    torch.testing.assert_close(class_loss_weights(torch.tensor([2, 2])), torch.ones(2))
    torch.testing.assert_close(class_loss_weights(torch.tensor([2, 0, 0])), torch.tensor([2 / 6, 2 / 3, 2 / 3]))


def epoch_labels(trainer: WindowTrainer, epoch: int) -> torch.Tensor:
    loader = trainer.get_train_dataloader()
    loader.set_epoch(epoch)
    return torch.cat([batch["labels"] for batch in loader])


def test_weighted_sampler_draws_classes_about_equally_and_is_seeded_per_epoch(imbalanced, tmp_path):
    trainer = make_trainer(imbalanced, tmp_path, "weighted_sampler")
    assert isinstance(trainer._get_train_sampler(), EpochSampler)
    labels = epoch_labels(trainer, 0)
    assert len(labels) == 100
    assert 0.35 <= labels.float().mean() <= 0.65  # class b: 10% of the windows, about half of the draws
    both_epochs = torch.cat([labels, epoch_labels(trainer, 1)])
    assert 0.4 <= both_epochs.float().mean() <= 0.6
    assert torch.equal(epoch_labels(trainer, 0), labels)
    assert torch.equal(epoch_labels(make_trainer(imbalanced, tmp_path, "weighted_sampler"), 1), both_epochs[100:])


def test_no_balance_keeps_the_plain_trainer(imbalanced, tmp_path):
    trainer = make_trainer(imbalanced, tmp_path, "none")
    _, _, dataset = imbalanced
    plain = Trainer(model=imbalanced[0], args=trainer.args, train_dataset=dataset, eval_dataset=dataset)
    assert type(trainer._get_train_sampler()) is type(plain._get_train_sampler())
    assert torch.equal(epoch_labels(trainer, 0).sort().values, dataset.labels.sort().values)
    assert trainer.class_weights is None
    batch = trainer.data_collator([dataset[index] for index in range(10)])
    torch.manual_seed(0)
    loss = trainer.compute_loss(trainer.model.train(), dict(batch))
    torch.manual_seed(0)
    assert torch.equal(loss, trainer.model(**batch).loss)


def test_class_weights_loss_is_weighted_cross_entropy(imbalanced, tmp_path):
    trainer = make_trainer(imbalanced, tmp_path, "class_weights")
    dataset = imbalanced[2]
    rows = list(range(85, 95))  # 5 windows of class a, 5 of class b
    batch = trainer.data_collator([dataset[index] for index in rows])
    model = trainer.model.train()
    torch.manual_seed(0)  # the same dropout in both forward passes
    loss = trainer.compute_loss(model, dict(batch))
    torch.manual_seed(0)
    logits = model(**{key: value for key, value in batch.items() if key != "labels"}).logits
    weights = torch.tensor([100 / (2 * 90), 100 / (2 * 10)])[batch["labels"]]
    log_p = torch.log_softmax(logits, dim=-1)[torch.arange(10), batch["labels"]]
    torch.testing.assert_close(loss, -(weights * log_p).sum() / weights.sum())
    with torch.no_grad():
        model.eval()
        plain = trainer.compute_loss(model, dict(batch))
        torch.testing.assert_close(plain, model(**batch).loss)  # the validation loss stays unweighted
    model.train()


def test_unknown_balance_mode_is_an_error(imbalanced, tmp_path):
    with pytest.raises(PlasmidlmError, match="train.balance: unknown mode 'oversample'"):
        make_trainer(imbalanced, tmp_path, "oversample")


# --- settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("installed, report_to", [(True, ["tensorboard"]), (False, [])])
def test_tensorboard_only_when_installed(tmp_path, monkeypatch, installed, report_to):
    monkeypatch.setattr(arguments, "is_tensorboard_available", lambda: installed)
    assert training_arguments(TRAIN_DEFAULTS, tmp_path, seed=0).report_to == report_to


def test_training_arguments_follow_the_config(tmp_path):
    config = TRAIN_DEFAULTS | {"max_steps": 30, "save_steps": 10, "warmup_ratio": 0.2, "lr_scheduler": "cosine"}
    arguments = training_arguments(config, tmp_path, seed=7)
    assert arguments.max_steps == 30 and arguments.save_steps == arguments.eval_steps == 10
    assert arguments.get_warmup_steps(30) == 6
    assert SchedulerType(arguments.lr_scheduler_type) is SchedulerType.COSINE  # an enum in transformers 5.0, a string later
    assert arguments.optim == "adamw_torch_fused"
    assert arguments.seed == 7 and arguments.save_total_limit is None and not arguments.ignore_data_skip
    assert arguments.bf16 + arguments.fp16 == torch.cuda.is_available()  # one of them on a GPU, neither on a CPU
    assert not arguments.logging_nan_inf_filter and not arguments.torch_compile  # no host sync at every step
    assert training_arguments(config | {"compile": True}, tmp_path, seed=7).torch_compile
    assert arguments.ddp_find_unused_parameters and not arguments.average_tokens_across_devices
    assert not training_arguments(config, tmp_path, seed=7, all_parameters_used=True).ddp_find_unused_parameters


def fake_gpu(monkeypatch, name: str, capability: tuple[int, int]) -> None:
    """A CUDA device as torch describes it; torch's is_bf16_supported() says True as it does where bf16 is only
    emulated (compute capability 7.x), so that a choice made from it would show."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


@pytest.mark.parametrize("name, capability, bf16, fp16", [
    ("NVIDIA H100", (9, 0), True, False), ("NVIDIA A100", (8, 0), True, False),
    ("Tesla T4", (7, 5), False, True), ("Tesla V100", (7, 0), False, True), ("Tesla P100", (6, 0), False, False)])
def test_gpu_settings_precision_tf32_and_collating_workers(monkeypatch, caplog, name, capability, bf16, fp16):
    fake_gpu(monkeypatch, name, capability)
    caplog.set_level(logging.INFO, logger="plasmidlm")
    settings = arguments.device_settings(cuda=True)
    assert (settings["bf16"], settings["fp16"]) == (bf16, fp16)
    precision = "bf16" if bf16 else "fp16" if fp16 else "fp32"
    assert f"{name} (compute capability {capability[0]}.{capability[1]}): {precision}" in caplog.messages
    assert settings["tf32"] == (True if capability >= (8, 0) else None)  # None: TF32 left as torch has it
    assert settings["dataloader_num_workers"] == arguments.GPU_DATALOADER_WORKERS > 0
    assert settings["dataloader_pin_memory"] and settings["dataloader_persistent_workers"]
    masking = arguments.device_settings(cuda=True, random_collator=True)
    assert masking["dataloader_num_workers"] == 0 and not masking["dataloader_persistent_workers"]
    per_epoch = arguments.device_settings(cuda=True, data_per_epoch=True)
    assert per_epoch["dataloader_num_workers"] > 0 and not per_epoch["dataloader_persistent_workers"]
    assert arguments.device_settings(cuda=False) == {"use_cpu": True, "bf16": False, "fp16": False}


# --- fresh windows every epoch ---------------------------------------------------------------------------


def row_windows(table: pd.DataFrame, loaded: list | None = None) -> EpochWindows:
    """EpochWindows of `table` (label a/b, epoch) whose one token per window is its row in the table; `loaded`
    collects the blocks loaded."""
    epochs = EpochTable.of_frame(table.assign(row=np.arange(len(table))))

    def load(block):
        rows = epochs.read(block)
        if loaded is not None:
            loaded.append(block)
        return WindowDataset(rows["row"].to_numpy(np.int32), np.arange(len(rows) + 1),
                             rows["label"].map({"a": 0, "b": 1}).to_numpy())

    return EpochWindows(epochs, ["a", "b"], load)


def drawn_rows(blocks: np.ndarray, labels: np.ndarray, seed: int, epoch: int, weighted: bool) -> list[int]:
    """The rows an epoch trains on, computed as the sampler did when every epoch's windows were held at once:
    indices into the whole table."""
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    members = np.flatnonzero(blocks == np.unique(blocks)[epoch % len(np.unique(blocks))])
    length = np.bincount(blocks).min()
    if weighted:
        counts = np.bincount(labels[members])
        weights = torch.tensor(1.0 / counts[labels[members]])
        order = torch.multinomial(weights, int(length), replacement=True, generator=generator)
    else:
        order = torch.randperm(len(members), generator=generator)[:length]
    return members[order.numpy()].tolist()


@pytest.mark.parametrize("weighted", [False, True])
def test_epoch_sampler_draws_each_epochs_block_as_when_all_epochs_were_held(weighted):
    blocks = np.repeat([0, 1, 2], [10, 12, 10])
    labels = np.array(([0] * 8 + [1] * 2) + ([0] * 6 + [1] * 6) + ([1] * 3 + [0] * 7))
    table = pd.DataFrame({"label": np.where(labels == 1, "b", "a"), "sequence": "ACGT", "epoch": blocks})
    loaded = []
    windows = row_windows(table, loaded)
    sampler = EpochSampler(windows, seed=7, weighted=weighted)
    assert len(sampler) == 10
    for epoch in range(5):
        sampler.set_epoch(epoch)
        sampler.set_epoch(epoch)  # the Trainer and accelerate may both set it
        rows = [int(windows[index]["input_ids"][0]) for index in sampler]
        assert rows == drawn_rows(blocks, labels, seed=7, epoch=epoch, weighted=weighted)
    assert loaded == [0, 1, 2, 0, 1]  # one load per epoch
    resumed = EpochSampler(row_windows(table), seed=7, weighted=weighted)
    resumed.set_epoch(3)
    assert [int(resumed.windows[index]["input_ids"][0]) for index in resumed] == drawn_rows(
        blocks, labels, seed=7, epoch=3, weighted=weighted)


def test_epoch_windows_hold_one_epochs_windows_at_a_time():
    table = pd.DataFrame({"label": ["a", "b"] * 15, "sequence": "ACGT", "epoch": np.repeat([0, 1, 2], 10)})
    windows = row_windows(table)
    windows.set_epoch(0)
    first = weakref.ref(windows.windows)
    assert len(windows.labels) == 10
    windows.set_epoch(1)
    assert first() is None  # released: only epoch 1's windows are held
    assert [int(windows[index]["input_ids"][0]) for index in range(10)] == list(range(10, 20))
    assert windows.class_counts(2).tolist() == [15, 15]  # class weights count every epoch's windows


def test_epoch_table_reads_one_epoch_from_a_file_in_pieces(tmp_path):
    table = pd.DataFrame({"label": ["a", "b", "b"] * 10, "sequence": random_windows(30, 8, seed=5),
                          "epoch": np.repeat([0, 1, 2], 10)})
    write_table(table, tmp_path / "windows.tsv.gz")
    pieces_read = []

    def pieces():
        for piece in pd.read_csv(tmp_path / "windows.tsv.gz", sep="\t", chunksize=4):
            pieces_read.append(len(piece))
            yield piece

    epochs = EpochTable(pieces)
    assert epochs.blocks == [0, 1, 2] and epochs.sizes == [10, 10, 10] and epochs.ordered
    assert epochs.sha256 == windows_sha256(table)
    assert epochs.label_counts == {"a": 10, "b": 20}
    pieces_read.clear()
    pd.testing.assert_frame_equal(epochs.read(1), table.iloc[10:20].reset_index(drop=True))
    assert sum(pieces_read) == 24  # stops at the piece past epoch 1
    shuffled = EpochTable.of_frame(table.sample(frac=1, random_state=0))
    assert not shuffled.ordered
    assert sorted(shuffled.read(1)["sequence"]) == sorted(table["sequence"][10:20])


def test_fine_tune_with_fresh_windows_trains_each_epoch_on_its_own_block(tmp_path, caplog):
    blocks = pd.concat([TRAIN_WINDOWS.assign(epoch=0), windows_table(["a"] * 36 + ["b"] * 12, seed=9).assign(epoch=1)],
                       ignore_index=True)
    caplog.set_level(logging.INFO)
    summary = fine_tune(blocks, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY),
                        train_config=RESUME_TRAIN | {"max_steps": None, "epochs": 2, "save_steps": 6},
                        window_length=WINDOW, output_dir=tmp_path, seed=3)
    assert summary["steps_per_epoch"] == 6 and summary["total_steps"] == 12 and summary["checkpoints"] == [6, 12]
    assert any("fresh training windows every epoch: 48 windows in each of 2 epoch(s)" in m for m in caplog.messages)


# --- checkpoints written in the background ---------------------------------------------------------------------


def window_trainer(output_dir, background: bool, callbacks=()) -> WindowTrainer:
    """The trainer of `run_fine_tune` (balance none), on a fresh model, with or without background writes."""
    model, tokenizer = build_or_load(dict(TINY), WINDOW, ["a", "b"], seed=3)
    datasets = [make_dataset(table, tokenizer, model.config.plasmidlm, ["a", "b"])
                for table in (TRAIN_WINDOWS, VAL_WINDOWS)]
    return WindowTrainer(model=model, args=training_arguments(RESUME_TRAIN, output_dir, seed=3),
                         train_dataset=datasets[0], eval_dataset=datasets[1], processing_class=tokenizer,
                         callbacks=list(callbacks), background_checkpoints=background)


@pytest.fixture(scope="module")
def foreground_and_background(tmp_path_factory):
    directories = {}
    for background in (False, True):
        directories[background] = tmp_path_factory.mktemp(f"background_{background}")
        window_trainer(directories[background], background).train()
    return directories


def test_background_checkpoints_hold_what_foreground_ones_hold(foreground_and_background):
    foreground, background = foreground_and_background[False], foreground_and_background[True]
    for step in (4, 8, 12):
        expected, actual = foreground / f"checkpoint-{step}", background / f"checkpoint-{step}"
        assert sorted(path.name for path in actual.iterdir()) == sorted(path.name for path in expected.iterdir())
        assert (actual / "model.safetensors").read_bytes() == (expected / "model.safetensors").read_bytes()
        for name in ("optimizer.pt", "scheduler.pt"):
            torch.testing.assert_close(torch.load(actual / name), torch.load(expected / name), rtol=0, atol=0)
        states = [json.loads((directory / TRAINER_STATE).read_text()) for directory in (expected, actual)]
        assert states[0]["global_step"] == states[1]["global_step"] == step
        assert [entry.get("loss") for entry in states[0]["log_history"]] == \
               [entry.get("loss") for entry in states[1]["log_history"]]


def test_a_background_checkpoint_is_complete_only_once_written_while_training_goes_on(tmp_path, monkeypatch):
    release, seen = threading.Event(), {}
    save = torch.save

    def held_optimizer_write(state, path, *positional, **keywords):
        if str(path).endswith(os.path.join("checkpoint-4", "optimizer.pt")):
            assert release.wait(120)
        return save(state, path, *positional, **keywords)

    class LookAtCheckpoint4(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 6:
                seen["complete at step 6"] = is_complete_checkpoint(tmp_path / "checkpoint-4")
                release.set()

    monkeypatch.setattr(torch, "save", held_optimizer_write)
    window_trainer(tmp_path, background=True, callbacks=[LookAtCheckpoint4()]).train()
    assert seen == {"complete at step 6": False}
    assert all(is_complete_checkpoint(tmp_path / f"checkpoint-{step}") for step in (4, 8, 12))


def test_a_run_resumes_exactly_from_a_background_checkpoint(foreground_and_background, tmp_path):
    shutil.copytree(foreground_and_background[True] / "checkpoint-4", tmp_path / "checkpoint-4")
    window_trainer(tmp_path, background=True).train(resume_from_checkpoint=str(tmp_path / "checkpoint-4"))
    assert_same_weights(final_weights(tmp_path), final_weights(foreground_and_background[True]))


# Two epochs' blocks of 48 windows, 6 steps per epoch: 18 steps train blocks 0, 1 and 0 again.
FRESH_WINDOWS = pd.concat([TRAIN_WINDOWS.assign(epoch=0),
                           windows_table(["a"] * 36 + ["b"] * 12, seed=9).assign(epoch=1)], ignore_index=True)
FRESH_TRAIN = RESUME_TRAIN | {"max_steps": 18, "balance": "weighted_sampler"}


def fresh_run(output_dir, patch) -> tuple[dict, dict]:
    """fine_tune on FRESH_WINDOWS, recording each step's input ids and windows held, and each table read."""
    seen = {"batches": [], "held": [], "reads": []}
    step, read = Trainer.training_step, EpochTable.read

    def recording_step(self, model, inputs, *positional):
        seen["batches"].append(inputs["input_ids"].clone())
        seen["held"].append(len(self.train_dataset.windows.labels))
        return step(self, model, inputs, *positional)

    def recording_read(self, block):
        rows = read(self, block)
        seen["reads"].append((block, len(rows)))
        return rows

    patch.setattr(Trainer, "training_step", recording_step)
    patch.setattr(EpochTable, "read", recording_read)
    return fine_tune(FRESH_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY), train_config=FRESH_TRAIN,
                     window_length=WINDOW, output_dir=output_dir, seed=3), seen


@pytest.fixture(scope="module")
def uninterrupted_fresh(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("uninterrupted_fresh")
    with pytest.MonkeyPatch.context() as patch:
        summary, seen = fresh_run(output_dir, patch)
    return output_dir, summary, seen


def test_fresh_windows_train_on_the_batches_of_all_epochs_held_at_once_holding_one_epoch(uninterrupted_fresh):
    _, summary, seen = uninterrupted_fresh
    assert summary["steps_per_epoch"] == 6 and summary["checkpoints"] == [4, 8, 12, 16, 18]
    model, tokenizer = build_or_load(dict(TINY), WINDOW, ["a", "b"], seed=3)
    every_epoch = make_dataset(FRESH_WINDOWS, tokenizer, model.config.plasmidlm, ["a", "b"])  # all at once
    blocks, labels = FRESH_WINDOWS["epoch"].to_numpy(), every_epoch.labels.numpy()
    expected = []
    for epoch in range(3):
        rows = drawn_rows(blocks, labels, seed=3, epoch=epoch, weighted=True)
        expected += [torch.from_numpy(np.stack([every_epoch[row]["input_ids"] for row in rows[start:start + 8]]))
                     for start in range(0, 48, 8)]
    assert len(seen["batches"]) == 18
    for batch, expected_batch in zip(seen["batches"], expected):
        assert torch.equal(batch, expected_batch.long())
    assert set(seen["held"]) == {48}  # one epoch's windows, never both blocks' 96
    assert seen["reads"] == [(0, 48), (0, 48), (1, 48), (0, 48)]  # the checks' sample, then one read per epoch


def test_fresh_windows_resume_mid_epoch_exactly(tmp_path, monkeypatch, uninterrupted_fresh):
    """Stopped in step 10 (epoch 1, block 1), resumed from checkpoint-8: the skipped batches are not loaded and
    the rest matches the uninterrupted run."""
    output_dir = tmp_path / "model"
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "training_step", sigterm_in_step_10)
        with pytest.raises(PlasmidlmError, match="stopped by SIGTERM after step 10 of 18"):
            fine_tune(FRESH_WINDOWS, VAL_WINDOWS, classes=["a", "b"], model_config=dict(TINY),
                      train_config=FRESH_TRAIN, window_length=WINDOW, output_dir=output_dir, seed=3)
    summary, seen = fresh_run(output_dir, monkeypatch)

    reference_dir, reference, reference_seen = uninterrupted_fresh
    assert summary["checkpoints"] == [4, 8, 12, 16, 18]
    assert len(seen["batches"]) == 10
    for batch, expected in zip(seen["batches"], reference_seen["batches"][8:]):
        assert torch.equal(batch, expected)
    assert seen["reads"] == [(0, 48), (1, 48), (0, 48)]
    assert_same_weights(load_file(output_dir / "checkpoint-18" / "model.safetensors"),
                        load_file(reference_dir / "checkpoint-18" / "model.safetensors"))
    assert losses(summary) == pytest.approx(losses(reference), abs=1e-6)


def test_fresh_windows_reach_data_loader_workers(tmp_path, monkeypatch, uninterrupted_fresh):
    """With the GPU's collating workers (started anew each epoch: a worker holds the dataset it started with),
    the batches are those of the run without workers."""
    fake_gpu(monkeypatch, "NVIDIA H100", (9, 0))
    gpu_settings = arguments.device_settings

    def cpu_with_gpu_workers(cuda, random_collator=False, data_per_epoch=False):
        settings = gpu_settings(True, random_collator, data_per_epoch)
        return {"use_cpu": True, "bf16": False, "fp16": False,
                **{key: settings[key] for key in ("dataloader_num_workers", "dataloader_persistent_workers")}}

    monkeypatch.setattr(arguments, "device_settings", cpu_with_gpu_workers)
    summary, seen = fresh_run(tmp_path, monkeypatch)
    _, reference, reference_seen = uninterrupted_fresh
    assert len(seen["batches"]) == 18
    for batch, expected in zip(seen["batches"], reference_seen["batches"]):
        assert torch.equal(batch, expected)
    assert losses(summary) == pytest.approx(losses(reference), abs=1e-6)



# Private methods of the project's trainers that transformers' Trainer does not have
OWN_PRIVATE_METHODS = {"_submit", "_deferred_state_json"}


@pytest.mark.parametrize("trainer_class", ["CheckpointTrainer", "WindowTrainer"])
def test_overridden_private_trainer_methods_exist_in_the_installed_transformers(trainer_class):
    """The project overrides private methods of transformers' Trainer (pyproject.toml bounds transformers for
    this): one that a release renamed or whose parameters changed would silently no longer be called."""
    import inspect

    from transformers import Trainer

    from plasmidlm.training import trainer as trainer_module

    cls = getattr(trainer_module, trainer_class)
    overridden = [name for name, member in vars(cls).items() if name.startswith("_") and not name.startswith("__")
                  and callable(member) and name not in OWN_PRIVATE_METHODS]
    assert overridden
    for name in overridden:
        assert hasattr(Trainer, name), f"transformers' Trainer has no {name} any more"
        assert list(inspect.signature(getattr(cls, name)).parameters) == \
            list(inspect.signature(getattr(Trainer, name)).parameters), name
