"""The predict command: tiling, agreement with the evaluation step, portability and bad input."""

from __future__ import annotations

import gzip
import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import CLASSES, WINDOW, prediction_outputs, random_windows, write_fasta
from plasmidlm import PlasmidlmError
from plasmidlm.cli import main
from plasmidlm.evaluate import embed_windows, evaluate_checkpoint
from plasmidlm.predict import embed_fasta, predict_fasta, tile_starts


def test_tile_starts_cover_the_whole_sequence():
    assert tile_starts(250, 100, 100) == [0, 100, 150]
    assert tile_starts(300, 100, 100) == [0, 100, 200]
    assert tile_starts(100, 100, 50) == [0]
    assert tile_starts(99, 100, 50) == []


def test_predictions_equal_the_evaluation_step_for_the_same_windows(tiny_checkpoint, tmp_path):
    directory, _, _ = tiny_checkpoint
    sequences = random_windows(30, seed=3)
    windows = pd.DataFrame({"window_id": [f"w{i}" for i in range(30)], "plasmid_id": [f"s{i}" for i in range(30)],
                            "label": ["a", "b"] * 15, "start": 0, "strand": "+", "sequence": sequences})
    evaluated, _ = evaluate_checkpoint(directory, windows=windows, batch_size=7)
    fasta = write_fasta(tmp_path / "one_window_each.fa", zip(windows["plasmid_id"], sequences))
    predict_fasta(directory, fasta, **prediction_outputs(tmp_path / "out"), batch_size=8)
    per_sequence = pd.read_csv(tmp_path / "out.sequences.tsv", sep="\t")
    assert list(per_sequence["sequence_id"]) == list(windows["plasmid_id"])
    assert (per_sequence["windows"] == 1).all()
    for name in CLASSES:
        np.testing.assert_allclose(per_sequence[f"prob_{name}"], evaluated[f"prob_{name}"], atol=1e-5)
    assert list(per_sequence["predicted"]) == list(evaluated["predicted"])


