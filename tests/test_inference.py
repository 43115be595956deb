"""The inference path of evaluation, predict and embed: k-mer ids without the tokenizer, bf16 autocast against
fp32, batch-size defaults."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT, WINDOW, random_windows
from plasmidlm import PlasmidlmError, evaluate
from plasmidlm.cli import main
from plasmidlm.config import load_schema
from plasmidlm.evaluate import (
    CPU_BATCH_SIZE,
    GPU_BATCH_SIZE,
    default_batch_size,
    embed_windows,
    inference_precision,
    predict_proba,
)
from plasmidlm.model import load_checkpoint
from plasmidlm.tokenize import build_kmer_tokenizer, kmer_id_table, kmer_ids, token_ids

pytestmark = pytest.mark.usefixtures("one_thread")

# bf16 keeps 8 significant bits: probabilities of the tiny model with large weights below (probabilities from
# about 0.03 to 0.97) stay within this of fp32's (0.007 measured), embeddings within this relative to their
# largest value (0.005 measured).
BF16_PROBABILITY_TOLERANCE = 0.01
BF16_EMBEDDING_TOLERANCE = 0.02


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_kmer_ids_equal_the_tokenizers_ids_including_unknown_letters(stride):
    tokenizer = build_kmer_tokenizer(4, model_max_length=512)
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGTNRa"), size=50, p=[0.23] * 4 + [0.04, 0.02, 0.02]))
                 for _ in range(40)]
    texts = [" ".join(sequence[i : i + 4] for i in range(0, len(sequence) - 3, stride)) for sequence in sequences]
    expected = np.array(tokenizer(texts, return_attention_mask=False)["input_ids"])
    np.testing.assert_array_equal(kmer_ids(kmer_id_table(tokenizer, 4), sequences, 4, stride), expected)
    # token_ids takes this path for windows of one length, the tokenizer's for mixed lengths: the same ids
    np.testing.assert_array_equal(np.stack(token_ids(tokenizer, sequences, 4, stride)), expected)
    mixed = token_ids(tokenizer, sequences + ["ACGTA"], 4, stride)
    np.testing.assert_array_equal(np.stack(mixed[:-1]), expected)


def test_other_tokenizers_get_no_kmer_table(tiny_checkpoint):
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    assert kmer_id_table(tiny_checkpoint[2], 3) is not None
    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "AAA": 1}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.normalizer = normalizers.Lowercase()  # "AAA" would be "aaa": the table would not know
    assert kmer_id_table(PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]"), 3) is None


@pytest.fixture(scope="module")
def confident_model(confident_checkpoint):
    return load_checkpoint(confident_checkpoint)


def test_bf16_autocast_probabilities_and_embeddings_match_fp32(confident_model):
    model, tokenizer, metadata = confident_model
    windows = random_windows(200, seed=11)
    fp32 = predict_proba(model, tokenizer, metadata, windows, batch_size=64, precision="fp32")
    bf16 = predict_proba(model, tokenizer, metadata, windows, batch_size=64, precision="bf16")
    assert fp32.min() < 0.1 and fp32.max() > 0.9  # the comparison covers confident and unsure windows
    assert np.abs(bf16 - fp32).max() < BF16_PROBABILITY_TOLERANCE
    assert np.abs(bf16 - fp32).max() > 0  # bf16 did run
    fp32 = embed_windows(model, tokenizer, metadata, windows, precision="fp32")
    bf16 = embed_windows(model, tokenizer, metadata, windows, precision="bf16")
    assert np.abs(bf16 - fp32).max() < BF16_EMBEDDING_TOLERANCE * np.abs(fp32).max()


def test_results_do_not_depend_on_the_batch_or_the_token_path(confident_model):
    """Numpy k-mer ids (windows of one length) and the tokenizer (mixed lengths) give the same probabilities (fp32:
    bf16 kernels may round differently for different batch shapes)."""
    model, tokenizer, metadata = confident_model
    windows = random_windows(21, seed=12)
    with torch.inference_mode():
        inputs = tokenizer([" ".join(w[i : i + 3] for i in range(WINDOW - 2)) for w in windows], return_tensors="pt",
                           return_token_type_ids=False)
        expected = torch.softmax(model(**inputs).logits, dim=-1).numpy()
    for batch_size in (1, 4, None):
        np.testing.assert_allclose(predict_proba(model, tokenizer, metadata, windows, batch_size=batch_size,
                                                 precision="fp32"), expected, atol=1e-6)
    mixed = windows[:1] + [windows[1][:-5]]
    np.testing.assert_allclose(predict_proba(model, tokenizer, metadata, mixed, batch_size=2, precision="fp32")[0],
                               expected[0], atol=1e-6)


def test_the_batch_size_defaults_are_stated_as_defined(capsys):
    stated = f"{GPU_BATCH_SIZE} on a GPU, {CPU_BATCH_SIZE} on a CPU"
    description = load_schema()["properties"]["evaluate"]["properties"]["batch_size"]["description"]
    assert stated in description and stated in (REPO_ROOT / "docs" / "evaluation.md").read_text()
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert stated in " ".join(capsys.readouterr().out.split())


def test_defaults_and_precision_names():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert default_batch_size(cpu) == CPU_BATCH_SIZE and default_batch_size(cuda) == GPU_BATCH_SIZE
    assert inference_precision("fp32", cuda) is None
    assert inference_precision("bf16", cpu) == torch.bfloat16
    with pytest.raises(PlasmidlmError, match="unknown inference precision 'fp8'"):
        inference_precision("fp8", cpu)


@pytest.mark.parametrize("capability, dtype", [((9, 0), torch.bfloat16), ((8, 6), torch.bfloat16),
                                               ((7, 5), torch.float16), ((7, 0), torch.float16), ((6, 1), None)])
def test_automatic_precision_follows_the_gpus_compute_capability_not_emulated_bf16(monkeypatch, capability, dtype):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)  # as where bf16 is emulated
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a GPU")
    assert inference_precision("auto", torch.device("cuda")) == dtype


@pytest.mark.parametrize("amx, bf16, dtype", [(True, True, torch.bfloat16), (False, True, None), (False, False, None)])
def test_automatic_precision_on_a_cpu_is_bf16_only_with_amx(monkeypatch, amx, bf16, dtype):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16)
    assert inference_precision("auto", torch.device("cpu")) == dtype


def test_batches_that_do_not_fit_in_memory_are_halved_until_they_do(confident_model):
    model, tokenizer, metadata = confident_model
    windows = random_windows(40, seed=13)
    expected = predict_proba(model, tokenizer, metadata, windows, batch_size=16, precision="fp32")
    sizes = []

    def compute(inputs, mask):
        sizes.append(len(mask))
        if len(mask) > 5:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return torch.softmax(model(**inputs).logits, dim=-1)

    with pytest.warns(UserWarning, match="batches of 16 windows do not fit.*using 8"):
        proba = evaluate._batched(model, tokenizer, metadata, windows, batch_size=16, compute=compute, width=2,
                                  precision="fp32")
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    assert sizes[:3] == [16, 8, 4] and set(sizes[3:]) <= {4}  # found once, kept for the following batches


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_defaults_give_the_cpus_fp32_probabilities(confident_model):
    model, tokenizer, metadata = confident_model
    windows = random_windows(3000, seed=14)  # several 1024-window batches, the last one partial
    expected = predict_proba(model, tokenizer, metadata, windows, precision="fp32")
    on_gpu = copy.deepcopy(model).to("cuda")
    proba = predict_proba(on_gpu, tokenizer, metadata, windows)
    tolerance = BF16_PROBABILITY_TOLERANCE if torch.cuda.is_bf16_supported() else 1e-4
    assert np.abs(proba - expected).max() < tolerance
