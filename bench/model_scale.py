"""Time and peak memory of each model-side job at plasmid-database scale, next to the memory its rule asks for.

Writes a synthetic database (`data_scale.generate`), prepares the data stage's outputs (validate, select, split
without near-duplicate grouping, 1,000 validation and 10,000 test windows, `--per-plasmid` random training
windows per training plasmid), then runs each model-side job's library function in its own process, as a
workflow job would: fine-tuning and masked-LM pretraining of the `small` preset (set-up, tokenization and
`--steps` steps), evaluation of the fine-tuned checkpoint on the test windows, the k-mer and embeddings
baselines, the k-mer coverage and leakage checks. For each job it prints the whole process's time, its peak
RSS, and `plasmidlm.resources.mem_mb` for the job's inputs (what its rule requests at the first attempt).
For training jobs it also prints the set-up time (process start to the first step) and the seconds per step.
With `--resample-epochs N` the training windows are fresh for each of N epochs (`windows.resample_each_epoch`),
and the `epoch_switch` job times what training does when an epoch begins (reading and tokenizing its windows).

The training windows, not the database size, drive the memory of the training jobs and of leakage: a small
database with many windows per plasmid stands for a large one with fewer. `--library` runs the jobs with
another checkout's `src` (e.g. the code before a change; its leakage job is then the single old one).

    PYTHONPATH=src:bench python bench/model_scale.py --gbp 0.05 --per-plasmid 200 --workdir /tmp/plasmidlm-model
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from data_scale import generate
from plasmidlm import resources
from plasmidlm.training.runs import epochs_to_draw
from plasmidlm.config import load_schema


def defaults(schema: dict) -> dict:
    """The schema's default value of every key, nested sections included."""
    if "properties" not in schema:
        return schema.get("default")
    return {key: defaults(value) for key, value in schema["properties"].items()}


