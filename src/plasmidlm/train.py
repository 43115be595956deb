"""Fine-tuning a sequence classifier on fixed windows with the Hugging Face Trainer."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainerState, TrainingArguments
from transformers.integrations import is_tensorboard_available
from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME

from plasmidlm import PlasmidlmError, distributed, io
from plasmidlm.checkpoints import (
    TRAINER_STATE,
    checkpoint_dirs,
    checkpoint_step,
    prepare_output_dir,
    run_record,
    schedule,
    update_windows_digest,
    windows_sha256,
)
from plasmidlm.model import (
    BUILTIN,
    CHECK_SAMPLE,
    build_or_load,
    forward_input_names,
    is_lora_model,
    lora_description,
    merged_model,
    parameter_counts,
)
from plasmidlm.tokenize import flat_token_ids

TOKENS_FILE = ".tokens.pt"  # a distributed run's token ids, written by rank 0 for all ranks, removed once read
EPOCH_TOKENS_FILE = ".tokens-block{block}.pt"  # the same for one epoch's block of fresh windows
LORA_ADAPTER_DIR = "lora_adapter"  # inside a checkpoint of a LoRA run: the adapters and head that resuming loads
BALANCE_MODES = ("none", "weighted_sampler", "class_weights")


class WindowDataset(torch.utils.data.Dataset):
    """Token ids of every window, unpadded, in one flat int32 array (`tokens`, window i at
    offsets[i]:offsets[i + 1]; see `tokenize.flat_token_ids`), and their class indices; without `labels` (masked-LM
    pretraining, whose collator makes the labels), the token ids alone."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, labels: np.ndarray | None = None):
        self.tokens, self.offsets = tokens, offsets
        self.labels = None if labels is None else torch.tensor(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> dict:
        ids = self.tokens[self.offsets[index] : self.offsets[index + 1]]
        return {"input_ids": ids} if self.labels is None else {"input_ids": ids, "labels": self.labels[index]}

    def set_epoch(self, epoch: int) -> None:
        """Every epoch uses all windows."""

    def class_counts(self, n_classes: int) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=n_classes)

    def tensors(self) -> dict:
        tensors = {"tokens": torch.from_numpy(self.tokens), "offsets": torch.from_numpy(self.offsets)}
        return tensors if self.labels is None else tensors | {"labels": self.labels}

    @classmethod
    def from_tensors(cls, tensors: dict) -> WindowDataset:
        """The dataset of `tensors()` (e.g. memory-mapped from a file that rank 0 wrote)."""
        dataset = cls.__new__(cls)
        dataset.tokens, dataset.offsets = tensors["tokens"].numpy(), tensors["offsets"].numpy()
        dataset.labels = tensors.get("labels")
        return dataset


class EpochTable:
    """A training window table with an `epoch` column (fresh windows every epoch), never held whole.

    `pieces()` yields it in table order as DataFrames of label, sequence and epoch (e.g. `io.iter_table`). One
    pass gives what training needs before its first step: the epochs drawn (`blocks`), each one's number of
    windows, the windows of each class over all epochs, and each epoch's digest (as `windows_sha256` of the whole
    table). `read(block)` then gives one epoch's rows, reading no further than that epoch's last piece when the
    table is in epoch order (as the data stage writes it).
    """

    def __init__(self, pieces: Callable[[], Iterable[pd.DataFrame]]):
        self.pieces = pieces
        sizes, digests, labels = {}, {}, pd.Series(dtype=int)
        self.ordered, last = True, -1
        for piece in pieces():
            epochs = piece["epoch"].to_numpy()
            self.ordered &= bool(len(epochs) == 0 or (epochs[0] >= last and (np.diff(epochs) >= 0).all()))
            last = epochs[-1] if len(epochs) else last
            for epoch, rows in piece.groupby("epoch", sort=True):
                sizes[int(epoch)] = sizes.get(int(epoch), 0) + len(rows)
                update_windows_digest(digests.setdefault(int(epoch), hashlib.sha256()), rows)
            labels = labels.add(piece["label"].value_counts(), fill_value=0)
        if not sizes:
            raise PlasmidlmError("train: the training window table is empty")
        self.blocks = sorted(sizes)
        self.sizes = [sizes[block] for block in self.blocks]
        self.sha256 = [digests[block].hexdigest() for block in self.blocks]
        self.label_counts = {str(label): int(count) for label, count in labels.items() if count}

    @classmethod
    def of_frame(cls, windows: pd.DataFrame) -> EpochTable:
        return cls(lambda: [windows])

    def read(self, block: int) -> pd.DataFrame:
        rows = []
        for piece in self.pieces():
            rows.append(piece[piece["epoch"] == block])
            if self.ordered and piece["epoch"].iloc[-1] > block:
                break
        return pd.concat(rows, ignore_index=True)


