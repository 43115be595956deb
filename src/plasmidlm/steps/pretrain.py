"""The step of rules/pretrain.smk: masked-LM pretraining on windows of the training plasmids."""

from __future__ import annotations

import logging

import pandas as pd

from plasmidlm import io
from plasmidlm.steps.common import check_drawn, launched_in_ranks
from plasmidlm.training import distributed
from plasmidlm.windows import WindowPolicy, assert_no_plasmid_leakage, draw_balanced_windows, draw_windows

logger = logging.getLogger(__name__)


def pretrain(*, fasta, split_path, extra_fasta: list, pretrain_config: dict, windows_config: dict, seed: int,
             output_dir, out_summary, out_log):
    """Masked-LM pretraining on random windows of the training plasmids (and any extra unlabeled FASTA), cut as
    `windows_config` (length, circular, ambiguous, max_n_fraction) says.

    Validation and test plasmids never enter the corpus: the job fails if one would. With `pretrain.gpus` above
    1, in that many data-parallel processes (`distributed.launch`).
    """
    if launched_in_ranks(f"{__name__}:pretrain", "pretrain", pretrain_config, locals()):
        return
    from plasmidlm.training.pretrain import pretrain_mlm
    from plasmidlm.training.trainer import log_history_table

    split_table = io.read_table(split_path)
    plasmids = split_table[split_table["split"] == "train"][["id", "label", "length"]]
    for path in extra_fasta:
        extra = pd.DataFrame([(record_id, "unlabeled", len(sequence)) for record_id, sequence in io.iter_fasta(path)],
                             columns=["id", "label", "length"])
        plasmids = pd.concat([plasmids, extra])
        logger.info(f"{len(extra)} extra unlabeled sequence(s) from {path}")
    held_out = split_table.loc[split_table["split"] != "train", "id"]
    assert_no_plasmid_leakage(pd.DataFrame({"plasmid_id": held_out}), plasmids.rename(columns={"id": "plasmid_id"}),
                              "the pretraining corpus")
    policy = WindowPolicy.from_config(windows_config)
    plasmids = plasmids[plasmids["length"] >= policy.length]
    train_ids = set(split_table.loc[split_table["split"] == "train", "id"])

    def sequences():  # streamed, one record at a time
        yield from io.iter_fasta(fasta, train_ids)
        for path in extra_fasta:
            yield from io.iter_fasta(path)

    corpus = draw_windows(sequences(), plasmids, policy, per_plasmid=pretrain_config["windows_per_plasmid"],
                          seed=(seed, "pretrain", "corpus"))
    plasmids = plasmids.assign(label="all")
    heldout = draw_balanced_windows(sequences(), plasmids, policy, count=pretrain_config["heldout_windows"],
                                    seed=(seed, "pretrain", "heldout"))
    check_drawn(corpus.assign(label="all"), plasmids, "pretraining corpus", policy)
    check_drawn(heldout, plasmids, "pretraining held-out", policy)
    summary = pretrain_mlm(corpus, heldout, pretrain_config=pretrain_config, window_length=policy.length,
                           output_dir=output_dir, seed=seed)
    if distributed.is_main():
        io.write_table(log_history_table(summary.pop("log_history")), out_log)
        io.write_json(summary, out_summary)
