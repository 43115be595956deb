"""Config checks that the schema cannot express: a missing configuration or section, and experiment names that
outputs of the run already use."""

from __future__ import annotations

import re

import jsonschema
import pytest

from conftest import REPO_ROOT
from plasmidlm import PlasmidlmError
from plasmidlm.config import (
    BASELINE_NAMES,
    PRETRAINED,
    RESERVED_EXPERIMENT_NAMES,
    RUN_FOLDERS,
    check_config_given,
    check_references,
    load_schema,
    resolve_experiments,
    window_lengths,
)
from plasmidlm.evidence import COMPOSITION_BASELINES
from plasmidlm.layout import length_folder

RULES = REPO_ROOT / "rules"


def minimal_config(experiments=None) -> dict:
    return {
        "data": {"fasta": "x.fasta", "labels": "x.tsv"},
        "model": {"name_or_path": "builtin"},
        "baselines": {"embeddings": {"enabled": False, "model": ""}, "cnn": {"enabled": False, "experiment": None}},
        "experiments": experiments if experiments is not None else {"random8": {}},
    }


def test_run_folders_are_the_folders_of_the_layout():
    """Every folder directly under results/<run>/ that plasmidlm.layout names (other than an experiment's) is
    reserved; the rules build their paths with plasmidlm.layout (tests/test_layout.py)."""
    text = (RULES.parent / "src" / "plasmidlm" / "layout.py").read_text()
    folders = set(re.findall(r"\{run\}/([A-Za-z0-9_-]+)(?=[/\"])", text))
    assert folders == set(RUN_FOLDERS)


def test_baseline_names_are_the_baselines_the_rules_write():
    text = (RULES / "baselines.smk").read_text()
    named = set(re.findall(r'layout\.baseline_(?:metrics|file)\(\s*RUN, "\{length_dir\}", "([A-Za-z0-9_]+)"', text))
    assert "in COMPOSITION_BASELINES" in text  # the composition rule writes one folder per composition baseline
    assert named | set(COMPOSITION_BASELINES) == set(BASELINE_NAMES)


def test_pretrained_is_the_workflows_name_for_the_pretrained_model():
    assert PRETRAINED == "pretrained"


@pytest.mark.parametrize("name", RESERVED_EXPERIMENT_NAMES)
def test_experiment_named_like_a_run_folder_or_baseline_is_a_config_error(name):
    with pytest.raises(PlasmidlmError, match=rf"^config experiments\.{name}: name taken by the run's "):
        check_references(minimal_config({"fine": {}, name: {}}))


@pytest.mark.parametrize("name", ["Data", "REPORT", "Pretrained", "KMER"])
def test_reserved_names_are_compared_ignoring_case(name):
    """On a case-insensitive file system (macOS, Windows) results/<run>/Data is results/<run>/data."""
    with pytest.raises(PlasmidlmError, match=rf"config experiments\.{name}: name taken"):
        check_references(minimal_config({name: {}}))


@pytest.mark.parametrize("name", ["data2", "my_report", "kmer8", "pretrained8", "random8"])
def test_names_that_only_contain_a_reserved_name_are_fine(name):
    check_references(minimal_config({name: {}}))


def test_missing_configuration_says_how_to_give_one():
    with pytest.raises(PlasmidlmError, match=r"config: none given\. Pass --configfile"):
        check_config_given({})


@pytest.mark.parametrize("data", [None, {}, {"fasta": "x.fasta"}, {"labels": "x.tsv"}])
def test_config_without_data_names_the_keys_and_that_a_configfile_replaces_the_demo(data):
    config = minimal_config()
    if data is None:
        del config["data"]
    else:
        config["data"] = data
    with pytest.raises(PlasmidlmError, match=r"config data\.fasta and data\.labels: required.*replaces the demo"):
        check_config_given(config)


