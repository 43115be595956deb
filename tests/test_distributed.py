"""Data-parallel training (train.gpus) on 2 CPU processes (gloo): one set of checkpoints and outputs, the weights
of a single-process run with the same global batch, SIGTERM stopping every rank, resuming."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForSequenceClassification

from conftest import SRC, WINDOW, logged_messages, random_windows, write_fasta
from plasmidlm import PlasmidlmError, io
from plasmidlm.steps import pretrain as pretrain_steps, train as train_steps
from plasmidlm.config import load_schema
from plasmidlm.tokenize import build_kmer_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN_DEFAULTS = {key: spec["default"] for key, spec in load_schema()["properties"]["train"]["properties"].items()}
# 48 windows, global batch 8: 6 steps per epoch, 12 steps, checkpoints at 4, 8 and 12.
TRAIN = TRAIN_DEFAULTS | {"batch_size": 8, "eval_batch_size": 16, "max_steps": 12, "save_steps": 4,
                          "logging_steps": 2, "learning_rate": 1.0e-3}
# Two processes add their gradients in another order than one process: float32 rounding through 12 Adam steps
# (2e-8 measured; the weights move by about 5e-3).
WEIGHT_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Window tables, a split table and a tiny local model without dropout: dropout masks are drawn per
    process, so with dropout two processes would not train what one process trains."""
    directory = tmp_path_factory.mktemp("distributed_inputs")
    rng = np.random.default_rng(0)
    for name, n, seed in (("train", 48, 1), ("val", 16, 2)):
        table = pd.DataFrame({"label": rng.choice(["a", "b"], size=n), "sequence": random_windows(n, seed=seed)})
        io.write_table(table, directory / f"{name}.tsv")
    io.write_table(pd.DataFrame({"id": ["p1", "p2"], "label": ["a", "b"], "split": "train"}), directory / "split.tsv")
    tokenizer = build_kmer_tokenizer(3, model_max_length=128)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertForSequenceClassification(config).save_pretrained(directory / "model")
    tokenizer.save_pretrained(directory / "model")
    return directory


def arguments(inputs, model_dir, gpus: int) -> dict:
    return {"train_windows": str(inputs / "train.tsv"), "val_windows": str(inputs / "val.tsv"),
            "split_path": str(inputs / "split.tsv"),
            "model_config": {"name_or_path": str(inputs / "model"), "kmer": 3, "kmer_stride": 1},
            "train_config": TRAIN | {"gpus": gpus}, "window_length": WINDOW, "seed": 3, "model_dir": str(model_dir),
            "out_summary": str(model_dir / "train_summary.json"), "out_log": str(model_dir / "training_log.tsv")}


def run(inputs, model_dir, gpus: int) -> list[str]:
    with logged_messages() as lines:
        train_steps.train(**arguments(inputs, model_dir, gpus))
    return lines


def weights(model_dir, step: int = 12) -> dict:
    return load_file(model_dir / f"checkpoint-{step}" / "model.safetensors")


