"""The Trainer's settings for a run (`training_arguments`) and those that depend on the device
(`device_settings`)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import TrainingArguments
from transformers.integrations import is_tensorboard_available

from plasmidlm.precision import gpu_precision

# Data loader processes on a GPU: indexing and collating take about 5 us of a CPU core per window (bench/gpu.py,
# "host side"), a few % of a base-preset step on a GPU and more than a whole small-preset step, so they run
# beside training.
GPU_DATALOADER_WORKERS = 2


def device_settings(cuda: bool, random_collator: bool = False, data_per_epoch: bool = False) -> dict:
    """The TrainingArguments that depend on the device. On a GPU: bf16, fp16 with loss scaling or fp32, as its
    compute capability runs them fast (`precision.gpu_precision`), TF32 matrix products where the GPU has them
    (Ampere and later), pinned memory and collation in worker processes, except for a
    collator that draws random numbers (masked-LM pretraining): workers would draw them from generators of their
    own, and a resumed run would not mask as an uninterrupted one.

    Workers persist across epochs, except with `data_per_epoch` (`EpochWindows`): a worker holds a copy of the
    dataset from its start, so it must start anew once the epoch's windows are loaded."""
    if not cuda:
        return {"use_cpu": True, "bf16": False, "fp16": False}
    precision = gpu_precision()
    workers = 0 if random_collator else GPU_DATALOADER_WORKERS
    return {"bf16": precision == "bf16", "fp16": precision == "fp16",
            "tf32": torch.cuda.get_device_capability()[0] >= 8 or None,
            "dataloader_pin_memory": True, "dataloader_num_workers": workers,
            "dataloader_persistent_workers": workers > 0 and not data_per_epoch}


def training_arguments(train_config: dict, output_dir: str | Path, *, seed: int, masked_lm: bool = False,
                       all_parameters_used: bool = False, data_per_epoch: bool = False) -> TrainingArguments:
    """The Trainer settings of a run: fused AdamW, the device's settings (`device_settings`), `torch.compile`
    with `compile`, TensorBoard if installed. The loss is not checked for NaN or inf at every step (the Trainer's
    `logging_nan_inf_filter`): that check makes the host wait for the GPU at every step; a NaN loss shows in
    the logged loss instead.

    `masked_lm`: masked-LM pretraining, whose collator draws random numbers (see `device_settings`).
    `data_per_epoch`: the training windows are loaded epoch by epoch (see `device_settings`).
    `all_parameters_used`: every trainable parameter gets a gradient at every step (the built-in models), so
    that DDP need not search the graph for unused ones after each step, as it must for a hub model that may
    have parameters its classification forward never uses.

    With several processes, each one's loss is the mean over its own windows (or masked tokens), and DDP
    averages the processes' gradients. The Trainer would instead multiply the loss by the number of processes
    (`average_tokens_across_devices`), expecting the model to divide a sum by the items of all processes, which
    transformers' BERT heads do not: every gradient would be that many times too large."""
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=train_config["batch_size"],
        per_device_eval_batch_size=train_config["eval_batch_size"],
        num_train_epochs=train_config["epochs"],
        max_steps=train_config.get("max_steps") or -1,
        learning_rate=train_config["learning_rate"],
        weight_decay=train_config["weight_decay"],
        warmup_steps=train_config["warmup_ratio"],  # a float below 1 is a fraction of the total steps
        lr_scheduler_type=train_config["lr_scheduler"],
        optim="adamw_torch_fused",
        eval_strategy="steps",
        eval_steps=train_config["save_steps"],
        save_strategy="steps",
        save_steps=train_config["save_steps"],
        logging_steps=train_config["logging_steps"],
        logging_nan_inf_filter=False,
        average_tokens_across_devices=False,
        ddp_find_unused_parameters=not all_parameters_used,
        torch_compile=train_config.get("compile", False),
        seed=seed,
        report_to=["tensorboard"] if is_tensorboard_available() else "none",
        disable_tqdm=True,
        **device_settings(torch.cuda.is_available(), random_collator=masked_lm, data_per_epoch=data_per_epoch),
    )
