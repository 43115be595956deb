"""Data-parallel training (DDP) on several GPUs of one node, or several CPU processes, inside one pipeline job.

`launch` starts one process per GPU (rank), as `torchrun --standalone` would, each running the same pipeline
step, named as "package.module:function" (`python -m plasmidlm.training.distributed`). It forwards their output to the
job's log and the first SIGTERM to every rank (as SIGUSR1, see `training.trainer.StopOnSigterm`); torchrun's agent is not
used because it answers SIGTERM by sending SIGTERM to the ranks itself, which would end them mid-step instead of
after it. The ranks agree on
everything that must happen once (`main_then_shared`, `computed_once`): rank 0 prepares the checkpoint folder
and tokenizes, the others wait and read what it wrote; only rank 0 writes checkpoints, logs and summaries.

This module imports torch only inside the ranks, so that a data step importing it stays quick; it imports the
step only inside the ranks, by name, so that the steps may import it.
"""

from __future__ import annotations

import datetime
import importlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from plasmidlm import PlasmidlmError, io

logger = logging.getLogger(__name__)

RANK_MARKER = "PLASMIDLM_DISTRIBUTED"  # set in the environment of the ranks that `launch` starts
STOP_SIGNAL = signal.SIGUSR1  # how `launch` tells the ranks that the job got SIGTERM
FAILURE_GRACE_SECONDS = 20  # after one rank failed, how long the others get to end before they are killed
_CPU_GROUP = None  # a gloo group for small host-side messages, which never wait for a GPU
# How long ranks wait for rank 0's one-time work (tokenizing a large data set). A rank that fails does not make
# the others wait this long: `launch` ends them.
ONCE_TIMEOUT = datetime.timedelta(hours=3)


def in_rank() -> bool:
    """Whether this process is a rank that `launch` started."""
    return os.environ.get(RANK_MARKER) == "1"


def world() -> tuple[int, int]:
    """(rank, number of ranks); (0, 1) outside a distributed run."""
    if not in_rank():
        return 0, 1
    import torch.distributed as dist

    return dist.get_rank(), dist.get_world_size()


def is_main() -> bool:
    return world()[0] == 0


def per_process_batch(batch_size: int, size: int, section: str) -> int:
    """The batch of each of `size` ranks: the global `batch_size` split evenly over them."""
    if batch_size % size:
        raise PlasmidlmError(f"config {section}.batch_size: {batch_size} is not a multiple of {section}.gpus ({size}); "
                             f"the global batch is split evenly over the GPUs")
    return batch_size // size


def barrier() -> None:
    if in_rank():
        import torch.distributed as dist

        dist.barrier(group=_CPU_GROUP)


def main_then_shared(compute):
    """`compute()` on rank 0 only (e.g. preparing the checkpoint folder), its result handed to every rank."""
    if not in_rank():
        return compute()
    import torch.distributed as dist

    box = [compute() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0, group=_CPU_GROUP)
    return box[0]


def computed_once(path: Path, compute):
    """`compute()` (a dict of tensors, e.g. token ids) on rank 0 only; every rank gets it memory-mapped from
    `path`, so that the operating system holds it once for all ranks. The file is removed once all have it."""
    if not in_rank():
        return compute()
    import torch

    path = Path(path)
    if is_main():
        io.write_atomic(path, lambda tmp: torch.save(compute(), tmp))
    barrier()
    value = torch.load(path, mmap=True, weights_only=True)
    barrier()
    if is_main():
        path.unlink()
    return value


class StopVote:
    """Whether any rank has been asked to stop, agreed by all ranks at the same step without making any of them
    wait: each step end starts an all-reduce of this rank's flag (on a CPU group) and reads the previous one."""

    def __init__(self):
        import torch

        self.torch = torch
        self.pending = None

    def agreed(self, flag: bool) -> bool:
        import torch.distributed as dist

        stop = False
        if self.pending is not None:
            work, vote = self.pending
            work.wait()
            stop = bool(vote.item())
        if stop:
            self.pending = None
        else:
            vote = self.torch.tensor([int(flag)])
            self.pending = dist.all_reduce(vote, op=dist.ReduceOp.MAX, group=_CPU_GROUP, async_op=True), vote
        return stop

    def finish(self) -> None:
        if self.pending is not None:
            self.pending[0].wait()
            self.pending = None


