"""plasmidlm: fine-tune DNA language models to classify plasmids from sequence windows."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("plasmidlm")
except PackageNotFoundError:  # running from a source checkout that is not installed
    __version__ = "0.0.0+source"


class PlasmidlmError(ValueError):
    """A problem with user input (files, records or config), reported as one clear line."""