@pytest.mark.parametrize("experiments", [None, {}])
def test_config_without_experiments_says_one_is_needed(experiments):
    config = minimal_config()
    if experiments is None:
        del config["experiments"]
    else:
        config["experiments"] = experiments
    with pytest.raises(PlasmidlmError, match=r"config experiments: at least one experiment is required"):
        check_config_given(config)


def test_complete_config_passes():
    check_config_given(minimal_config())


# --- model references: a typo stops the dry run, not the job that loads the model hours later ------------


@pytest.mark.parametrize("model", ["builtin", "pretrained", "zhihan1996/DNABERT-2-117M"])
def test_model_names_and_hub_ids_are_accepted(model):
    check_references(minimal_config({"fine": {"model": {"name_or_path": model}}}))


def test_existing_model_directory_is_accepted(tmp_path):
    check_references(minimal_config({"fine": {"model": {"name_or_path": str(tmp_path)}}}))


@pytest.mark.parametrize("model", ["bulitin", "pretrianed"])
def test_misspelt_model_name_is_a_config_error(model):
    with pytest.raises(PlasmidlmError, match=rf"config experiments\.fine\.model\.name_or_path: '{model}' is none of "
                                             r"builtin, pretrained, nor a local directory, nor a Hugging Face hub id"):
        check_references(minimal_config({"fine": {"model": {"name_or_path": model}}}))


def test_missing_model_directory_is_a_config_error(tmp_path):
    config = minimal_config()
    config["model"]["name_or_path"] = str(tmp_path / "models" / "mine")
    with pytest.raises(PlasmidlmError, match=r"config model\.name_or_path: .*models/mine: directory not found"):
        check_references(config)


def embeddings_config(model: str) -> dict:
    config = minimal_config({"first100": {}, "random8": {}})
    config["baselines"]["embeddings"] = {"enabled": True, "model": model}
    return config


@pytest.mark.parametrize("model", ["random8", "pretrained", "InstaDeepAI/nucleotide-transformer-v2-50m"])
def test_embeddings_model_may_be_an_experiment_pretrained_or_a_hub_id(model):
    check_references(embeddings_config(model))


def test_embeddings_model_naming_no_experiment_is_a_config_error():
    with pytest.raises(PlasmidlmError, match=r"config baselines\.embeddings\.model: 'randon8' is none of an "
                                             r"experiment \(first100, random8\), pretrained, nor a local directory"):
        check_references(embeddings_config("randon8"))


def test_embeddings_model_is_not_checked_when_the_baseline_is_off():
    config = embeddings_config("randon8")
    config["baselines"]["embeddings"]["enabled"] = False
    check_references(config)


def length_config(experiments: dict) -> dict:
    return minimal_config(experiments) | {"windows": {"length": 100}, "train": {}}


def test_each_experiment_may_set_its_window_length():
    config = length_config({"short": {}, "long": {"windows": {"length": 500, "per_plasmid": 2}},
                            "long_too": {"windows": {"length": 500}}})
    schema = load_schema()
    jsonschema.validate(config["experiments"], schema["properties"]["experiments"] | {"$defs": schema["$defs"]})
    experiments = resolve_experiments(config)
    assert {name: settings["windows"]["length"] for name, settings in experiments.items()} == {
        "short": 100, "long": 500, "long_too": 500}
    assert window_lengths(experiments) == [100, 500]
    # the run's windows.length keeps the paths of a run with one length
    assert [length_folder(length, 100) for length in window_lengths(experiments)] == ["", "length-500"]


def test_lengths_used_are_those_of_the_experiments_only():
    experiments = resolve_experiments(length_config({"long": {"windows": {"length": 500}}}))
    assert window_lengths(experiments) == [500]
    assert length_folder(500, 100) == "length-500"


def test_an_experiments_window_length_is_checked_like_the_runs():
    with pytest.raises(PlasmidlmError, match=r"config experiments\.tiny\.windows\.length: 4 is less than the minimum "
                                             r"of 8"):
        resolve_experiments(length_config({"tiny": {"windows": {"length": 4}}}))