def test_sequence_probabilities_are_the_mean_of_its_windows(tiny_checkpoint, tmp_path):
    directory, _, _ = tiny_checkpoint
    sequence = random_windows(1, length=3 * WINDOW + 10, seed=5)[0]
    fasta = write_fasta(tmp_path / "long.fa.gz", [("long", sequence)], compress=True)
    predict_fasta(directory, fasta, **prediction_outputs(tmp_path / "out"), stride=WINDOW // 2)
    with gzip.open(tmp_path / "out.windows.tsv.gz", "rt") as handle:
        windows = pd.read_csv(handle, sep="\t")
    assert list(windows["start"]) == tile_starts(len(sequence), WINDOW, WINDOW // 2)
    per_sequence = pd.read_csv(tmp_path / "out.sequences.tsv", sep="\t").iloc[0]
    assert per_sequence["windows"] == len(windows)
    assert per_sequence["prob_a"] == pytest.approx(windows["prob_a"].mean(), abs=1e-5)


def test_a_model_directory_copied_elsewhere_still_works(tiny_checkpoint, tmp_path):
    directory, _, _ = tiny_checkpoint
    copy = shutil.copytree(directory, tmp_path / "elsewhere" / "model")
    fasta = write_fasta(tmp_path / "in.fa", [("x", random_windows(1, seed=9)[0])])
    summary = predict_fasta(copy, fasta, **prediction_outputs(tmp_path / "out"))
    assert summary["windows"] == 1


def test_sequences_shorter_than_a_window_are_reported_not_dropped(tiny_checkpoint, tmp_path, caplog):
    directory, _, _ = tiny_checkpoint
    fasta = write_fasta(tmp_path / "in.fa", [("long", random_windows(1, seed=1)[0]), ("short", "ACGT" * 5)])
    caplog.set_level(logging.INFO)
    summary = predict_fasta(directory, fasta, **prediction_outputs(tmp_path / "out"))
    assert summary["too_short"] == 1
    table = pd.read_csv(tmp_path / "out.sequences.tsv", sep="\t")
    assert table.set_index("sequence_id").loc["short", "windows"] == 0
    assert any("short" in message and "shorter" in message for message in caplog.messages)


def test_both_strands_averages_a_window_and_its_reverse_complement(tiny_checkpoint, tmp_path):
    directory, _, _ = tiny_checkpoint
    window = random_windows(1, seed=2)[0]
    reverse = window.translate(str.maketrans("ACGT", "TGCA"))[::-1]
    fasta = write_fasta(tmp_path / "in.fa", [("fwd", window), ("rev", reverse)])
    predict_fasta(directory, fasta, **prediction_outputs(tmp_path / "out"), both_strands=True)
    table = pd.read_csv(tmp_path / "out.sequences.tsv", sep="\t")
    assert table.loc[0, "prob_a"] == pytest.approx(table.loc[1, "prob_a"], abs=1e-5)


@pytest.mark.parametrize("content, message", [
    (">x\nACGTJ\n", "character 'J'"),
    ("", "file is empty"),
])
def test_bad_fasta_is_a_clear_error_and_leaves_no_output(tiny_checkpoint, tmp_path, content, message):
    directory, _, _ = tiny_checkpoint
    (tmp_path / "bad.fa").write_text(content)
    with pytest.raises(PlasmidlmError, match=message):
        predict_fasta(directory, tmp_path / "bad.fa", **prediction_outputs(tmp_path / "out"))
    assert list(tmp_path.iterdir()) == [tmp_path / "bad.fa"]


def test_missing_weights_are_a_clear_error(tiny_checkpoint, tmp_path):
    directory, _, _ = tiny_checkpoint
    broken = shutil.copytree(directory, tmp_path / "broken")
    (broken / "model.safetensors").unlink()
    with pytest.raises(PlasmidlmError, match="no model weights"):
        predict_fasta(broken, tmp_path / "in.fa", **prediction_outputs(tmp_path / "out"))


def test_cli_reports_errors_in_one_line_with_exit_status_1(tmp_path, capsys):
    assert main(["predict", "--model", str(tmp_path / "missing"), "--fasta", "x.fa", "--out", "y"]) == 1
    error = capsys.readouterr().err.strip()
    assert error == f"plasmidlm: error: {tmp_path / 'missing'}: model directory not found"


def test_embed_writes_mean_pooled_window_and_sequence_embeddings(tiny_checkpoint, tmp_path):
    directory, model, tokenizer = tiny_checkpoint
    long_sequence = random_windows(1, length=2 * WINDOW, seed=4)[0]
    fasta = write_fasta(tmp_path / "in.fa", [("long", long_sequence), ("short", "ACGT")])
    summary = embed_fasta(directory, fasta, out_prefix=tmp_path / "emb")
    windows = np.load(tmp_path / "emb.windows.npy")
    sequences = np.load(tmp_path / "emb.sequences.npy")
    assert summary == {"sequences": 1, "too_short": 1, "windows": 2, "dimensions": model.config.hidden_size}
    assert windows.shape == (2, model.config.hidden_size)
    window_ids = pd.read_csv(tmp_path / "emb.windows.tsv", sep="\t")
    assert list(window_ids["start"]) == [0, WINDOW]
    expected = embed_windows(model, tokenizer, model.config.plasmidlm,
                             [long_sequence[:WINDOW], long_sequence[WINDOW:]])
    np.testing.assert_allclose(windows, expected, atol=1e-5)
    np.testing.assert_allclose(sequences[0], windows.mean(axis=0), atol=1e-5)
    assert np.isnan(sequences[1]).all()
    assert list(pd.read_csv(tmp_path / "emb.sequences.tsv", sep="\t")["windows"]) == [2, 0]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "emb.sequences.npy", "emb.sequences.tsv", "emb.windows.npy", "emb.windows.tsv", "in.fa"]


def test_embeddings_are_a_mean_over_non_padding_tokens_only(tiny_checkpoint):
    _, model, tokenizer = tiny_checkpoint
    short, long = random_windows(1, length=30, seed=6)[0], random_windows(1, length=WINDOW, seed=7)[0]
    alone = embed_windows(model, tokenizer, model.config.plasmidlm, [short])
    padded = embed_windows(model, tokenizer, model.config.plasmidlm, [short, long])
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)


