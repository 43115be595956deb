"""GPU throughput of plasmidlm's own evaluation and training code paths against plain transformers, in one run.

For each preset and window length, on a freshly initialised built-in model saved as a checkpoint:
- **evaluation**: `plasmidlm.evaluate.predict_proba` on a model loaded by `plasmidlm.model.load_checkpoint` (the
  code path of the evaluation jobs, `predict` and `embed`), with its default batch size and precision, against a
  plain loop: `AutoModelForSequenceClassification` in fp32, the tokenizer padding each batch of 256 windows,
  `softmax(...).cpu()` per batch. The largest difference between the two sets of probabilities is printed too.
- **training**: `plasmidlm.training.trainer.WindowTrainer` with `plasmidlm.training.arguments.training_arguments`
  against a plain `transformers.Trainer` with default `TrainingArguments` (and the tokenizer as collator; fp32
  matrix products in full precision, torch's default), same model initialisation, data, batch and steps;
  checkpoints and validation off in both.
- **checkpoints**: how long writing one checkpoint (weights, optimizer, scheduler, trainer state) stops
  `WindowTrainer`'s training, written in the foreground and in the background (`CheckpointTrainer`), as a share of
  the steps between two checkpoints at the default `train.save_steps`.
Printed: windows/s, tokens/s, model FLOP utilisation (MFU) against the GPU's peak (detected from its name, or
`--peak-tflops`), peak GPU memory and the ratio plasmidlm / plain. `--reduced` is a seconds-long CPU run of the
same code (the test suite runs it so that this script cannot rot). See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd
import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PrinterCallback, Trainer
from transformers.utils.import_utils import enable_tf32

from plasmidlm.config import load_schema
from plasmidlm.evaluate import default_batch_size, predict_proba, resolved_precision
from plasmidlm.model import PRESETS, build_or_load, forward_input_names, load_checkpoint
from plasmidlm.tokenize import kmer_id_table, kmer_ids, kmer_text, n_tokens
from plasmidlm.training.data import PadToLongest, make_dataset
from plasmidlm.training.trainer import WindowTrainer
from train_throughput import CLASSES, SEED, StepClock, plain_arguments, plasmidlm_arguments, random_windows, synchronize

KMER = 6
SAVE_STEPS = load_schema()["properties"]["train"]["properties"]["save_steps"]["default"]
PLAIN_EVAL_BATCH = 256  # the batch of the plain loop (and plasmidlm's default before GPU defaults existed)
# Dense bf16 peak TFLOP/s by device name, the first match wins (NVIDIA data sheets, without sparsity).
PEAK_TFLOPS = [("H200", 989.0), ("H100 PCIE", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("A100", 312.0)]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=["small", "base"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[100, 500], help="window lengths in nt")
    parser.add_argument("--train-steps", type=int, default=30, help="training steps per trainer")
    parser.add_argument("--warmup-steps", type=int, default=5, help="first training steps left out of the timing")
    parser.add_argument("--train-batch-tokens", type=int, default=32768,
                        help="tokens per training batch: the batch is this over the tokens of one window")
    parser.add_argument("--eval-tokens", type=int, default=4_000_000,
                        help="tokens in the timed evaluation: the windows are this over the tokens of one window")
    parser.add_argument("--repeats", type=int, default=2,
                        help="measure each side this many times, alternating; keep the best")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the accelerator's peak dense TFLOP/s in the precision used (default: from the "
                             "device name for H100, H200 and A100)")
    parser.add_argument("--reduced", action="store_true",
                        help="a seconds-long run on any device: preset tiny, 100 nt, a few steps and windows")
    options = parser.parse_args()
    if options.reduced:
        options.presets, options.lengths, options.train_steps, options.warmup_steps = ["tiny"], [100], 4, 1
        options.train_batch_tokens, options.eval_tokens, options.repeats = 16 * 97, 64 * 97, 1
    if options.train_steps <= options.warmup_steps:
        parser.error("--train-steps must exceed --warmup-steps")
    return options


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"


def peak_tflops(name: str, given: float | None) -> float | None:
    """The peak dense TFLOP/s given, else the table's for a known GPU, else None (no MFU printed)."""
    if given:
        return given
    if not torch.cuda.is_available():
        return None
    return next((peak for key, peak in PEAK_TFLOPS if key in name.upper()), None)


