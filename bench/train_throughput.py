"""Training and evaluation throughput of the built-in model: plasmidlm's Trainer settings vs a plain Trainer.

Both trainers get the same freshly initialised model, the same pre-tokenized random windows and the same
batch sizes, in one run. "plasmidlm" uses the TrainingArguments of `plasmidlm.training.fine_tune` (bf16 or fp16
on a GPU, fused AdamW, padding each batch to its longest window); "plain" is a `transformers.Trainer` with default
TrainingArguments and the tokenizer as processing class (so it pads every batch with the tokenizer). Checkpoints
and periodic validation are off in both, so only training steps are timed. Then inference with
`plasmidlm.evaluate.predict_proba` (the evaluation jobs' code) in fp32 and in its automatic precision (bf16 on a GPU
from compute capability 8.0 and on a CPU with AMX). Last, the masked-LM pretraining throughput (windows/s and
tokens/s) of `plasmidlm.training.pretrain.pretrain_mlm`'s setup, whose prediction head runs on the masked
positions only, against the same model as a plain `BertForMaskedLM` (the head on every position). Example
(README.md next to this file):

    PYTHONPATH=src python bench/train_throughput.py --preset base --window-length 100 --steps 60 \
        --batch-size 256 --peak-tflops 989
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import numpy as np
import pandas as pd
import torch
from transformers import BertForMaskedLM, PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from plasmidlm.config import load_schema
from plasmidlm.evaluate import predict_proba, resolved_precision
from plasmidlm.model import PRESETS, build_or_load, parameter_counts
from plasmidlm.tokenize import flat_token_ids, n_tokens
from plasmidlm.training.arguments import training_arguments
from plasmidlm.training.data import WindowDataset, make_dataset
from plasmidlm.training.pretrain import KmerSpanMasking, build_mlm
from plasmidlm.training.trainer import WindowTrainer

CLASSES = ["plasmid", "chromosome"]
SEED = 1


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=list(PRESETS), default="small", help="built-in model size")
    parser.add_argument("--window-length", type=int, default=100, help="window length in nt")
    parser.add_argument("--kmer", type=int, default=6, help="k-mer size of the tokenizer (overlapping k-mers)")
    parser.add_argument("--steps", type=int, default=30, help="training steps per trainer")
    parser.add_argument("--warmup-steps", type=int, default=3, help="first steps left out of the timing")
    parser.add_argument("--batch-size", type=int, default=32, help="training windows per step")
    parser.add_argument("--eval-batch-size", type=int, default=256, help="windows per evaluation batch")
    parser.add_argument("--eval-windows", type=int, default=4096, help="windows in the timed evaluation")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="measure each trainer this many times, alternating; report the best figures")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the accelerator's peak dense TFLOP/s in the training precision, for model FLOP "
                             "utilisation (H100 SXM bf16: 989)")
    return parser.parse_args()


def random_windows(n: int, length: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` random windows with random labels."""
    letters = np.array(list("ACGT"))[rng.integers(0, 4, size=(n, length))]
    return pd.DataFrame({"sequence": ["".join(row) for row in letters], "label": rng.choice(CLASSES, size=n)})


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepClock(TrainerCallback):
    """Wall time of the training steps after the first `warmup` (CUDA work finished at both ends)."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start = self.end = None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in (self.warmup, state.max_steps):
            synchronize()
            if state.global_step == self.warmup:
                self.start = time.perf_counter()
            else:
                self.end = time.perf_counter()


def plasmidlm_arguments(options, output_dir: str, section: str = "train") -> TrainingArguments:
    """`fine_tune`'s (or, with section "pretrain", `pretrain_mlm`'s) TrainingArguments for these options,
    without checkpoints, validation or reporting."""
    defaults = {key: spec["default"] for key, spec in load_schema()["properties"][section]["properties"].items()}
    config = defaults | {"batch_size": options.batch_size, "eval_batch_size": options.eval_batch_size,
                         "max_steps": options.steps}
    return dataclasses.replace(training_arguments(config, output_dir, seed=SEED, masked_lm=section == "pretrain"),
                               save_strategy="no",
                               eval_strategy="no", report_to="none")


def plain_arguments(options, output_dir: str) -> TrainingArguments:
    """Default TrainingArguments with the same batch sizes and steps, without checkpoints."""
    return TrainingArguments(output_dir=output_dir, per_device_train_batch_size=options.batch_size,
                             per_device_eval_batch_size=options.eval_batch_size, max_steps=options.steps,
                             save_strategy="no", report_to="none", disable_tqdm=True, seed=SEED)


def measure(name: str, options, data: dict) -> dict:
    """Training and evaluation windows/s (and peak GPU memory) of one trainer on a fresh model."""
    model, tokenizer = build_or_load({"name_or_path": "builtin", "preset": options.preset, "kmer": options.kmer},
                                     options.window_length, CLASSES, seed=SEED)
    metadata = model.config.plasmidlm
    train = make_dataset(data["train"], tokenizer, metadata, CLASSES)
    evaluation = make_dataset(data["eval"], tokenizer, metadata, CLASSES)
    clock = StepClock(options.warmup_steps)
    with tempfile.TemporaryDirectory() as output_dir:
        if name == "plasmidlm":
            trainer = WindowTrainer(model=model, args=plasmidlm_arguments(options, output_dir), train_dataset=train,
                                    processing_class=tokenizer, callbacks=[clock])
        else:
            trainer = Trainer(model=model, args=plain_arguments(options, output_dir), train_dataset=train,
                              processing_class=tokenizer, callbacks=[clock])
        trainer.remove_callback(PrinterCallback)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        trainer.train()
        train_memory = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        warm_up = range(min(options.eval_batch_size, len(evaluation)))
        trainer.evaluate(torch.utils.data.Subset(evaluation, warm_up))
        synchronize()
        start = time.perf_counter()
        trainer.evaluate(evaluation)
        synchronize()
        eval_seconds = time.perf_counter() - start
    timed_steps = options.steps - options.warmup_steps
    return {
        "parameters": parameter_counts(model)[1],
        "train_windows_per_s": timed_steps * options.batch_size / (clock.end - clock.start),
        "eval_windows_per_s": len(evaluation) / eval_seconds,
        "train_gpu_memory_gib": train_memory / 2**30 if train_memory is not None else None,
    }


def measure_pretraining(options, data: dict, head: str) -> float:
    """Masked-LM pretraining windows/s of `pretrain_mlm`'s setup (span masking, its Trainer arguments), with its
    prediction head on the masked positions (`head` "masked") or, as in plain BertForMaskedLM, on all ("all")."""
    model, tokenizer = build_mlm(options.preset, kmer=options.kmer, kmer_stride=1, window_length=options.window_length,
                                 seed=SEED)
    if head == "all":
        plain = BertForMaskedLM(model.config)
        plain.load_state_dict(model.state_dict())
        model = plain
    train = WindowDataset(*flat_token_ids(tokenizer, data["train"]["sequence"], options.kmer, 1))
    clock = StepClock(options.warmup_steps)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = Trainer(model=model, args=plasmidlm_arguments(options, output_dir, "pretrain"), train_dataset=train,
                          data_collator=KmerSpanMasking(tokenizer=tokenizer, mlm_probability=0.15, span=options.kmer),
                          processing_class=tokenizer, callbacks=[clock])
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return (options.steps - options.warmup_steps) * options.batch_size / (clock.end - clock.start)


def measure_inference(options, data: dict) -> dict:
    """Windows/s of `predict_proba` on the evaluation windows in fp32 and in the automatic precision, alternating
    `options.repeats` times (best of each), and the largest difference between their probabilities."""
    model, tokenizer = build_or_load({"name_or_path": "builtin", "preset": options.preset, "kmer": options.kmer},
                                     options.window_length, CLASSES, seed=SEED)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    sequences = data["eval"]["sequence"].tolist()
    speed, proba = {"fp32": 0.0, "auto": 0.0}, {}
    for _ in range(options.repeats):
        for precision in speed:
            began = time.perf_counter()
            proba[precision] = predict_proba(model, tokenizer, model.config.plasmidlm, sequences,
                                             batch_size=options.eval_batch_size, precision=precision)
            speed[precision] = max(speed[precision], len(sequences) / (time.perf_counter() - began))
    return {"speed": speed, "auto": resolved_precision("auto", device),
            "difference": float(np.abs(proba["auto"] - proba["fp32"]).max())}


def best(results: list[dict]) -> dict:
    """The highest throughputs of repeated measurements (other load only slows a run down)."""
    return results[0] | {key: max(result[key] for result in results)
                         for key in ("train_windows_per_s", "eval_windows_per_s")}


def model_flop_utilisation(windows_per_s: float, tokens: int, parameters: int, flops_per_token_parameter: int,
                           peak_tflops: float) -> float:
    """Achieved model FLOP/s (flops_per_token_parameter * parameters * tokens/s) over the peak."""
    return flops_per_token_parameter * parameters * tokens * windows_per_s / (peak_tflops * 1e12)


def main() -> None:
    options = parse_arguments()
    if options.steps <= options.warmup_steps:
        raise SystemExit("--steps must exceed --warmup-steps")
    if options.threads:
        torch.set_num_threads(options.threads)
    rng = np.random.default_rng(SEED)
    data = {"train": random_windows(options.steps * options.batch_size, options.window_length, rng),
            "eval": random_windows(options.eval_windows, options.window_length, rng)}
    tokens = n_tokens(options.window_length, options.kmer)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {device}; torch {torch.__version__}")
    print(f"preset {options.preset}, {options.window_length} nt windows = {tokens} tokens ({options.kmer}-mers), "
          f"batch {options.batch_size} (eval {options.eval_batch_size}), {options.steps} steps "
          f"({options.warmup_steps} untimed), {options.eval_windows} eval windows, best of {options.repeats}")
    runs = {"plasmidlm": [], "plain": []}
    for _ in range(options.repeats):
        for name, results in runs.items():
            results.append(measure(name, options, data))
    results = {name: best(results) for name, results in runs.items()}
    print(f"parameters: {results['plasmidlm']['parameters']:,}")
    for name, result in results.items():
        line = (f"{name:>9}: train {result['train_windows_per_s']:,.0f} windows/s, "
                f"eval {result['eval_windows_per_s']:,.0f} windows/s")
        if result["train_gpu_memory_gib"] is not None:
            line += f", peak GPU memory in training {result['train_gpu_memory_gib']:.1f} GiB"
        if options.peak_tflops and torch.cuda.is_available():
            train_mfu = model_flop_utilisation(result["train_windows_per_s"], tokens, result["parameters"], 6,
                                               options.peak_tflops)
            eval_mfu = model_flop_utilisation(result["eval_windows_per_s"], tokens, result["parameters"], 2,
                                              options.peak_tflops)
            line += f", model FLOP utilisation: train {train_mfu:.1%}, eval {eval_mfu:.1%}"
        print(line)
    ours, plain = results["plasmidlm"], results["plain"]
    print(f"ratio plasmidlm / plain: train {ours['train_windows_per_s'] / plain['train_windows_per_s']:.2f}x, "
          f"eval {ours['eval_windows_per_s'] / plain['eval_windows_per_s']:.2f}x")
    inference = measure_inference(options, data)
    fp32, auto = inference["speed"]["fp32"], inference["speed"]["auto"]
    print(f"inference (predict_proba): fp32 {fp32:,.0f} windows/s, auto ({inference['auto']}) {auto:,.0f} windows/s, "
          f"ratio {auto / fp32:.2f}x; largest probability difference {inference['difference']:.2g}")
    pretraining = {head: 0.0 for head in ("masked", "all")}
    for _ in range(options.repeats):
        for head in pretraining:
            pretraining[head] = max(pretraining[head], measure_pretraining(options, data, head))
    for head, text in (("masked", "head on the masked positions (plasmidlm)"), ("all", "head on every position")):
        print(f"masked-LM pretraining, {text}: {pretraining[head]:,.0f} windows/s = "
              f"{pretraining[head] * tokens:,.0f} tokens/s")
    print(f"masked-LM pretraining ratio masked positions / every position: "
          f"{pretraining['masked'] / pretraining['all']:.2f}x")


if __name__ == "__main__":
    main()
