"""Replicates and sweeps: how experiments expand (names, seeds, settings, max_experiments), and what the report
makes of them (collapse, the spread over replicates, the choice of a setting on validation only, paired
differences over seeds, cost), on synthetic tables."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from conftest import REPO_ROOT
from plasmidlm import PlasmidlmError
from plasmidlm.config import SCHEMA_PATH, check_references, resolve_experiments
from plasmidlm.replicates import expand_experiments, is_expanded
from plasmidlm.report.plots import sweep_plot
from plasmidlm.report.seeds import (choose_settings, collapse_reason, cost_by_group, paired_statistic,
                                    predicted_classes, seed_differences, setting_summary, validation_only,
                                    with_replicate_columns)


def demo(**experiments_edit) -> dict:
    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    for name, entry in experiments_edit.items():
        config["experiments"][name] |= entry
    validate(config, str(SCHEMA_PATH))
    return config


GRID = {"train.learning_rate": [1.0e-4, 3.0e-4], "train.batch_size": [32, 64]}


# --- expansion -------------------------------------------------------------------------------------------------

def test_without_replicates_or_sweeps_every_experiment_keeps_its_name_seed_and_settings():
    config = demo()
    expanded = expand_experiments(config)
    assert list(expanded) == list(config["experiments"])
    assert {replicate.seed for replicate in expanded.values()} == {config["seed"]}
    assert not is_expanded(config)


def test_replicates_are_named_rep_r_with_their_own_seed_and_otherwise_identical_settings():
    config = demo(first100={"replicates": 1})
    config["replicates"] = 3
    expanded = expand_experiments(config)
    assert [name for name in expanded if name.startswith("random8")] == ["random8", "random8.rep2", "random8.rep3"]
    assert [expanded[name].seed for name in ("random8", "random8.rep2", "random8.rep3")] == [1, 2, 3]
    assert [name for name in expanded if name.startswith("first100")] == ["first100"]
    resolved = resolve_experiments(config)
    assert resolved["random8.rep3"] == resolved["random8"] == resolve_experiments(demo())["random8"]
    assert is_expanded(config)


def test_a_grid_sweep_trains_every_combination_under_names_that_say_its_settings():
    expanded = expand_experiments(demo(random8={"sweep": GRID, "replicates": 2}))
    names = [name for name in expanded if name.startswith("random8")]
    assert names == ["random8.learning_rate~0.0001_batch_size~32", "random8.learning_rate~0.0001_batch_size~32.rep2",
                     "random8.learning_rate~0.0001_batch_size~64", "random8.learning_rate~0.0001_batch_size~64.rep2",
                     "random8.learning_rate~0.0003_batch_size~32", "random8.learning_rate~0.0003_batch_size~32.rep2",
                     "random8.learning_rate~0.0003_batch_size~64", "random8.learning_rate~0.0003_batch_size~64.rep2"]
    resolved = resolve_experiments(demo(random8={"sweep": GRID}))
    train = resolved["random8.learning_rate~0.0003_batch_size~64"]["train"]
    assert (train["learning_rate"], train["batch_size"], train["epochs"]) == (3.0e-4, 64, 4)
    # one folder each, and a wildcard constraint of the escaped names matches each name and nothing else
    pattern = re.compile("|".join(map(re.escape, expanded)))
    assert all("/" not in name and pattern.fullmatch(name) for name in expanded)
    assert not pattern.fullmatch("random8.learning_rate~0.0001_batch_size~32Xrep2")


def test_adding_a_value_to_a_sweep_keeps_the_names_of_the_settings_already_there():
    before = expand_experiments(demo(random8={"sweep": {"train.learning_rate": [1.0e-4, 3.0e-4]}}))
    after = expand_experiments(demo(random8={"sweep": {"train.learning_rate": [1.0e-4, 3.0e-4, 1.0e-3]}}))
    assert set(after) - set(before) == {"random8.learning_rate~0.001"}
    assert all(after[name] == before[name] for name in before)


def test_a_list_sweep_names_each_setting_by_its_own_keys_in_order():
    sweep = [{"train.learning_rate": 1.0e-3}, {"train.learning_rate": 1.0e-4, "windows.per_plasmid": 16}]
    resolved = resolve_experiments(demo(random8={"sweep": sweep}))
    names = [name for name in resolved if name.startswith("random8")]
    assert names == ["random8.learning_rate~0.001", "random8.learning_rate~0.0001_per_plasmid~16"]
    assert resolved[names[1]]["windows"]["per_plasmid"] == 16 and resolved[names[0]]["windows"]["per_plasmid"] == 8


def test_more_experiments_than_max_experiments_stop_with_one_line_naming_the_key():
    config = demo(random8={"sweep": {"train.learning_rate": [1.0e-4, 3.0e-4, 1.0e-3]}, "replicates": 20})
    with pytest.raises(PlasmidlmError, match=r"^config max_experiments: the experiments expand to 62 ") as error:
        expand_experiments(config)
    assert "\n" not in str(error.value) and "random8: 3 setting(s) x 20 replicate(s)" in str(error.value)
    assert len(expand_experiments(config | {"max_experiments": 62})) == 62


def test_a_swept_value_of_the_wrong_type_names_the_experiment_and_its_setting():
    config = demo(random8={"sweep": {"train.learning_rate": [1.0e-4, "fast"]}})
    with pytest.raises(PlasmidlmError, match=r"experiments\.random8 \(sweep setting learning_rate~fast\)\.train\."
                                             r"learning_rate: 'fast' is not of type 'number'"):
        resolve_experiments(config)


def test_a_baseline_names_a_setting_of_a_swept_experiment_not_the_experiment():
    config = demo(random8={"sweep": {"train.learning_rate": [1.0e-4, 3.0e-4]}})
    with pytest.raises(PlasmidlmError, match=r"^config baselines.cnn.experiment: experiment 'random8' has a sweep; "
                                             r"name one of its settings \(e.g. random8.learning_rate~0.0001\)"):
        check_references(config)
    config["baselines"]["cnn"]["experiment"] = "random8.learning_rate~0.0003"
    config["baselines"]["embeddings"]["model"] = "random8.learning_rate~0.0003"
    check_references(config)


# --- the report's tables -----------------------------------------------------------------------------------------

def test_a_best_checkpoint_at_the_majority_rate_or_with_one_predicted_class_is_collapsed():
    assert predicted_classes([[10, 0], [7, 0]]) == 1 and predicted_classes([[9, 1], [2, 5]]) == 2
    assert collapse_reason(0.74, majority=0.5, predicted=2) == ""
    assert "majority rate 0.500" in collapse_reason(0.5, majority=0.5, predicted=2)
    assert collapse_reason(0.61, majority=0.5, predicted=1) == "one predicted class on every test window"


def replicates_table() -> pd.DataFrame:
    """Two groups: `a` swept over two settings (x: validation 0.80, 0.82; y: 0.90, 0.88) and `b` without a sweep;
    three replicates each, b's third collapsed. Test accuracy favours setting x."""
    rows = []
    for setting, val, test in (("lr~1", (0.80, 0.82, 0.81), (0.95, 0.96, 0.97)),
                               ("lr~2", (0.90, 0.88, 0.89), (0.70, 0.71, 0.72))):
        for index in range(3):
            rows.append({"group": "a", "setting": setting, "replicate": index + 1, "val_accuracy": val[index],
                         "window_accuracy": test[index], "plasmid_accuracy": test[index] + 0.01})
    for index, (val, test) in enumerate(((0.85, 0.68), (0.86, 0.69), (0.5, 0.5))):
        rows.append({"group": "b", "setting": "", "replicate": index + 1, "val_accuracy": val,
                     "window_accuracy": test, "plasmid_accuracy": test})
    table = pd.DataFrame(rows)
    names = [f"{group}.{setting}" if setting else group for group, setting in zip(table["group"], table["setting"])]
    return table.assign(
        experiment=[name if index == 1 else f"{name}.rep{index}" for name, index in zip(names, table["replicate"])],
        seed=table["replicate"], window_length=100, checkpoint=3, gpus=2, train_seconds=1800.0,
        train_windows_per_second=100.0, eval_seconds=360.0, eval_windows_per_second=1000.0,
        collapsed=["validation accuracy 0.500 at the majority rate 0.500" if (group, index) == ("b", 3) else ""
                   for group, index in zip(table["group"], table["replicate"])])


