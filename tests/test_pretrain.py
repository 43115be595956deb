"""Masked-LM pretraining: span masking, a few steps that lower the loss, plain-transformers loading, no test plasmid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, BertForMaskedLM

from conftest import random_windows, write_fasta
from plasmidlm import PlasmidlmError, io
from plasmidlm.steps import pretrain as pretrain_steps
from plasmidlm.model import MIN_POSITIONS, build_or_load
from plasmidlm.tokenize import build_kmer_tokenizer, encode, n_tokens
from plasmidlm.training.pretrain import KmerSpanMasking, build_mlm, pretrain_mlm

TINY_PRETRAIN = {"preset": "tiny", "kmer": 3, "kmer_stride": 1, "windows_per_plasmid": 4, "heldout_windows": 16,
                 "extra_fasta": [], "mlm_probability": 0.15, "batch_size": 16, "eval_batch_size": 64, "epochs": 1,
                 "max_steps": 40, "learning_rate": 5e-3, "weight_decay": 0.0, "warmup_ratio": 0.0,
                 "lr_scheduler": "constant", "save_steps": 20, "logging_steps": 5}
LINEAR_60 = {"length": 60, "circular": False, "ambiguous": "keep", "max_n_fraction": 1.0}


def test_span_masking_hides_runs_of_k_tokens_and_never_special_tokens():
    tokenizer = build_kmer_tokenizer(3, model_max_length=512)
    batch = encode(tokenizer, random_windows(64, length=200, seed=1), kmer=3)
    torch.manual_seed(0)
    collator = KmerSpanMasking(tokenizer=tokenizer, mlm_probability=0.15, span=3)
    inputs, labels = collator.torch_mask_tokens(batch["input_ids"].clone())
    masked = labels != -100
    assert not masked[:, 0].any() and not masked[:, -1].any()  # [CLS] and [SEP]
    assert 0.10 < masked[:, 1:-1].float().mean() < 0.20
    runs = []
    for row in masked[:, 1:-1].numpy():
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        runs += [end - start for start, end in zip(edges[::2], edges[1::2]) if end < len(row)]
    assert min(runs) >= 3  # spans overlap into longer runs, never shorter ones (but at the [SEP] end)
    assert (inputs[masked] == tokenizer.mask_token_id).float().mean() > 0.7
    assert torch.equal(labels[masked], batch["input_ids"][masked])


MOTIF = "".join(np.random.default_rng(0).choice(list("ACGT"), size=5))


def _corpus(n: int, seed: int) -> pd.DataFrame:
    # A repeated motif makes masked tokens predictable, so a few steps must lower the loss. Training and
    # held-out windows repeat the same motif (at other offsets): the held-out score measures what was learnt.
    rng = np.random.default_rng(seed)
    sequences = [(MOTIF * 14)[offset : offset + 60] for offset in rng.integers(0, 5, size=n)]
    return pd.DataFrame({"sequence": sequences})


def test_the_head_on_masked_positions_only_gives_the_loss_and_gradients_of_bert_masked_lm():
    model, tokenizer = build_mlm("tiny", kmer=3, kmer_stride=1, window_length=60, seed=0)
    plain = BertForMaskedLM(model.config)
    plain.load_state_dict(model.state_dict())
    batch = encode(tokenizer, random_windows(8, length=60, seed=2), kmer=3)
    torch.manual_seed(0)
    inputs, labels = KmerSpanMasking(tokenizer=tokenizer, mlm_probability=0.15, span=3).torch_mask_tokens(
        batch["input_ids"].clone())
    losses = []
    for mlm in (model.eval(), plain.eval()):  # no dropout: the same forward pass
        output = mlm(input_ids=inputs, attention_mask=batch["attention_mask"], labels=labels)
        output.loss.backward()
        losses.append(output.loss)
    torch.testing.assert_close(losses[0], losses[1])
    for (name, sparse), (_, full) in zip(model.named_parameters(), plain.named_parameters()):
        torch.testing.assert_close(sparse.grad, full.grad, msg=name)
    assert len(output.logits) == len(labels) and len(model(input_ids=inputs, labels=labels).logits) == (
        labels != -100).sum()


def test_a_few_steps_lower_the_loss_and_the_model_loads_with_plain_transformers(tmp_path):
    summary = pretrain_mlm(_corpus(640, 0), _corpus(32, 1), pretrain_config=TINY_PRETRAIN, window_length=60,
                           output_dir=tmp_path, seed=0)
    losses = [entry["loss"] for entry in summary["log_history"] if "loss" in entry]
    assert losses[-1] < losses[0] * 0.8
    accuracies = [entry["eval_accuracy"] for entry in summary["log_history"] if "eval_accuracy" in entry]
    # scored at each checkpoint, on windows like the training ones: a model that learnt nothing would score
    # about 1/64 (3-mers); one that learnt which five 3-mers the motif holds scores about 1/5
    assert len(accuracies) == 2 and accuracies[-1] > 0.1
    assert summary["checkpoints"] == [20, 40]
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert type(model).__name__ == "BertForMaskedLM" and model.config.architectures == ["BertForMaskedLM"]
    assert model.config.plasmidlm == {"window_length": 60, "kmer": 3, "kmer_stride": 1}
    assert tokenizer("ACG CGT [MASK]")["input_ids"][-2] == tokenizer.mask_token_id


def test_a_test_plasmid_in_the_extra_corpus_fails_the_job(tmp_path):
    split = pd.DataFrame({"id": ["a", "b", "c"], "label": ["x", "x", "x"], "split": ["train", "val", "test"],
                          "length": 300})
    io.write_table(split, tmp_path / "split.tsv")
    records = [(name, random_windows(1, length=300, seed=i)[0]) for i, name in enumerate("abc")]
    fasta = write_fasta(tmp_path / "all.fa", records)
    extra = write_fasta(tmp_path / "extra.fa", [records[2]])
    with pytest.raises(PlasmidlmError, match="test plasmid.*pretraining corpus"):
        pretrain_steps.pretrain(fasta=fasta, split_path=tmp_path / "split.tsv", extra_fasta=[extra],
                                pretrain_config=TINY_PRETRAIN, windows_config=LINEAR_60, seed=0,
                                output_dir=tmp_path / "out",
                                out_summary=tmp_path / "summary.json", out_log=tmp_path / "log.tsv")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("window_length", [60, 600])
def test_pretraining_builds_the_bert_of_the_builtin_classifier(window_length):
    classifier, _ = build_or_load({"name_or_path": "builtin", "preset": "tiny", "kmer": 1}, window_length, ["a", "b"],
                                  seed=0)
    mlm, _ = build_mlm("tiny", kmer=1, kmer_stride=1, window_length=window_length, seed=0)
    body = ["vocab_size", "max_position_embeddings", "pad_token_id", "hidden_size", "num_hidden_layers"]
    assert [getattr(mlm.config, key) for key in body] == [getattr(classifier.config, key) for key in body]
    assert mlm.config.max_position_embeddings == max(MIN_POSITIONS, n_tokens(window_length, 1))