class EpochWindows(torch.utils.data.Dataset):
    """Windows drawn afresh for each epoch (an `EpochTable`), one epoch's in memory at a time.

    Epoch e trains on block e mod (number of blocks), every epoch on as many windows as the smallest block
    (`len`). `set_epoch` (called by `EpochSampler`) releases the block held and loads that of the epoch with
    `load(block)` (a WindowDataset); indices are positions in the block. The windows of every class over all
    epochs (`class_counts`) come from the table's summary.
    """

    def __init__(self, table: EpochTable, classes: list[str], load: Callable[[int], WindowDataset]):
        self.blocks, self.length, self.load = table.blocks, min(table.sizes), load
        self.counts = torch.tensor([table.label_counts.get(name, 0) for name in classes])
        self.block, self.windows = None, None

    def set_epoch(self, epoch: int) -> None:
        block = self.blocks[epoch % len(self.blocks)]
        if block != self.block:
            self.block, self.windows = None, None  # released before the next is loaded: one epoch's at a time
            self.windows, self.block = self.load(block), block

    @property
    def labels(self) -> torch.Tensor:
        """The class indices of the block held."""
        return self.windows.labels

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.windows[index]

    def class_counts(self, n_classes: int) -> torch.Tensor:
        return self.counts


@dataclass
class PadToLongest:
    """Collates windows into a batch padded to its own longest window (on the tokenizer's padding side), with
    the inputs the model's forward takes (`input_names`)."""

    pad_token_id: int
    input_names: list[str]
    padding_side: str = "right"

    def __call__(self, items: list[dict]) -> dict:
        lengths = np.array([len(item["input_ids"]) for item in items])
        width = int(lengths.max())
        if (lengths == width).all():  # k-mer and character tokens: every window has the same length
            ids = np.stack([item["input_ids"] for item in items]).astype(np.int64)
            mask = np.ones_like(ids)
        else:
            ids = np.full((len(items), width), self.pad_token_id, dtype=np.int64)
            mask = np.zeros((len(items), width), dtype=np.int64)
            for row, (item, length) in enumerate(zip(items, lengths)):
                columns = slice(width - length, width) if self.padding_side == "left" else slice(0, length)
                ids[row, columns] = item["input_ids"]
                mask[row, columns] = 1
        inputs = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        return {**{name: inputs[name] for name in self.input_names},
                "labels": torch.stack([item["labels"] for item in items])}


def make_dataset(windows: pd.DataFrame, tokenizer, metadata: dict, classes: list[str]) -> WindowDataset:
    label_ids = windows["label"].map({name: i for i, name in enumerate(classes)}).to_numpy()
    return WindowDataset(*flat_token_ids(tokenizer, windows["sequence"], metadata["kmer"], metadata["kmer_stride"]),
                         label_ids)


def sample_for_checks(sequences: pd.Series, seed: int) -> list[str]:
    """A seeded sample of training windows, whose tokens the model checks before training (`CHECK_SAMPLE`)."""
    if len(sequences) <= CHECK_SAMPLE:
        return sequences.tolist()
    return sequences.sample(CHECK_SAMPLE, random_state=seed).tolist()