def test_comparison_rows_get_their_group_setting_replicate_seed_and_collapse_flag():
    table = pd.DataFrame({"experiment": ["a.lr~2.rep2", "b.rep3", "kmer"],
                          "kind": ["fine-tuned", "fine-tuned", "baseline"]})
    table = with_replicate_columns(table, replicates_table())
    assert list(table.columns) == ["experiment", "kind", "group", "setting", "replicate", "seed", "collapsed"]
    assert table["group"].tolist() == ["a", "b", "kmer"] and table["setting"].tolist()[:2] == ["lr~2", ""]
    assert table["replicate"].tolist()[:2] == [2, 3] and table["collapsed"].tolist()[:2] == [False, True]


def test_a_sweep_chooses_on_mean_validation_accuracy_and_reads_no_test_metric():
    replicates = replicates_table()
    assert choose_settings(validation_only(replicates)) == {"a": "lr~2", "b": ""}
    # the test metrics favour the other setting; turning them upside down or dropping them changes nothing
    upside_down = replicates.assign(window_accuracy=1 - replicates["window_accuracy"],
                                    plasmid_accuracy=1 - replicates["plasmid_accuracy"])
    assert choose_settings(validation_only(upside_down)) == choose_settings(validation_only(replicates))
    only_validation = replicates[["group", "setting", "val_accuracy"]]
    assert choose_settings(only_validation) == {"a": "lr~2", "b": ""}