def run_job(statement: str, library: Path) -> tuple[float, float, str]:
    """Run `statement` in a fresh process with `library` first on the path; (seconds, peak RSS in MiB, output)."""
    started = time.perf_counter()
    program = ("import logging, sys, time; T0 = time.perf_counter()\n"
               "from plasmidlm.steps import baselines, data, evaluate, pretrain, train\n"
               "class Elapsed(logging.Formatter):\n"
               "    def format(self, record): return f'{time.perf_counter() - T0:.3f} {record.getMessage()}'\n"
               "handler = logging.StreamHandler(sys.stdout)\n"
               "handler.setFormatter(Elapsed())\n"
               "logging.basicConfig(level=logging.INFO, handlers=[handler])\n"
               "log = logging.getLogger('bench').info\n"
               f"{statement}")
    environment = {**os.environ, "PYTHONPATH": str(library), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    process = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=environment)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status:
        raise SystemExit(f"job failed:\n{statement}\n{output[-5000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, output


def step_times(output: str) -> tuple[float, float] | None:
    """(seconds before the first step, seconds per step) from the job's timed 'step N/M' log lines."""
    steps = [(float(line.split()[0]), int(line.split()[2].split("/")[0])) for line in output.splitlines()
             if len(line.split()) > 2 and line.split()[1] == "step" and "/" in line.split()[2]]
    if len(steps) < 2:
        return None
    (first_time, first_step), (last_time, last_step) = steps[0], steps[-1]
    per_step = (last_time - first_time) / (last_step - first_step)
    return first_time - first_step * per_step, per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gbp", type=float, default=0.05, help="size of the synthetic database in Gbp")
    parser.add_argument("--per-plasmid", type=int, default=200, help="training (and pretraining) windows per "
                                                                       "training plasmid")
    parser.add_argument("--baseline-per-plasmid", type=int, help="training windows per plasmid of both baselines "
                                                                     "(default: their config defaults)")
    parser.add_argument("--resample-epochs", type=int, help="draw fresh training windows for each of this many epochs "
                                                                 "(windows.resample_each_epoch); training still runs "
                                                                 "--steps steps")
    parser.add_argument("--steps", type=int, default=20, help="training and pretraining steps of each run")
    parser.add_argument("--workdir", type=Path, default=Path("bench-model"), help="where the data and outputs go")
    parser.add_argument("--library", type=Path, default=Path("src").resolve(), help="the src folder the jobs use")
    parser.add_argument("--jobs", nargs="*", help="run only these jobs")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    config = defaults(load_schema())
    work = arguments.workdir / f"{arguments.gbp:g}gbp"
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    fasta, labels = work / "plasmids.fasta", work / "labels.tsv"
    if not fasta.exists():
        plasmids, bases = generate(fasta, labels, arguments.gbp, arguments.seed)
        print(f"generated {plasmids:,} plasmids, {bases / 1e9:.2f} Gbp")
    windows = config["windows"]
    per_plasmid = arguments.per_plasmid
    epochs = arguments.resample_epochs
    training = {**windows, "strategy": "random", "per_plasmid": per_plasmid, "resample_each_epoch": bool(epochs)}
    epoch_schedule = {"batch_size": config["train"]["batch_size"], "epochs": epochs, "max_steps": None}
    split_config = config["split"] | {"max_deviation": 1.0}
    classes = {"select": "all", "k": None, "ranks": None, "names": None, "min_plasmids": 3}
    data_config = {"id_column": "id", "label_column": "label", "short_sequences": "skip",
                   "labels_without_sequence": "error"}
    f, d = str(fasta), str(data)
    windows_name = f"{per_plasmid}x{epochs}" if epochs else f"{per_plasmid}"
    train_windows = str(work / f"train_windows_{windows_name}.tsv.gz")
    prepare = [
        f"data.validate({f!r}, {str(labels)!r}, data_config={data_config!r}, window_length={windows['length']}, "
        f"out_table='{d}/validated.tsv', out_summary='{d}/validate.json')",
        f"data.select('{d}/validated.tsv', classes_config={classes!r}, out_selected='{d}/selected.tsv', "
        f"out_classes='{d}/classes.tsv')",
        f"data.split('{d}/selected.tsv', groups=None, group_summary=None, pairs=None, split_config={split_config!r}, "
        f"seed=1, out_split='{d}/split.tsv', out_summary='{d}/split_summary.tsv', out_json='{d}/split.json')",
        f"data.held_out_windows({f!r}, '{d}/split.tsv', split_name='val', windows_config={windows!r}, "
        f"count={windows['val_count']}, seed=1, out='{d}/val_windows.tsv.gz')",
        f"data.held_out_windows({f!r}, '{d}/split.tsv', split_name='test', windows_config={windows!r}, "
        f"count={windows['test_count']}, seed=1, out='{d}/test_windows.tsv.gz')",
    ]
    if not (data / "test_windows.tsv.gz").exists():
        for statement in prepare:
            run_job(statement, arguments.library)
    if not Path(train_windows).exists():
        seconds, peak, _ = run_job(f"data.training_windows({f!r}, '{d}/split.tsv', windows_config={training!r}, "
                                   f"length={windows['length']}, seed=1, experiment='bench', out={train_windows!r}, "
                                   f"epoch_schedule={epoch_schedule!r})",
                                   arguments.library)
        print(f"training_windows: {seconds:.0f} s, {peak:,.0f} MiB")
    n_train = len(pd.read_csv(train_windows, sep="\t", usecols=["label"]))
    split = pd.read_csv(data / "split.tsv", sep="\t")
    print(f"{(split['split'] == 'train').sum():,} training plasmids, {n_train:,} training windows "
          f"({per_plasmid} per plasmid{f', fresh for each of {epochs} epochs' if epochs else ''}); "
          f"library {arguments.library}")

    steps = arguments.steps
    train_config = config["train"] | {"max_steps": steps, "save_steps": steps, "logging_steps": 1}
    model_config = config["model"] | {"preset": "small"}
    pretrain_config = config["pretrain"] | {"windows_per_plasmid": per_plasmid, "max_steps": steps,
                                            "save_steps": steps, "logging_steps": 1}
    baselines = config["baselines"]
    if arguments.baseline_per_plasmid:
        for name in ("kmer", "embeddings"):
            baselines[name]["windows_per_plasmid"] = arguments.baseline_per_plasmid
    out = work / f"out_{windows_name}"
    out.mkdir(exist_ok=True)
    model_dir = out / "model"
    old = not (arguments.library / "plasmidlm" / "resources.py").exists()
    evaluate = config["evaluate"] | {"bootstrap": 0}
    jobs = {
        "train": (f"train.train({train_windows!r}, val_windows='{d}/val_windows.tsv.gz', split_path='{d}/split.tsv', "
                  f"model_config={model_config!r}, train_config={train_config!r}, window_length={windows['length']}, "
                  f"seed=1, model_dir={str(model_dir)!r}, out_summary='{out}/train_summary.json', "
                  f"out_log='{out}/training_log.tsv')",
                  {"windows": [train_windows], "val": [f"{d}/val_windows.tsv.gz"], "split": [f"{d}/split.tsv"]}),
        "evaluate_checkpoint": (
            f"evaluate.evaluate('{model_dir}/checkpoint-{steps}', test_windows='{d}/test_windows.tsv.gz', "
            f"val_windows='{d}/val_windows.tsv.gz', evaluate_config={evaluate!r}, seed=1, trust_remote_code=False, "
            f"out_metrics='{out}/eval.json', out_predictions='{out}/eval.tsv.gz')",
            {"checkpoint": [f"{model_dir}/checkpoint-{steps}"], "test": [f"{d}/test_windows.tsv.gz"],
             "val": [f"{d}/val_windows.tsv.gz"]}),
        "pretrain": (f"pretrain.pretrain(fasta={f!r}, split_path='{d}/split.tsv', extra_fasta=[], "
                     f"pretrain_config={pretrain_config!r}, windows_config={windows!r}, seed=1, "
                     f"output_dir='{out}/pretrain', out_summary='{out}/pretrain_summary.json', "
                     f"out_log='{out}/pretrain_log.tsv')",
                     {"fasta": [f], "split": [f"{d}/split.tsv"], "extra": []}),
        "kmer_baseline": (f"baselines.kmer_baseline(fasta={f!r}, split_path='{d}/split.tsv', "
                          f"test_windows='{d}/test_windows.tsv.gz', kmer_config={baselines['kmer']!r}, "
                          f"windows_config={windows!r}, n_bootstrap=0, seed=1, out_metrics='{out}/kmer.json', "
                          f"out_predictions='{out}/kmer.tsv.gz')",
                          {"fasta": [f], "split": [f"{d}/split.tsv"], "test": [f"{d}/test_windows.tsv.gz"]}),
        "embeddings_baseline": (
            f"baselines.embeddings_baseline(fasta={f!r}, split_path='{d}/split.tsv', "
            f"test_windows='{d}/test_windows.tsv.gz', model='{model_dir}/checkpoint-{steps}', from_experiment=False, "
            f"embeddings_config={baselines['embeddings']!r}, trust_remote_code=False, windows_config={windows!r}, "
            f"n_bootstrap=0, seed=1, out_logistic_metrics='{out}/el.json', "
            f"out_logistic_predictions='{out}/el.tsv.gz', out_cnn_metrics='{out}/ec.json', "
            f"out_cnn_predictions='{out}/ec.tsv.gz')",
            {"fasta": [f], "split": [f"{d}/split.tsv"], "test": [f"{d}/test_windows.tsv.gz"]}),
    }
    if epochs:  # what training does when an epoch begins, for the last epoch (the whole table is read)
        classes = sorted(split["label"].unique())
        jobs["epoch_switch"] = (
            f"from plasmidlm import io\nfrom plasmidlm.model import build_or_load\n"
            f"from plasmidlm.training.data import EpochTable, make_dataset\n"
            f"table = EpochTable(lambda: io.iter_table({train_windows!r}, ['label', 'sequence', 'epoch']))\n"
            f"log('summary pass over the table')\n"
            f"model, tokenizer = build_or_load({model_config!r}, {windows['length']}, {classes!r}, seed=1)\n"
            f"T0 = time.perf_counter()\n"
            f"dataset = make_dataset(table.read(table.blocks[-1]), tokenizer, model.config.plasmidlm, {classes!r})\n"
            f"log(f'last epoch: {{len(dataset):,}} windows read and tokenized')", {})
    if old:
        jobs["leakage"] = (f"data.leakage({f!r}, '{d}/split.tsv', {train_windows!r}, '{d}/val_windows.tsv.gz', "
                           f"'{d}/test_windows.tsv.gz', 31, '{out}/leakage.json')", {})
    else:
        jobs["kmer_coverage"] = (
            f"data.kmer_coverage({f!r}, '{d}/split.tsv', test_windows='{d}/test_windows.tsv.gz', kmer=31, "
            f"out='{d}/test_kmer_coverage.tsv.gz')",
            {"fasta": [f], "split": [f"{d}/split.tsv"], "test": [f"{d}/test_windows.tsv.gz"]})
        jobs["leakage"] = (
            f"data.leakage('{d}/split.tsv', train_windows={train_windows!r}, val_windows='{d}/val_windows.tsv.gz', "
            f"test_windows='{d}/test_windows.tsv.gz', coverage='{d}/test_kmer_coverage.tsv.gz', kmer=31, "
            f"out='{out}/leakage.json')",
            {"split": [f"{d}/split.tsv"], "train": [train_windows], "val": [f"{d}/val_windows.tsv.gz"],
             "test": [f"{d}/test_windows.tsv.gz"], "coverage": [f"{d}/test_kmer_coverage.tsv.gz"]})
    print(f"{'job':<22} {'seconds':>8} {'set-up s':>9} {'s/step':>7} {'peak MiB':>9} {'mem_mb':>7}")
    for name, (statement, inputs) in jobs.items():
        if arguments.jobs and name not in arguments.jobs:
            continue
        if name == "train":  # trains anew: a finished run's checkpoints would make it train nothing
            shutil.rmtree(model_dir, ignore_errors=True)
        seconds, peak, output = run_job(statement, arguments.library)
        sizes = resources.input_mb(inputs.items())
        n_plasmids = int((split["split"] == "train").sum())
        if name == "pretrain":
            sizes["corpus_windows"] = n_plasmids * per_plasmid
        if name == "train" and epochs:  # training holds one epoch's windows (rules/common.smk)
            sizes["windows"] /= epochs_to_draw(n_plasmids * per_plasmid, **epoch_schedule)
        if name == "kmer_baseline":
            kmer = baselines["kmer"]
            sizes["features"] = resources.kmer_features_mb(
                min(n_plasmids * kmer["windows_per_plasmid"], kmer["max_windows"] or float("inf")), kmer["k"])
        timing = step_times(output) if name in ("train", "pretrain") else None
        setup, per_step = (f"{timing[0]:.0f}", f"{timing[1]:.2f}") if timing else ("", "")
        request = resources.mem_mb(name, sizes) if inputs else ""
        print(f"{name:<22} {seconds:>8.0f} {setup:>9} {per_step:>7} {peak:>9,.0f} {request:>7}", flush=True)
        if name == "epoch_switch":
            print("\n".join(f"    {line}" for line in output.splitlines()
                            if "summary pass" in line or "last epoch" in line))


if __name__ == "__main__":
    main()
