"""Shared fixtures: a seeded synthetic multi-class data set and the shipped demo data."""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import yaml
from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parent.parent
SRC = REPO_ROOT / "src"
if str(SRC) not in sys.path:  # allow running pytest without PYTHONPATH=src
    sys.path.insert(0, str(SRC))

DEMO_DIR = REPO_ROOT / "resources" / "demo"

# Tests never reach the Hugging Face Hub: every model they load is built or saved locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Fixtures of a shared workflow run (the session's, or a module's) or of the model families' stand-ins.
SHARED_RUN_FIXTURES = {"finished_run", "first_training_inputs", "standins"}
# Modules whose every test runs the workflow, Slurm, several processes or every model family: `make test-fast`
# (pytest -m "not workflow") leaves them out, with every other test that reads a shared workflow run.
WORKFLOW_MODULES = {"test_workflow", "test_rerun", "test_slurm", "test_window_lengths_workflow",
                    "test_evidence_workflow", "test_distributed", "test_model_families"}

# `make test` runs the suite on two pytest-xdist workers, handing out whole modules (a module's fixtures are made
# once) in this order, the longest first so that the short ones fill the gaps at the end. The Slurm module comes
# first: it starts the Slurm runs, which go on in the background for minutes (most of it waiting on the cluster and
# its time limits) while the worker goes on with other modules. The tests that check those runs (DEFERRED) come last,
# on the worker that started them, which holds them in its session fixtures.
# (xdist's own xdist_group marks have no effect under pytest 9.2: xdist 3.8 marks a group by suffixing node ids,
# which pytest 9.2 no longer lets a plugin change.)
LONGEST_MODULES = ("test_slurm", "test_model_families", "test_workflow", "test_rerun", "test_distributed",
                   "test_train", "test_evidence_workflow")
DEFERRING_MODULE = "tests/test_slurm.py"
DEFERRED = tuple(f"{DEFERRING_MODULE}::{name}" for name in (
    "test_workflow_runs_through_slurm_and_matches_the_local_run",
    "test_a_training_stopped_twice_by_the_time_limit_ends_with_the_weights_of_an_uninterrupted_run"))


def pytest_collection_modifyitems(config, items):
    def position(item):
        module = item.module.__name__
        rank = LONGEST_MODULES.index(module) if module in LONGEST_MODULES else len(LONGEST_MODULES)
        return item.nodeid in DEFERRED, rank

    items.sort(key=position)  # stable: the other modules, and the tests in a module, keep their order
    for item in items:
        if item.module.__name__ in WORKFLOW_MODULES or SHARED_RUN_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.workflow)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    deferred_scope = f"{DEFERRING_MODULE}::deferred"

    class ModuleScheduling(LoadScopeScheduling):
        """Whole modules to each worker, in the order of the collection; the DEFERRED tests last, as one unit, to the
        worker that ran the rest of their module."""

        deferring_node = None

        def _split_scope(self, nodeid: str) -> str:
            return deferred_scope if nodeid in DEFERRED else nodeid.split("::", 1)[0]

        def _may_take(self, node, scope: str) -> bool:
            return scope != deferred_scope or (len(self.workqueue) == 1 and self.deferring_node in (None, node))

        def _assign_work_unit(self, node) -> None:
            scope = next((scope for scope in self.workqueue if self._may_take(node, scope)), None)
            if scope is None:  # only the deferred tests are left, and they are another worker's
                return
            if scope == DEFERRING_MODULE:
                self.deferring_node = node
            self.workqueue.move_to_end(scope, last=False)  # xdist hands out the first unit of its queue
            super()._assign_work_unit(node)

        def mark_test_complete(self, node, item_index: int, duration: float = 0) -> None:
            super().mark_test_complete(node, item_index, duration)
            for other in self.nodes:  # a worker left waiting while the deferred tests were queued is done now
                if other is not node:
                    self._reschedule(other)

    config.option.loadscopereorder = False  # xdist would otherwise hand out the modules with the most tests first
    return ModuleScheduling(config, log)


# Four classes of different abundance (rank 1 = alpha ... rank 4 = delta).
SYNTHETIC_COUNTS = {"alpha": 12, "beta": 9, "gamma": 7, "delta": 5}


@contextlib.contextmanager
def logged_messages():
    """The messages plasmidlm logs (INFO and above) within the block: caplog for a fixture or helper, whose scope is
    not one test."""
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    library = logging.getLogger("plasmidlm")
    level = library.level
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    try:
        yield messages
    finally:
        library.removeHandler(handler)
        library.setLevel(level)


@dataclass
class Dataset:
    fasta: Path
    labels: Path
    sequences: dict[str, str]
    table: pd.DataFrame  # columns id, label, length (in FASTA order)


def random_sequence(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=length))


