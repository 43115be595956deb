"""Classification metrics at window level and per plasmid (scikit-learn)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
)

HEADLINE = ["accuracy", "balanced_accuracy", "macro_f1", "mcc", "auroc"]
CONFIDENCE = 0.95


def _score_blocks(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per one-vs-rest column (class 1 alone for two classes): each window's block of equal scores, blocks in
    ascending score order, and whether the window is of that class."""
    columns = [1] if n_classes == 2 else range(n_classes)
    return [(np.unique(proba[:, column], return_inverse=True)[1], y_true == column) for column in columns]


def _weighted_auroc(blocks: list[tuple[np.ndarray, np.ndarray]], weights: np.ndarray) -> float:
    """Macro one-vs-rest AUROC with each window counted `weights` times: the probability that a positive scores
    above a negative, ties counted half (the Mann-Whitney U statistic), from per-block weight sums."""
    areas = []
    for block, is_positive in blocks:
        positive = np.bincount(block, weights=weights * is_positive)
        negative = np.bincount(block, weights=weights * ~is_positive)
        below = np.cumsum(negative) - negative
        areas.append(positive @ (below + negative / 2) / (positive.sum() * negative.sum()))
    return float(np.mean(areas))


def auroc(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> float | None:
    """Area under the ROC curve (one-vs-rest, macro-averaged, for more than two classes).

    The value of scikit-learn's `roc_auc_score` (tested to agree), computed from weight sums per score so that
    the bootstrap can weight windows instead of copying them: scikit-learn's input checks and sort cost far
    more, and dominated the resamples of every evaluation (bench/bootstrap.py).
    """
    if (np.bincount(y_true, minlength=n_classes) == 0).any():
        return None  # undefined when a class has no true example
    return _weighted_auroc(_score_blocks(y_true, proba, n_classes), np.ones(len(y_true)))


def headline_metrics(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> dict:
    """The headline metrics of class indices `y_true` against class probabilities."""
    y_pred = proba.argmax(axis=1)
    indices = list(range(n_classes))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=indices, average="macro", zero_division=0)),
        "mcc": float(matthews_corrcoef(y_true, y_pred)),
        "auroc": auroc(y_true, proba, n_classes),
    }


def class_indices(labels, classes: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[label] for label in labels], dtype=int)


def classification_metrics(labels, proba: np.ndarray, classes: list[str]) -> dict:
    """Headline metrics, per-class precision/recall/F1 and the confusion matrix (rows true, columns predicted)."""
    y_true = class_indices(labels, classes)
    y_pred = proba.argmax(axis=1)
    indices = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=indices, zero_division=0)
    return {
        "n": int(len(y_true)),
        **headline_metrics(y_true, proba, len(classes)),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(classes)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
    }


