"""The training data: tokenized windows as datasets (`WindowDataset`; fresh windows every epoch: `EpochTable`,
`EpochWindows`), the seeded per-epoch sampler with class balance (`EpochSampler`, `sampling_weights`,
`class_loss_weights`) and the batch collator (`PadToLongest`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from plasmidlm import PlasmidlmError
from plasmidlm.model import CHECK_SAMPLE
from plasmidlm.tokenize import flat_token_ids
from plasmidlm.training.runs import update_windows_digest

TOKENS_FILE = ".tokens.pt"  # a distributed run's token ids, written by rank 0 for all ranks, removed once read


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
