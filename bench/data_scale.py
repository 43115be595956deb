"""Throughput and peak memory of the data stage on a synthetic plasmid database of a given size.

Generates a FASTA + label table shaped like PLSDB (lengths log-normal around 50 kbp, mean ~85 kbp; a third
of the plasmids are near-copies of earlier ones with 0.05% substitutions; mobile elements shared across
plasmids; soft-masked runs and a few N runs), then runs each data step of the workflow with the default
config, every one in its own process, and prints its wall time, throughput (Mbp/s of the input) and peak
memory (max RSS), next to a plain Biopython `SeqIO.parse` pass over the same file in the same run.
"seconds" and "Mbp/s" time the step's own call; "job s" is the whole process, Python start-up and imports
(torch among them, a few seconds) included.
Example (README.md next to this file):

    PYTHONPATH=src python bench/data_scale.py --gbp 0.6 --workdir /tmp/plasmidlm-scale
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from plasmidlm.config import load_schema

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
LINE = 80
CLASSES = ["IncF", "IncI1", "ColRNAI", "IncX", "rep_cluster_1"]
MOBILE_ELEMENTS = 300  # shared insertion sequences, ~1.5 kbp each


def default(section: str, key: str, sub: str | None = None):
    properties = load_schema()["properties"][section]["properties"]
    return properties[key]["properties"][sub]["default"] if sub else properties[key]["default"]


def fasta_lines(sequence: np.ndarray) -> bytes:
    """A sequence (uint8 codes) as FASTA lines of LINE bases."""
    full, tail = divmod(len(sequence), LINE)
    lines = np.empty((full + 1, LINE + 1), dtype=np.uint8)
    lines[:full, :LINE] = sequence[: full * LINE].reshape(full, LINE)
    lines[:, LINE] = ord("\n")
    lines[full, :tail] = sequence[full * LINE :]
    lines[full, tail] = ord("\n")
    return lines.reshape(-1)[: full * (LINE + 1) + (tail + 1 if tail else 0)].tobytes()


def generate(fasta: Path, labels: Path, gbp: float, seed: int, lineages: bool = False) -> tuple[int, int]:
    """Write the synthetic database; return (plasmids, bases).

    With `lineages`, half of the plasmids are near-copies of any earlier plasmid, copies included, and each
    copy also swaps 1-4% of its parent for new sequence (module gain and loss), so families drift into chains
    whose ends are no longer near-copies of each other; 5% of the copies carry another label (the same
    plasmid in another host).
    """
    rng = np.random.default_rng(seed)
    mobile = [BASES[rng.integers(0, 4, int(rng.integers(800, 2500)))] for _ in range(MOBILE_ELEMENTS)]
    founders: list[tuple[np.ndarray, str]] = []
    target, total, count = int(gbp * 1e9), 0, 0
    copy_probability = 1 / 2 if lineages else 1 / 3
    with open(fasta, "wb") as out, open(labels, "w") as table:
        table.write("id\tlabel\n")
        while total < target:
            if founders and rng.random() < copy_probability:  # a near-copy of an earlier plasmid
                parent, label = founders[int(rng.integers(len(founders)))]
                sequence = parent.copy()
                mutated = np.flatnonzero(rng.random(len(sequence)) < 0.0005)
                sequence[mutated] = BASES[rng.integers(0, 4, len(mutated))]
                if lineages:
                    swapped = int(len(sequence) * rng.uniform(0.01, 0.04))
                    start = int(rng.integers(0, len(sequence) - swapped + 1))
                    sequence[start : start + swapped] = BASES[rng.integers(0, 4, swapped)]
                    if rng.random() < 0.05:
                        label = CLASSES[int(rng.integers(len(CLASSES)))]
                    if len(founders) < 2_000:
                        founders.append((sequence, label))
            else:
                length = int(min(max(rng.lognormal(np.log(50_000), 1.0), 1_500), 2_500_000))
                parts = [BASES[rng.integers(0, 4, length)]]
                for _ in range(rng.poisson(3)):
                    parts.append(mobile[int(rng.integers(MOBILE_ELEMENTS))])
                    parts.append(BASES[rng.integers(0, 4, int(rng.integers(100, 5_000)))])
                sequence = np.concatenate(parts)
                if rng.random() < 0.05:  # an assembly gap
                    gap = int(rng.integers(0, len(sequence) - 100))
                    sequence[gap : gap + 100] = ord("N")
                label = CLASSES[int(rng.integers(len(CLASSES)))]
                if len(founders) < 2_000 and len(sequence) < 400_000:
                    founders.append((sequence, label))
            if rng.random() < 0.1:  # soft-masked repeats
                masked = int(rng.integers(0, len(sequence) - 200))
                sequence = sequence.copy()
                sequence[masked : masked + 200] |= 0x20
            out.write(f">synthetic_{count:07d} synthetic plasmid {count}\n".encode())
            out.write(fasta_lines(sequence))
            table.write(f"synthetic_{count:07d}\t{label}\n")
            total += len(sequence)
            count += 1
    return count, total


def stage_commands(workdir: Path, fasta: Path, labels: Path) -> dict[str, str]:
    """Each data step as the Python statement the workflow script runs (via plasmidlm.steps.data)."""
    data = workdir / "data"
    near = {key: default("split", "near_duplicates", key)
            for key in ("measure", "threshold", "ksize", "scaled", "linkage")}
    windows = {key: default("windows", key) for key in ("length", "circular", "ambiguous", "max_n_fraction")}
    training = windows | {key: default("windows", key)
                          for key in ("strategy", "per_plasmid", "reverse_complement_p", "resample_each_epoch")}
    split = {key: default("split", key) for key in ("val_fraction", "test_fraction", "assignment", "max_deviation",
                                                     "accept_deviation", "cross_class_groups")}
    data_config = {"id_column": "id", "label_column": "label", "short_sequences": "skip",
                   "labels_without_sequence": "error"}
    classes = {"select": "all", "k": None, "ranks": None, "names": None, "min_plasmids": 3}
    return {
        "biopython SeqIO.parse (reference)": f"sum(len(r.seq) for r in SeqIO.parse({str(fasta)!r}, 'fasta'))",
        "validate": f"data.validate({str(fasta)!r}, {str(labels)!r}, data_config={data_config!r}, "
                    f"window_length={windows['length']}, out_table={str(data / 'validated.tsv')!r}, "
                    f"out_summary={str(data / 'validate.json')!r})",
        "select_classes": f"data.select({str(data / 'validated.tsv')!r}, classes_config={classes!r}, "
                          f"out_selected={str(data / 'selected.tsv')!r}, out_classes={str(data / 'classes.tsv')!r})",
        "sketch": f"data.sketch({str(fasta)!r}, {str(data / 'validated.tsv')!r}, ksize={near['ksize']}, "
                  f"scaled={near['scaled']}, out={str(data / 'sketches.npz')!r}, threads=os.cpu_count())",
        "near_duplicates": f"data.near_duplicates({str(data / 'sketches.npz')!r}, "
                           f"selected={str(data / 'selected.tsv')!r}, measure={near['measure']!r}, "
                           f"threshold={near['threshold']}, out={str(data / 'near_duplicates.tsv')!r})",
        "near_duplicate_groups": f"data.near_duplicate_groups({str(data / 'sketches.npz')!r}, "
                                 f"selected={str(data / 'selected.tsv')!r}, "
                                 f"pairs={str(data / 'near_duplicates.tsv')!r}, linkage={near['linkage']!r}, "
                                 f"measure={near['measure']!r}, out_groups={str(data / 'groups.tsv')!r}, "
                                 f"out_json={str(data / 'groups.json')!r})",
        "split": f"data.split({str(data / 'selected.tsv')!r}, groups={str(data / 'groups.tsv')!r}, "
                 f"group_summary={str(data / 'groups.json')!r}, pairs={str(data / 'near_duplicates.tsv')!r}, "
                 f"split_config={split!r}, seed=1, out_split={str(data / 'split.tsv')!r}, "
                 f"out_summary={str(data / 'split_summary.tsv')!r}, out_json={str(data / 'split.json')!r})",
        "val_windows": f"data.held_out_windows({str(fasta)!r}, {str(data / 'split.tsv')!r}, split_name='val', "
                       f"windows_config={windows!r}, count={default('windows', 'val_count')}, seed=1, "
                       f"out={str(data / 'val_windows.tsv.gz')!r})",
        "test_windows": f"data.held_out_windows({str(fasta)!r}, {str(data / 'split.tsv')!r}, split_name='test', "
                        f"windows_config={windows!r}, count={default('windows', 'test_count')}, seed=1, "
                        f"out={str(data / 'test_windows.tsv.gz')!r})",
        "training_windows": f"data.training_windows({str(fasta)!r}, {str(data / 'split.tsv')!r}, "
                            f"windows_config={training!r}, length={windows['length']}, seed=1, experiment='random8', "
                            f"out={str(workdir / 'train_windows.tsv.gz')!r})",
    }


def run_stage(statement: str) -> tuple[float, float, float, str]:
    """Run one step in a fresh process, as a workflow job does.

    Returns (seconds of the step itself, seconds of the whole process including Python start-up and imports,
    peak RSS in GiB, the step's output).
    """
    started = time.perf_counter()
    program = (f"import logging, os, time; from Bio import SeqIO; from plasmidlm.steps import data; "
               f"logging.basicConfig(level=logging.INFO, format='%(message)s'); started = time.perf_counter(); "
               f"{statement}; print('step seconds', time.perf_counter() - started)")
    process = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status:
        raise SystemExit(f"step failed:\n{statement}\n{output}")
    lines = output.splitlines()
    return float(lines[-1].split()[-1]), wall, usage.ru_maxrss / 2**20, "\n".join(lines[:-1])  # ru_maxrss: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gbp", type=float, default=0.1, help="size of the synthetic database in Gbp")
    parser.add_argument("--workdir", type=Path, default=Path("bench-scale"), help="where the data and outputs go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the generated FASTA (deleted by default)")
    arguments = parser.parse_args()
    workdir = arguments.workdir / f"{arguments.gbp:g}gbp"
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    fasta, labels = workdir / "plasmids.fasta", workdir / "labels.tsv"
    started = time.perf_counter()
    plasmids, bases = generate(fasta, labels, arguments.gbp, arguments.seed)
    print(f"generated {plasmids:,} plasmids, {bases / 1e9:.2f} Gbp ({fasta.stat().st_size / 2**30:.2f} GiB FASTA) "
          f"in {time.perf_counter() - started:.0f} s; {os.cpu_count()} CPU cores")
    print(f"{'step':<36} {'seconds':>8} {'Mbp/s':>8} {'job s':>7} {'peak GiB':>9}")
    step_total, job_total, data_peak = 0.0, 0.0, 0.0
    for name, statement in stage_commands(workdir, fasta, labels).items():
        seconds, job_seconds, peak, output = run_stage(statement)
        print(f"{name:<36} {seconds:>8.1f} {bases / 1e6 / seconds:>8.1f} {job_seconds:>7.1f} {peak:>9.2f}",
              flush=True)
        if name == "split":
            print("    " + output.splitlines()[0])
        if not name.startswith("biopython"):
            step_total, job_total, data_peak = step_total + seconds, job_total + job_seconds, max(data_peak, peak)
    print(f"{'data stage, one step after another':<36} {step_total:>8.1f} {bases / 1e6 / step_total:>8.1f} "
          f"{job_total:>7.1f} {data_peak:>9.2f}")
    if not arguments.keep:
        fasta.unlink()
    print(f"peak memory of this driver: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