def accuracy_metric(eval_prediction) -> dict:
    logits, labels = eval_prediction
    return {"accuracy": float((np.asarray(logits).argmax(axis=-1) == np.asarray(labels)).mean())}


# --- class balance ------------------------------------------------------------------------------------


def sampling_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per-window weight 1 / (windows of its class): a weighted draw picks every class equally often."""
    return 1.0 / torch.bincount(labels)[labels].double()


def class_loss_weights(counts: torch.Tensor) -> torch.Tensor:
    """Per-class loss weight n / (k * count) from the training windows of each class (`counts`), as
    scikit-learn's "balanced": 1 for every class when balanced.

    A class without training windows never is a target, so its weight is irrelevant; its count is taken as 1.
    """
    return counts.sum() / (len(counts) * counts.clamp(min=1).float())


class EpochSampler(torch.utils.data.Sampler):
    """The windows of one epoch, drawn from (seed, epoch) alone: a run resumed in epoch e draws what an
    uninterrupted run draws in epoch e.

    `windows`: a WindowDataset (every epoch uses all its windows) or EpochWindows (fresh windows every epoch:
    `set_epoch` has it load the epoch's block). The Trainer reaches the sampler's `set_epoch` at every epoch,
    also when resuming mid-epoch and under DDP, where accelerate does not call the dataset's. `weighted`: drawn
    with replacement in proportion to `sampling_weights` within the epoch's windows (every class equally often);
    otherwise shuffled.
    """

    def __init__(self, windows: WindowDataset | EpochWindows, seed: int, weighted: bool = False):
        self.windows, self.seed, self.weighted = windows, seed, weighted
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.windows.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.windows)

    def __iter__(self):
        self.windows.set_epoch(self.epoch)  # a sampler iterated without set_epoch: epoch 0
        generator = torch.Generator()
        generator.manual_seed(int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0]))
        labels = self.windows.labels
        if self.weighted:
            order = torch.multinomial(sampling_weights(labels), len(self), replacement=True, generator=generator)
        else:
            order = torch.randperm(len(labels), generator=generator)[: len(self)]
        return iter(order.tolist())


def host_copy(value, buffers: dict):
    """`value` (a state dict, possibly nested) with every tensor copied to host memory, into the tensors of
    `buffers` left by the previous copy where they fit (a fresh allocation costs about as much as writing the
    file: page faults), pinned on a GPU. Tensors that share storage (tied weights) share their copy, as
    `save_pretrained` expects."""
    copies: dict[tuple, torch.Tensor] = {}

    def copy(item, position: tuple):
        if isinstance(item, torch.Tensor):
            shared = (item.device, item.untyped_storage().data_ptr(), item.storage_offset(), item.shape, item.stride())
            if shared not in copies:
                buffer = buffers.get(position)
                if buffer is None or buffer.shape != item.shape or buffer.dtype != item.dtype:
                    buffer = buffers[position] = torch.empty(item.shape, dtype=item.dtype,
                                                             pin_memory=item.device.type == "cuda")
                copies[shared] = buffer.copy_(item.detach())
            return copies[shared]
        if isinstance(item, dict):
            return type(item)((name, copy(member, (*position, name))) for name, member in item.items())
        if isinstance(item, (list, tuple)):
            return type(item)(copy(member, (*position, index)) for index, member in enumerate(item))
        return item

    return copy(value, ())


class CheckpointTrainer(Trainer):
    """The Trainer, with checkpoints that are complete (trainer_state.json written, see
    `checkpoints.is_complete_checkpoint`) only once every file of every rank is on disk.

    With `background_checkpoints` (default: on a GPU), rank 0 copies the model and optimizer states to host
    memory at each checkpoint and a thread writes them, then the trainer state, while training goes on: a
    `base`-preset checkpoint (1.1 GB) takes seconds to write, a large share of the steps between two checkpoints
    on a GPU (bench/gpu.py measures both ways). It costs one host copy of those states, kept for the whole run
    and reused at every checkpoint; one write at a time. A LoRA model's checkpoint (merged weights) is written in
    the foreground.
    """

    def __init__(self, *args, background_checkpoints: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if background_checkpoints is None:
            background_checkpoints = torch.cuda.is_available()
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint") \
            if background_checkpoints else None
        self.pending: list[tuple[str, Future]] = []
        self.host_buffers: dict[str, dict] = {"model": {}, OPTIMIZER_NAME: {}, SCHEDULER_NAME: {}}
        self.deferring = False

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        finally:
            self.finish_checkpoint_writes()

    def finish_checkpoint_writes(self) -> None:
        """Wait for the checkpoint being written; its error, if any, as a PlasmidlmError naming the file."""
        pending, self.pending = self.pending, []
        for path, future in pending:
            try:
                future.result()
            except OSError as error:
                raise PlasmidlmError(f"writing checkpoint file {path}: {error}") from error

    def _submit(self, path: str, write) -> None:
        self.pending.append((path, self.writer.submit(write)))

    def _save_checkpoint(self, model, trial):
        self.finish_checkpoint_writes()
        if self.writer is None or not self.args.should_save or is_lora_model(self.model):
            return super()._save_checkpoint(model, trial)
        # The trainer state marks a checkpoint complete, so it is written last, after the deferred files.
        self.state.save_to_json = self._deferred_state_json
        self.deferring = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.deferring = False
            del self.state.save_to_json

    def _deferred_state_json(self, json_path: str) -> None:
        state = TrainerState(**asdict(self.state))  # as it is now: training goes on meanwhile
        self._submit(json_path, lambda: io.write_atomic(json_path, state.save_to_json))

    def _save(self, output_dir=None, state_dict=None):
        if not self.deferring:
            return super()._save(output_dir, state_dict)
        snapshot = host_copy(self.model.state_dict() if state_dict is None else state_dict, self.host_buffers["model"])
        self._submit(str(output_dir), lambda: super(CheckpointTrainer, self)._save(output_dir, snapshot))

    def _save_optimizer_and_scheduler(self, output_dir):
        if not self.deferring or self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return super()._save_optimizer_and_scheduler(output_dir)
        states = {OPTIMIZER_NAME: host_copy(self.optimizer.state_dict(), self.host_buffers[OPTIMIZER_NAME]),
                  SCHEDULER_NAME: host_copy(self.lr_scheduler.state_dict(), self.host_buffers[SCHEDULER_NAME])}
        for name, state in states.items():
            path = Path(output_dir) / name
            self._submit(str(path), lambda path=path, state=state: torch.save(state, path))

    def _save_rng_state(self, output_dir):
        super()._save_rng_state(output_dir)
        # Without this, rank 0 could mark the checkpoint complete before another rank has written its random
        # state: a job killed then resumes that rank from a missing or cut-off file.
        distributed.barrier()


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


# --- logging, signals and checkpoints ------------------------------------------------------------------


class ProgressLog(TrainerCallback):
    """One plain log line per logging step: readable in a Snakemake/Slurm log file, unlike a tqdm bar."""

    def __init__(self, log):
        self.log = log

    def on_train_begin(self, args, state, control, **kwargs):
        # A resumed state keeps the logging cadence of its checkpoint; logging_steps may have changed since.
        state.logging_steps = args.logging_steps

    def on_log(self, args, state, control, logs=None, **kwargs):
        values = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                           for key, value in (logs or {}).items())
        self.log(f"step {state.global_step}/{state.max_steps}: {values}")


class StopOnSigterm(TrainerCallback):
    """Ends training after the current step once SIGTERM (e.g. a Slurm time limit) has arrived.

    While `installed()`, SIGTERM only sets `received`; a second SIGTERM acts as usual (the handler is
    restored at the first). The step under way finishes, with its checkpoint if it is one, so the job exits
    within about one step and the last complete checkpoint is where a re-run resumes.

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
            if signum == signal.SIGTERM:
                signal.signal(signal.SIGTERM, previous)
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


def run_until_done_or_sigterm(trainer: Trainer, stop: StopOnSigterm, resume_from: Path | None, step_name: str,
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


# --- fine-tuning --------------------------------------------------------------------------------------


# Data loader processes on a GPU: indexing and collating take about 5 us of a CPU core per window (bench/gpu.py,
# "host side"), a few % of a base-preset step on a GPU and more than a whole small-preset step, so they run
# beside training.
GPU_DATALOADER_WORKERS = 2


def device_settings(cuda: bool, random_collator: bool = False, data_per_epoch: bool = False) -> dict:
    """The TrainingArguments that depend on the device. On a GPU: bf16 (fp16 without it), TF32 matrix products
    where the GPU has them (Ampere and later), pinned memory and collation in worker processes, except for a
    collator that draws random numbers (masked-LM pretraining): workers would draw them from generators of their
    own, and a resumed run would not mask as an uninterrupted one.

    Workers persist across epochs, except with `data_per_epoch` (`EpochWindows`): a worker holds a copy of the
    dataset from its start, so it must start anew once the epoch's windows are loaded."""
    if not cuda:
        return {"use_cpu": True, "bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported()
    workers = 0 if random_collator else GPU_DATALOADER_WORKERS
    return {"bf16": bf16, "fp16": not bf16, "tf32": torch.cuda.get_device_capability()[0] >= 8 or None,
            "dataloader_pin_memory": True, "dataloader_num_workers": workers,
            "dataloader_persistent_workers": workers > 0 and not data_per_epoch}


def training_arguments(train_config: dict, output_dir: str | Path, seed: int, masked_lm: bool = False,
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


def fine_tune(
    train_windows: pd.DataFrame | EpochTable,
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

    `train_windows`: label and sequence of each window, or fresh windows every epoch (an `epoch` column, or an
    `EpochTable`), of which only the epoch being trained is held and tokenized (`EpochWindows`).
    Validation on `val_windows` runs at the checkpoint cadence. Checkpoints already in `output_dir` that this
    run can use (`checkpoints.prepare_output_dir`: same trajectory, or a length the schedule allows to continue)
    are kept and the run resumes from the last one, exactly: weights, optimizer, scheduler, RNG and data order;
    the others are set aside. SIGTERM ends the run after the current step with a PlasmidlmError. Returns a summary with
    the schedule, the checkpoint steps and the trainer's log history.
    """
    output_dir = Path(output_dir)
    if isinstance(train_windows, pd.DataFrame) and "epoch" in train_windows.columns:
        train_windows = EpochTable.of_frame(train_windows)
    fresh = isinstance(train_windows, EpochTable)
    model, tokenizer = _model_for(train_windows, classes, model_config, window_length, seed, log)
    windows_per_epoch = min(train_windows.sizes) if fresh else len(train_windows)
    plan = schedule(windows_per_epoch, train_config["batch_size"], train_config["epochs"],
                    train_config.get("max_steps"), train_config["save_steps"])
    trainable, n_params = parameter_counts(model)
    _log_plan(model, (trainable, n_params), model_config, classes, train_windows, windows_per_epoch, plan,
              len(val_windows), train_config, log)
    record = run_record("train", train_config, plan["total_steps"], model=model_config, window_length=window_length,
                        seed=seed, classes=classes, steps_per_epoch=plan["steps_per_epoch"],
                        train_windows_sha256=train_windows.sha256 if fresh else windows_sha256(train_windows),
                        val_windows_sha256=windows_sha256(val_windows))
    resume_from = distributed.main_then_shared(lambda: prepare_output_dir(output_dir, record, train_config, log))
    train_dataset, eval_dataset = _datasets(train_windows, val_windows, tokenizer, model.config.plasmidlm, classes,
                                            output_dir)
    stop = StopOnSigterm()
    trainer = WindowTrainer(
        model=model,
        args=training_arguments(train_config | {"batch_size": _per_process_batch(train_config)}, output_dir, seed,
                                all_parameters_used=model_config["name_or_path"] == BUILTIN, data_per_epoch=fresh),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        compute_metrics=accuracy_metric,
        callbacks=[ProgressLog(log), stop],
        balance=train_config["balance"],
    )
    steps = run_until_done_or_sigterm(trainer, stop, resume_from, "train", plan["total_steps"])
    return {**plan, "checkpoints": steps, "parameters": n_params, "trainable_parameters": trainable,
            "log_history": trainer.state.log_history}


def _model_for(train_windows: pd.DataFrame | EpochTable, classes: list[str], model_config: dict, window_length: int,
               seed: int, log) -> tuple:
    """The model and tokenizer, after checking that every training label is one of `classes`."""
    fresh = isinstance(train_windows, EpochTable)
    unknown = sorted(set(train_windows.label_counts if fresh else train_windows["label"]) - set(classes))
    if unknown:
        raise PlasmidlmError(f"train: training windows have label(s) outside the classes: {unknown}")
    # with fresh windows every epoch, the checks sample the first epoch's windows
    sequences = train_windows.read(train_windows.blocks[0])["sequence"] if fresh else train_windows["sequence"]
    return build_or_load(model_config, window_length, classes, seed, sample_windows=sample_for_checks(sequences, seed))


def _per_process_batch(train_config: dict) -> int:
    return distributed.per_process_batch(train_config["batch_size"], distributed.world()[1], "train")


def _log_plan(model, parameters: tuple[int, int], model_config: dict, classes: list[str],
              train_windows: pd.DataFrame | EpochTable, windows_per_epoch: int, plan: dict, val_windows: int,
              train_config: dict, log) -> None:
    """Log the model, its trainable (of all) `parameters`, the training windows, the batch and the schedule."""
    trainable, n_params = parameters
    log(f"model: {model_config['name_or_path']} ({n_params:,} parameters); classes: {', '.join(classes)}")
    if is_lora_model(model):
        log(f"{lora_description(model)}: {trainable:,} of {n_params:,} parameters trainable "
            f"({trainable / n_params:.2%})")
    if isinstance(train_windows, EpochTable):
        log(f"fresh training windows every epoch: {windows_per_epoch:,} windows in each of "
            f"{len(train_windows.blocks)} epoch(s) drawn, read and tokenized one epoch at a time")
    processes = distributed.world()[1]
    batch = f"{train_config['batch_size']}" + (
        f" ({_per_process_batch(train_config)} on each of {processes} GPUs/processes)" if processes > 1 else "")
    log(f"{windows_per_epoch:,} training windows per epoch, batch {batch}: "
        f"{plan['steps_per_epoch']} steps/epoch, {plan['total_steps']} steps in all, "
        f"{len(plan['checkpoints'])} checkpoint(s) at steps {plan['checkpoints']}; "
        f"{val_windows:,} validation windows at each checkpoint; class balance: {train_config['balance']}")


def _datasets(train_windows: pd.DataFrame | EpochTable, val_windows: pd.DataFrame, tokenizer, metadata: dict,
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


def log_history_table(log_history: list[dict]) -> pd.DataFrame:
    """The trainer's log as a table: one row per step with training loss and validation metrics."""
    table = pd.DataFrame(log_history)
    keep = [column for column in ("step", "epoch", "loss", "learning_rate", "grad_norm", "eval_loss",
                                  "eval_accuracy") if column in table.columns]
    return table[keep].groupby("step", as_index=False).first() if len(table) else table
