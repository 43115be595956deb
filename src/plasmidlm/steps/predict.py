"""The step of rules/predict.smk: predictions for a user's FASTA from an experiment's best checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

from plasmidlm import hub, io, layout
from plasmidlm.training.runs import best_checkpoint

logger = logging.getLogger(__name__)


def predict_with_best(model_dir, fasta, *, predict_config: dict, batch_size: int, precision: str,
                      trust_remote_code: bool, out_windows, out_sequences, evidence=None):
    """Predictions for a user's FASTA from an experiment's best checkpoint (chosen on validation).

    With `evidence` (that checkpoint's evidence metrics.json) and `predict.calibrated`, probabilities are
    calibrated with the temperature fitted on the validation windows.
    """
    hub.offline()
    from plasmidlm.predict import predict_fasta

    step = best_checkpoint(model_dir)
    logger.info(f"best checkpoint by validation accuracy: checkpoint-{step}")
    temperature = 1.0
    if evidence is not None and predict_config["calibrated"]:
        temperature = io.read_json(evidence)["calibration"]["temperature"]
        logger.info(f"calibrated with temperature {temperature:.4f} (fitted on the validation windows)")
    predict_fasta(Path(layout.checkpoint_in(model_dir, step)), fasta, out_windows=out_windows,
                  out_sequences=out_sequences, stride=predict_config["stride"], batch_size=batch_size,
                  precision=precision, both_strands=predict_config["both_strands"], trust_remote_code=trust_remote_code,
                  temperature=temperature, min_confidence=predict_config["min_confidence"])
