"""The Trainer of fine-tuning (`WindowTrainer`: class balance, LoRA checkpoints), its callbacks (`ProgressLog`,
`StopOnSigterm`), the loop that trains until done or SIGTERM (`run_until_done_or_sigterm`), and the log as a
table (`log_history_table`)."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainerState

from plasmidlm import PlasmidlmError
from plasmidlm.model import forward_input_names, is_lora_model, merged_model
from plasmidlm.training import distributed
from plasmidlm.training.checkpoint_writes import CheckpointTrainer
from plasmidlm.training.checkpointing import TRAINER_STATE, checkpoint_dirs, checkpoint_step
from plasmidlm.training.data import EpochSampler, EpochWindows, PadToLongest, class_loss_weights

LORA_ADAPTER_DIR = "lora_adapter"  # inside a checkpoint of a LoRA run: the adapters and head that resuming loads
BALANCE_MODES = ("none", "weighted_sampler", "class_weights")

logger = logging.getLogger(__name__)


def accuracy_metric(eval_prediction) -> dict:
    logits, labels = eval_prediction
    return {"accuracy": float((np.asarray(logits).argmax(axis=-1) == np.asarray(labels)).mean())}


class WindowTrainer(CheckpointTrainer):
    """The Hugging Face Trainer for pre-tokenized windows, with `balance` (see `BALANCE_MODES`).

    Batches are padded to their longest window (`PadToLongest`) with the inputs the model takes. Balance modes:
    - `weighted_sampler`: windows are drawn with replacement, each class equally often (seeded, per epoch).
    - `class_weights`: the training loss is cross-entropy weighted by `class_loss_weights`; the validation
      loss stays unweighted, so it is comparable across balance modes.
    - `none`: the Trainer's own shuffled sampler and loss.

    A LoRA (peft) model's checkpoints hold the merged model and, for resuming, the adapters (see `_save`).
    """

    def __init__(self, *args, balance: str = "none", **kwargs):
        model, tokenizer = kwargs["model"], kwargs["processing_class"]
        collator = PadToLongest(tokenizer.pad_token_id, forward_input_names(model), tokenizer.padding_side)
        super().__init__(*args, **{"data_collator": collator, **kwargs})
        if balance not in BALANCE_MODES:
            raise PlasmidlmError(f"config train.balance: unknown mode {balance!r} ({', '.join(BALANCE_MODES)})")
        self.balance = balance
        self.class_weights = (class_loss_weights(self.train_dataset.class_counts(self.model.config.num_labels))
                              if balance == "class_weights" else None)

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.balance != "weighted_sampler" and not isinstance(dataset, EpochWindows):
            return super()._get_train_sampler(train_dataset)
        return EpochSampler(dataset, self.args.seed, weighted=self.balance == "weighted_sampler")

    def _save(self, output_dir=None, state_dict=None):
        """With LoRA: the merged model and the tokenizer, loadable without peft, and the adapters for resuming.

        The adapters go to a subdirectory: with peft installed, transformers would apply an adapter_config.json
        found beside config.json on top of the already merged weights.
        """
        if not is_lora_model(self.model):
            return super()._save(output_dir, state_dict)
        output_dir = Path(output_dir or self.args.output_dir)
        # The vocabulary is never resized: no embedding layers to save, and no hub look-up to find that out.
        self.model.save_pretrained(output_dir / LORA_ADAPTER_DIR, save_embedding_layers=False)
        merged_model(self.model).save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        """With LoRA: the adapters and head; the frozen weights are those the model was built with."""
        if not is_lora_model(self.model):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        self.model.load_adapter(str(Path(resume_from_checkpoint) / LORA_ADAPTER_DIR), self.model.active_adapter,
                                is_trainable=True)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.class_weights is None or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs["labels"]
        outputs = model(**{key: value for key, value in inputs.items() if key != "labels"})
        loss = torch.nn.functional.cross_entropy(outputs.logits.float(), labels,
                                                 weight=self.class_weights.to(labels.device))
        return (loss, outputs) if return_outputs else loss


# --- callbacks and the training loop ----------------------------------------------------------------


class ProgressLog(TrainerCallback):
    """One plain log line per logging step: readable in a Snakemake/Slurm log file, unlike a tqdm bar."""

    def on_train_begin(self, args, state, control, **kwargs):
        # A resumed state keeps the logging cadence of its checkpoint; logging_steps may have changed since.
        state.logging_steps = args.logging_steps

    def on_log(self, args, state, control, logs=None, **kwargs):
        values = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                           for key, value in (logs or {}).items())
        logger.info(f"step {state.global_step}/{state.max_steps}: {values}")


class StopOnSigterm(TrainerCallback):
    """Ends training after the current step once SIGTERM (e.g. a Slurm time limit) has arrived.

    While `installed()`, SIGTERM only sets `received`, however often it comes: at its time limit Slurm sends
    SIGTERM to a job step more than once (slurmd signals the steps, then terminates the job, signalling every step
    again), and SIGKILL KillWait seconds later. The step under way finishes, with its checkpoint if it is one, so
    the job exits within about one step and the last complete checkpoint is where a re-run resumes.

    In a rank of a distributed run (`distributed.launch`), the launcher's SIGUSR1 counts as SIGTERM, and the
    ranks agree on the step to stop after (`distributed.StopVote`: one step after the first rank got it), so that
    none waits forever for the others.
    """

    def __init__(self):
        self.received = False
        self.vote = distributed.StopVote() if distributed.in_rank() else None

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():  # signal handlers live in the main thread
            yield
            return
        previous = signal.getsignal(signal.SIGTERM)
        previous_stop = signal.getsignal(distributed.STOP_SIGNAL)

        def handle(signum, frame):
            self.received = True

        signal.signal(signal.SIGTERM, handle)
        if self.vote is not None:
            signal.signal(distributed.STOP_SIGNAL, handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
            if self.vote is not None:
                signal.signal(distributed.STOP_SIGNAL, previous_stop)

    def on_step_end(self, args, state, control, **kwargs):
        stop = self.vote.agreed(self.received) if self.vote is not None else self.received
        if stop:
            self.received = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        if self.vote is not None:
            self.vote.finish()


def run_until_done_or_sigterm(trainer: Trainer, stop: StopOnSigterm, *, resume_from: Path | None, step_name: str,
                              total_steps: int) -> list[int]:
    """Train (from `resume_from` when given) until the last step or a SIGTERM; return the checkpoint steps written.

    From a checkpoint at `total_steps`, nothing is trained: the trainer gets its weights and state. (The Trainer
    itself would take one more step from a last checkpoint that is not at the end of an epoch.)
    SIGTERM ends the run after the current step, as a PlasmidlmError that says where a re-run resumes.
    """
    trainer.remove_callback(PrinterCallback)
    if resume_from is not None and checkpoint_step(resume_from) >= total_steps:
        trainer._load_from_checkpoint(str(resume_from))
        trainer.state = TrainerState.load_from_json(str(Path(resume_from) / TRAINER_STATE))
    else:
        with stop.installed():
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    steps = [checkpoint_step(path) for path in checkpoint_dirs(trainer.args.output_dir)]
    if stop.received and trainer.state.global_step < trainer.state.max_steps:
        restart = f"resume from checkpoint-{steps[-1]}" if steps else "start again (no checkpoint yet)"
        raise PlasmidlmError(f"{step_name}: stopped by SIGTERM after step {trainer.state.global_step} of "
                             f"{trainer.state.max_steps}; re-run to {restart}")
    return steps


def log_history_table(log_history: list[dict]) -> pd.DataFrame:
    """The trainer's log as a table: one row per step with training loss and validation metrics."""
    table = pd.DataFrame(log_history)
    keep = [column for column in ("step", "epoch", "loss", "learning_rate", "grad_norm", "eval_loss",
                                  "eval_accuracy") if column in table.columns]
    return table[keep].groupby("step", as_index=False).first() if len(table) else table


def training_cost(log_history: list[dict]) -> dict:
    """The seconds and windows per second of the training this job ran (the Trainer's last `train_runtime`
    entry); empty when it trained nothing (a run that had finished, resumed at its last step)."""
    ends = [entry for entry in log_history if "train_runtime" in entry]
    if not ends:
        return {}
    return {"train_seconds": ends[-1]["train_runtime"],
            "train_windows_per_second": ends[-1]["train_samples_per_second"]}