def matmul_parameters(model) -> int:
    """Parameters outside embedding tables: each does one multiply-add per token in a forward pass."""
    embeddings = sum(p.numel() for module in model.modules() if isinstance(module, torch.nn.Embedding)
                     for p in module.parameters(recurse=False))
    return sum(p.numel() for p in model.parameters()) - embeddings


def forward_flops_per_token(model, tokens: int) -> float:
    """2 x matmul parameters + attention scores and their weighted sum (4 x layers x tokens x hidden)."""
    config = model.config
    return 2 * matmul_parameters(model) + 4 * config.num_hidden_layers * tokens * config.hidden_size


def reset_peak_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


# --- evaluation ----------------------------------------------------------------------------------------------


def plain_predict(model, tokenizer, sequences: list[str], device) -> np.ndarray:
    """The usual transformers loop: tokenize a batch, run it in fp32, bring the probabilities back."""
    out = []
    with torch.no_grad():
        for begin in range(0, len(sequences), PLAIN_EVAL_BATCH):
            texts = [kmer_text(sequence, KMER) for sequence in sequences[begin : begin + PLAIN_EVAL_BATCH]]
            inputs = tokenizer(texts, padding=True, return_tensors="pt", return_token_type_ids=False).to(device)
            out.append(torch.softmax(model(**inputs).logits, dim=-1).cpu().numpy())
    return np.concatenate(out)


def torch_defaults() -> None:
    """fp32 matrix products in full precision, as torch does by default: plasmidlm's training turns TF32 on for
    the whole process, and the plain side must not inherit it."""
    if torch.cuda.is_available():
        enable_tf32(False)


def timed(run) -> tuple[float, object]:
    synchronize()
    began = time.perf_counter()
    result = run()
    synchronize()
    return time.perf_counter() - began, result


def measure_evaluation(checkpoint: str, sequences: list[str], repeats: int) -> dict:
    """Best seconds, peak memory and probabilities of plasmidlm's path and of the plain loop."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ours_model, ours_tokenizer, metadata = load_checkpoint(checkpoint, device)
    plain_model = AutoModelForSequenceClassification.from_pretrained(checkpoint).to(device).eval()
    plain_tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    sides = {"plasmidlm": lambda items: predict_proba(ours_model, ours_tokenizer, metadata, items),
             "plain": lambda items: plain_predict(plain_model, plain_tokenizer, items, device)}
    results = {name: {"seconds": float("inf")} for name in sides}
    for name, run in sides.items():  # warm-up: kernels, allocator, autotuning
        run(sequences[: 2 * PLAIN_EVAL_BATCH])
    for _ in range(repeats):
        for name, run in sides.items():
            torch_defaults()
            reset_peak_memory()
            seconds, proba = timed(lambda: run(sequences))
            result = results[name]
            result.update(proba=proba, memory=peak_memory_gib())
            result["seconds"] = min(result["seconds"], seconds)
    results["plasmidlm"]["setting"] = f"batch {default_batch_size(device)}, {resolved_precision('auto', device)}"
    results["plain"]["setting"] = f"batch {PLAIN_EVAL_BATCH}, fp32"
    return results


# --- training ------------------------------------------------------------------------------------------------


def measure_training(name: str, preset: str, length: int, batch_size: int, windows, steps: int, warmup: int
                     ) -> dict:
    """Seconds of the timed steps and peak memory of one trainer on a fresh model."""
    model, tokenizer = build_or_load({"name_or_path": "builtin", "preset": preset, "kmer": KMER}, length, CLASSES,
                                     seed=SEED)
    dataset = make_dataset(windows, tokenizer, model.config.plasmidlm, CLASSES)
    options = argparse.Namespace(batch_size=batch_size, eval_batch_size=batch_size, steps=steps)
    clock = StepClock(warmup)
    with tempfile.TemporaryDirectory() as output_dir:
        if name == "plasmidlm":
            trainer = WindowTrainer(model=model, args=plasmidlm_arguments(options, output_dir), train_dataset=dataset,
                                    processing_class=tokenizer, callbacks=[clock])
        else:
            torch_defaults()
            trainer = Trainer(model=model, args=plain_arguments(options, output_dir), train_dataset=dataset,
                              processing_class=tokenizer, callbacks=[clock])
        trainer.remove_callback(PrinterCallback)
        reset_peak_memory()
        trainer.train()
    setting = "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32"
    return {"seconds": clock.end - clock.start, "windows": (steps - warmup) * batch_size,
            "memory": peak_memory_gib(), "setting": f"batch {batch_size}, {setting}"}


def measure_checkpoint(preset: str, length: int, batch_size: int, windows) -> dict:
    """Seconds that one checkpoint stops training, written in the foreground and in the background (and how long
    the background write takes in all), and the checkpoint's size in MB."""
    model, tokenizer = build_or_load({"name_or_path": "builtin", "preset": preset, "kmer": KMER}, length, CLASSES,
                                     seed=SEED)
    dataset = make_dataset(windows.head(batch_size), tokenizer, model.config.plasmidlm, CLASSES)
    options = argparse.Namespace(batch_size=batch_size, eval_batch_size=batch_size, steps=1)
    result = {}
    with tempfile.TemporaryDirectory() as output_dir:
        for background in (False, True):
            trainer = WindowTrainer(model=model, args=plasmidlm_arguments(options, output_dir),
                                    train_dataset=dataset, processing_class=tokenizer,
                                    background_checkpoints=background)
            trainer.remove_callback(PrinterCallback)
            trainer.train()  # one step: the optimizer has its state
            for step in (1, 2):  # the second checkpoint: a run writes many, and the first allocates host buffers
                trainer.state.global_step = 10 * background + step
                stall, _ = timed(lambda: trainer._save_checkpoint(trainer.model, None))
                rest, _ = timed(trainer.finish_checkpoint_writes)
            result["background" if background else "foreground"] = {"stall": stall, "total": stall + rest}
        folder = os.path.join(output_dir, "checkpoint-2")
        result["mb"] = sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder)) / 1e6
    return result


