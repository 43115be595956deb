"""Running one pipeline step with its log file: one clear line on bad input, a traceback otherwise."""

from __future__ import annotations

import contextlib
import logging
import sys

import torch
from transformers.utils import logging as hf_logging

from plasmidlm import PlasmidlmError


def run_logged(log_path, step, /, threads: int | None = None, **kwargs):
    """Call `step(log=..., **kwargs)` with stdout, stderr and the `log` callback going to `log_path`.

    With `threads`, torch uses that many CPU threads (the job's Snakemake threads).

    A PlasmidlmError (bad input or config) ends the process with its one-line message, in the log and
    on the real stderr, and exit status 1.
    """
    if threads:
        torch.set_num_threads(threads)
    hf_logging.disable_progress_bar()  # progress bars make unreadable log files
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