def test_a_model_without_recorded_window_length_needs_one(tiny_checkpoint, tmp_path):
    directory, _, _ = tiny_checkpoint
    foreign = shutil.copytree(directory, tmp_path / "foreign")
    config = json.loads((foreign / "config.json").read_text())
    config["plasmidlm"]["window_length"] = None
    (foreign / "config.json").write_text(json.dumps(config))
    fasta = write_fasta(tmp_path / "in.fa", [("x", random_windows(1, seed=8)[0])])
    with pytest.raises(PlasmidlmError, match="--window-length"):
        predict_fasta(foreign, fasta, **prediction_outputs(tmp_path / "out"))
    summary = predict_fasta(foreign, fasta, **prediction_outputs(tmp_path / "out"), window_length=30)
    assert summary["windows"] == 2


def test_cli_embed_writes_arrays(tiny_checkpoint, tmp_path, capsys):
    directory, _, _ = tiny_checkpoint
    fasta = write_fasta(tmp_path / "in.fa", [("x", random_windows(1, seed=8)[0])])
    assert main(["embed", "--model", str(directory), "--fasta", str(fasta), "--out", str(tmp_path / "e")]) == 0
    assert np.load(tmp_path / "e.sequences.npy").shape[0] == 1
    assert "1 window and 1 sequence embedding(s)" in capsys.readouterr().out


def test_temperature_calibrates_window_and_sequence_probabilities(tiny_checkpoint, tmp_path):
    from scipy.special import softmax

    directory, _, _ = tiny_checkpoint
    records = [(f"s{i}", sequence) for i, sequence in enumerate(random_windows(6, length=2 * WINDOW, seed=13))]
    fasta = write_fasta(tmp_path / "in.fa", records)
    predict_fasta(directory, fasta, **prediction_outputs(tmp_path / "raw"))
    predict_fasta(directory, fasta, **prediction_outputs(tmp_path / "hot"), temperature=3.0)
    columns = [f"prob_{name}" for name in CLASSES]
    raw = pd.read_csv(tmp_path / "raw.windows.tsv.gz", sep="\t")
    hot = pd.read_csv(tmp_path / "hot.windows.tsv.gz", sep="\t")
    np.testing.assert_allclose(hot[columns], softmax(np.log(raw[columns].to_numpy()) / 3.0, axis=1), atol=1e-5)
    sequences = pd.read_csv(tmp_path / "hot.sequences.tsv", sep="\t")
    np.testing.assert_allclose(sequences[columns], hot.groupby("sequence_id", sort=False)[columns].mean(), atol=1e-5)