@pytest.fixture(scope="module")
def two_processes(inputs, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("two") / "model"
    return model_dir, run(inputs, model_dir, gpus=2)


def test_two_processes_write_one_set_of_checkpoints_and_outputs(two_processes):
    model_dir, lines = two_processes
    assert set(os.listdir(model_dir)) - {"runs"} == {  # runs: TensorBoard's, when installed
        "checkpoint-4", "checkpoint-8", "checkpoint-12", "plasmidlm_train_params.json", "train_summary.json",
        "training_log.tsv"}
    for step in (4, 8, 12):  # one model, one trainer state; each rank's random state for resuming
        names = os.listdir(model_dir / f"checkpoint-{step}")
        assert names.count("model.safetensors") == 1 and {"rng_state_0.pth", "rng_state_1.pth"} <= set(names)
    summary = json.loads((model_dir / "train_summary.json").read_text())
    assert summary["checkpoints"] == [4, 8, 12] and summary["total_steps"] == 12 and summary["steps_per_epoch"] == 6
    plan = [line for line in lines if "training windows per epoch" in line]
    assert len(plan) == 1 and "batch 8 (4 on each of 2 GPUs/processes): 6 steps/epoch, 12 steps in all" in plan[0]
    assert not [line for line in lines if line.startswith("[rank 1] step ")]  # progress is logged by rank 0 only
    log_table = pd.read_csv(model_dir / "training_log.tsv", sep="\t")
    assert list(log_table.dropna(subset=["eval_accuracy"])["step"]) == [4, 8, 12]


def test_two_processes_train_the_weights_of_one_with_the_same_global_batch(inputs, two_processes, tmp_path):
    single = tmp_path / "single"
    run(inputs, single, gpus=1)
    expected, actual = weights(single), weights(two_processes[0])
    assert expected.keys() == actual.keys()
    moved = max(float((expected[name] - load_file(next((inputs / "model").glob("*.safetensors")))[name]).abs().max())
                for name in expected if not name.startswith("classifier"))
    assert moved > 100 * WEIGHT_TOLERANCE  # training moved the weights far more than the tolerance
    for name, tensor in expected.items():
        np.testing.assert_allclose(actual[name].numpy(), tensor.numpy(), atol=WEIGHT_TOLERANCE, err_msg=name)


def test_lora_on_two_processes_trains_the_adapters_of_one(inputs, tmp_path):
    """LoRA under DDP: only the adapters and the head get gradients (the frozen weights have none, which DDP must
    accept for a hub model); one set of checkpoints, each with the merged model and the adapters."""
    pytest.importorskip("peft")
    lora = {key: spec["default"] for key, spec in
            load_schema()["properties"]["model"]["properties"]["lora"]["properties"].items()}
    lora |= {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}  # dropout masks are drawn per process
    models = {}
    for gpus in (1, 2):
        settings = arguments(inputs, tmp_path / f"lora{gpus}", gpus)
        settings["model_config"] |= {"lora": lora}
        train_steps.train(**settings)
        models[gpus] = tmp_path / f"lora{gpus}"
    assert sorted(path.name for path in models[2].glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-4",
                                                                             "checkpoint-8"]
    assert (models[2] / "checkpoint-12" / "lora_adapter" / "adapter_model.safetensors").exists()
    expected, actual = weights(models[1]), weights(models[2])
    frozen = load_file(next((inputs / "model").glob("*.safetensors")))
    assert any(not torch.equal(expected[name], frozen[name]) for name in frozen if "encoder" in name)  # merged
    for name, tensor in expected.items():
        np.testing.assert_allclose(actual[name].numpy(), tensor.numpy(), atol=WEIGHT_TOLERANCE, err_msg=name)


def test_fresh_windows_every_epoch_on_two_processes_train_the_weights_of_one(inputs, tmp_path):
    """Each epoch's block is tokenized once by rank 0 and read by both ranks when the sampler moves to it (a
    collective inside set_epoch: both ranks must reach it for the same epochs)."""
    rng = np.random.default_rng(5)
    fresh = pd.concat([io.read_table(inputs / "train.tsv").assign(epoch=0),
                       pd.DataFrame({"label": rng.choice(["a", "b"], size=48), "sequence": random_windows(48, seed=6),
                                     "epoch": 1})], ignore_index=True)
    io.write_table(fresh, tmp_path / "fresh.tsv.gz")
    runs = {}
    for gpus in (1, 2):
        model_dir = tmp_path / f"gpus{gpus}"
        with logged_messages() as lines:
            train_steps.train(**arguments(inputs, model_dir, gpus) | {"train_windows": str(tmp_path / "fresh.tsv.gz")})
        assert any("48 windows in each of 2 epoch(s) drawn, read and tokenized one epoch at a time" in line
                   for line in lines)
        assert not list(model_dir.glob(".tokens*"))
        runs[gpus] = weights(model_dir)
    for name, tensor in runs[1].items():
        np.testing.assert_allclose(runs[2][name].numpy(), tensor.numpy(), atol=WEIGHT_TOLERANCE, err_msg=name)


def test_a_batch_that_does_not_split_evenly_is_an_error(inputs, tmp_path):
    with pytest.raises(PlasmidlmError, match=r"train.batch_size: 8 is not a multiple of train.gpus \(3\)"):
        train_steps.train(**arguments(inputs, tmp_path / "model", gpus=3))


# Slows every rank's steps after checkpoint-4, so that the test can send SIGTERM while the run is under way, and
# makes rank 1 late to write its random state into checkpoint-4, as a loaded machine may.
SLOW_STEPS = """
import os, time
if os.environ.get("PLASMIDLM_DISTRIBUTED") == "1":
    from transformers import Trainer
    step, save_rng_state = Trainer.training_step, Trainer._save_rng_state

    def slow(self, *positional, **keywords):
        if self.state.global_step >= 4:
            time.sleep(1)
        return step(self, *positional, **keywords)

    def late_on_rank_1(self, output_dir):
        if os.environ["RANK"] == "1" and self.state.global_step == 4:
            time.sleep(2)
        return save_rng_state(self, output_dir)

    Trainer.training_step, Trainer._save_rng_state = slow, late_on_rank_1
"""


@pytest.mark.parametrize("kill", ["sigterm", "sigkill"])
def test_a_stopped_or_killed_run_resumes(inputs, two_processes, tmp_path, kill):
    """SIGTERM (a Slurm time limit, which sends it twice) stops every rank after the same step, with an error that
    says where a re-run resumes; SIGKILL kills the job and its ranks at once, as soon as checkpoint-4 is marked
    complete: by then every rank's random state is in it, although rank 1 wrote its own late. Either way, the re-run
    resumes from the last checkpoint and ends with the weights of the uninterrupted run."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_STEPS)
    model_dir = tmp_path / "model"
    code = ("import json, logging, sys; from plasmidlm.steps import train as train_steps; "
            "logging.basicConfig(level=logging.INFO, format='%(message)s', stream=sys.stdout); "
            "train_steps.train(**json.loads(sys.argv[1]))")
    job = subprocess.Popen([sys.executable, "-c", code, json.dumps(arguments(inputs, model_dir, gpus=2))],
                           env=os.environ | {"PYTHONPATH": f"{hook}{os.pathsep}{SRC}"}, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while not (model_dir / "checkpoint-4" / "trainer_state.json").exists():
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()[0]
        time.sleep(0.2)
    if kill == "sigkill":
        os.killpg(job.pid, signal.SIGKILL)  # the job and its ranks, as a node failure or scancel would
        job.communicate(timeout=60)
        for rank in (0, 1):
            assert "cpu" in torch.load(model_dir / "checkpoint-4" / f"rng_state_{rank}.pth", weights_only=False)
        last = 4
    else:
        job.send_signal(signal.SIGTERM)
        job.send_signal(signal.SIGTERM)  # Slurm sends SIGTERM more than once at a time limit
        output, _ = job.communicate(timeout=120)
        assert job.returncode == 1, output
        stopped = [line for line in output.splitlines() if "stopped by SIGTERM after step" in line]
        assert stopped and "re-run to resume from checkpoint-4" in stopped[-1], output
        step = int(stopped[-1].split("after step ")[1].split()[0])
        assert 4 < step < 12
        last = 8 if step >= 8 else 4
    complete = [path.name for path in model_dir.glob("checkpoint-*") if (path / "trainer_state.json").exists()]
    assert max(complete, key=lambda name: int(name.split("-")[1])) == f"checkpoint-{last}"
    lines = run(inputs, model_dir, gpus=2)
    assert any(f"resuming from checkpoint-{last}" in line for line in lines)
    expected, actual = weights(two_processes[0]), weights(model_dir)
    for name, tensor in expected.items():
        np.testing.assert_allclose(actual[name].numpy(), tensor.numpy(), atol=1e-6, err_msg=name)


def test_pretraining_on_two_processes_writes_one_model(tmp_path, caplog):
    records = [(f"p{i}", sequence) for i, sequence in enumerate(random_windows(8, length=300, seed=4))]
    fasta = write_fasta(tmp_path / "all.fa", records)
    io.write_table(pd.DataFrame({"id": [name for name, _ in records], "label": "x", "split": "train",
                                 "length": 300}),
                   tmp_path / "split.tsv")
    config = {key: spec["default"] for key, spec in load_schema()["properties"]["pretrain"]["properties"].items()}
    config |= {"preset": "tiny", "kmer": 3, "windows_per_plasmid": 8, "heldout_windows": 16, "batch_size": 8,
               "max_steps": 6, "save_steps": 3, "logging_steps": 3, "gpus": 2}
    caplog.set_level(logging.INFO)
    pretrain_steps.pretrain(fasta=fasta, split_path=tmp_path / "split.tsv", extra_fasta=[], pretrain_config=config,
                            windows_config={"length": WINDOW, "circular": False, "ambiguous": "keep",
                                            "max_n_fraction": 1.0},
                            seed=0, output_dir=tmp_path / "out", out_summary=tmp_path / "out" / "summary.json",
                            out_log=tmp_path / "out" / "log.tsv")
    assert set(os.listdir(tmp_path / "out")) - {"runs"} == {
        "checkpoint-3", "checkpoint-6", "model", "plasmidlm_train_params.json", "summary.json", "log.tsv"}
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["checkpoints"] == [3, 6]
    assert sum("masked-LM pretraining:" in line for line in caplog.messages) == 1


def test_a_rank_seeing_fewer_gpus_than_asked_for_says_so(monkeypatch, capsys):
    import torch

    from plasmidlm.training import distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert distributed._rank_main(json.dumps({"step": "plasmidlm.steps.train:train", "kwargs": {}})) == 1
    assert capsys.readouterr().out.startswith("error: 4 GPUs asked for (train.gpus / pretrain.gpus), but the job "
                                              "sees 1")


def test_checkpoints_recorded_before_gpus_and_compile_existed_stay_valid():
    from plasmidlm.training.runs import run_record

    before = {key: value for key, value in TRAIN.items() if key not in ("gpus", "compile")}
    assert run_record("train", TRAIN | {"gpus": 1, "compile": False}, 12) == run_record("train", before, 12)
    assert run_record("train", TRAIN | {"gpus": 2}, 12)["train"]["gpus"] == 2  # more GPUs: another trajectory
    assert run_record("train", TRAIN | {"compile": True}, 12)["train"]["compile"] is True