def write_fasta(path: Path, records, compress: bool = False, width: int = 70, newline: str = "\n") -> Path:
    """Write (id, sequence) records, wrapping lines at `width`."""
    lines = []
    for record_id, sequence in records:
        lines.append(f">{record_id}")
        lines.extend(sequence[i : i + width] for i in range(0, len(sequence), width))
    text = newline.join(lines) + newline
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(text.encode())
    else:
        path.write_bytes(text.encode())
    return path


def make_dataset(
    directory: Path,
    counts: dict[str, int] | None = None,
    min_length: int = 300,
    max_length: int = 800,
    compress: bool = False,
    seed: int = 0,
) -> Dataset:
    """A seeded synthetic FASTA + labels TSV with several classes of different abundance."""
    counts = SYNTHETIC_COUNTS if counts is None else counts
    rng = np.random.default_rng(seed)
    rows = []
    for label, n in counts.items():
        for i in range(n):
            rows.append((f"{label}_p{i:02d}", label, int(rng.integers(min_length, max_length + 1))))
    order = rng.permutation(len(rows))  # shuffle so that the FASTA is not grouped by class
    rows = [rows[i] for i in order]
    sequences = {record_id: random_sequence(rng, length) for record_id, _, length in rows}
    directory.mkdir(parents=True, exist_ok=True)
    fasta = write_fasta(directory / ("sequences.fasta.gz" if compress else "sequences.fasta"),
                        sequences.items(), compress=compress)
    table = pd.DataFrame(rows, columns=["id", "label", "length"])
    labels = directory / "labels.tsv"
    table[["id", "label"]].to_csv(labels, sep="\t", index=False)
    return Dataset(fasta=fasta, labels=labels, sequences=sequences, table=table)


@pytest.fixture
def synthetic(tmp_path) -> Dataset:
    """4 classes (12, 9, 7, 5 plasmids of 300-800 nt), plain FASTA."""
    return make_dataset(tmp_path / "synthetic")


@pytest.fixture
def synthetic_gz(tmp_path) -> Dataset:
    """The same data set as `synthetic`, gzip-compressed FASTA."""
    return make_dataset(tmp_path / "synthetic_gz", compress=True)


@dataclass
class DemoData:
    fasta: Path
    labels: Path


@pytest.fixture(scope="session")
def demo_data() -> DemoData:
    """The shipped demo: 410 records (205 plasmid, 205 chromosome); columns id, label, isolate, length."""
    data = DemoData(fasta=DEMO_DIR / "sequences.fasta.gz", labels=DEMO_DIR / "labels.tsv")
    assert data.fasta.exists() and data.labels.exists(), f"demo data missing under {DEMO_DIR}"
    return data


# --- a tiny built-in model, saved like a training checkpoint ----------------------------------------

TINY = {"name_or_path": "builtin", "preset": "tiny", "kmer": 3, "kmer_stride": 1}
WINDOW = 60
CLASSES = ["a", "b"]


def random_windows(n: int, length: int = WINDOW, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), size=length)) for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A freshly initialised tiny built-in model saved like a training checkpoint."""
    from plasmidlm.model import build_or_load

    model, tokenizer = build_or_load(dict(TINY), WINDOW, CLASSES, seed=0)
    directory = tmp_path_factory.mktemp("tiny_checkpoint")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory, model.eval(), tokenizer


def prediction_outputs(out_prefix) -> dict:
    """`predict_fasta`'s output tables for `plasmidlm predict --out out_prefix`, as its keyword arguments."""
    from plasmidlm.layout import prediction_paths

    out_windows, out_sequences = prediction_paths(out_prefix)
    return {"out_windows": out_windows, "out_sequences": out_sequences}


