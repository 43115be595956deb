"""How checkpoints are written: `CheckpointTrainer`, the Trainer whose checkpoints are complete (see
`checkpointing.is_complete_checkpoint`) only once every file of every rank is on disk, written in the background
on a GPU."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import Trainer, TrainerState
from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME

from plasmidlm import PlasmidlmError, io
from plasmidlm.model import is_lora_model
from plasmidlm.training import distributed

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
    `checkpointing.is_complete_checkpoint`) only once every file of every rank is on disk.

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