# --- host side ----------------------------------------------------------------------------------------------


def host_costs(tokenizer, model, sequences: list[str], batch_size: int) -> dict:
    """Windows/s of token ids (numpy k-mer ids, and the tokenizer on k-mer text), and ms per training batch
    of indexing and collating (what the data loader workers take off the training loop)."""
    table = kmer_id_table(tokenizer, KMER)
    numpy_seconds, _ = timed(lambda: kmer_ids(table, sequences, KMER))
    tokenizer_seconds, _ = timed(lambda: tokenizer([kmer_text(sequence, KMER) for sequence in sequences],
                                                   return_attention_mask=False, return_token_type_ids=False))
    dataset = make_dataset(pd.DataFrame({"sequence": sequences, "label": CLASSES[0]}), tokenizer,
                           model.config.plasmidlm, CLASSES)
    collate = PadToLongest(tokenizer.pad_token_id, forward_input_names(model))
    batches = max(1, len(dataset) // batch_size)
    collate_seconds, _ = timed(lambda: [collate([dataset[i] for i in range(b * batch_size, (b + 1) * batch_size)])
                                        for b in range(batches)])
    return {"numpy": len(sequences) / numpy_seconds, "tokenizer": len(sequences) / tokenizer_seconds,
            "collate_ms": 1000 * collate_seconds / batches}


# --- report --------------------------------------------------------------------------------------------------


def line(task: str, name: str, windows_per_s: float, tokens: int, flops_per_token: float, peak: float | None,
         memory: float | None, setting: str) -> str:
    text = f"  {task:<10} {name:<9} {windows_per_s:>12,.0f} windows/s {windows_per_s * tokens:>14,.0f} tokens/s"
    if peak:
        text += f"  MFU {flops_per_token * windows_per_s * tokens / (peak * 1e12):6.1%}"
    if memory is not None:
        text += f"  peak GPU memory {memory:6.2f} GiB"
    return text + f"  ({setting})"


def main(options: argparse.Namespace) -> None:
    rng = np.random.default_rng(SEED)
    name = device_name()
    peak = peak_tflops(name, options.peak_tflops)
    print(f"device: {name}; peak {f'{peak:g} TFLOP/s (dense bf16)' if peak else 'unknown: no MFU'}; "
          f"torch {torch.__version__}, transformers {transformers.__version__}", flush=True)
    summary = []
    for preset in options.presets:
        for length in options.lengths:
            tokens = n_tokens(length, KMER)
            batch_size = max(1, options.train_batch_tokens // tokens)
            n_eval = max(2 * PLAIN_EVAL_BATCH, options.eval_tokens // tokens)
            model, tokenizer = build_or_load({"name_or_path": "builtin", "preset": preset, "kmer": KMER}, length,
                                             CLASSES, seed=SEED)
            forward = forward_flops_per_token(model, tokens)
            host = host_costs(tokenizer, model, random_windows(min(n_eval, 8192), length, rng)["sequence"].tolist(),
                              batch_size)
            print(f"preset {preset} ({matmul_parameters(model):,} parameters outside embeddings), {length} nt = "
                  f"{tokens} tokens; evaluation on {n_eval:,} windows, training {options.train_steps} steps "
                  f"({options.warmup_steps} untimed)", flush=True)
            with tempfile.TemporaryDirectory() as checkpoint:
                model.save_pretrained(checkpoint)
                tokenizer.save_pretrained(checkpoint)
                del model
                sequences = random_windows(n_eval, length, rng)["sequence"].tolist()
                evaluation = measure_evaluation(checkpoint, sequences, options.repeats)
            speeds = {}
            for side, result in evaluation.items():
                speeds[side] = len(sequences) / result["seconds"]
                print(line("evaluation", side, speeds[side], tokens, forward, peak, result["memory"],
                           result["setting"]), flush=True)
            difference = float(np.abs(evaluation["plasmidlm"]["proba"] - evaluation["plain"]["proba"]).max())
            eval_ratio = speeds["plasmidlm"] / speeds["plain"]
            print(f"  evaluation ratio plasmidlm / plain {eval_ratio:.2f}x; largest probability difference "
                  f"{difference:.2g}", flush=True)
            windows = random_windows(options.train_steps * batch_size, length, rng)
            training = {side: [] for side in ("plasmidlm", "plain")}
            for _ in range(options.repeats):
                for side, results in training.items():
                    results.append(measure_training(side, preset, length, batch_size, windows, options.train_steps,
                                                    options.warmup_steps))
            for side, results in training.items():
                best = min(results, key=lambda result: result["seconds"])
                speeds[side] = best["windows"] / best["seconds"]
                print(line("training", side, speeds[side], tokens, 3 * forward, peak, best["memory"],
                           best["setting"]), flush=True)
            train_ratio = speeds["plasmidlm"] / speeds["plain"]
            print(f"  training ratio plasmidlm / plain {train_ratio:.2f}x", flush=True)
            step_ms = 1000 * batch_size / speeds["plasmidlm"]
            checkpoint = measure_checkpoint(preset, length, batch_size, windows)
            between = SAVE_STEPS * step_ms / 1000
            print(f"  checkpoint of {checkpoint['mb']:,.0f} MB: training stops "
                  + ", ".join(f"{checkpoint[way]['stall']:.2f} s in the {way} (written in "
                              f"{checkpoint[way]['total']:.2f} s)" for way in ("foreground", "background"))
                  + f" = {checkpoint['foreground']['stall'] / between:.1%} and "
                    f"{checkpoint['background']['stall'] / between:.1%} of the {between:.0f} s of {SAVE_STEPS} "
                    f"steps between two checkpoints", flush=True)
            print(f"  host side: token ids {host['numpy']:,.0f} windows/s with numpy k-mer ids, "
                  f"{host['tokenizer']:,.0f} with the tokenizer; collating a training batch "
                  f"{host['collate_ms']:.2f} ms = {host['collate_ms'] / step_ms:.0%} of a plasmidlm step", flush=True)
            summary.append((preset, length, eval_ratio, train_ratio))
    print("summary (plasmidlm / plain): " + "; ".join(f"{preset} {length} nt: evaluation {evaluation:.2f}x, "
                                                      f"training {training:.2f}x"
                                                      for preset, length, evaluation, training in summary))


if __name__ == "__main__":
    main(parse_arguments())
