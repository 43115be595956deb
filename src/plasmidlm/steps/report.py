"""The provenance step of rules/report.smk: resolved config, package versions, the machine, input checksums and
the models (hub commit, file hashes). (The report itself is written by `plasmidlm.report.write_report`.)"""

from __future__ import annotations

import logging
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml

from plasmidlm import __version__, hub, io
from plasmidlm.versions import installed_versions, torch_cuda

logger = logging.getLogger(__name__)


PACKAGES = ["plasmidlm", "torch", "transformers", "accelerate", "tokenizers", "peft", "huggingface_hub", "safetensors",
            "numpy", "pandas", "scikit-learn", "biopython", "snakemake"]


def package_versions() -> dict:
    """Versions of the packages, python, the platform and torch's CUDA (None without)."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform(), "cuda": torch_cuda()}
    versions |= installed_versions(PACKAGES)
    if versions["plasmidlm"] is None:  # run from a source tree that is not installed
        versions["plasmidlm"] = __version__
    return versions


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module knows (e.g. "arm")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Where and when the run's provenance was recorded: the machine of a local run's every job (on a cluster,
    of this one job), so that figures of two runs can be told apart by machine."""
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "recorded_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def provenance(inputs: dict, config: dict, out, out_config, models=()):
    """Resolved config, package versions, the machine, input checksums and the models (`models`: their hub.fetch
    manifests: repository, commit, file hashes): what is needed to reproduce the run."""
    checksums = {name: {"path": str(path), "sha256": io.sha256sum(path)} for name, path in inputs.items()}
    manifests = {str(path): hub.provenance_entry(io.read_json(path)) for path in models}
    io.write_atomic(out_config, lambda tmp: Path(tmp).write_text(yaml.safe_dump(config, sort_keys=False)))
    io.write_json({"versions": package_versions(), "machine": machine(), "inputs": checksums, "models": manifests},
                  out)
    logger.info(f"recorded {len(checksums)} input checksum(s) and {len(manifests)} model(s)")
