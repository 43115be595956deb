"""Window- and plasmid-level metrics compared with direct scikit-learn calls and hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from plasmidlm.metrics import (
    HEADLINE,
    auroc,
    bootstrap_intervals,
    classification_metrics,
    confusion_metrics,
    evaluate_predictions,
    majority_vote,
    per_plasmid,
    probability_columns,
)


def random_case(n_classes: int, n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    classes = [f"c{i}" for i in range(n_classes)]
    y_true = rng.integers(n_classes, size=n)
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), y_true] += 0.8  # informative but imperfect
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return classes, y_true, [classes[i] for i in y_true], proba


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classification_metrics_match_scikit_learn(n_classes):
    classes, y_true, labels, proba = random_case(n_classes)
    y_pred = proba.argmax(axis=1)
    result = classification_metrics(labels, proba, classes)
    assert result["n"] == len(labels)
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert result["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert result["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert result["mcc"] == pytest.approx(skm.matthews_corrcoef(y_true, y_pred))
    if n_classes == 2:
        expected_auroc = skm.roc_auc_score(y_true, proba[:, 1])
    else:
        expected_auroc = skm.roc_auc_score(y_true, proba, multi_class="ovr")
    assert result["auroc"] == pytest.approx(expected_auroc)
    assert result["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred).tolist()
    assert set(HEADLINE) <= set(result)
    assert 0.5 < result["auroc"] < 1.0  # sanity: the synthetic scores are informative


def test_classification_metrics_values_are_plain_python_types():
    classes, _, labels, proba = random_case(3)
    result = classification_metrics(labels, proba, classes)
    for key in HEADLINE + ["n"]:
        assert type(result[key]) in (int, float)
    assert all(type(v) is int for row in result["confusion_matrix"] for v in row)


def test_classification_metrics_perfect_predictions():
    classes = ["x", "y", "z"]
    proba = np.eye(3)[[0, 1, 2, 2, 1, 0]] * 0.9 + 0.1 / 3
    result = classification_metrics(["x", "y", "z", "z", "y", "x"], proba, classes)
    assert result["accuracy"] == result["balanced_accuracy"] == result["macro_f1"] == 1.0
    assert result["mcc"] == pytest.approx(1.0)
    assert result["auroc"] == 1.0
    assert result["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_confusion_matrix_has_all_classes_even_when_absent():
    classes = ["x", "y", "z"]
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    result = classification_metrics(["x", "y", "y"], proba, classes)
    assert result["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_auroc_is_none_when_only_one_class_present():
    result = classification_metrics(["x", "x"], np.array([[0.9, 0.1], [0.4, 0.6]]), ["x", "y"])
    assert result["auroc"] is None
    assert result["accuracy"] == 0.5


def test_per_plasmid_takes_mean_of_window_probabilities():
    classes = ["a", "b"]
    predictions = pd.DataFrame({
        "window_id": ["w0", "w1", "w2", "w3", "w4", "w5"],
        "plasmid_id": ["p2", "p1", "p1", "p2", "p1", "p3"],
        "label": ["b", "a", "a", "b", "a", "a"],
        "prob_a": [0.4, 0.9, 0.2, 0.7, 0.4, 0.3],
        "prob_b": [0.6, 0.1, 0.8, 0.3, 0.6, 0.7],
    })
    table = per_plasmid(predictions, classes)
    assert list(table.columns) == ["plasmid_id", "label", "prob_a", "prob_b", "windows", "predicted"]
    assert list(table["plasmid_id"]) == ["p1", "p2", "p3"]
    assert list(table["label"]) == ["a", "b", "a"]
    np.testing.assert_allclose(table["prob_a"], [0.5, 0.55, 0.3])
    np.testing.assert_allclose(table["prob_b"], [0.5, 0.45, 0.7])
    assert list(table["windows"]) == [3, 2, 1]
    # p1: tie 0.5/0.5 -> argmax picks the first class; p2 flips to 'a' although each window alone disagrees
    assert list(table["predicted"]) == ["a", "a", "b"]


def test_evaluate_predictions_structure():
    classes = ["a", "b", "c"]
    rng = np.random.default_rng(1)
    plasmids = pd.DataFrame({"plasmid_id": [f"p{i}" for i in range(9)], "label": classes * 3})
    predictions = plasmids.loc[plasmids.index.repeat(4)].reset_index(drop=True)
    proba = rng.dirichlet(np.ones(3), size=len(predictions))
    for column, values in zip(probability_columns(classes), proba.T):
        predictions[column] = values
    result = evaluate_predictions(predictions, classes)
    assert set(result) == {"classes", "window", "plasmid", "plasmid_majority_vote"}
    assert result["classes"] == classes
    assert result["window"]["n"] == 36
    assert result["plasmid"]["n"] == 9
    for level in ("window", "plasmid", "plasmid_majority_vote"):
        assert set(HEADLINE) | {"n", "per_class", "confusion_matrix"} == set(result[level])
        assert np.asarray(result[level]["confusion_matrix"]).shape == (3, 3)
        assert sum(map(sum, result[level]["confusion_matrix"])) == result[level]["n"]
    expected_window = classification_metrics(predictions["label"], proba, classes)
    assert result["window"] == expected_window
    plasmid_table = per_plasmid(predictions, classes)
    assert result["plasmid"] == classification_metrics(
        plasmid_table["label"], plasmid_table[probability_columns(classes)].to_numpy(), classes)


def test_probability_columns_names():
    assert probability_columns(["plasmid", "chromosome"]) == ["prob_plasmid", "prob_chromosome"]


def test_majority_vote_counts_window_predictions_per_plasmid():
    classes = ["a", "b"]
    predictions = pd.DataFrame({"plasmid_id": ["p1"] * 3 + ["p2"] * 2, "label": ["a"] * 3 + ["b"] * 2,
                                "prob_a": [0.9, 0.4, 0.45, 0.2, 0.6], "prob_b": [0.1, 0.6, 0.55, 0.8, 0.4]})
    votes = majority_vote(predictions, classes).set_index("plasmid_id")
    assert votes.loc["p1", "prob_b"] == pytest.approx(2 / 3)
    assert votes.loc["p1", "predicted"] == "b"  # mean probability would say "a": 0.583
    assert votes.loc["p2", "predicted"] == "a"  # a 1:1 tie goes to the first class
    assert per_plasmid(predictions, classes).set_index("plasmid_id").loc["p1", "predicted"] == "a"


@pytest.mark.parametrize("n_classes", [2, 3])
def test_confusion_metrics_agree_with_scikit_learn(n_classes):
    rng = np.random.default_rng(n_classes)
    y_true = rng.integers(n_classes, size=500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(n_classes, size=500))
    fast = confusion_metrics(y_true, y_pred, n_classes)
    assert fast["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert fast["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert fast["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert fast["mcc"] == pytest.approx(skm.matthews_corrcoef(y_true, y_pred))


def test_per_class_precision_and_recall_agree_with_scikit_learn():
    classes = ["a", "b", "c"]
    rng = np.random.default_rng(5)
    labels = rng.choice(classes, size=200)
    proba = rng.dirichlet(np.ones(3), size=200)
    result = classification_metrics(labels, proba, classes)["per_class"]
    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    for name in classes:
        assert result[name]["precision"] == pytest.approx(skm.precision_score(labels, predicted, labels=[name],
                                                                          average="macro", zero_division=0))
        assert result[name]["recall"] == pytest.approx(skm.recall_score(labels, predicted, labels=[name], average="macro"))
        assert result[name]["support"] == int((labels == name).sum())


def clustered_predictions(seed: int, n_plasmids: int = 40, windows: int = 25) -> pd.DataFrame:
    """Plasmids that differ in how often their windows are right: windows of one plasmid are correlated."""
    classes = ["a", "b"]
    rng = np.random.default_rng(seed)
    rows = []
    for plasmid in range(n_plasmids):
        label = classes[plasmid % 2]
        skill = rng.uniform(0.3, 1.0)
        for _ in range(windows):
            correct = rng.random() < skill
            p_a = rng.uniform(0.5, 1.0) if (label == "a") == correct else rng.uniform(0.0, 0.5)
            rows.append({"plasmid_id": f"p{plasmid:02d}", "label": label, "prob_a": p_a, "prob_b": 1 - p_a})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [3, 11])
def test_bootstrap_intervals_have_the_width_of_resampling_plasmids(seed):
    """The 95% intervals against standard errors computed by hand from the predictions: binomial over the N
    plasmids at plasmid level, and at window level the cluster (ratio-estimator) standard error, the windows
    of a plasmid being drawn together. Resampling windows independently would give an interval about half as
    wide. (The widths agree within 17% for each of 30 data seeds tried; the test allows 25%.)"""
    classes = ["a", "b"]
    predictions = clustered_predictions(seed)
    result = evaluate_predictions(predictions, classes, n_bootstrap=400, seed=seed)

    right = (predictions["prob_a"] >= 0.5) == (predictions["label"] == "a")
    correct = right.groupby(predictions["plasmid_id"]).sum()  # c_i
    windows = predictions.groupby("plasmid_id").size()  # m_i
    n = len(correct)
    window_accuracy = correct.sum() / windows.sum()
    assert result["window"]["accuracy"] == pytest.approx(window_accuracy)
    cluster_se = np.sqrt(n / (n - 1) * ((correct - window_accuracy * windows) ** 2).sum()) / windows.sum()
    independent_se = np.sqrt(window_accuracy * (1 - window_accuracy) / windows.sum())
    assert cluster_se > 1.8 * independent_se  # the data make the two designs distinguishable

    means = predictions.groupby("plasmid_id")[["prob_a", "prob_b"]].mean()
    labels = predictions.groupby("plasmid_id")["label"].first()
    plasmid_accuracy = (np.where(means["prob_a"] >= means["prob_b"], "a", "b") == labels).mean()
    assert result["plasmid"]["accuracy"] == pytest.approx(plasmid_accuracy)
    binomial_se = np.sqrt(plasmid_accuracy * (1 - plasmid_accuracy) / n)

    for level, se in (("window", cluster_se), ("plasmid", binomial_se)):
        low, high = result[level]["ci95"]["accuracy"]
        assert (high - low) / (2 * 1.96 * se) == pytest.approx(1, abs=0.25), level


def test_bootstrap_intervals_depend_only_on_the_seed():
    predictions = clustered_predictions(0)
    first = evaluate_predictions(predictions, ["a", "b"], n_bootstrap=50, seed=1)
    assert evaluate_predictions(predictions, ["a", "b"], n_bootstrap=50, seed=1)["window"]["ci95"] == \
        first["window"]["ci95"]
    assert evaluate_predictions(predictions, ["a", "b"], n_bootstrap=50, seed=2)["window"]["ci95"] != \
        first["window"]["ci95"]


def test_bootstrap_intervals_of_perfect_predictions_are_a_point():
    predictions = clustered_predictions(0)
    predictions["prob_a"] = (predictions["label"] == "a").astype(float)
    predictions["prob_b"] = 1 - predictions["prob_a"]
    result = evaluate_predictions(predictions, ["a", "b"], n_bootstrap=50, seed=1)
    for level in ("window", "plasmid", "plasmid_majority_vote"):
        assert result[level]["ci95"]["accuracy"] == [1.0, 1.0]


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_auroc_equals_scikit_learn_with_tied_scores(n_classes):
    rng = np.random.default_rng(n_classes)
    y_true = rng.integers(n_classes, size=500)
    # probabilities rounded to 0.05: many windows share a score, as a confident model's do
    proba = rng.dirichlet(np.ones(n_classes), size=500)
    proba[np.arange(500), y_true] += 0.3
    proba = np.round(proba / proba.sum(axis=1, keepdims=True), 2)
    proba[:, -1] = 1 - proba[:, :-1].sum(axis=1)
    expected = (skm.roc_auc_score(y_true, proba[:, 1]) if n_classes == 2
                else skm.roc_auc_score(y_true, proba, multi_class="ovr"))
    assert auroc(y_true, proba, n_classes) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_bootstrap_intervals_are_those_of_the_copied_rows_of_each_resample(n_classes):
    rng = np.random.default_rng(7)
    y_true = rng.integers(n_classes, size=300)
    proba = np.round(rng.dirichlet(np.ones(n_classes), size=300), 2)
    proba[:, -1] = 1 - proba[:, :-1].sum(axis=1)
    groups = np.array_split(rng.permutation(300), 12)
    result = bootstrap_intervals(groups, y_true, proba, n_classes=n_classes, n_resamples=40,
                                 rng=np.random.default_rng(5))

    draws, samples = np.random.default_rng(5), {name: [] for name in HEADLINE}
    for _ in range(40):
        rows = np.concatenate([groups[i] for i in draws.integers(len(groups), size=len(groups))])
        y_pred = proba[rows].argmax(axis=1)
        samples["accuracy"].append(skm.accuracy_score(y_true[rows], y_pred))
        samples["balanced_accuracy"].append(skm.balanced_accuracy_score(y_true[rows], y_pred))
        samples["macro_f1"].append(skm.f1_score(y_true[rows], y_pred, average="macro",
                                                labels=list(range(n_classes)), zero_division=0))
        samples["mcc"].append(skm.matthews_corrcoef(y_true[rows], y_pred))
        if len(np.unique(y_true[rows])) == n_classes:
            samples["auroc"].append(skm.roc_auc_score(y_true[rows], proba[rows][:, 1]) if n_classes == 2 else
                                    skm.roc_auc_score(y_true[rows], proba[rows], multi_class="ovr"))
    for name, values in samples.items():
        assert result[name] == pytest.approx([np.percentile(values, 2.5), np.percentile(values, 97.5)], abs=1e-12)
