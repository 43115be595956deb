"""The configuration schema, and each experiment's settings resolved from the shared defaults."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

from plasmidlm import PlasmidlmError
from plasmidlm.evidence import COMPOSITION_BASELINES
from plasmidlm.layout import RUN_FOLDERS
from plasmidlm.replicates import expand_experiments, swept_groups

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")
# Windows per inference batch when none is given (evaluate.batch_size null, no --batch-size): evaluation,
# predict, embed and the embeddings baseline (plasmidlm.evaluate.default_batch_size).
GPU_BATCH_SIZE = 1024
CPU_BATCH_SIZE = 256
INFERENCE_PRECISIONS = ("auto", "bf16", "fp16", "fp32")  # evaluate.precision
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


# Names an experiment cannot take: each experiment writes results/<run>/<experiment>/, next to these folders
# of the run (plasmidlm.layout; tests/test_config.py checks the list against the rules); "pretrained" is the model
# name of the pretraining stage's model (model.name_or_path, baselines.embeddings.model); and the baselines
# share the `experiment` column of report/comparison.tsv with the experiments. Compared ignoring case:
# "Data" and "data" are one folder on macOS and Windows file systems.
PRETRAINED = "pretrained"
BUILTIN = "builtin"
BASELINE_NAMES = ("majority", "kmer", *COMPOSITION_BASELINES, "cnn", "embeddings_logistic", "embeddings_cnn")
RESERVED_EXPERIMENT_NAMES = (*RUN_FOLDERS, PRETRAINED, *BASELINE_NAMES)

CONFIG_HELP = ("a --configfile replaces the demo's config.yaml instead of adding to it (give every key you need "
               "beyond the schema's defaults, or pass both: --configfile config.yaml my.yaml)")


def check_config_given(config: dict) -> None:
    """Before the schema: a missing configuration or section named by its cause, not by a schema message."""
    if not config:
        raise PlasmidlmError(
            "config: none given. Pass --configfile my.yaml (config.yaml is the demo, which the workflow "
            "profile profiles/default passes when the command line names no --configfile; --workflow-profile "
            "replaces that profile)")
    data = config.get("data")
    if not isinstance(data, dict) or not data.get("fasta") or not data.get("labels"):
        raise PlasmidlmError(f"config data.fasta and data.labels: required, they have no default; {CONFIG_HELP}")
    if not config.get("experiments"):
        raise PlasmidlmError(
            f"config experiments: at least one experiment is required (e.g. experiments: {{random8: {{}}}}); "
            f"{CONFIG_HELP}")


def check_references(config: dict) -> None:
    """Checks the schema cannot express: keys that name each other, and names that outputs would share."""
    reserved = {name.lower(): name for name in RESERVED_EXPERIMENT_NAMES}
    for name in config["experiments"]:
        if name.lower() in reserved:
            raise PlasmidlmError(
                f"config experiments.{name}: name taken by the run's {_reserved_as(reserved[name.lower()])}; "
                f"rename the experiment (reserved, ignoring case: {', '.join(RESERVED_EXPERIMENT_NAMES)})")
    expanded = expand_experiments(config)
    for replicate in expanded.values():
        model = (replicate.overrides.get("model") or {}).get("name_or_path", config["model"]["name_or_path"])
        where = f"experiments.{replicate.group}.model.name_or_path" if model != config["model"]["name_or_path"] \
            else "model.name_or_path"
        _check_model_reference(where, model, {BUILTIN, PRETRAINED}, "builtin, pretrained")
    _check_not_swept(config, expanded)
    embeddings = config["baselines"]["embeddings"]
    if embeddings["enabled"] and not embeddings["model"]:
        raise PlasmidlmError("config baselines.embeddings.model: required when the baseline is enabled (an "
                             "experiment name, a local model directory or a hub id)")
    if embeddings["enabled"]:
        experiments = sorted(expanded)
        _check_model_reference("baselines.embeddings.model", embeddings["model"], {*experiments, PRETRAINED},
                               f"an experiment ({', '.join(experiments)}), pretrained")

    cnn = config["baselines"]["cnn"]
    if cnn["enabled"] and cnn["experiment"] and cnn["experiment"] not in expanded:
        raise PlasmidlmError(f"config baselines.cnn.experiment: {cnn['experiment']!r} is not an experiment")


def _check_not_swept(config: dict, expanded: dict) -> None:
    """An experiment with a sweep is no single model: the baselines name one of its settings."""
    swept = swept_groups(expanded)
    for key, name in (("baselines.cnn.experiment", config["baselines"]["cnn"]["experiment"]),
                      ("baselines.embeddings.model", config["baselines"]["embeddings"]["model"])):
        if name in swept:
            example = next(other for other, replicate in expanded.items() if replicate.group == name)
            raise PlasmidlmError(f"config {key}: experiment {name!r} has a sweep; name one of its settings "
                                 f"(e.g. {example})")


def _check_model_reference(key: str, model: str, names: set[str], described: str) -> None:
    """A model is one of `names`, an existing directory, or a hub id (org/name); anything else is a typo that
    would otherwise stop the job that loads it, after the steps before it have run."""
    if model in names or Path(model).expanduser().is_dir():
        return
    looks_like_path = model.startswith(("/", "./", "../", "~")) or model.endswith("/") or model.count("/") > 1
    if looks_like_path:
        raise PlasmidlmError(f"config {key}: {model}: directory not found")
    if "/" not in model:
        raise PlasmidlmError(f"config {key}: {model!r} is none of {described}, nor a local directory, nor a "
                             f"Hugging Face hub id (org/name)")


def _reserved_as(name: str) -> str:
    if name in RUN_FOLDERS:
        return f"folder results/<run_name>/{name}/"
    if name == PRETRAINED:
        return "pretrained model (model.name_or_path: pretrained)"
    return f"baseline {name} (report/comparison.tsv)"


def resolve_experiments(config: dict) -> dict[str, dict]:
    """{name: {"windows": ..., "model": ..., "train": ...}}: the shared sections with each experiment's overrides,
    for every experiment that runs (`plasmidlm.replicates.expand_experiments`: replicates and sweep settings).

    Every resolved section is checked against the schema of the shared section, so a mistyped key or
    value inside an experiment is rejected just like one at the top level.
    """
    schema = load_schema()
    resolved = {}
    for name, replicate in expand_experiments(config).items():
        overrides = replicate.overrides
        resolved[name] = {}
        for section in EXPERIMENT_SECTIONS:
            merged = deep_merge(config[section], overrides.get(section))
            section_schema = {**schema["properties"][section], "$defs": schema["$defs"]}
            try:
                jsonschema.validate(merged, section_schema)
            except jsonschema.ValidationError as error:
                where = ".".join(map(str, error.absolute_path))
                setting = f" (sweep setting {replicate.setting})" if replicate.setting else ""
                raise PlasmidlmError(
                    f"config experiments.{replicate.group}{setting}.{section}{'.' + where if where else ''}: "
                    f"{error.message}") from None
            resolved[name][section] = merged
    return resolved


def window_lengths(experiments: dict[str, dict]) -> list[int]:
    """The distinct window lengths of the resolved experiments (`resolve_experiments`), shortest first: the
    held-out windows and every baseline are made once per length."""
    return sorted({settings["windows"]["length"] for settings in experiments.values()})


def embeddings_trust_remote_code(config: dict, experiments: dict[str, dict]) -> bool:
    """Whether the embeddings baseline may run its model's own code: an experiment's model as that experiment
    says (`model.trust_remote_code`), any other model as `baselines.embeddings.trust_remote_code` says."""
    embeddings = config["baselines"]["embeddings"]
    if embeddings["model"] in experiments:
        return experiments[embeddings["model"]]["model"]["trust_remote_code"]
    return embeddings["trust_remote_code"]
