"""The versions of the installed libraries: recorded with every model and run, and compared when a model is read."""

from __future__ import annotations

import importlib.util
import logging
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

logger = logging.getLogger(__name__)

# The libraries that read a model.
LIBRARIES = ("transformers", "tokenizers", "torch", "peft", "accelerate", "huggingface_hub", "safetensors")


def installed_versions(packages) -> dict:
    """The installed version of each package, None for a package that is not installed."""
    versions = {}
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def library_versions() -> dict:
    """Versions of the libraries that read a model, and the CUDA torch was built for (None: a CPU build)."""
    return installed_versions(LIBRARIES) | {"cuda": torch_cuda()}


def torch_cuda() -> str | None:
    """torch.version.cuda, read from torch's version.py without importing torch (seconds, in jobs that need none)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    version_file = Path(spec.submodule_search_locations[0]) / "version.py"
    found = re.search(r"^cuda(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", version_file.read_text(), re.M) \
        if version_file.is_file() else None
    return found.group(1) if found else None


def version_changes(recorded: dict, current: dict) -> list[str]:
    """"name old -> new" for each library whose version differs (ignoring those not recorded)."""
    return [f"{name} {old} -> {current.get(name)}" for name, old in sorted(recorded.items())
            if name in current and current.get(name) != old]


def log_version_changes(recorded: dict | None, what: str) -> None:
    """One line when the libraries that read a model are not those `what` was made with (users upgrade on purpose:
    it is not an error)."""
    changes = version_changes(recorded or {}, library_versions())
    if changes:
        logger.warning(f"warning: {what} was made with other library versions: {', '.join(changes)}")
