"""Classification metrics at window level and per plasmid (scikit-learn)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    roc_auc_score,
)

HEADLINE = ["accuracy", "balanced_accuracy", "macro_f1", "mcc", "auroc"]


def classification_metrics(labels, proba: np.ndarray, classes: list[str]) -> dict:
    """Headline metrics and confusion matrix for true `labels` (class names) and class probabilities."""
    y_true = np.array([classes.index(label) for label in labels])
    y_pred = proba.argmax(axis=1)
    indices = list(range(len(classes)))
    present = np.unique(y_true)
    if len(present) < len(classes):
        auroc = None  # undefined when a class has no true example
    elif len(classes) == 2:
        auroc = float(roc_auc_score(y_true, proba[:, 1]))
    else:
        auroc = float(roc_auc_score(y_true, proba, multi_class="ovr", labels=indices))
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=indices, average="macro", zero_division=0)),
        "mcc": float(matthews_corrcoef(y_true, y_pred)),
        "auroc": auroc,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
    }


def probability_columns(classes: list[str]) -> list[str]:
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


def evaluate_predictions(predictions: pd.DataFrame, classes: list[str]) -> dict:
    """Window-level and plasmid-level metrics of a predictions table (`label`, `prob_<class>` ...)."""
    columns = probability_columns(classes)
    plasmids = per_plasmid(predictions, classes)
    return {
        "classes": classes,
        "window": classification_metrics(predictions["label"], predictions[columns].to_numpy(), classes),
        "plasmid": classification_metrics(plasmids["label"], plasmids[columns].to_numpy(), classes),
    }