# --- the launcher (in the job's process) ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank_environment(rank: int, processes: int, port: int) -> dict:
    import plasmidlm

    threads = max(1, int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)) // processes)
    source = str(Path(plasmidlm.__file__).resolve().parents[1])  # the ranks import this very plasmidlm
    path = os.environ.get("PYTHONPATH")
    return os.environ | {
        RANK_MARKER: "1", "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(processes),
        "LOCAL_WORLD_SIZE": str(processes), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
        "PYTHONPATH": source + (os.pathsep + path if path else ""),
    }


def _forward(stream, rank: int, errors: list) -> None:
    for line in stream:
        line = line.rstrip("\n")
        if line.startswith("error: "):
            errors.append(line.removeprefix("error: "))
        logger.info(line if rank == 0 else f"[rank {rank}] {line}")


def launch(step: str, kwargs: dict, processes: int) -> None:
    """Run `step` ("package.module:function", e.g. "plasmidlm.steps.train:train") with `kwargs` in `processes`
    ranks and wait for them; their output is logged.

    The first SIGTERM is passed on to every rank, which all stop after the same step; later ones change nothing
    (Slurm sends several at its time limit, see `training.trainer.StopOnSigterm`).
    When a rank fails, the others get FAILURE_GRACE_SECONDS to end, then are killed; the error is raised here
    as a PlasmidlmError (the ranks' own message when they give one).
    """
    port = _free_port()
    specification = json.dumps({"step": step, "kwargs": kwargs})
    ranks = [subprocess.Popen([sys.executable, "-m", "plasmidlm.training.distributed", specification],
                              env=_rank_environment(rank, processes, port), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, bufsize=1)
             for rank in range(processes)]
    errors: list[str] = []
    readers = [threading.Thread(target=_forward, args=(process.stdout, rank, errors), daemon=True)
               for rank, process in enumerate(ranks)]
    for reader in readers:
        reader.start()
    received = []

    def on_sigterm(signum, frame):
        if received:
            return
        received.append(signum)
        for process in ranks:
            if process.poll() is None:
                process.send_signal(STOP_SIGNAL)

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main_thread else None
    try:
        codes = _wait(ranks)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        for reader in readers:
            reader.join(timeout=5)
    if any(codes):
        if errors:
            raise PlasmidlmError(errors[0])
        failed = next(rank for rank, code in enumerate(codes) if code)
        raise PlasmidlmError(f"{step.rpartition(':')[2]}: rank {failed} of {processes} ended with status "
                             f"{codes[failed]}; see the log")


def _wait(ranks: list) -> list[int]:
    failed_at = None
    while True:
        codes = [process.poll() for process in ranks]
        if all(code is not None for code in codes):
            return codes
        if failed_at is None and any(code for code in codes if code is not None):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > FAILURE_GRACE_SECONDS:
            for process in ranks:
                if process.poll() is None:
                    process.kill()
        time.sleep(0.2)


# --- a rank ---------------------------------------------------------------------------------------------------


def _rank_main(specification: str) -> int:
    import torch
    import torch.distributed as dist

    global _CPU_GROUP
    cuda = torch.cuda.is_available()
    size = int(os.environ["WORLD_SIZE"])
    if cuda and torch.cuda.device_count() < size:
        print(f"error: {size} GPUs asked for (train.gpus / pretrain.gpus), but the job sees "
              f"{torch.cuda.device_count()}; ask the cluster for {size} (profiles/slurm sets gpu from the config)",
              flush=True)
        return 1
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    if cuda:
        dist.init_process_group(backend="nccl")
        _CPU_GROUP = dist.new_group(backend="gloo", timeout=ONCE_TIMEOUT)
    else:
        dist.init_process_group(backend="gloo", timeout=ONCE_TIMEOUT)
    request = json.loads(specification)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if dist.get_rank() != 0:  # rank 0 logs the step's progress for all
        logging.getLogger("plasmidlm").setLevel(logging.ERROR)
    try:
        module, function = request["step"].split(":")
        getattr(importlib.import_module(module), function)(**request["kwargs"])
    except PlasmidlmError as error:
        print(f"error: {error}", flush=True)
        return 1
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(_rank_main(sys.argv[1]))
