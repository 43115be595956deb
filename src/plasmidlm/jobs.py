"""Running one pipeline step with its log file: one clear line on bad input, a traceback otherwise."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from plasmidlm import PlasmidlmError


def limit_threads(threads: int) -> None:
    """Use `threads` CPU threads in torch and the numerical libraries, whether torch is imported yet or not.

    Setting the variables instead of importing torch here keeps steps that never need it quick to start.
    """
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def run_logged(log_path, step, /, threads: int | None = None, **kwargs):
    """Call `step(log=..., **kwargs)` with stdout, stderr and the `log` callback going to `log_path`.

    With `threads`, torch uses that many CPU threads (the job's Snakemake threads).

    A PlasmidlmError (bad input or config) ends the process with its one-line message, in the log and
    on the real stderr, and exit status 1.
    """
    if threads:
        limit_threads(threads)
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers follows it too: bars make unreadable log files
    real_stderr = sys.stderr
    with open(log_path, "w") as log_file, contextlib.redirect_stdout(log_file), \
            contextlib.redirect_stderr(log_file):
        handler = logging.StreamHandler(log_file)
        logging.getLogger().addHandler(handler)

        def log(message: str) -> None:
            print(message, file=log_file, flush=True)

        try:
            return step(log=log, **kwargs)
        except PlasmidlmError as error:
            log(f"error: {error}")
            print(f"error: {error}", file=real_stderr, flush=True)
            raise SystemExit(1) from None
        finally:
            logging.getLogger().removeHandler(handler)
