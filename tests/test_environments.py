"""The three descriptions of the environment agree: requirements.txt (exact pins: make, CI), envs/plasmidlm.yaml
(the jobs' conda environment for --sdm conda) and pyproject.toml (ranges, for pip install -e .)."""

from __future__ import annotations

import re

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from conftest import REPO_ROOT

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

# conda-forge names of PyPI packages, where they differ
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib"}
CONDA_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)\s*(?:==\s*(?P<version>[^\s=]+)(?:=(?P<build>\S+))?)?\s*$")


def pinned() -> dict[str, Version]:
    """requirements.txt: {canonical name: version}; every line is an exact pin."""
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        [specifier] = requirement.specifier
        assert specifier.operator == "==", f"requirements.txt: {line}: not an exact pin"
        pins[canonicalize_name(requirement.name)] = Version(specifier.version)
    return pins


def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def ranges(*extras: str) -> dict[str, SpecifierSet]:
    """pyproject.toml's dependencies (and those of `extras`): {canonical name: specifier}."""
    project = pyproject()
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(line).name): Requirement(line).specifier for line in lines}


def conda_environment() -> tuple[str, dict[str, tuple[Version | None, str | None]]]:
    """envs/plasmidlm.yaml: (python spec, {canonical PyPI name: (version, build)})."""
    environment = yaml.safe_load((REPO_ROOT / "envs" / "plasmidlm.yaml").read_text())
    python, packages = None, {}
    for spec in environment["dependencies"]:
        assert isinstance(spec, str), f"envs/plasmidlm.yaml: {spec}: a pip section would escape these checks"
        if spec.replace(" ", "").startswith("python="):
            python = spec.replace(" ", "")[len("python="):]
            continue
        match = CONDA_SPEC.match(spec)
        assert match, f"envs/plasmidlm.yaml: {spec!r}: expected 'name ==version'"
        name = canonicalize_name(CONDA_TO_PYPI.get(match["name"], match["name"]))
        version = Version(match["version"]) if match["version"] else None
        packages[name] = (version, match["build"])
    return python, packages


def test_requirements_pin_every_dependency_within_the_pyproject_ranges():
    pins = pinned()
    for name, specifier in ranges(*pyproject()["optional-dependencies"]).items():
        assert name in pins, f"{name} (pyproject.toml) is not pinned in requirements.txt"
        assert specifier.contains(pins[name], prereleases=True), (
            f"requirements.txt pins {name}=={pins[name]}, outside pyproject.toml's {name}{specifier}")


def test_conda_environment_pins_the_versions_of_requirements():
    pins = pinned()
    _, packages = conda_environment()
    for name, (version, _) in packages.items():
        assert name in pins, f"envs/plasmidlm.yaml: {name} is not in requirements.txt"
        assert version == pins[name], (
            f"envs/plasmidlm.yaml: {name} =={version}, requirements.txt: {name}=={pins[name]}")


def test_conda_environment_has_every_runtime_dependency():
    """The jobs import the library's dependencies (and peft for LoRA); snakemake and the test tools run outside."""
    _, packages = conda_environment()
    assert set(packages) == set(ranges("lora"))


def test_conda_python_satisfies_requires_python():
    python, _ = conda_environment()
    assert python, "envs/plasmidlm.yaml names no python version"
    assert SpecifierSet(pyproject()["requires-python"]).contains(Version(python))


def test_transformers_lower_bound_excludes_4x():
    """train.warmup_ratio is passed as a float warmup_steps: a fraction of the steps from transformers 5 on,
    but 0.1 warm-up *steps* under 4.x. pip must not be allowed to pick 4.x."""
    specifier = ranges()["transformers"]
    assert not specifier.contains("4.57.1")
    assert specifier.contains("5.0.0")


def test_every_pyproject_dependency_has_a_lower_bound():
    for name, specifier in ranges(*pyproject()["optional-dependencies"]).items():
        assert any(item.operator in (">=", "==", "~=") for item in specifier), f"pyproject.toml: {name} unbounded"


def test_conda_comment_tells_a_gpu_user_how_to_get_a_cuda_build():
    text = (REPO_ROOT / "envs" / "plasmidlm.yaml").read_text()
    assert "CONDA_OVERRIDE_CUDA" in text and "=cuda*" in text
