"""k-mer tokenization, the built-in model, checkpoints loadable by plain transformers, and inference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertForSequenceClassification

from plasmidlm import PlasmidlmError, versions
from plasmidlm.evaluate import classes_of, evaluate_checkpoint, predict_proba
from plasmidlm.model import METADATA_KEY, build_or_load, load_checkpoint
from plasmidlm.tokenize import SPECIAL_TOKENS, build_kmer_tokenizer, encode, kmer_text, model_text, n_tokens

from conftest import CLASSES, TINY, WINDOW, random_windows

# --- k-mer text -------------------------------------------------------------------------------------


def test_kmer_text_overlapping():
    assert kmer_text("ACGTAC", 3) == "ACG CGT GTA TAC"
    assert kmer_text("ACGTAC", 1) == "A C G T A C"


def test_kmer_text_non_overlapping_drops_incomplete_tail():
    assert kmer_text("ACGTAC", 3, stride=3) == "ACG TAC"
    assert kmer_text("ACGTACG", 3, stride=3) == "ACG TAC"
    assert kmer_text("ACGTACG", 3, stride=2) == "ACG GTA ACG"


def test_kmer_text_of_sequence_shorter_than_k_is_empty():
    assert kmer_text("AC", 3) == ""


def test_model_text_is_raw_sequence_without_kmer():
    assert model_text("ACGTA", None) == "ACGTA"
    assert model_text("ACGTA", 2) == "AC CG GT TA"


@pytest.mark.parametrize("length, k, stride", [(60, 3, 1), (60, 3, 3), (61, 6, 2), (100, 6, 1), (10, 1, 1)])
def test_n_tokens_matches_tokenizer_output(length, k, stride):
    tokenizer = build_kmer_tokenizer(k, model_max_length=512)
    sequence = random_windows(1, length)[0]
    ids = tokenizer(kmer_text(sequence, k, stride))["input_ids"]
    assert len(ids) == n_tokens(length, k, stride)


def test_n_tokens_formula():
    assert n_tokens(60, 3) == 60  # 58 k-mers + [CLS] + [SEP]
    assert n_tokens(60, 3, 3) == 22


# --- tokenizer --------------------------------------------------------------------------------------


def test_kmer_tokenizer_vocabulary():
    tokenizer = build_kmer_tokenizer(3, model_max_length=64)
    assert len(tokenizer) == len(SPECIAL_TOKENS) + 4**3
    assert tokenizer.pad_token == "[PAD]" and tokenizer.unk_token == "[UNK]"
    assert tokenizer.model_max_length == 64


def test_kmer_tokenizer_wraps_in_cls_and_sep():
    tokenizer = build_kmer_tokenizer(3, model_max_length=64)
    ids = tokenizer("ACG CGT GTA")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "ACG", "CGT", "GTA", "[SEP]"]


def test_kmer_with_ambiguous_base_maps_to_unk():
    tokenizer = build_kmer_tokenizer(3, model_max_length=64)
    ids = tokenizer(kmer_text("ACGNT", 3))["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "ACG", "[UNK]", "[UNK]", "[SEP]"]
    assert ids[2] == tokenizer.unk_token_id


def test_encode_pads_to_longest_and_masks_padding():
    tokenizer = build_kmer_tokenizer(3, model_max_length=64)
    batch = encode(tokenizer, ["ACGTACGT", "ACGTA"], kmer=3)
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].tolist() == [[1] * 8, [1] * 5 + [0] * 3]
    assert batch["input_ids"][1, 5:].tolist() == [tokenizer.pad_token_id] * 3


# --- model ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [1, 2])
def test_flat_token_ids_concatenate_every_window_across_chunks(monkeypatch, stride):
    """Chunks of windows of one length take the numpy path, the chunk of mixed lengths the tokenizer's."""
    import plasmidlm.tokenize as tokenize

    tokenizer = build_kmer_tokenizer(3, model_max_length=512)
    windows = random_windows(7, seed=2)
    windows[3] = windows[3][:20] + "N" + windows[3][21:]
    windows = pd.Series(windows + ["ACGTNACGT", "ACG"])  # [UNK]s, mixed lengths, a window of one k-mer
    monkeypatch.setattr(tokenize, "TOKENIZE_CHUNK", 2)
    tokens, offsets = tokenize.flat_token_ids(tokenizer, windows, 3, stride)
    assert tokens.dtype == np.int32 and len(offsets) == len(windows) + 1
    for index, window in enumerate(windows):
        expected = tokenizer(kmer_text(window, 3, stride))["input_ids"]
        assert tokens[offsets[index] : offsets[index + 1]].tolist() == expected
    empty_tokens, empty_offsets = tokenize.flat_token_ids(tokenizer, [], 3)
    assert len(empty_tokens) == 0 and empty_offsets.tolist() == [0]


