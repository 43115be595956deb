"""Running one pipeline step with its log file: one clear line on bad input, a traceback otherwise."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from plasmidlm import PlasmidlmError

logger = logging.getLogger(__name__)


def limit_threads(threads: int) -> None:
    """Use `threads` CPU threads in torch and the numerical libraries, whether torch is imported yet or not.

    Setting the variables instead of importing torch here keeps steps that never need it quick to start.
    """
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


@contextlib.contextmanager
def logging_to(stream):
    """Within the block, log records of INFO and above (the library's progress) go to `stream`, message only."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def run_logged(log_path, step, /, threads: int | None = None, **kwargs):
    """Call `step(**kwargs)` with stdout, stderr and logging (INFO and above, message only) going to `log_path`.

    With `threads`, torch uses that many CPU threads (the job's Snakemake threads).

    A PlasmidlmError (bad input or config) ends the process with its one-line message, in the log and
    on the real stderr, and exit status 1.
    """
    if threads:
        limit_threads(threads)
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers follows it too: bars make unreadable log files
    real_stderr = sys.stderr
    with open(log_path, "w") as log_file, contextlib.redirect_stdout(log_file), \
            contextlib.redirect_stderr(log_file), logging_to(log_file):
        try:
            return step(**kwargs)
        except PlasmidlmError as error:
            logger.error(f"error: {error}")
            print(f"error: {error}", file=real_stderr, flush=True)
            raise SystemExit(1) from None