def test_min_confidence_labels_uncertain_sequences(tiny_checkpoint, tmp_path):
    directory, _, _ = tiny_checkpoint
    records = [(f"s{i}", sequence) for i, sequence in enumerate(random_windows(10, seed=17))]
    fasta = write_fasta(tmp_path / "in.fa", records)
    # a low temperature spreads the untrained model's near-0.5 probabilities; the threshold applies after it
    predict_fasta(directory, fasta, **prediction_outputs(tmp_path / "all"), temperature=0.002)
    forced = pd.read_csv(tmp_path / "all.sequences.tsv", sep="\t")
    top = forced[[f"prob_{name}" for name in CLASSES]].max(axis=1)
    values = np.unique(top.round(4))  # a threshold well between written (6-digit) values
    assert len(values) > 1
    threshold = float(values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
    predict_fasta(directory, fasta, **prediction_outputs(tmp_path / "some"), temperature=0.002,
                  min_confidence=threshold)
    abstaining = pd.read_csv(tmp_path / "some.sequences.tsv", sep="\t")
    expected = forced["predicted"].where(top >= threshold, "uncertain")
    assert abstaining["predicted"].tolist() == expected.tolist()
    assert 0 < (expected == "uncertain").sum() < len(expected)


def test_temperature_calibrates_each_strand_before_they_are_averaged(confident_checkpoint, tmp_path):
    """The temperature is fitted on one strand's probabilities: with both strands, each is calibrated, then the
    two are averaged (calibrating the average would be another calibration)."""
    from scipy.special import softmax

    directory = confident_checkpoint
    windows = random_windows(4, seed=21)
    reverse = [window.translate(str.maketrans("ACGT", "TGCA"))[::-1] for window in windows]
    fasta = write_fasta(tmp_path / "in.fa", [(f"s{i}", window) for i, window in enumerate(windows)])
    fasta_reverse = write_fasta(tmp_path / "reverse.fa", [(f"s{i}", window) for i, window in enumerate(reverse)])
    columns = [f"prob_{name}" for name in CLASSES]

    def window_proba(path, name, **options):
        predict_fasta(directory, path, **prediction_outputs(tmp_path / name), **options)
        return pd.read_csv(tmp_path / f"{name}.windows.tsv.gz", sep="\t")[columns].to_numpy()

    forward, backward = window_proba(fasta, "forward"), window_proba(fasta_reverse, "backward")
    both = window_proba(fasta, "both", both_strands=True, temperature=2.0)
    expected = (softmax(np.log(forward) / 2.0, axis=1) + softmax(np.log(backward) / 2.0, axis=1)) / 2
    np.testing.assert_allclose(both, expected, atol=1e-5)
    averaged_then_calibrated = softmax(np.log((forward + backward) / 2) / 2.0, axis=1)
    assert np.abs(averaged_then_calibrated - expected).max() > 1e-3  # the test tells the two orders apart


@pytest.mark.parametrize("records", [[("a", 0), ("a", 1), ("b", 2)], [("a", 0), ("b", 1), ("a", 2)]],
                         ids=["adjacent", "apart"])
@pytest.mark.parametrize("command", ["predict", "embed"])
def test_a_sequence_id_that_comes_twice_is_an_error_naming_it(tiny_checkpoint, tmp_path, records, command):
    directory, _, _ = tiny_checkpoint
    windows = random_windows(3, length=2 * WINDOW, seed=5)
    fasta = write_fasta(tmp_path / "in.fa", [(name, windows[index]) for name, index in records])
    out = tmp_path / "out"
    out.mkdir()
    if command == "predict":
        with pytest.raises(PlasmidlmError, match=r"record 3: sequence ID 'a' comes twice \(first as record 1\)"
                           if records[2][0] == "a" else r"record 2: sequence ID 'a' comes twice"):
            predict_fasta(directory, fasta, **prediction_outputs(out / "p"))
    else:
        with pytest.raises(PlasmidlmError, match="sequence ID 'a' comes twice"):
            embed_fasta(directory, fasta, out_prefix=out / "e")
    assert not list(out.iterdir())


@pytest.mark.parametrize("option", ["--stride", "--batch-size", "--window-length"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_cli_rejects_a_stride_batch_size_or_window_length_below_1(tmp_path, capsys, option, value):
    for command in ("predict", "embed"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--model", str(tmp_path), "--fasta", "x.fa", "--out", str(tmp_path / "o"), option, value])
        assert exit_info.value.code == 2
        assert f"argument {option}: must be at least 1, got {value}" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("option", ["stride", "batch_size", "window_length"])
def test_library_rejects_a_stride_batch_size_or_window_length_below_1(tiny_checkpoint, tmp_path, option):
    directory, _, _ = tiny_checkpoint
    fasta = write_fasta(tmp_path / "in.fa", [("s", random_windows(1, seed=3)[0])])
    with pytest.raises(PlasmidlmError, match=f"{option.replace('_', ' ')} must be at least 1, got 0"):
        predict_fasta(directory, fasta, **prediction_outputs(tmp_path / "p"), **{option: 0})
    with pytest.raises(PlasmidlmError, match=f"{option.replace('_', ' ')} must be at least 1, got -5"):
        embed_fasta(directory, fasta, out_prefix=tmp_path / "e", **{option: -5})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.fa"]


@pytest.mark.parametrize("option, value", [("--temperature", "0"), ("--min-confidence", "1.5")])
def test_cli_rejects_a_temperature_or_confidence_out_of_range(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", str(tmp_path), "--fasta", "x.fa", "--out", str(tmp_path / "o"), option, value])
    assert exit_info.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
