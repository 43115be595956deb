"""Fine-tuning a sequence classifier on fixed windows with the Hugging Face Trainer."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from plasmidlm import PlasmidlmError
from plasmidlm.model import build_or_load
from plasmidlm.tokenize import encode

PARAMS_FILE = "plasmidlm_train_params.json"


class WindowDataset(torch.utils.data.Dataset):
    """Pre-tokenized windows as tensors, so the data loader only indexes."""

    def __init__(self, encodings: dict, labels: np.ndarray):
        self.encodings = encodings
        self.labels = torch.tensor(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        item = {key: value[index] for key, value in self.encodings.items()}
        item["labels"] = self.labels[index]
        return item


def make_dataset(windows: pd.DataFrame, tokenizer, metadata: dict, classes: list[str]) -> WindowDataset:
    label_ids = windows["label"].map({name: i for i, name in enumerate(classes)}).to_numpy()
    encodings = encode(tokenizer, windows["sequence"], metadata["kmer"], metadata["kmer_stride"])
    return WindowDataset(encodings, label_ids)


def schedule(n_windows: int, batch_size: int, epochs: float, max_steps: int | None, save_steps: int) -> dict:
    """Steps per epoch, total steps and checkpoints that a run will produce."""
    steps_per_epoch = math.ceil(n_windows / batch_size)
    total = max_steps if max_steps else math.ceil(steps_per_epoch * epochs)
    checkpoints = sorted(set(range(save_steps, total + 1, save_steps)) | {total})
    return {"steps_per_epoch": steps_per_epoch, "total_steps": total, "checkpoints": checkpoints}


def accuracy_metric(eval_prediction) -> dict:
    logits, labels = eval_prediction
    return {"accuracy": float((np.asarray(logits).argmax(axis=-1) == np.asarray(labels)).mean())}


class ProgressLog(TrainerCallback):
    """One plain log line per logging step: readable in a Snakemake/Slurm log file, unlike a tqdm bar."""

    def __init__(self, log):
        self.log = log

    def on_log(self, args, state, control, logs=None, **kwargs):
        values = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                           for key, value in (logs or {}).items())
        self.log(f"step {state.global_step}/{state.max_steps}: {values}")


def _prepare_output_dir(output_dir: Path, params: dict, log) -> bool:
    """Decide whether to resume: only when the checkpoints there came from the same parameters."""
    params_path = output_dir / PARAMS_FILE
    checkpoints = list(output_dir.glob("checkpoint-*"))
    if checkpoints and params_path.exists() and json.loads(params_path.read_text()) == params:
        log(f"resuming from the last of {len(checkpoints)} checkpoint(s) in {output_dir}")
        return True
    if checkpoints:
        log(f"removing {len(checkpoints)} checkpoint(s) of a run with other parameters")
        for path in checkpoints:
            shutil.rmtree(path)
    output_dir.mkdir(parents=True, exist_ok=True)
    params_path.write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
    return False


def fine_tune(
    train_windows: pd.DataFrame,
    val_windows: pd.DataFrame,
    classes: list[str],
    model_config: dict,
    train_config: dict,
    window_length: int,
    output_dir: str | Path,
    seed: int,
    log=print,
) -> dict:
    """Fine-tune a classifier; every checkpoint lands in `output_dir/checkpoint-<step>` as an HF directory.

    Validation on `val_windows` runs at the checkpoint cadence. Returns a summary with the schedule,
    the checkpoint steps and the trainer's log history.
    """
    output_dir = Path(output_dir)
    unknown = sorted(set(train_windows["label"]) - set(classes))
    if unknown:
        raise PlasmidlmError(f"train: training windows have label(s) outside the classes: {unknown}")
    model, tokenizer = build_or_load(model_config, window_length, classes, seed)
    metadata = model.config.plasmidlm
    plan = schedule(len(train_windows), train_config["batch_size"], train_config["epochs"],
                    train_config.get("max_steps"), train_config["save_steps"])
    n_params = sum(parameter.numel() for parameter in model.parameters())
    log(f"model: {model_config['name_or_path']} ({n_params:,} parameters); classes: {', '.join(classes)}")
    log(f"{len(train_windows):,} training windows, batch {train_config['batch_size']}: "
        f"{plan['steps_per_epoch']} steps/epoch, {plan['total_steps']} steps in all, "
        f"{len(plan['checkpoints'])} checkpoint(s) at steps {plan['checkpoints']}; "
        f"{len(val_windows):,} validation windows at each checkpoint")
    cuda = torch.cuda.is_available()
    arguments = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=train_config["batch_size"],
        per_device_eval_batch_size=train_config["eval_batch_size"],
        num_train_epochs=train_config["epochs"],
        max_steps=train_config.get("max_steps") or -1,
        learning_rate=train_config["learning_rate"],
        weight_decay=train_config["weight_decay"],
        warmup_steps=train_config["warmup_ratio"],
        lr_scheduler_type=train_config["lr_scheduler"],
        eval_strategy="steps",
        eval_steps=train_config["save_steps"],
        save_strategy="steps",
        save_steps=train_config["save_steps"],
        logging_steps=train_config["logging_steps"],
        seed=seed,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        fp16=cuda and not torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        report_to="none",
        disable_tqdm=True,
    )
    params = {"model": model_config, "train": train_config, "window_length": window_length, "seed": seed,
              "classes": classes, "n_train_windows": len(train_windows)}
    resume = _prepare_output_dir(output_dir, params, log)
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=make_dataset(train_windows, tokenizer, metadata, classes),
        eval_dataset=make_dataset(val_windows, tokenizer, metadata, classes),
        processing_class=tokenizer,
        compute_metrics=accuracy_metric,
        callbacks=[ProgressLog(log)],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train(resume_from_checkpoint=resume or None)
    steps = sorted(int(path.name.split("-")[1]) for path in output_dir.glob("checkpoint-*"))
    return {**plan, "checkpoints": steps, "parameters": n_params, "log_history": trainer.state.log_history}


def log_history_table(log_history: list[dict]) -> pd.DataFrame:
    """The trainer's log as a table: one row per step with training loss and validation metrics."""
    table = pd.DataFrame(log_history)
    keep = [column for column in ("step", "epoch", "loss", "learning_rate", "grad_norm", "eval_loss",
                                  "eval_accuracy") if column in table.columns]
    return table[keep].groupby("step", as_index=False).first() if len(table) else table