def test_build_or_load_builtin_configures_model(tiny_checkpoint):
    _, model, tokenizer = tiny_checkpoint
    config = model.config
    assert config.num_labels == 2
    assert config.id2label == {0: "a", 1: "b"}
    assert config.label2id == {"a": 0, "b": 1}
    assert config.vocab_size == len(tokenizer) == 5 + 64
    assert config.hidden_size == 32 and config.num_hidden_layers == 1
    assert getattr(config, METADATA_KEY) == {"window_length": WINDOW, "kmer": 3, "kmer_stride": 1,
                                             "custom_code": False, "versions": versions.library_versions()}


def test_build_or_load_is_seeded():
    first, _ = build_or_load(dict(TINY), WINDOW, CLASSES, seed=0)
    second, _ = build_or_load(dict(TINY), WINDOW, CLASSES, seed=0)
    third, _ = build_or_load(dict(TINY), WINDOW, CLASSES, seed=1)
    weights = [m.classifier.weight for m in (first, second, third)]
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_builtin_defaults_to_6mers():
    model, tokenizer = build_or_load({"name_or_path": "builtin", "preset": "tiny"}, WINDOW, CLASSES, seed=0)
    assert getattr(model.config, METADATA_KEY)["kmer"] == 6
    assert len(tokenizer) == 5 + 4**6


def test_builtin_grows_position_embeddings_for_long_windows():
    model, _ = build_or_load({"name_or_path": "builtin", "preset": "tiny", "kmer": 1}, 600, CLASSES, seed=0)
    assert model.config.max_position_embeddings == n_tokens(600, 1) == 602


def test_unknown_preset_is_an_error():
    with pytest.raises(PlasmidlmError, match="unknown preset 'huge'"):
        build_or_load({"name_or_path": "builtin", "preset": "huge", "kmer": 3}, WINDOW, CLASSES, seed=0)


def test_saved_checkpoint_reloads_with_plain_transformers(tiny_checkpoint):
    directory, model, tokenizer = tiny_checkpoint
    reloaded = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    reloaded_tokenizer = AutoTokenizer.from_pretrained(directory)
    texts = [kmer_text(sequence, 3) for sequence in random_windows(4, seed=1)]
    original = tokenizer(texts, padding=True, return_tensors="pt")
    again = reloaded_tokenizer(texts, padding=True, return_tensors="pt")
    assert torch.equal(original["input_ids"], again["input_ids"])
    with torch.inference_mode():
        expected = model(**original).logits
        actual = reloaded(**again).logits
    assert expected.shape == (4, 2)
    assert torch.equal(expected, actual)
    assert reloaded.config.id2label == {0: "a", 1: "b"}


def test_load_checkpoint_returns_window_metadata(tiny_checkpoint):
    directory, _, _ = tiny_checkpoint
    model, tokenizer, metadata = load_checkpoint(directory)
    assert metadata == {"window_length": WINDOW, "kmer": 3, "kmer_stride": 1, "custom_code": False,
                        "versions": versions.library_versions()}
    assert not model.training
    assert classes_of(model) == CLASSES
    assert len(tokenizer) == 69


@pytest.fixture(scope="module")
def short_position_model(tmp_path_factory):
    """A local 'pretrained' BERT directory whose position embeddings hold only 32 tokens."""
    directory = tmp_path_factory.mktemp("short_positions")
    tokenizer = build_kmer_tokenizer(3, model_max_length=32)
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=32, hidden_size=16,
                        num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                        pad_token_id=tokenizer.pad_token_id, num_labels=2)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def test_window_longer_than_max_positions_is_an_error(short_position_model):
    # 60 nt in overlapping 3-mers = 58 k-mers + 2 special tokens = 60 tokens > 32 positions.
    with pytest.raises(PlasmidlmError, match=r"60-nt windows need up to 60 tokens .* above the model's limit of 32 "
                                             r"\(max_position_embeddings 32\)"):
        build_or_load({"name_or_path": short_position_model, "kmer": 3}, 60, CLASSES, seed=0)