def test_the_summary_counts_collapsed_replicates_and_leaves_them_out_of_the_test_means():
    replicates = replicates_table()
    summary = setting_summary(replicates, {"a": "lr~2", "b": ""}).set_index(["experiment", "setting"])
    b = summary.loc[("b", "")]
    assert (b["replicates"], b["collapsed"], b["chosen"]) == (3, 1, True)
    assert b["window_accuracy_mean"] == pytest.approx(0.685) and b["window_accuracy_min"] == pytest.approx(0.68)
    # validation, which chooses, averages every replicate
    assert b["val_accuracy_mean"] == pytest.approx((0.85 + 0.86 + 0.5) / 3)
    a = summary.loc[("a", "lr~2")]
    assert a["window_accuracy_sd"] == pytest.approx(0.01) and not summary.loc[("a", "lr~1"), "chosen"]
    # cost: 3 replicates x 1800 s x 2 GPUs; evaluation 3 x 360 s
    assert (a["train_device_hours"], a["eval_device_hours"]) == pytest.approx((3.0, 0.3))
    cost = cost_by_group(summary.reset_index()).set_index("experiment")
    assert (cost.loc["a", "settings"], cost.loc["a", "trained"]) == (2, 6)
    assert cost.loc["a", "train_device_hours"] == pytest.approx(6.0)
    assert cost.loc["a", "result_window_accuracy_mean"] == pytest.approx(0.71)


def test_a_difference_holds_across_seeds_when_every_seed_agrees_or_the_interval_excludes_zero():
    agreeing = paired_statistic([0.02, 0.01])
    assert agreeing["same_sign"] and not agreeing["interval_excludes_zero"] and agreeing["holds_across_seeds"]
    firm = paired_statistic([0.05, 0.04, 0.06, 0.05, -0.001])
    assert not firm["same_sign"] and firm["interval_excludes_zero"] and firm["holds_across_seeds"]
    mixed = paired_statistic([0.03, -0.02, 0.01])
    assert (mixed["higher"], mixed["lower"], mixed["holds_across_seeds"]) == (2, 1, False)
    assert not paired_statistic([0.03])["holds_across_seeds"]
    assert paired_statistic([0.02, 0.04])["ci_low"] == pytest.approx(0.03 - 12.7062 * 0.0141421 / np.sqrt(2), abs=1e-4)


def test_seed_differences_pair_the_chosen_settings_replicate_by_replicate_and_against_the_kmer_baseline():
    replicates = replicates_table()
    baselines = pd.DataFrame([{"experiment": "kmer", "kind": "baseline", "window_length": 100,
                               "window_accuracy": 0.65, "plasmid_accuracy": 0.9}])
    differences = seed_differences(replicates, baselines, {"a": "lr~2", "b": ""})
    window = differences[differences["metric"] == "window_accuracy"].set_index("versus")
    # a (lr~2) against b: replicates 1 and 2 only (b's third collapsed)
    assert window.loc["b", "experiment"] == "a.lr~2"
    assert (window.loc["b", "pairs"], window.loc["b", "collapsed_left_out"]) == (2, 1)
    assert window.loc["b", "mean_difference"] == pytest.approx(0.02) and window.loc["b", "holds_across_seeds"]
    against_kmer = differences[(differences["versus"] == "kmer (baseline)")
                               & (differences["metric"] == "plasmid_accuracy")]
    a = against_kmer.set_index("experiment").loc["a.lr~2"]
    assert (a["pairs"], a["lower"], a["holds_across_seeds"]) == (3, 3, True)
    assert a["verdict"].endswith("below, and that holds across seeds (the interval excludes 0).")


def test_a_sweep_plot_is_drawn_for_one_or_two_swept_keys_only():
    runs = pd.DataFrame({"train.learning_rate": [1e-4, 1e-4, 1e-3, 1e-3], "train.batch_size": [32, 64, 32, 64],
                         "train.epochs": [1, 2, 3, 4], "val_accuracy": [0.6, 0.7, 0.8, 0.75]})
    assert sweep_plot("a", runs, ["train.learning_rate"]).startswith('<img alt="validation accuracy per setting')
    assert sweep_plot("a", runs, ["train.learning_rate", "train.batch_size"]).startswith("<img")
    assert sweep_plot("a", runs, ["train.learning_rate", "train.batch_size", "train.epochs"]) is None
