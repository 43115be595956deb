"""Evidence steps as the workflow runs them (plasmidlm.steps): files in, files out."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from plasmidlm import evidence, io
from plasmidlm.steps import baselines as baselines_steps, data as data_steps
from plasmidlm.config import load_schema
from plasmidlm.report.verdicts import composition_verdicts, shuffle_verdict

from conftest import write_fasta

WINDOW_DEFAULTS = {key: spec["default"] for key, spec in load_schema()["properties"]["windows"]["properties"].items()}


def biased_sequence(rng, length: int, gc: float) -> str:
    return "".join(rng.choice(list("ACGT"), size=length, p=[(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]))


@pytest.fixture
def gc_run(tmp_path):
    """Two classes that differ only in GC content (60% vs 40%), split 12/0/8 per class."""
    rng = np.random.default_rng(2)
    records, rows = [], []
    for label, gc in (("rich", 0.6), ("poor", 0.4)):
        for i in range(20):
            plasmid_id = f"{label}_{i:02d}"
            records.append((plasmid_id, biased_sequence(rng, int(rng.integers(1_200, 4_000)), gc)))
            rows.append({"id": plasmid_id, "label": label, "split": "train" if i < 12 else "test"})
    fasta = write_fasta(tmp_path / "plasmids.fasta", records)
    split = pd.DataFrame(rows).assign(length=[len(s) for _, s in records], group=lambda t: t["id"])
    io.write_table(split, tmp_path / "split.tsv")
    data_steps.held_out_windows(fasta, tmp_path / "split.tsv", split_name="test", windows_config=WINDOW_DEFAULTS,
                                count=200, seed=1, out=tmp_path / "test_windows.tsv.gz")
    return tmp_path, fasta, dict(records)


def test_composition_baselines_read_gc_and_their_features_are_what_they_say(gc_run):
    tmp_path, fasta, _ = gc_run
    names = list(evidence.COMPOSITION_BASELINES)
    baselines_steps.composition_baselines(fasta=fasta, split_path=tmp_path / "split.tsv",
                                          test_windows=tmp_path / "test_windows.tsv.gz",
                                          composition_config={"windows_per_plasmid": 8, "C": 1.0},
                                          windows_config=WINDOW_DEFAULTS, n_bootstrap=0, seed=1,
                                          out_metrics={name: tmp_path / name / "metrics.json" for name in names},
                                          out_predictions={name: tmp_path / name / "predictions.tsv.gz"
                                                           for name in names})
    for name in names:
        assert io.read_json(tmp_path / name / "metrics.json")["window"]["accuracy"] > 0.8
    assert len(io.read_table(tmp_path / "composition_gc" / "predictions.tsv.gz")) == 200
    sequence = "ACGTTGCAAC"
    pairs = Counter(sequence[i : i + 2] for i in range(len(sequence) - 1))
    canonical = Counter()
    for pair, n in pairs.items():
        reverse = pair.translate(str.maketrans("ACGT", "TGCA"))[::-1]
        canonical[min(pair, reverse)] += n
    features = baselines_steps._composition_features("composition_2mer", [sequence])[0]
    assert sorted(features[features > 0].tolist()) == pytest.approx(sorted(n / 9 for n in canonical.values()))
    assert baselines_steps._composition_features("composition_gc", [sequence])[0, 0] == pytest.approx(5 / 10)


def test_gc_and_2mer_features_are_blind_to_a_dinucleotide_shuffle(gc_run):
    tmp_path, *_ = gc_run
    test = io.read_table(tmp_path / "test_windows.tsv.gz")
    shuffled = evidence.shuffled_windows(test, seed=1)
    assert (shuffled["sequence"] != test["sequence"]).mean() > 0.9
    for name in ("composition_gc", "composition_2mer"):
        np.testing.assert_allclose(baselines_steps._composition_features(name, shuffled["sequence"].tolist()),
                                   baselines_steps._composition_features(name, test["sequence"].tolist()), atol=1e-12)
    assert not np.allclose(baselines_steps._composition_features("composition_4mer", shuffled["sequence"].tolist()),
                           baselines_steps._composition_features("composition_4mer", test["sequence"].tolist()))


def _row(experiment, kind, accuracy, low=np.nan, high=np.nan, best=False):
    row = {"experiment": experiment, "kind": kind, "checkpoint": 10 if kind == "fine-tuned" else None, "best": best}
    for level in ("window", "plasmid"):
        row.update({f"{level}_accuracy": accuracy, f"{level}_accuracy_ci_low": low,
                    f"{level}_accuracy_ci_high": high})
    return row


def test_report_says_when_a_model_does_not_beat_composition():
    table = pd.DataFrame([_row("loses", "fine-tuned", 0.70, 0.65, 0.75, best=True),
                          _row("close", "fine-tuned", 0.74, 0.70, 0.78, best=True),
                          _row("wins", "fine-tuned", 0.90, 0.85, 0.94, best=True),
                          _row("wins", "fine-tuned", 0.50, 0.45, 0.55),
                          _row("composition_gc", "baseline", 0.60), _row("composition_4mer", "baseline", 0.72),
                          _row("majority", "baseline", 0.95)])
    sentences = composition_verdicts(table)
    assert len(sentences) == 6
    by_model = {name: [s for s in sentences if s.startswith(name)] for name in ("loses", "close", "wins")}
    assert all("does not beat" in s and "4-mer frequencies" in s for s in by_model["loses"])
    assert all("not clearly better" in s for s in by_model["close"])
    assert all("beats every composition baseline" in s for s in by_model["wins"])
    assert composition_verdicts(table[~table["experiment"].str.startswith("composition")]) == []


def test_each_model_is_compared_with_the_composition_baselines_of_its_window_length():
    table = pd.DataFrame([_row("short", "fine-tuned", 0.70, 0.66, 0.74, best=True) | {"window_length": 100},
                          _row("long", "fine-tuned", 0.80, 0.76, 0.84, best=True) | {"window_length": 500},
                          _row("composition_4mer", "baseline", 0.60) | {"window_length": 100},
                          _row("composition_4mer", "baseline", 0.85) | {"window_length": 500}])
    sentences = composition_verdicts(table)
    assert len(sentences) == 4
    assert all("beats every composition baseline" in s and "against 0.600" in s
               for s in sentences if s.startswith("short"))
    assert all("does not beat" in s and "against 0.850" in s for s in sentences if s.startswith("long"))


def test_cnn_baseline_must_name_an_experiment():
    from plasmidlm import PlasmidlmError
    from plasmidlm.config import check_references

    config = {"model": {"name_or_path": "builtin"},
              "baselines": {"embeddings": {"enabled": False, "model": ""},
                            "cnn": {"enabled": True, "experiment": "nope"}},
              "experiments": {"random8": {}}}
    with pytest.raises(PlasmidlmError, match="baselines.cnn.experiment: 'nope' is not an experiment"):
        check_references(config)
    check_references(config | {"baselines": config["baselines"] | {"cnn": {"enabled": True, "experiment": ""}}})


def test_report_says_whether_a_model_keeps_its_accuracy_on_shuffled_windows():
    assert "reads composition, not order" in shuffle_verdict("m", accuracy=0.80, ci_low=0.75, shuffled=0.76)
    assert "reads composition, not order" in shuffle_verdict("m", accuracy=0.80, ci_low=float("nan"), shuffled=0.81)
    assert "loses 0.250" in shuffle_verdict("m", accuracy=0.80, ci_low=0.75, shuffled=0.55)
    assert "says nothing" in shuffle_verdict("m", accuracy=0.52, ci_low=0.47, shuffled=0.50, chance=0.5)
    assert "loses" in shuffle_verdict("m", accuracy=0.80, ci_low=0.75, shuffled=0.55, chance=0.5)
