"""The step of rules/evaluate.smk: score one checkpoint on the test windows (and its validation windows)."""

from __future__ import annotations

import logging
from plasmidlm import hub, io

logger = logging.getLogger(__name__)


def evaluate(checkpoint_dir, *, test_windows, val_windows, evaluate_config: dict, seed: int, trust_remote_code: bool,
             out_metrics, out_predictions):
    hub.offline()
    from plasmidlm.evaluate import evaluate_checkpoint

    predictions, metrics = evaluate_checkpoint(
        checkpoint_dir, windows=io.read_table(test_windows), val_windows=io.read_table(val_windows),
        batch_size=evaluate_config["batch_size"], both_strands=evaluate_config["both_strands"],
        n_bootstrap=evaluate_config["bootstrap"], seed=seed, trust_remote_code=trust_remote_code,
        precision=evaluate_config["precision"],
    )
    inference = metrics["inference"]
    logger.info(f"test window accuracy {metrics['window']['accuracy']:.4f}, plasmid accuracy "
                f"{metrics['plasmid']['accuracy']:.4f}; validation window accuracy "
                f"{metrics['validation']['window']['accuracy']:.4f}; {inference['windows']} test windows in "
                f"{inference['seconds']:.1f} s ({inference['windows_per_second']:.0f} windows/s on "
                f"{inference['device']}, {inference['precision']})")
    io.write_table(predictions, out_predictions)
    io.write_json(metrics, out_metrics)
