"""What a run makes, decided from its configuration (plasmidlm.plan), checked on hand-written configs."""

from __future__ import annotations

import numpy as np
import pytest

from plasmidlm import plan
from plasmidlm.evidence import COMPOSITION_BASELINES
from plasmidlm.windows import capped_counts


def experiment(length=100, name_or_path="builtin", resample=False, per_plasmid=8, epochs=4, max_steps=None,
               batch_size=32, kmer=None) -> dict:
    return {
        "windows": {"length": length, "resample_each_epoch": resample, "per_plasmid": per_plasmid},
        "model": {"name_or_path": name_or_path, "kmer": kmer, "kmer_stride": 1, "preset": "small"},
        "train": {"batch_size": batch_size, "epochs": epochs, "max_steps": max_steps, "learning_rate": 1e-3},
    }


def run_config(kmer=True, composition=True, cnn=True, cnn_experiment=None, embeddings=True,
               embeddings_model="random8") -> dict:
    return {
        "windows": {"length": 100, "circular": True, "ambiguous": "skip", "max_n_fraction": 0.1, "per_plasmid": 3},
        "pretrain": {"kmer": 4, "kmer_stride": 2, "preset": "small"},
        "baselines": {
            "kmer": {"enabled": kmer},
            "composition": {"enabled": composition},
            "cnn": {"enabled": cnn, "experiment": cnn_experiment},
            "embeddings": {"enabled": embeddings, "model": embeddings_model},
        },
    }


def test_window_policy_is_the_length_and_the_runs_cutting_keys_only():
    assert plan.window_policy(run_config(), 500) == {
        "length": 500, "circular": True, "ambiguous": "skip", "max_n_fraction": 0.1}


def test_windows_drawn_once_have_no_epoch_schedule_and_one_epoch():
    settings = experiment(resample=False, epochs=4)
    assert plan.epoch_schedule(settings) is None
    assert plan.drawn_epochs(settings, training_plasmids=10) == 1


def test_fresh_windows_follow_the_training_schedule():
    settings = experiment(resample=True, batch_size=32, epochs=4, max_steps=7)
    assert plan.epoch_schedule(settings) == {"batch_size": 32, "epochs": 4, "max_steps": 7}


@pytest.mark.parametrize(("epochs", "max_steps", "expected"), [
    (4, None, 4),  # 4 whole epochs
    (2.5, None, 3),  # the half epoch is drawn too
    (4, 6, 2),  # 80 windows / 32 = 3 steps an epoch: steps 1-6 are 2 epochs
    (4, 7, 3),  # step 7 begins a third
])
def test_fresh_windows_draw_every_epoch_training_begins(epochs, max_steps, expected):
    settings = experiment(resample=True, per_plasmid=8, batch_size=32, epochs=epochs, max_steps=max_steps)
    assert plan.training_windows_per_epoch(settings, training_plasmids=10) == 80
    assert plan.drawn_epochs(settings, training_plasmids=10) == expected


def test_majority_is_the_only_baseline_when_the_others_are_off():
    config = run_config(kmer=False, composition=False, cnn=False, embeddings=False)
    assert plan.baseline_names(config) == ["majority"]


def test_every_enabled_baseline_is_named_in_report_order():
    assert plan.baseline_names(run_config()) == [
        "majority", "kmer", *COMPOSITION_BASELINES, "cnn", "embeddings_logistic", "embeddings_cnn"]
    assert plan.baseline_names(run_config(kmer=False, cnn=False)) == [
        "majority", *COMPOSITION_BASELINES, "embeddings_logistic", "embeddings_cnn"]


EXPERIMENTS = {"first100": experiment(100), "long": experiment(500), "random8": experiment(100),
               "long_too": experiment(500)}


@pytest.mark.parametrize(("chosen", "length", "expected"), [
    (None, 100, "first100"),  # default: the first experiment
    (None, 500, "long"),  # the first has another length: the first that has this one
    ("random8", 100, "random8"),
    ("random8", 500, "long"),
    ("long_too", 500, "long_too"),
    ("long_too", 100, "first100"),
])
def test_cnn_trains_on_the_chosen_experiment_or_the_first_of_its_length(chosen, length, expected):
    assert plan.cnn_experiment(run_config(cnn_experiment=chosen), EXPERIMENTS, length) == expected


def test_pretraining_runs_when_an_experiment_fine_tunes_its_model():
    experiments = {"a": experiment(), "b": experiment(name_or_path="pretrained")}
    config = run_config(embeddings_model="a")
    assert [plan.fine_tunes_pretrained(settings) for settings in experiments.values()] == [False, True]
    assert plan.uses_pretraining(config, experiments)
    assert not plan.uses_pretraining(config, {"a": experiment()})


def test_pretraining_runs_when_the_embeddings_baseline_embeds_with_its_model():
    experiments = {"a": experiment()}
    config = run_config(embeddings_model="pretrained")
    assert plan.embeddings_use_pretrained(config)
    assert plan.embeddings_experiment(config, experiments) is None
    assert plan.uses_pretraining(config, experiments)


@pytest.mark.parametrize(("model", "expected"), [
    ("a", "a"), ("pretrained", None), ("org/model", None), ("/models/dnabert", None)])
def test_embeddings_experiment_is_the_experiment_its_model_names(model, expected):
    experiments = {"a": experiment(), "b": experiment()}
    assert plan.embeddings_experiment(run_config(embeddings_model=model), experiments) == expected


def test_an_experiment_from_a_model_keeps_its_model_config():
    settings = experiment(name_or_path="org/model", kmer=6)
    assert plan.experiment_model(run_config(), settings, "results/demo/pretrain/model") == settings["model"]


def test_an_experiment_on_the_pretrained_model_takes_its_path_and_tokenizer():
    settings = experiment(name_or_path="pretrained", kmer=6)
    assert plan.experiment_model(run_config(), settings, "results/demo/pretrain/model") == {
        "name_or_path": "results/demo/pretrain/model", "kmer": 4, "kmer_stride": 2, "preset": "small"}
    assert settings["model"]["name_or_path"] == "pretrained"  # the resolved experiment is left as it was


@pytest.mark.parametrize(("per_plasmid", "max_windows", "expected"), [
    (8, None, 80),  # no cap
    (8, 100, 80),  # under the cap
    (8, 50, 50),  # capped
    (8, 80, 80),  # at the cap
])
def test_baseline_training_windows_are_those_capped_counts_draws(per_plasmid, max_windows, expected):
    baseline = {"windows_per_plasmid": per_plasmid, "max_windows": max_windows}
    assert plan.baseline_training_windows(baseline, training_plasmids=10) == expected
    drawn = capped_counts([f"p{i}" for i in range(10)], per_plasmid, max_windows, np.random.default_rng(0))
    assert sum(drawn.values()) == expected