def test_pretrained_window_within_max_positions_loads_with_new_head(short_position_model):
    model, _ = build_or_load({"name_or_path": short_position_model, "kmer": 3}, 30, ["x", "y", "z"], seed=0)
    assert model.config.num_labels == 3
    assert model.classifier.out_features == 3
    assert model.config.id2label == {0: "x", 1: "y", 2: "z"}
    assert getattr(model.config, METADATA_KEY) == {"window_length": 30, "kmer": 3, "kmer_stride": 1,
                                                   "custom_code": False, "versions": versions.library_versions()}


def test_missing_pretrained_model_is_an_error(tmp_path):
    with pytest.raises(PlasmidlmError, match="cannot load"):
        build_or_load({"name_or_path": str(tmp_path / "no_such_model")}, WINDOW, CLASSES, seed=0)


# --- inference --------------------------------------------------------------------------------------


def test_predict_proba_rows_sum_to_one_and_batching_does_not_matter(tiny_checkpoint):
    directory, _, _ = tiny_checkpoint
    model, tokenizer, metadata = load_checkpoint(directory)
    sequences = random_windows(10, seed=2)
    proba = predict_proba(model, tokenizer, metadata, sequences, batch_size=4)
    assert proba.shape == (10, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (proba >= 0).all()
    np.testing.assert_allclose(predict_proba(model, tokenizer, metadata, sequences, batch_size=256), proba,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predict_proba(model, tokenizer, metadata, sequences[3:4]), proba[3:4],
                               rtol=1e-5, atol=1e-6)


def test_predict_proba_of_no_sequences_is_empty(tiny_checkpoint):
    directory, _, _ = tiny_checkpoint
    model, tokenizer, metadata = load_checkpoint(directory)
    assert predict_proba(model, tokenizer, metadata, []).shape == (0, 2)


def test_evaluate_checkpoint_returns_predictions_and_metrics(tiny_checkpoint):
    directory, _, _ = tiny_checkpoint
    sequences = random_windows(12, seed=3)
    windows = pd.DataFrame({
        "window_id": [f"t{i:07d}" for i in range(12)],
        "plasmid_id": [f"p{i // 3}" for i in range(12)],  # 4 plasmids of 3 windows
        "label": ["a"] * 6 + ["b"] * 6,
        "start": 0,
        "strand": "+",
        "sequence": sequences,
    })
    predictions, metrics = evaluate_checkpoint(directory, windows=windows, batch_size=5)
    assert list(predictions.columns) == ["window_id", "plasmid_id", "label", "predicted", "prob_a", "prob_b"]
    assert predictions["window_id"].tolist() == windows["window_id"].tolist()
    np.testing.assert_allclose(predictions[["prob_a", "prob_b"]].sum(axis=1), 1.0, rtol=1e-6)
    expected_predicted = np.where(predictions["prob_a"] >= predictions["prob_b"], "a", "b")
    assert predictions["predicted"].tolist() == expected_predicted.tolist()
    assert metrics["classes"] == CLASSES
    assert metrics["window"]["n"] == 12
    assert metrics["plasmid"]["n"] == 4
    # recomputed from the predictions: share of windows right, and of plasmids whose mean probability is right
    assert metrics["window"]["accuracy"] == pytest.approx((predictions["predicted"] == predictions["label"]).mean())
    means = predictions.groupby("plasmid_id")[["prob_a", "prob_b"]].mean()
    plasmid_label = predictions.groupby("plasmid_id")["label"].first()
    plasmid_predicted = np.where(means["prob_a"] >= means["prob_b"], "a", "b")
    assert metrics["plasmid"]["accuracy"] == pytest.approx((plasmid_predicted == plasmid_label.to_numpy()).mean())
    assert metrics["inference"]["windows_per_second"] > 0
    assert metrics["inference"]["device"] in ("cpu", "cuda:0")


def test_a_pretrained_directory_gets_the_same_new_head_for_the_same_seed(short_position_model):
    config = {"name_or_path": short_position_model, "kmer": 3, "kmer_stride": 1}
    three_classes = ["a", "b", "c"]  # the saved head has two outputs: a new head is initialised
    first, _ = build_or_load(dict(config), 30, three_classes, seed=3)
    torch.manual_seed(12345)  # whatever state the process's generator is in
    second, _ = build_or_load(dict(config), 30, three_classes, seed=3)
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name]), name
