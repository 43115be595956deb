"""The configuration schema, and each experiment's settings resolved from the shared defaults."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

from plasmidlm import PlasmidlmError

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")
EXPERIMENT_SECTIONS = ("windows", "model", "train")


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def deep_merge(base: dict, override: dict | None) -> dict:
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def check_references(config: dict) -> None:
    """Checks the schema cannot express: keys that name each other."""
    embeddings = config["baselines"]["embeddings"]
    if embeddings["enabled"] and not embeddings["model"]:
        raise PlasmidlmError("config baselines.embeddings.model: required when the baseline is enabled (an "
                             "experiment name, a local model directory or a hub id)")
    cnn = config["baselines"]["cnn"]
    if cnn["enabled"] and cnn["experiment"] and cnn["experiment"] not in (config.get("experiments") or {}):
        raise PlasmidlmError(f"config baselines.cnn.experiment: {cnn['experiment']!r} is not an experiment")


def resolve_experiments(config: dict) -> dict[str, dict]:
    """{name: {"windows": ..., "model": ..., "train": ...}}: the shared sections with each experiment's overrides.

    Every resolved section is checked against the schema of the shared section, so a mistyped key or
    value inside an experiment is rejected just like one at the top level.
    """
    schema = load_schema()
    resolved = {}
    for name, overrides in config["experiments"].items():
        overrides = overrides or {}
        resolved[name] = {}
        for section in EXPERIMENT_SECTIONS:
            merged = deep_merge(config[section], overrides.get(section))
            section_schema = {**schema["properties"][section], "$defs": schema["$defs"]}
            try:
                jsonschema.validate(merged, section_schema)
            except jsonschema.ValidationError as error:
                where = ".".join(map(str, error.absolute_path))
                raise PlasmidlmError(
                    f"config experiments.{name}.{section}{'.' + where if where else ''}: {error.message}"
                ) from None
            resolved[name][section] = merged
    return resolved


def embeddings_trust_remote_code(config: dict, experiments: dict[str, dict]) -> bool:
    """Whether the embeddings baseline may run its model's own code: an experiment's model as that experiment
    says (`model.trust_remote_code`), any other model as `baselines.embeddings.trust_remote_code` says."""
    embeddings = config["baselines"]["embeddings"]
    if embeddings["model"] in experiments:
        return experiments[embeddings["model"]]["model"]["trust_remote_code"]
    return embeddings["trust_remote_code"]
