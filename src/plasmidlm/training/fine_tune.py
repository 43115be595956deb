"""Fine-tuning a sequence classifier on windows with the Hugging Face Trainer: `fine_tune`."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch

from plasmidlm import PlasmidlmError
from plasmidlm.model import BUILTIN, build_or_load, is_lora_model, lora_description, parameter_counts
from plasmidlm.training import distributed
from plasmidlm.training.arguments import training_arguments
from plasmidlm.training.checkpointing import prepare_output_dir
from plasmidlm.training.data import (
    TOKENS_FILE,
    EpochTable,
    EpochWindows,
    WindowDataset,
    make_dataset,
    sample_for_checks,
)
from plasmidlm.training.runs import run_record, schedule, windows_sha256
from plasmidlm.training.trainer import (
    ProgressLog,
    StopOnSigterm,
    WindowTrainer,
    accuracy_metric,
    run_until_done_or_sigterm,
)

EPOCH_TOKENS_FILE = ".tokens-block{block}.pt"  # as data.TOKENS_FILE, for one epoch's block of fresh windows

logger = logging.getLogger(__name__)


def fine_tune(
    train_windows: pd.DataFrame | EpochTable,
    val_windows: pd.DataFrame,
    *,
    classes: list[str],
    model_config: dict,
    train_config: dict,
    window_length: int,
    output_dir: str | Path,
    seed: int,
) -> dict:
    """Fine-tune a classifier; every checkpoint lands in `output_dir/checkpoint-<step>` as an HF directory.

    `train_windows`: label and sequence of each window, or fresh windows every epoch (an `epoch` column, or an
    `EpochTable`), of which only the epoch being trained is held and tokenized (`EpochWindows`).
    Validation on `val_windows` runs at the checkpoint cadence. Checkpoints already in `output_dir` that this
    run can use (`checkpointing.prepare_output_dir`: same trajectory, or a length the schedule allows to continue)
    are kept and the run resumes from the last one, exactly: weights, optimizer, scheduler, RNG and data order;
    the others are set aside. SIGTERM ends the run after the current step with a PlasmidlmError. Returns a summary with
    the schedule, the checkpoint steps and the trainer's log history.
    """
    output_dir = Path(output_dir)
    if isinstance(train_windows, pd.DataFrame) and "epoch" in train_windows.columns:
        train_windows = EpochTable.of_frame(train_windows)
    fresh = isinstance(train_windows, EpochTable)
    model, tokenizer = _model_for(train_windows, classes=classes, model_config=model_config,
                                  window_length=window_length, seed=seed)
    windows_per_epoch = min(train_windows.sizes) if fresh else len(train_windows)
    plan = schedule(windows_per_epoch, batch_size=train_config["batch_size"], epochs=train_config["epochs"],
                    max_steps=train_config.get("max_steps"), save_steps=train_config["save_steps"])
    trainable, n_params = parameter_counts(model)
    _log_plan(model, parameters=(trainable, n_params), model_config=model_config, classes=classes,
              train_windows=train_windows, windows_per_epoch=windows_per_epoch, plan=plan,
              val_windows=len(val_windows), train_config=train_config)
    record = run_record("train", train_config, plan["total_steps"], model=model_config, window_length=window_length,
                        seed=seed, classes=classes, steps_per_epoch=plan["steps_per_epoch"],
                        train_windows_sha256=train_windows.sha256 if fresh else windows_sha256(train_windows),
                        val_windows_sha256=windows_sha256(val_windows))
    resume_from = distributed.main_then_shared(lambda: prepare_output_dir(output_dir, record, train_config))
    train_dataset, eval_dataset = _datasets(train_windows, val_windows, tokenizer=tokenizer,
                                            metadata=model.config.plasmidlm, classes=classes, output_dir=output_dir)
    stop = StopOnSigterm()
    trainer = WindowTrainer(
        model=model,
        args=training_arguments(train_config | {"batch_size": _per_process_batch(train_config)}, output_dir,
                                seed=seed, all_parameters_used=model_config["name_or_path"] == BUILTIN,
                                data_per_epoch=fresh),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        compute_metrics=accuracy_metric,
        callbacks=[ProgressLog(), stop],
        balance=train_config["balance"],
    )
    steps = run_until_done_or_sigterm(trainer, stop, resume_from=resume_from, step_name="train",
                                      total_steps=plan["total_steps"])
    return {**plan, "checkpoints": steps, "parameters": n_params, "trainable_parameters": trainable,
            "log_history": trainer.state.log_history}


def _model_for(train_windows: pd.DataFrame | EpochTable, *, classes: list[str], model_config: dict,
               window_length: int, seed: int) -> tuple:
    """The model and tokenizer, after checking that every training label is one of `classes`."""
    fresh = isinstance(train_windows, EpochTable)
    unknown = sorted(set(train_windows.label_counts if fresh else train_windows["label"]) - set(classes))
    if unknown:
        raise PlasmidlmError(f"train: training windows have label(s) outside the classes: {unknown}")
    # with fresh windows every epoch, the checks sample the first epoch's windows
    sequences = train_windows.read(train_windows.blocks[0])["sequence"] if fresh else train_windows["sequence"]
    return build_or_load(model_config, window_length, classes, seed=seed,
                         sample_windows=sample_for_checks(sequences, seed))


def _per_process_batch(train_config: dict) -> int:
    return distributed.per_process_batch(train_config["batch_size"], distributed.world()[1], "train")


def _log_plan(model, *, parameters: tuple[int, int], model_config: dict, classes: list[str],
              train_windows: pd.DataFrame | EpochTable, windows_per_epoch: int, plan: dict, val_windows: int,
              train_config: dict) -> None:
    """Log the model, its trainable (of all) `parameters`, the training windows, the batch and the schedule."""
    trainable, n_params = parameters
    logger.info(f"model: {model_config['name_or_path']} ({n_params:,} parameters); classes: {', '.join(classes)}")
    if is_lora_model(model):
        logger.info(f"{lora_description(model)}: {trainable:,} of {n_params:,} parameters trainable "
                    f"({trainable / n_params:.2%})")
    if isinstance(train_windows, EpochTable):
        logger.info(f"fresh training windows every epoch: {windows_per_epoch:,} windows in each of "
                    f"{len(train_windows.blocks)} epoch(s) drawn, read and tokenized one epoch at a time")
    processes = distributed.world()[1]
    batch = f"{train_config['batch_size']}" + (
        f" ({_per_process_batch(train_config)} on each of {processes} GPUs/processes)" if processes > 1 else "")
    logger.info(f"{windows_per_epoch:,} training windows per epoch, batch {batch}: "
                f"{plan['steps_per_epoch']} steps/epoch, {plan['total_steps']} steps in all, "
                f"{len(plan['checkpoints'])} checkpoint(s) at steps {plan['checkpoints']}; "
                f"{val_windows:,} validation windows at each checkpoint; class balance: {train_config['balance']}")


def _datasets(train_windows: pd.DataFrame | EpochTable, val_windows: pd.DataFrame, *, tokenizer, metadata: dict,
              classes: list[str], output_dir: Path) -> tuple[torch.utils.data.Dataset, WindowDataset]:
    """The tokenized training and validation datasets; fresh windows are tokenized one epoch at a time."""
    fresh = isinstance(train_windows, EpochTable)
    datasets = distributed.computed_once(output_dir / TOKENS_FILE, lambda: {
        name: make_dataset(windows, tokenizer, metadata, classes).tensors()
        for name, windows in ([] if fresh else [("train", train_windows)]) + [("eval", val_windows)]})
    if fresh:
        def load(block: int) -> WindowDataset:
            return WindowDataset.from_tensors(distributed.computed_once(
                output_dir / EPOCH_TOKENS_FILE.format(block=block),
                lambda: make_dataset(train_windows.read(block), tokenizer, metadata, classes).tensors()))

        train_dataset = EpochWindows(train_windows, classes, load)
    else:
        train_dataset = WindowDataset.from_tensors(datasets["train"])
    return train_dataset, WindowDataset.from_tensors(datasets["eval"])
