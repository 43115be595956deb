"""Cost of the evidence steps on the demo data, side by side with one checkpoint evaluation.

A freshly initialised built-in model of the demo's size scores, in one run: the test windows once (what the
evaluation of one checkpoint costs), then what an experiment's evidence step scores (reverse-complemented and
shuffled test windows, validation windows, the tiles of the test plasmids). It also trains the one-hot CNN
baseline on as many windows as the demo's random8 experiment. Timings are printed with their ratios.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from plasmidlm import cnn, evidence, io
from plasmidlm.evaluate import predict_proba
from plasmidlm.model import build_or_load
from plasmidlm.windows import WindowPolicy, draw_balanced_windows, reverse_complement

DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--kmer", type=int, default=6)
    parser.add_argument("--window-length", type=int, default=100)
    parser.add_argument("--test-windows", type=int, default=10_000)
    parser.add_argument("--val-windows", type=int, default=1_000)
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of demo plasmids tiled as test")
    parser.add_argument("--cnn-windows", type=int, default=2_296, help="random8's training windows in the demo")
    parser.add_argument("--cnn-epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def timed(function, *args):
    began = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - began


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    labels = io.read_table(DEMO / "labels.tsv")
    sequences = io.read_fasta(DEMO / "sequences.fasta.gz")
    plasmids = labels.rename(columns={labels.columns[0]: "id", labels.columns[1]: "label"})[["id", "label"]]
    test_plasmids = plasmids.sample(frac=args.test_fraction, random_state=1)
    length = args.window_length
    policy = WindowPolicy(length)
    test = draw_balanced_windows(sequences, test_plasmids, policy, count=args.test_windows, seed=(1, "test"))
    val = draw_balanced_windows(sequences, plasmids.drop(test_plasmids.index), policy, count=args.val_windows,
                                seed=(1, "val"))
    tiles = evidence.tiles(sequences.items(), test_plasmids, length)
    shuffled, shuffle_seconds = timed(evidence.shuffled_windows, test, 1)
    classes = sorted(plasmids["label"].unique())
    model, tokenizer = build_or_load({"name_or_path": "builtin", "preset": args.preset, "kmer": args.kmer,
                                      "kmer_stride": 1}, length, classes, seed=0)
    model.eval()
    metadata = model.config.plasmidlm

    def score(windows):
        return predict_proba(model, tokenizer, metadata, list(windows), batch_size=args.batch_size)

    score(test["sequence"][: args.batch_size])  # warm-up
    _, evaluation = timed(score, test["sequence"])
    _, reverse = timed(score, test["sequence"].map(reverse_complement))
    _, shuffled_seconds = timed(score, shuffled["sequence"])
    _, val_seconds = timed(score, val["sequence"])
    _, tile_seconds = timed(score, tiles["sequence"])
    steps = {"one evaluation (test windows)": evaluation, "reverse complements": reverse,
             "shuffled windows": shuffled_seconds, "validation windows": val_seconds,
             f"{len(tiles):,} tiles of {len(test_plasmids)} test plasmids": tile_seconds,
             "shuffling the test windows": shuffle_seconds}
    train = draw_balanced_windows(sequences, plasmids, policy, count=args.cnn_windows, seed=(1, "cnn"))
    y = np.array([classes.index(label) for label in train["label"]])
    cnn_model, cost = cnn.fit(train["sequence"], y, val_sequences=val["sequence"],
                              val_labels=np.array([classes.index(v) for v in val["label"]]), n_classes=len(classes),
                              epochs=args.cnn_epochs, seed=1)
    _, cnn_scoring = timed(cnn.predict_proba, cnn_model, test["sequence"])
    rows = [{"step": name, "seconds": seconds, "× one evaluation": seconds / evaluation}
            for name, seconds in steps.items()]
    evidence_total = reverse + shuffled_seconds + val_seconds + tile_seconds
    rows.append({"step": "evidence step (all but the evaluation it reuses)", "seconds": evidence_total,
                 "× one evaluation": evidence_total / evaluation})
    rows.append({"step": f"one-hot CNN: train {args.cnn_windows} windows × {args.cnn_epochs} epochs "
                         f"({cost['parameters']:,} parameters)", "seconds": cost["seconds"],
                 "× one evaluation": cost["seconds"] / evaluation})
    rows.append({"step": "one-hot CNN: score the test windows", "seconds": cnn_scoring,
                 "× one evaluation": cnn_scoring / evaluation})
    print(f"{len(test):,} test windows of {length} nt, {args.preset} model, {args.threads} thread(s)")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda value: f"{value:.2f}"))


if __name__ == "__main__":
    main()