@pytest.fixture(scope="session")
def confident_checkpoint(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint with larger weight matrices (normal, sd 0.3), so that probabilities span (0, 1)."""
    import torch

    from plasmidlm.model import load_checkpoint

    directory = tmp_path_factory.mktemp("confident_checkpoint")
    model, tokenizer, _ = load_checkpoint(tiny_checkpoint[0])
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


# --- training runs -----------------------------------------------------------------------------------

def assert_same_weights(actual: dict, expected: dict) -> None:
    import torch

    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=1e-6, msg=name)


def losses(summary: dict) -> dict:
    return {entry["step"]: entry["loss"] for entry in summary["log_history"] if "loss" in entry}


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models train fastest on one thread; on a busy machine, several threads wait on each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- one finished run of the whole workflow, shared by the tests that only read it ---------------------

def snakemake(*args, cwd=REPO_ROOT, check=True, env=None):
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "Snakefile"), *args],
                          cwd=cwd, capture_output=True, text=True, check=check, env=env)


def online_env(endpoint: str, hf_home) -> dict:
    """This process's environment with the hub client pointed at `endpoint` (a stand-in hub) and allowed online,
    its caches in `hf_home`: for a workflow run whose fetch step downloads (its jobs switch the hub off)."""
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return env | {"HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home)}


def reduced_config() -> dict:
    """The demo data with a tiny model, few windows and a few steps: the whole pipeline in about a minute, with two
    experiments at two window lengths (held-out windows and baselines at each)."""
    return {
        "run_name": "e2e",
        "data": {"fasta": str(DEMO_DIR / "sequences.fasta.gz"), "labels": str(DEMO_DIR / "labels.tsv")},
        "windows": {"length": 60, "val_count": 40, "test_count": 200},
        "model": {"preset": "tiny", "kmer": 3},
        "train": {"max_steps": 6, "save_steps": 3, "logging_steps": 1, "batch_size": 8, "learning_rate": 1.0e-3},
        "baselines": {"kmer": {"k": 4, "windows_per_plasmid": 2},
                      "embeddings": {"enabled": True, "model": "random", "windows_per_plasmid": 2, "cnn_epochs": 1}},
        "evaluate": {"bootstrap": 50},
        "experiments": {
            "first": {"windows": {"strategy": "first", "per_plasmid": 1}},
            "random": {"windows": {"strategy": "random", "per_plasmid": 2, "length": 40}},
        },
    }


def reduced_window_length(experiment: str) -> int:
    """An experiment's window length in `reduced_config` (its own, else windows.length)."""
    from plasmidlm.config import resolve_experiments
    from plasmidlm.plan import experiment_length

    return experiment_length(resolve_experiments(reduced_config()), experiment)


class FinishedRun(NamedTuple):
    workdir: Path  # the snakemake --directory
    config: Path  # its --configfile
    run: Path  # workdir/results/<run_name>


# What the first experiment's training reads: the part of the reduced run that the Slurm tests' trainings start from.
FIRST_TRAINING_INPUTS = [f"results/{reduced_config()['run_name']}/{path}" for path in
                         ("data/split.tsv", "data/val_windows.tsv.gz", "first/train_windows.tsv.gz")]


def run_reduced_workflow(workdir: Path, *targets: str) -> str:
    """Run the reduced demo workflow (`reduced_config`, plus a FASTA to predict) in `workdir`, for `targets` (default:
    all); the end of its stderr if it failed, else ""."""
    config = workdir / "reduced.yaml"
    if not config.exists():
        shutil.rmtree(workdir, ignore_errors=True)  # what a run stopped half-way left
        workdir.mkdir(parents=True)
        new_sequences = write_fasta(workdir / "new.fasta", [("new_1", "ACGT" * 40), ("new_2", "GATTACA" * 30),
                                                             ("tiny", "ACGT")])
        config.write_text(yaml.safe_dump(reduced_config() | {"predict": {"fasta": {"new": str(new_sequences)}}}))
    result = snakemake(*targets, "--directory", str(workdir), "--configfile", str(config), "--cores", "2",
                       check=False)
    return "" if result.returncode == 0 else result.stderr[-5000:]


def session_folder(tmp_path_factory) -> Path:
    """This test session's folder: on several pytest-xdist workers, the one above each worker's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


@contextlib.contextmanager
def reduced_run_lock(tmp_path_factory):
    """Held while the reduced run is made, or copied: pytest-xdist workers share it."""
    with FileLock(session_folder(tmp_path_factory) / "reduced_run.lock"):
        yield


def reduced_run(tmp_path_factory, part: str, *targets: str) -> FinishedRun:
    """The session's reduced run, made as far as `targets` (default: all) by the first that asks for this `part`,
    while the others wait and then read the same run."""
    session = session_folder(tmp_path_factory)
    workdir = session / "finished_run"
    outcome = session / f"{part}.outcome"
    with reduced_run_lock(tmp_path_factory):
        if not outcome.exists():
            outcome.write_text(run_reduced_workflow(workdir, *targets))
    error = outcome.read_text()
    assert not error, error
    return FinishedRun(workdir, workdir / "reduced.yaml", workdir / "results" / reduced_config()["run_name"])


@pytest.fixture(scope="session")
def first_training_inputs(tmp_path_factory) -> FinishedRun:
    """The reduced run so far as FIRST_TRAINING_INPUTS: the data steps up to the first experiment's training. Copy it
    under `reduced_run_lock` only (another worker may be finishing the run)."""
    return reduced_run(tmp_path_factory, "first_training_inputs", *FIRST_TRAINING_INPUTS)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> FinishedRun:
    """The reduced demo workflow (`run_reduced_workflow`), run once for the whole session: on several pytest-xdist
    workers, by the first that asks for it, while the others wait and then read the same run.

    Tests must not change it: copy it, or run snakemake on it in dry-run mode only.
    """
    return reduced_run(tmp_path_factory, "finished_run")
