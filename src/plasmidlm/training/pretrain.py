"""Masked-language-model pretraining of the built-in model on windows of the training plasmids."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import BertForMaskedLM, DataCollatorForLanguageModeling
from transformers.modeling_outputs import MaskedLMOutput

from plasmidlm import layout
from plasmidlm.model import METADATA_KEY, builtin_config, parameter_counts
from plasmidlm.tokenize import flat_token_ids
from plasmidlm.training import distributed
from plasmidlm.training.arguments import training_arguments
from plasmidlm.training.checkpoint_writes import CheckpointTrainer
from plasmidlm.training.checkpointing import prepare_output_dir
from plasmidlm.training.data import TOKENS_FILE, WindowDataset
from plasmidlm.training.runs import run_record, schedule, windows_sha256
from plasmidlm.training.trainer import ProgressLog, StopOnSigterm, run_until_done_or_sigterm

logger = logging.getLogger(__name__)


@dataclass
class KmerSpanMasking(DataCollatorForLanguageModeling):
    """Masks spans of `span` consecutive tokens, as DNABERT does for overlapping k-mers.

    With overlapping k-mers a lone masked token is spelled out by its neighbours; masking k in a row hides
    the nucleotides. Each token starts a span with probability mlm_probability / span, so about
    mlm_probability of the tokens are masked; masked tokens become [MASK] (80%), a random token (10%) or
    stay (10%). Randomness comes from torch's global generator, which checkpoints save and restore.
    """

    span: int = 1

    def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
        labels = inputs.clone()
        if special_tokens_mask is None:
            special_tokens_mask = [self.tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True)
                                   for row in labels.tolist()]
        special = torch.as_tensor(special_tokens_mask, dtype=torch.bool)
        starts = torch.bernoulli(torch.full(labels.shape, self.mlm_probability / self.span)).bool() & ~special
        padded = torch.nn.functional.pad(starts.float()[:, None, :], (self.span - 1, 0))
        masked = torch.nn.functional.max_pool1d(padded, self.span, stride=1)[:, 0, :].bool() & ~special
        labels[~masked] = -100
        replaced = torch.bernoulli(torch.full(labels.shape, 0.8)).bool() & masked
        inputs[replaced] = self.tokenizer.mask_token_id
        randomised = torch.bernoulli(torch.full(labels.shape, 0.5)).bool() & masked & ~replaced
        inputs[randomised] = torch.randint(len(self.tokenizer), labels.shape, dtype=torch.long)[randomised]
        return inputs, labels


class MaskedPositionsBertForMaskedLM(BertForMaskedLM):
    """BERT's masked LM with its prediction head run on the masked positions only, when labels are given.

    The head (hidden state -> every k-mer of the vocabulary) of a small model with a k-mer vocabulary costs more
    than the whole encoder: on 6-mer tokens (4,101 of them) and the small preset it was about two thirds of a
    training step. The loss is the same mean cross-entropy over the masked tokens; `logits` then holds one row per
    masked token, in the order of `labels != -100`. The weights, and so every checkpoint, are BertForMaskedLM's.
    """

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        if labels is None:
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                   **kwargs)
        hidden = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=True,
                           **kwargs).last_hidden_state
        masked = labels != -100
        logits = self.cls(hidden[masked])
        return MaskedLMOutput(loss=torch.nn.functional.cross_entropy(logits, labels[masked]), logits=logits)

    def save_pretrained(self, save_directory, *args, **kwargs):
        super().save_pretrained(save_directory, *args, **kwargs)
        self.config.architectures = ["BertForMaskedLM"]  # what the saved weights load as, with plain transformers
        self.config.save_pretrained(save_directory)


def masked_accuracy(eval_prediction) -> dict:
    """Share of masked tokens predicted right (predictions are already arg-maxed)."""
    predictions, labels = (np.asarray(part) for part in eval_prediction)
    scored = labels != -100
    return {"accuracy": float((predictions[scored] == labels[scored]).mean()) if scored.any() else 0.0}


def _argmax_logits(logits, labels):
    """The predicted token at each masked position, -100 elsewhere: the shape of `labels`, so that batches of
    different numbers of masked tokens concatenate."""
    predictions = torch.full_like(labels, -100)
    predictions[labels != -100] = logits.argmax(dim=-1)
    return predictions


def build_mlm(preset: str, *, kmer: int, kmer_stride: int, window_length: int, seed: int):
    """A freshly initialised BERT masked-LM of a size preset, with a k-mer tokenizer."""
    config, tokenizer = builtin_config(preset, kmer, kmer_stride, window_length)
    torch.manual_seed(seed)
    model = MaskedPositionsBertForMaskedLM(config)
    setattr(model.config, METADATA_KEY, {"window_length": window_length, "kmer": kmer, "kmer_stride": kmer_stride})
    return model, tokenizer


def pretrain_mlm(train_windows: pd.DataFrame, heldout_windows: pd.DataFrame, *, pretrain_config: dict,
                 window_length: int, output_dir, seed: int) -> dict:
    """Pretrain a masked LM; checkpoints in `output_dir/checkpoint-<step>`, the final model in `output_dir/model`.

    Masked-token accuracy on `heldout_windows` is logged at the checkpoint cadence (`eval_accuracy`).
    Resumes, like fine-tuning, from the last usable checkpoint (`checkpointing.prepare_output_dir`).
    """
    output_dir = Path(output_dir)
    kmer, stride = pretrain_config["kmer"], pretrain_config["kmer_stride"]
    model, tokenizer = build_mlm(pretrain_config["preset"], kmer=kmer, kmer_stride=stride, window_length=window_length,
                                 seed=seed)
    _, n_params = parameter_counts(model)
    logger.info(f"masked-LM pretraining: {pretrain_config['preset']} BERT ({n_params:,} parameters), "
                f"{kmer}-mer tokens, spans of {kmer if stride == 1 else 1} masked; {len(train_windows):,} windows, "
                f"{len(heldout_windows):,} held out")
    total_steps = schedule(len(train_windows), batch_size=pretrain_config["batch_size"],
                           epochs=pretrain_config["epochs"], max_steps=pretrain_config["max_steps"],
                           save_steps=pretrain_config["save_steps"])["total_steps"]
    record = run_record("pretrain", pretrain_config, total_steps, window_length=window_length, seed=seed,
                        train_windows_sha256=windows_sha256(train_windows),
                        val_windows_sha256=windows_sha256(heldout_windows))
    resume_from = distributed.main_then_shared(
        lambda: prepare_output_dir(output_dir, record, pretrain_config, section="pretrain"))
    encodings = distributed.computed_once(output_dir / TOKENS_FILE, lambda: {
        name: dict(zip(("tokens", "offsets"), map(torch.from_numpy, flat_token_ids(tokenizer, windows["sequence"],
                                                                                   kmer, stride))))
        for name, windows in (("train", train_windows), ("eval", heldout_windows))})
    per_process = distributed.per_process_batch(pretrain_config["batch_size"], distributed.world()[1],
                                                 "pretrain")
    stop = StopOnSigterm()
    trainer = CheckpointTrainer(
        model=model,
        args=training_arguments(pretrain_config | {"batch_size": per_process}, output_dir, seed=seed,
                                masked_lm=True, all_parameters_used=True),
        train_dataset=WindowDataset.from_tensors(encodings["train"]),
        eval_dataset=WindowDataset.from_tensors(encodings["eval"]),
        data_collator=KmerSpanMasking(tokenizer=tokenizer, mlm_probability=pretrain_config["mlm_probability"],
                                      span=kmer if stride == 1 else 1),
        processing_class=tokenizer,
        compute_metrics=masked_accuracy,
        preprocess_logits_for_metrics=_argmax_logits,
        callbacks=[ProgressLog(), stop],
    )
    steps = run_until_done_or_sigterm(trainer, stop, resume_from=resume_from, step_name="pretrain",
                                      total_steps=total_steps)
    trainer.save_model(layout.pretrained_model_in(output_dir))
    return {"checkpoints": steps, "parameters": n_params, "total_steps": trainer.state.max_steps,
            "log_history": trainer.state.log_history}
