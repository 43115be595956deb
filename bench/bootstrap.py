"""Cost of the bootstrap intervals of one evaluation: plasmidlm's against copying each resample's rows.

Every evaluation (each checkpoint, each baseline, each control) resamples its test plasmids
`evaluate.bootstrap` times and computes the headline metrics of each resample. Until 2026-12 that copied the
rows of each resample and called scikit-learn's `roc_auc_score`, whose input checks and sort cost far more than
the metrics; `plasmidlm.metrics.bootstrap_intervals` now weights each window by how often its plasmid was
drawn. This times both on the same resamples, in one run, and prints the largest difference of their bounds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from plasmidlm.metrics import HEADLINE, bootstrap_intervals, confusion_metrics


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=10_000, help="test windows (the demo's test_count)")
    parser.add_argument("--plasmids", type=int, default=82, help="test plasmids (the demo's test split)")
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--resamples", type=int, default=200, help="resamples timed (evaluate.bootstrap: 1000)")
    return parser.parse_args()


def copied_rows_bootstrap(groups, y_true, proba, *, n_classes, n_resamples, rng):
    """The bootstrap as it was: copy the rows of each resample, scikit-learn's AUROC."""
    samples = {name: [] for name in HEADLINE}
    for _ in range(n_resamples):
        rows = np.concatenate([groups[i] for i in rng.integers(len(groups), size=len(groups))])
        resample = confusion_metrics(y_true[rows], proba[rows].argmax(axis=1), n_classes)
        if len(np.unique(y_true[rows])) == n_classes:
            resample["auroc"] = (roc_auc_score(y_true[rows], proba[rows][:, 1]) if n_classes == 2 else
                                 roc_auc_score(y_true[rows], proba[rows], multi_class="ovr"))
        for name, value in resample.items():
            samples[name].append(value)
    return {name: [np.percentile(values, 2.5), np.percentile(values, 97.5)] for name, values in samples.items()}


def main() -> None:
    arguments = parse_arguments()
    rng = np.random.default_rng(0)
    y_true = rng.integers(arguments.classes, size=arguments.windows)
    proba = rng.dirichlet(np.ones(arguments.classes), size=arguments.windows)
    proba[np.arange(arguments.windows), y_true] += 0.2
    proba /= proba.sum(axis=1, keepdims=True)
    groups = np.array_split(np.arange(arguments.windows), arguments.plasmids)
    seconds, intervals = {}, {}
    for name, bootstrap in (("plasmidlm", bootstrap_intervals), ("copied rows", copied_rows_bootstrap)):
        began = time.perf_counter()
        intervals[name] = bootstrap(groups, y_true, proba, n_classes=arguments.classes,
                                    n_resamples=arguments.resamples, rng=np.random.default_rng(1))
        seconds[name] = time.perf_counter() - began
    difference = max(abs(a - b) for name in HEADLINE
                     for a, b in zip(intervals["plasmidlm"][name], intervals["copied rows"][name]))
    print(f"{arguments.windows} windows, {arguments.plasmids} plasmids, {arguments.classes} classes, "
          f"{arguments.resamples} resamples")
    print(f"bootstrap: plasmidlm {seconds['plasmidlm']:.2f} s, copied rows with scikit-learn's AUROC "
          f"{seconds['copied rows']:.2f} s ({seconds['copied rows'] / seconds['plasmidlm']:.1f}x); "
          f"largest difference of a bound {difference:.1e}")


if __name__ == "__main__":
    main()
