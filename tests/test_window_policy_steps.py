"""The steps that draw windows of their own (the k-mer, composition and embedding baselines, the k-mer baseline's
evidence, pretraining) cut them as the run's windows section says: windows.circular, ambiguous, max_n_fraction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import WINDOW, random_sequence, write_fasta
from plasmidlm import io
from plasmidlm.steps import baselines as baselines_steps
from plasmidlm.steps import data as data_steps
from plasmidlm.steps import evidence as evidence_steps
from plasmidlm.steps import pretrain as pretrain_steps
from plasmidlm.evidence import COMPOSITION_BASELINES
from plasmidlm import windows as windows_module
from plasmidlm.windows import WindowPolicy, reverse_complement

# circular windows that allow no ambiguous base
POLICY = {"length": WINDOW, "circular": True, "ambiguous": "drop", "max_n_fraction": 0.1}
LENGTH = 240
N_RUN = slice(100, 140)  # every training plasmid holds 40 N, which a third of its linear windows would contain


@pytest.fixture
def policy_run(tmp_path):
    """Two classes of 240-nt plasmids, 6 training and 2 test per class; the training plasmids hold a run of N."""
    rng = np.random.default_rng(8)
    records, rows = [], []
    for label in ("a", "b"):
        for i in range(8):
            sequence = random_sequence(rng, LENGTH)
            split = "train" if i < 6 else "test"
            if split == "train":
                sequence = sequence[: N_RUN.start] + "N" * (N_RUN.stop - N_RUN.start) + sequence[N_RUN.stop :]
            records.append((f"{label}{i}", sequence))
            rows.append({"id": f"{label}{i}", "label": label, "split": split, "length": LENGTH})
    fasta = write_fasta(tmp_path / "plasmids.fasta", records)
    io.write_table(pd.DataFrame(rows).assign(group=lambda table: table["id"]), tmp_path / "split.tsv")
    data_steps.held_out_windows(fasta, tmp_path / "split.tsv", split_name="test", windows_config=POLICY, count=20,
                                seed=1, out=tmp_path / "test_windows.tsv.gz")
    return tmp_path, fasta, dict(records)


@pytest.fixture
def drawn(policy_run, monkeypatch):
    """Every (sequence, policy, windows) that `windows.plasmid_windows` is asked for and gives, once the run's test
    windows are drawn."""
    calls = []
    draw = windows_module.plasmid_windows

    def recorded(sequence, n_windows, policy, **keywords):
        windows = draw(sequence, n_windows, policy, **keywords)
        calls.append((sequence, policy, windows))
        return windows

    monkeypatch.setattr(windows_module, "plasmid_windows", recorded)
    return calls


def assert_cut_by_policy(calls, sequences):
    """Each window is the circular slice at its start (on its strand) and holds no ambiguous base; some wrap."""
    assert calls and {policy for _, policy, _ in calls} == {WindowPolicy.from_config(POLICY)}
    assert {sequence for sequence, _, _ in calls} <= set(sequences.values())
    wrapped = 0
    for sequence, _, windows in calls:
        for start, strand, window in windows:
            forward = window if strand == "+" else reverse_complement(window)
            assert forward == (sequence + sequence)[start : start + WINDOW]
            assert set(forward) <= set("ACGT")
            wrapped += start > len(sequence) - WINDOW
    assert wrapped > 0


def test_kmer_and_composition_baselines_and_kmer_evidence_cut_windows_by_the_policy(policy_run, drawn):
    tmp_path, fasta, sequences = policy_run
    split = tmp_path / "split.tsv"
    kmer_config = {"k": 3, "windows_per_plasmid": 16, "max_windows": None, "C": 1.0}
    baselines_steps.kmer_baseline(fasta=fasta, split_path=split, test_windows=tmp_path / "test_windows.tsv.gz",
                                  kmer_config=kmer_config, windows_config=POLICY, n_bootstrap=0, seed=1,
                                  out_metrics=tmp_path / "kmer.json", out_predictions=tmp_path / "kmer.tsv.gz")
    assert_cut_by_policy(drawn, sequences)
    assert io.read_json(tmp_path / "kmer.json")["training_windows"] == 12 * 16

    drawn.clear()
    names = list(COMPOSITION_BASELINES)
    baselines_steps.composition_baselines(fasta=fasta, split_path=split, test_windows=tmp_path / "test_windows.tsv.gz",
                                          composition_config={"windows_per_plasmid": 16, "C": 1.0},
                                          windows_config=POLICY,
                                          n_bootstrap=0, seed=1,
                                          out_metrics={name: tmp_path / f"{name}.json" for name in names},
                                          out_predictions={name: tmp_path / f"{name}.tsv.gz" for name in names})
    assert_cut_by_policy(drawn, sequences)

    evidence_steps.shuffled_test_windows(tmp_path / "test_windows.tsv.gz", 1, tmp_path / "shuffled.tsv.gz")
    evidence_steps.contig_tiles(fasta, split, length=WINDOW, contig_lengths=[2 * WINDOW], seed=1,
                                out_tiles=tmp_path / "tiles.tsv.gz", out_contigs=tmp_path / "contigs.tsv.gz")
    drawn.clear()
    evidence_steps.kmer_evidence(fasta=fasta, split_path=split, shuffled_windows=tmp_path / "shuffled.tsv.gz",
                                 tiles_path=tmp_path / "tiles.tsv.gz", contigs_path=tmp_path / "contigs.tsv.gz",
                                 kmer_config=kmer_config, windows_config=POLICY, n_bootstrap=0, seed=1,
                                 out_json=tmp_path / "evidence.json",
                                 out_contig_lengths=tmp_path / "contig_lengths.tsv")
    assert_cut_by_policy(drawn, sequences)


def test_embeddings_baseline_cuts_windows_by_the_policy(policy_run, drawn, tiny_checkpoint):
    tmp_path, fasta, sequences = policy_run
    baselines_steps.embeddings_baseline(
        fasta=fasta, split_path=tmp_path / "split.tsv", test_windows=tmp_path / "test_windows.tsv.gz",
        model=str(tiny_checkpoint[0]), from_experiment=False, trust_remote_code=False, windows_config=POLICY,
        embeddings_config={"kmer": None, "windows_per_plasmid": 4, "max_windows": None, "C": 1.0, "cnn_epochs": 1,
                           "cnn_channels": 8},
        n_bootstrap=0, seed=1, out_logistic_metrics=tmp_path / "logistic.json",
        out_logistic_predictions=tmp_path / "logistic.tsv.gz", out_cnn_metrics=tmp_path / "cnn.json",
        out_cnn_predictions=tmp_path / "cnn.tsv.gz")
    assert_cut_by_policy(drawn, sequences)


def test_pretraining_cuts_its_corpus_and_held_out_windows_by_the_policy(policy_run, drawn):
    from test_pretrain import TINY_PRETRAIN

    tmp_path, fasta, sequences = policy_run
    pretrain_steps.pretrain(fasta=fasta, split_path=tmp_path / "split.tsv", extra_fasta=[],
                            pretrain_config=TINY_PRETRAIN | {"max_steps": 2, "save_steps": 2}, windows_config=POLICY,
                            seed=1, output_dir=tmp_path / "pretrain", out_summary=tmp_path / "summary.json",
                            out_log=tmp_path / "log.tsv")
    assert_cut_by_policy(drawn, sequences)
    assert len(drawn) == 2 * 12  # corpus and held-out windows of the 12 training plasmids
