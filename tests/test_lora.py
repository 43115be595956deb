"""LoRA fine-tuning: what trains, checkpoints that load with plain transformers, exact resume, peft missing."""

from __future__ import annotations

import logging
import shutil
import sys

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertForSequenceClassification

from plasmidlm import PlasmidlmError, versions
from plasmidlm.config import load_schema
from plasmidlm.model import ALL_LINEAR, METADATA_KEY, build_or_load, default_lora_targets, load_checkpoint
from plasmidlm.tokenize import kmer_text
from plasmidlm.training.arguments import training_arguments
from plasmidlm.training.checkpointing import PARAMS_FILE, is_complete_checkpoint
from plasmidlm.training.data import make_dataset
from plasmidlm.training.fine_tune import fine_tune
from plasmidlm.training.trainer import LORA_ADAPTER_DIR, WindowTrainer

from conftest import CLASSES, TINY, WINDOW, assert_same_weights, logged_messages, losses, random_windows

pytestmark = pytest.mark.usefixtures("one_thread")

SCHEMA = load_schema()["properties"]
LORA_DEFAULTS = {key: spec["default"] for key, spec in SCHEMA["model"]["properties"]["lora"]["properties"].items()}
LORA_MODEL = TINY | {"lora": LORA_DEFAULTS | {"enabled": True, "r": 4, "alpha": 8}}
# 32 windows in batches of 8: 4 steps per epoch, 8 steps = 2 epochs, checkpoints at 4 and 8.
LORA_TRAIN = {key: spec["default"] for key, spec in SCHEMA["train"]["properties"].items()} | {
    "batch_size": 8, "eval_batch_size": 16, "max_steps": 8, "save_steps": 4, "logging_steps": 2,
    "learning_rate": 1.0e-2}
TRAIN_WINDOWS = pd.DataFrame({"label": ["a"] * 20 + ["b"] * 12, "sequence": random_windows(32, WINDOW, seed=1)})
VAL_WINDOWS = pd.DataFrame({"label": ["a", "b"] * 4, "sequence": random_windows(8, WINDOW, seed=2)})