def confusion_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Accuracy, balanced accuracy, macro-F1 and MCC from one confusion matrix (numpy).

    The same definitions as scikit-learn's functions (tested to agree), without their per-call
    validation overhead, which dominates thousands of bootstrap resamples.
    """
    return _matrix_metrics(np.bincount(y_true * n_classes + y_pred, minlength=n_classes**2), n_classes)


def _matrix_metrics(cells: np.ndarray, n_classes: int) -> dict:
    """The metrics of `confusion_metrics` from the (possibly weighted) counts of a flattened confusion matrix."""
    matrix = cells.astype(float).reshape(n_classes, n_classes)
    total, correct = matrix.sum(), np.trace(matrix)
    true_counts, predicted_counts = matrix.sum(axis=1), matrix.sum(axis=0)
    diagonal = np.diag(matrix)
    present = true_counts > 0
    recall = np.divide(diagonal, true_counts, out=np.zeros(n_classes), where=present)
    precision = np.divide(diagonal, predicted_counts, out=np.zeros(n_classes), where=predicted_counts > 0)
    f1_denominator = precision + recall
    f1 = np.divide(2 * precision * recall, f1_denominator, out=np.zeros(n_classes), where=f1_denominator > 0)
    mcc_denominator = np.sqrt((total**2 - predicted_counts @ predicted_counts) * (total**2 - true_counts @ true_counts))
    mcc = (correct * total - true_counts @ predicted_counts) / mcc_denominator if mcc_denominator else 0.0
    return {"accuracy": correct / total, "balanced_accuracy": recall[present].mean(), "macro_f1": f1.mean(),
            "mcc": float(mcc)}


def bootstrap_intervals(groups: list[np.ndarray], y_true: np.ndarray, proba: np.ndarray, *, n_classes: int,
                        n_resamples: int, rng: np.random.Generator, confidence: float = CONFIDENCE) -> dict:
    """Percentile bootstrap intervals of the headline metrics, resampling whole groups (plasmids).

    `groups` lists the row indices of each plasmid: windows of one plasmid are not independent, so they
    are drawn together. A resample counts each window as often as its plasmid was drawn (the same metrics as
    on the resample's copied rows, without copying them).
    """
    group_of = np.full(len(y_true), len(groups))  # rows in no group weigh 0
    for group, rows in enumerate(groups):
        group_of[rows] = group
    cells = y_true * n_classes + proba.argmax(axis=1)
    blocks = _score_blocks(y_true, proba, n_classes)
    samples = {name: [] for name in HEADLINE}
    for _ in range(n_resamples):
        draws = np.bincount(rng.integers(len(groups), size=len(groups)), minlength=len(groups) + 1)
        draws[-1] = 0
        weights = draws[group_of].astype(float)
        resample = _matrix_metrics(np.bincount(cells, weights=weights, minlength=n_classes**2), n_classes)
        true_weights = np.bincount(y_true, weights=weights, minlength=n_classes)
        resample["auroc"] = None if (true_weights == 0).any() else _weighted_auroc(blocks, weights)
        for name, value in resample.items():
            if value is not None:
                samples[name].append(value)
    tail = (1 - confidence) / 2 * 100
    return {name: [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]
            if values else None for name, values in samples.items()}


def probability_columns(classes: list[str]) -> list[str]:
    """The `prob_<class>` column names of every table of class probabilities (evaluation and predict)."""
    return [f"prob_{name}" for name in classes]


def predictions_table(windows: pd.DataFrame, proba: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """`window_id`, `plasmid_id`, `label`, `predicted` and one `prob_<class>` column per class."""
    table = windows[["window_id", "plasmid_id", "label"]].copy()
    table["predicted"] = np.asarray(classes)[proba.argmax(axis=1)]
    for column, values in zip(probability_columns(classes), proba.T):
        table[column] = values
    return table


def per_plasmid(predictions: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Mean of window probabilities per plasmid, with the resulting predicted class."""
    columns = probability_columns(classes)
    table = predictions.groupby(["plasmid_id", "label"], sort=True)[columns].mean().reset_index()
    table["windows"] = predictions.groupby(["plasmid_id", "label"], sort=True).size().to_numpy()
    table["predicted"] = np.asarray(classes)[table[columns].to_numpy().argmax(axis=1)]
    return table


def majority_vote(predictions: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Per plasmid, the share of its windows predicting each class (as `prob_<class>`), and the winner.

    Ties go to the class listed first.
    """
    columns = probability_columns(classes)
    window_votes = predictions[columns].to_numpy().argmax(axis=1)
    votes = pd.DataFrame(np.eye(len(classes))[window_votes], columns=columns)
    votes[["plasmid_id", "label"]] = predictions[["plasmid_id", "label"]].to_numpy()
    table = votes.groupby(["plasmid_id", "label"], sort=True)[columns].mean().reset_index()
    table["predicted"] = np.asarray(classes)[table[columns].to_numpy().argmax(axis=1)]
    return table


def evaluate_predictions(predictions: pd.DataFrame, classes: list[str], n_bootstrap: int = 0,
                         seed: int = 0) -> dict:
    """Metrics of a predictions table (`plasmid_id`, `label`, `predicted`, `prob_<class>`…) at three levels.

    `window`: every window; `plasmid`: mean of a plasmid's window probabilities; `plasmid_majority_vote`:
    the class most of its windows predict. With `n_bootstrap`, each level gets `ci95` intervals from
    resampling plasmids.
    """
    columns = probability_columns(classes)
    rng = np.random.default_rng(seed)
    levels = {"window": predictions.reset_index(drop=True),
              "plasmid": per_plasmid(predictions, classes),
              "plasmid_majority_vote": majority_vote(predictions, classes)}
    result = {"classes": classes}
    for level, table in levels.items():
        proba = table[columns].to_numpy()
        result[level] = classification_metrics(table["label"], proba, classes)
        if n_bootstrap:
            groups = [np.asarray(rows) for rows in table.groupby("plasmid_id", sort=True).indices.values()]
            result[level]["ci95"] = bootstrap_intervals(groups, class_indices(table["label"], classes), proba,
                                                        n_classes=len(classes), n_resamples=n_bootstrap, rng=rng)
    return result
