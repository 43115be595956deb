"""Miniature stand-ins for the DNA language model families that users bring from the hub.

Randomly initialised and a few layers small, each reproduces the mechanics of its family that the pipeline
must handle: architecture class, tokenizer type and input format, custom code or not, padding token and
forward signature. `write_standin(family, directory, corpus)` saves one as a hub-like local directory (a
pretrained base model without a classification head) and returns the `model` config block to use it.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoConfig,
    AutoModel,
    BertConfig,
    BertForMaskedLM,
    BertTokenizer,
    EsmConfig,
    EsmForMaskedLM,
    EsmTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

CODE_DIR = Path(__file__).parent
FAMILIES = ("dnabert", "dnabert2", "nucleotide_transformer", "grover", "decoder")
SIZE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _kmers(k: int) -> list[str]:
    return ["".join(letters) for letters in itertools.product("ACGT", repeat=k)]


def _bpe_tokenizer(corpus: list[str], vocab_size: int, model_max_length: int) -> PreTrainedTokenizerFast:
    """A BPE tokenizer learnt on raw DNA, with BERT's special tokens (DNABERT-2 and GROVER)."""
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=BERT_SPECIALS, initial_alphabet=list("ACGTN"),
                                  show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")),
                                                 ("[SEP]", tokenizer.token_to_id("[SEP]"))])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=model_max_length, pad_token="[PAD]",
                                   unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def _dnabert(directory: Path, corpus: list[str]) -> dict:
    """DNABERT (v1): BERT with a word-level vocabulary of overlapping 6-mers, fed space-separated k-mer text."""
    vocab = directory / "vocab.txt"
    directory.mkdir(parents=True, exist_ok=True)
    vocab.write_text("\n".join(BERT_SPECIALS + _kmers(6)) + "\n")
    tokenizer = BertTokenizer(vocab=str(vocab), do_lower_case=False, model_max_length=512)
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512, pad_token_id=0, **SIZE)
                    ).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return {"kmer": 6, "kmer_stride": 1}


def _dnabert2(directory: Path, corpus: list[str], model_type: str = "bert") -> dict:
    """DNABERT-2 / GENA-LM: custom code (`auto_map`) whose config says `model_type` (DNABERT-2: "bert"), fused
    `Wqkv`, no position embeddings; a BPE tokenizer on the raw sequence whose only limit is model_max_length."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "configuration_fusedbert.py").write_text(
        (CODE_DIR / "configuration_fusedbert.py").read_text().replace("MODEL_TYPE", model_type))
    shutil.copy(CODE_DIR / "modeling_fusedbert.py", directory)
    tokenizer = _bpe_tokenizer(corpus, vocab_size=200, model_max_length=128)
    config = {
        "model_type": model_type,
        "architectures": ["FusedBertModel"],
        "auto_map": {
            "AutoConfig": "configuration_fusedbert.FusedBertConfig",
            "AutoModel": "modeling_fusedbert.FusedBertModel",
            "AutoModelForSequenceClassification": "modeling_fusedbert.FusedBertForSequenceClassification",
        },
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "hidden_dropout_prob": 0.1,
        "initializer_range": 0.02,
        **SIZE,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    model_config = AutoConfig.from_pretrained(directory, trust_remote_code=True)
    AutoModel.from_config(model_config, trust_remote_code=True).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return {"trust_remote_code": True}


def _nucleotide_transformer(directory: Path, corpus: list[str]) -> dict:
    """Nucleotide Transformer v1: transformers' ESM classes; the raw sequence is cut into non-overlapping 6-mers,
    with single nucleotides where no 6-mer is left; positions start after the padding index."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>", *_kmers(6), "A", "T", "C", "G", "N"]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = EsmTokenizer(vocab_file=str(directory / "vocab.txt"), model_max_length=1000)
    EsmForMaskedLM(EsmConfig(vocab_size=len(vocab), max_position_embeddings=40, pad_token_id=1, mask_token_id=2,
                             position_embedding_type="absolute", token_dropout=False, **SIZE)
                   ).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return {}


def _grover(directory: Path, corpus: list[str]) -> dict:
    """GROVER: BERT with a BPE tokenizer on the raw sequence."""
    tokenizer = _bpe_tokenizer(corpus, vocab_size=300, model_max_length=512)
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512,
                               pad_token_id=tokenizer.pad_token_id, **SIZE)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return {}


def _decoder(directory: Path, corpus: list[str]) -> dict:
    """HyenaDNA / GENERator / causal DNA LMs: a Llama-style decoder with a character tokenizer, no pad token
    configured, and a forward without `token_type_ids`."""
    specials = ["<unk>", "<s>", "</s>"]
    vocab = {token: index for index, token in enumerate([*specials, *"ACGTN"])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=1024, unk_token="<unk>",
                                        bos_token="<s>", eos_token="</s>")
    config = LlamaConfig(vocab_size=len(vocab), num_key_value_heads=1, max_position_embeddings=1024,
                         bos_token_id=1, eos_token_id=2, pad_token_id=None, **SIZE)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return {}


BUILDERS = {"dnabert": _dnabert, "dnabert2": _dnabert2, "nucleotide_transformer": _nucleotide_transformer,
            "grover": _grover, "decoder": _decoder}


def write_standin(family: str, directory, corpus: list[str], **options) -> dict:
    """Save the stand-in of `family` (seeded) in `directory`; return its `model` config block.

    `corpus`: DNA sequences the BPE tokenizers learn their merges from.
    """
    directory = Path(directory)
    torch.manual_seed(0)
    settings = BUILDERS[family](directory, corpus, **options)
    return {"name_or_path": str(directory), "trust_remote_code": False, "kmer": None, **settings}