def run_fine_tune(output_dir) -> dict:
    return fine_tune(TRAIN_WINDOWS, VAL_WINDOWS, classes=CLASSES, model_config=LORA_MODEL, train_config=LORA_TRAIN,
                     window_length=WINDOW, output_dir=output_dir, seed=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The Trainer after 8 LoRA steps, the model's parameters before them, and the checkpoint directory."""
    model, tokenizer = build_or_load(LORA_MODEL, WINDOW, CLASSES, seed=3)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    output_dir = tmp_path_factory.mktemp("lora_trainer")
    trainer = WindowTrainer(
        model=model,
        args=training_arguments(LORA_TRAIN, output_dir, seed=3),
        train_dataset=make_dataset(TRAIN_WINDOWS, tokenizer, model.config.plasmidlm, CLASSES),
        eval_dataset=make_dataset(VAL_WINDOWS, tokenizer, model.config.plasmidlm, CLASSES),
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer, before, output_dir


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """An uninterrupted `fine_tune` with LoRA: (output_dir, summary, log messages)."""
    output_dir = tmp_path_factory.mktemp("lora_run")
    with logged_messages() as messages:
        return output_dir, run_fine_tune(output_dir), messages


def test_only_adapters_and_head_train(trained):
    trainer, before, _ = trained
    parameters = dict(trainer.model.named_parameters())
    trainable = {name for name, parameter in parameters.items() if parameter.requires_grad}
    changed = {name for name, parameter in parameters.items() if not torch.equal(parameter, before[name])}
    assert changed == trainable
    head = {name for name in trainable if ".modules_to_save." in name}
    assert {name.rsplit(".", 1)[-1] for name in head} == {"weight", "bias"}
    assert all(".classifier." in name for name in head)
    adapters = trainable - head
    assert adapters and all(".lora_A." in name or ".lora_B." in name for name in adapters)
    assert {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in adapters} == {"query", "value"}


def test_checkpoint_loads_with_plain_transformers_and_matches_the_lora_model(trained):
    trainer, _, output_dir = trained
    checkpoint = output_dir / "checkpoint-8"
    assert is_complete_checkpoint(checkpoint)
    assert not (checkpoint / "adapter_config.json").exists()  # transformers would apply it to the merged weights
    assert (checkpoint / LORA_ADAPTER_DIR / "adapter_config.json").exists()
    reloaded = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    assert type(reloaded) is BertForSequenceClassification
    assert getattr(reloaded.config, METADATA_KEY) == {"window_length": WINDOW, "kmer": 3, "kmer_stride": 1,
                                                      "custom_code": False,
                                                      "versions": versions.library_versions()}
    assert reloaded.config.id2label == {0: "a", 1: "b"}
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    inputs = tokenizer([kmer_text(sequence, 3) for sequence in random_windows(6, seed=4)], return_tensors="pt")
    model = trainer.model.eval()
    with torch.inference_mode():
        expected = model(**inputs).logits
        torch.testing.assert_close(reloaded(**inputs).logits, expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(load_checkpoint(checkpoint)[0](**inputs).logits, expected, rtol=0, atol=1e-5)


def test_fine_tune_logs_trainable_parameters(lora_run):
    _, summary, messages = lora_run
    assert 0 < summary["trainable_parameters"] < summary["parameters"] / 2
    line = (f"LoRA (r=4, alpha=8) on query, value and the classification head: "
            f"{summary['trainable_parameters']:,} of {summary['parameters']:,} parameters trainable")
    assert any(message.startswith(line) for message in messages), messages


def test_resume_from_a_checkpoint_matches_the_uninterrupted_run(tmp_path, lora_run, caplog):
    reference_dir, reference, _ = lora_run
    output_dir = tmp_path / "model"
    output_dir.mkdir()
    # What a run killed during step 5 leaves behind.
    shutil.copy(reference_dir / PARAMS_FILE, output_dir)
    shutil.copytree(reference_dir / "checkpoint-4", output_dir / "checkpoint-4")
    caplog.set_level(logging.INFO)

    summary = run_fine_tune(output_dir)

    assert any("resuming from checkpoint-4" in message for message in caplog.messages)
    assert summary["checkpoints"] == [4, 8]
    for weights in ("model.safetensors", f"{LORA_ADAPTER_DIR}/adapter_model.safetensors"):
        assert_same_weights(load_file(output_dir / "checkpoint-8" / weights),
                            load_file(reference_dir / "checkpoint-8" / weights))
    assert losses(summary) == pytest.approx(losses(reference), abs=1e-6)


def test_missing_peft_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft now raises ImportError
    with pytest.raises(PlasmidlmError, match=r"^config model.lora.enabled: LoRA needs the peft package: "
                                             r"pip install peft$"):
        build_or_load(LORA_MODEL, WINDOW, CLASSES, seed=0)
    build_or_load(TINY | {"lora": LORA_DEFAULTS}, WINDOW, CLASSES, seed=0)  # without LoRA, peft is not needed


class FusedAttention(torch.nn.Module):
    """Like DNABERT-2's custom code: model type "bert", but one fused Wqkv layer instead of query and value."""

    def __init__(self):
        super().__init__()
        self.config = BertConfig()
        self.Wqkv = torch.nn.Linear(4, 12)


def test_default_targets_are_peft_defaults_where_the_model_has_those_layers():
    model, _ = build_or_load(TINY, WINDOW, CLASSES, seed=0)
    assert default_lora_targets(model) == ["query", "value"]
    assert default_lora_targets(FusedAttention()) == ALL_LINEAR


def test_all_linear_and_unknown_targets():
    model, _ = build_or_load(TINY | {"lora": LORA_MODEL["lora"] | {"target_modules": ALL_LINEAR}}, WINDOW, CLASSES,
                             seed=0)
    adapted = {name.split(".lora_A.")[0].split("bert.")[-1] for name, _ in model.named_parameters()
               if ".lora_A." in name}
    assert "encoder.layer.0.intermediate.dense" in adapted
    assert not any("classifier" in name for name in adapted)
    with pytest.raises(PlasmidlmError, match="config model.lora.target_modules: "):
        build_or_load(TINY | {"lora": LORA_MODEL["lora"] | {"target_modules": ["Wqkv"]}}, WINDOW, CLASSES, seed=0)
