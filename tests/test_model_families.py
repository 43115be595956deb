"""The DNA language model families users bring, through the library and the whole workflow.

Each family is a miniature stand-in (tests/standins) with its family's mechanics: custom code or not,
k-mer text, BPE or character tokens, position limits, a decoder without a pad token.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from conftest import REPO_ROOT, logged_messages, make_dataset, online_env, random_windows, snakemake, write_fasta
from hub_server import HubServer, folder_files
from plasmidlm import PlasmidlmError, cli, io
from plasmidlm.evaluate import embed_windows, predict_proba
from plasmidlm.model import build_or_load, forward_input_names, load_checkpoint
from plasmidlm.steps import baselines as baselines_steps
from plasmidlm.tokenize import encode
from plasmidlm.training.data import PadToLongest
from plasmidlm.training.fine_tune import fine_tune
from standins import FAMILIES, write_standin

CLASSES = ["alpha", "beta"]
WINDOW = 60
TRAIN = {"batch_size": 4, "eval_batch_size": 8, "epochs": 1, "max_steps": 4, "learning_rate": 1e-3,
         "weight_decay": 0.0, "warmup_ratio": 0.0, "lr_scheduler": "linear", "save_steps": 2, "logging_steps": 1,
         "balance": "none"}
LORA = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": None}


def demo_corpus() -> list[str]:
    """Real DNA for the BPE stand-ins to learn merges from (the first 5 kb of 40 demo sequences)."""
    records = io.iter_fasta(REPO_ROOT / "resources" / "demo" / "sequences.fasta.gz")
    return [sequence[:5000] for _, (_, sequence) in zip(range(40), records)]


@pytest.fixture(scope="session")
def standins(tmp_path_factory) -> dict[str, dict]:
    """family -> `model` config block of its stand-in, saved once per session."""
    root = tmp_path_factory.mktemp("standins")
    corpus = demo_corpus()
    return {family: write_standin(family, root / family, corpus) for family in FAMILIES}


def windows_table(n: int, seed: int, length: int = WINDOW) -> pd.DataFrame:
    """Real windows (from demo sequences) with alternating labels."""
    corpus = demo_corpus()
    rng = np.random.default_rng(seed)
    sequences = []
    for index in range(n):
        sequence = corpus[index % len(corpus)]
        start = int(rng.integers(0, len(sequence) - length))
        sequences.append(sequence[start : start + length])
    return pd.DataFrame({"label": [CLASSES[i % 2] for i in range(n)], "sequence": sequences})


@pytest.fixture(scope="module")
def trained(standins, tmp_path_factory, one_thread) -> dict[str, tuple]:
    """family -> (model directory of checkpoint-4, fine-tuning log messages)."""
    runs = {}
    for family, model_config in standins.items():
        output_dir = tmp_path_factory.mktemp(f"trained_{family}")
        with logged_messages() as messages:
            summary = fine_tune(windows_table(16, seed=1), windows_table(8, seed=2), classes=CLASSES,
                                model_config=model_config, train_config=TRAIN, window_length=WINDOW,
                                output_dir=output_dir, seed=0)
        assert summary["checkpoints"] == [2, 4]
        runs[family] = (output_dir / "checkpoint-4", messages)
    return runs


@pytest.mark.parametrize("family", FAMILIES)
def test_checkpoint_reloads_with_plain_transformers_as_the_same_model(family, standins, trained):
    checkpoint, _ = trained[family]
    trust = standins[family]["trust_remote_code"]
    model, tokenizer, metadata = load_checkpoint(checkpoint, trust_remote_code=trust)
    plain = AutoModelForSequenceClassification.from_pretrained(checkpoint, trust_remote_code=trust).eval()
    plain_tokenizer = AutoTokenizer.from_pretrained(checkpoint, trust_remote_code=trust)
    assert type(plain).__name__ == type(model).__name__
    assert plain_tokenizer.pad_token_id == tokenizer.pad_token_id == plain.config.pad_token_id is not None
    windows = windows_table(6, seed=3)["sequence"].tolist()
    inputs = encode(plain_tokenizer, windows, kmer=metadata["kmer"], stride=metadata["kmer_stride"],
                    input_names=forward_input_names(plain))
    with torch.inference_mode():
        expected = torch.softmax(plain(**inputs).logits, dim=-1).numpy()
    np.testing.assert_allclose(predict_proba(model, tokenizer, metadata, windows, batch_size=4, precision="fp32"),
                               expected, rtol=1e-5, atol=1e-6)
    assert metadata["custom_code"] is trust
    assert metadata["window_length"] == WINDOW
    assert metadata["kmer"] == standins[family].get("kmer")


def test_custom_code_checkpoint_is_refused_without_trust(trained):
    checkpoint, _ = trained["dnabert2"]
    with pytest.raises(PlasmidlmError, match="ships its own code .*pass --trust-remote-code if you trust it"):
        load_checkpoint(checkpoint)


def test_custom_code_is_the_trained_code_not_a_native_class_of_the_same_model_type(standins, trained):
    checkpoint, _ = trained["dnabert2"]
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model_type"] == "bert"  # as DNABERT-2's: transformers would pick its own BERT without the check
    assert (checkpoint / "modeling_fusedbert.py").is_file()
    model, _, _ = load_checkpoint(checkpoint, trust_remote_code=True)
    assert any(name.endswith("Wqkv.weight") for name in model.state_dict())


@pytest.mark.parametrize("model_type", ["bert", "gena_standin"])
def test_custom_code_model_is_refused_for_training_without_trust(model_type, tmp_path):
    directory = tmp_path / "custom"
    model_config = write_standin("dnabert2", directory, demo_corpus()[:5], model_type=model_type)
    with pytest.raises(PlasmidlmError, match="ships its own code .*set model.trust_remote_code: true"):
        build_or_load(model_config | {"trust_remote_code": False}, WINDOW, CLASSES, seed=0)


def test_decoder_without_pad_token_gets_one_chosen_and_logged(trained):
    checkpoint, messages = trained["decoder"]
    assert any("no pad token: padding with '</s>'" in message for message in messages), messages
    assert AutoTokenizer.from_pretrained(checkpoint).pad_token == "</s>"
    assert json.loads((checkpoint / "config.json").read_text())["pad_token_id"] == 2


def test_batches_are_padded_to_their_own_longest_window(standins):
    model, tokenizer = build_or_load(standins["grover"], WINDOW, CLASSES, seed=0)
    windows = windows_table(8, seed=4)["sequence"].tolist()
    ids = [tokenizer(sequence)["input_ids"] for sequence in windows]
    assert len({len(row) for row in ids}) > 1  # BPE: token counts vary
    collate = PadToLongest(tokenizer.pad_token_id, forward_input_names(model))
    batch = collate([{"input_ids": np.array(row), "labels": torch.tensor(0)} for row in ids[:3]])
    width = max(len(row) for row in ids[:3])
    assert batch["input_ids"].shape == (3, width)
    assert batch["attention_mask"].sum(dim=1).tolist() == [len(row) for row in ids[:3]]
    for row, tokens in zip(batch["input_ids"], ids[:3]):
        assert row[: len(tokens)].tolist() == tokens
        assert (row[len(tokens) :] == tokenizer.pad_token_id).all()


def test_collator_passes_only_the_inputs_a_forward_takes():
    class NoMaskModel(torch.nn.Module):
        def forward(self, input_ids, labels=None):
            return input_ids

    assert forward_input_names(NoMaskModel()) == ["input_ids"]
    batch = PadToLongest(0, ["input_ids"])([{"input_ids": np.array([5, 6]), "labels": torch.tensor(1)},
                                             {"input_ids": np.array([7]), "labels": torch.tensor(0)}])
    assert set(batch) == {"input_ids", "labels"}
    assert batch["input_ids"].tolist() == [[5, 6], [7, 0]]


def test_left_padding_tokenizers_are_padded_on_the_left():
    batch = PadToLongest(0, ["input_ids", "attention_mask"], "left")(
        [{"input_ids": np.array([5, 6]), "labels": torch.tensor(1)},
         {"input_ids": np.array([7]), "labels": torch.tensor(0)}])
    assert batch["input_ids"].tolist() == [[5, 6], [0, 7]]
    assert batch["attention_mask"].tolist() == [[1, 1], [0, 1]]


def test_bpe_window_length_is_checked_on_real_windows_not_a_repeat(standins):
    # The stand-in's tokenizer takes 128 tokens. "ACGT" repeats compress far better than real DNA: they pass.
    length = 460
    model, tokenizer = build_or_load(standins["dnabert2"], length, CLASSES, seed=0)  # the old check: a repeat
    long_windows = windows_table(40, seed=5, length=length)["sequence"].tolist()
    assert max(len(tokenizer(window)["input_ids"]) for window in long_windows) > 128
    with pytest.raises(PlasmidlmError, match=rf"windows.length: {length}-nt windows need up to \d+ tokens .*"
                                             r"limit of 128 \(the tokenizer's model_max_length 128\)"):
        build_or_load(standins["dnabert2"], length, CLASSES, seed=0, sample_windows=long_windows)


def test_esm_limit_excludes_the_positions_before_the_first_token(standins):
    # 40 position embeddings, positions start after padding index 1: 38 tokens, i.e. 36 6-mers + <cls> + <eos>.
    fits, too_long = "A" * (36 * 6), "A" * (37 * 6)
    build_or_load(standins["nucleotide_transformer"], len(fits), CLASSES, seed=0, sample_windows=[fits])
    with pytest.raises(PlasmidlmError, match=r"need up to 39 tokens .*limit of 38 \(max_position_embeddings 40, "
                                             r"positions starting after padding index 1\)"):
        build_or_load(standins["nucleotide_transformer"], len(too_long), CLASSES, seed=0, sample_windows=[too_long])


def test_evaluation_never_truncates_a_window_the_model_cannot_take(standins, trained):
    model, tokenizer, metadata = load_checkpoint(trained["nucleotide_transformer"][0])
    with pytest.raises(PlasmidlmError, match="window 2 tokenizes to 39 tokens, above the model's limit of 38"):
        predict_proba(model, tokenizer, metadata, ["A" * 60, "A" * (37 * 6)])


def test_raw_sequence_for_a_kmer_vocabulary_is_caught_before_training(standins):
    with pytest.raises(PlasmidlmError, match=r"model.kmer: 100% of the tokens of 10 sampled training windows are "
                                             r"the unknown token '\[UNK\]' when the model is fed the raw sequence "
                                             r"\(model.kmer: null\); set model.kmer to the k"):
        build_or_load(standins["dnabert"] | {"kmer": None}, WINDOW, CLASSES, seed=0,
                      sample_windows=windows_table(10, seed=6)["sequence"].tolist())


@pytest.mark.parametrize("family", ["nucleotide_transformer", "grover", "decoder"])
def test_kmer_text_for_a_raw_sequence_tokenizer_is_caught_before_training(family, standins):
    with pytest.raises(PlasmidlmError, match=r"model.kmer: the tokenizer reads the raw sequence \(\d+ tokens per "
                                             r"window\), so k-mer text \(model.kmer: 6\) .* set model.kmer: null"):
        build_or_load(standins[family] | {"kmer": 6}, WINDOW, CLASSES, seed=0,
                      sample_windows=windows_table(10, seed=6)["sequence"].tolist())


def test_hub_models_default_to_the_raw_sequence_and_the_builtin_to_6mers(standins, trained):
    assert load_checkpoint(trained["nucleotide_transformer"][0])[2]["kmer"] is None
    model, _ = build_or_load({"name_or_path": "builtin", "preset": "tiny", "kmer": None}, WINDOW, CLASSES, seed=0)
    assert model.config.plasmidlm["kmer"] == 6


def test_embeddings_come_from_the_model_body_of_every_family(standins, trained):
    for family, (checkpoint, _) in trained.items():
        model, tokenizer, metadata = load_checkpoint(checkpoint, trust_remote_code=standins[family]["trust_remote_code"])
        windows = windows_table(5, seed=7)["sequence"].tolist()
        embeddings = embed_windows(model, tokenizer, metadata, windows, batch_size=2, precision="fp32")
        assert embeddings.shape == (5, 32) and np.isfinite(embeddings).all(), family
        np.testing.assert_allclose(embed_windows(model, tokenizer, metadata, windows[:1], precision="fp32"),
                                   embeddings[:1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_with_default_targets_trains_and_reloads(family, standins, tmp_path, one_thread):
    summary = fine_tune(windows_table(8, seed=1), windows_table(4, seed=2), classes=CLASSES,
                        model_config=standins[family] | {"lora": LORA}, train_config=TRAIN | {"max_steps": 2},
                        window_length=WINDOW, output_dir=tmp_path, seed=0)
    assert 0 < summary["trainable_parameters"] < summary["parameters"]
    model, tokenizer, metadata = load_checkpoint(tmp_path / "checkpoint-2",
                                                 trust_remote_code=standins[family]["trust_remote_code"])
    assert predict_proba(model, tokenizer, metadata, windows_table(3, seed=3)["sequence"]).shape == (3, 2)


# --- the whole workflow: one run with an experiment per family ---------------------------------------

# The embeddings baseline of the workflow runs on this family (custom code, a body that returns a tuple); the
# test of each other family runs the same library step on its checkpoint.
WORKFLOW_EMBEDDINGS = "dnabert2"


def hub_id(family: str) -> str:
    return f"standins/{family}"


def families_config(standins: dict, data, new_fasta, store) -> dict:
    """The smallest run of every model-side stage, an experiment per family: 2 steps and one checkpoint (the
    evaluation of every checkpoint is the shared finished run's to show), the evidence of each best checkpoint,
    predict; without the baselines that use no model but the embeddings'. Each family's model is a hub id at
    branch main of the stand-in hub, fetched into `store`."""
    return {
        "run_name": "families",
        "model_store": str(store),
        "data": {"fasta": str(data.fasta), "labels": str(data.labels)},
        "split": {"near_duplicates": {"enabled": False}},
        "windows": {"length": WINDOW, "val_count": 16, "test_count": 40},
        "model": {"preset": "tiny"},
        "train": {"max_steps": 2, "save_steps": 2, "logging_steps": 1, "batch_size": 8, "learning_rate": 1e-3},
        "evaluate": {"bootstrap": 10},
        "baselines": {"kmer": {"enabled": False}, "composition": {"enabled": False}, "cnn": {"enabled": False},
                      "embeddings": {"enabled": True, "model": WORKFLOW_EMBEDDINGS, "windows_per_plasmid": 1,
                                     "cnn_epochs": 1}},
        "experiments": {family: {"windows": {"strategy": "random", "per_plasmid": 2},
                                 "model": model_config | {"name_or_path": hub_id(family), "revision": "main"}}
                        for family, model_config in standins.items()},
        "predict": {"fasta": {"new": str(new_fasta)}},
    }


@pytest.fixture(scope="module")
def stand_in_hub(standins):
    """The stand-in hub serving each family's stand-in as standins/<family>, branch main."""
    server = HubServer()
    server.commits = {family: server.add_commit(hub_id(family), folder_files(model_config["name_or_path"]))
                      for family, model_config in standins.items()}
    yield server
    server.stop()


@pytest.fixture(scope="module")
def families_run(standins, stand_in_hub, tmp_path_factory):
    """(run folder, data set, FASTA to predict) of one finished workflow run with every family, each fetched from
    the stand-in hub (the run's environment allows the hub; its jobs switch it off)."""
    workdir = tmp_path_factory.mktemp("families_run")
    data = make_dataset(workdir / "data", counts={"alpha": 10, "beta": 10}, seed=3)
    new_fasta = write_fasta(workdir / "new.fasta", [("new_1", random_windows(1, 150, seed=8)[0])])
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(families_config(standins, data, new_fasta, workdir / "store")))
    result = snakemake("--directory", str(workdir), "--configfile", str(config), "--cores", "2", check=False,
                       env=online_env(stand_in_hub.url, workdir / "hf_home"))
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir / "results" / "families", data, new_fasta


@pytest.mark.parametrize("family", FAMILIES)
def test_family_runs_through_the_whole_workflow(family, standins, families_run, tmp_path, capsys):
    run, data, new_fasta = families_run
    comparison = pd.read_csv(run / "report" / "comparison.tsv", sep="\t")
    rows = comparison[comparison["experiment"] == family]
    assert rows["checkpoint"].astype(int).tolist() == [2]
    assert (rows["test_windows"] == 40).all()
    predictions = pd.read_csv(run / "predict" / "new" / f"{family}.sequences.tsv", sep="\t")
    assert predictions["windows"].tolist() == [3]  # 150 nt in 60-nt tiles: 0, 60 and one flush with the end
    trust = standins[family]["trust_remote_code"]

    if family == WORKFLOW_EMBEDDINGS:
        assert {"embeddings_logistic", "embeddings_cnn"} <= set(comparison["experiment"])
    else:
        baselines_steps.embeddings_baseline(
            fasta=data.fasta, split_path=run / "data" / "split.tsv", test_windows=run / "data" / "test_windows.tsv.gz",
            model=str(run / family / "model"), from_experiment=True, trust_remote_code=trust, n_bootstrap=0, seed=0,
            windows_config={"length": WINDOW, "circular": False, "ambiguous": "keep", "max_n_fraction": 1.0},
            embeddings_config={"kmer": None, "windows_per_plasmid": 1, "max_windows": None, "C": 1.0, "cnn_epochs": 1,
                               "cnn_channels": 8},
            out_logistic_metrics=tmp_path / "logistic.json", out_logistic_predictions=tmp_path / "logistic.tsv.gz",
            out_cnn_metrics=tmp_path / "cnn.json", out_cnn_predictions=tmp_path / "cnn.tsv.gz")
        assert json.loads((tmp_path / "cnn.json").read_text())["window"]["n"] == 40

    # A checkpoint copied elsewhere works on its own with the command-line tool.
    copy = shutil.copytree(run / family / "model" / "checkpoint-2", tmp_path / "copied")
    options = ["--trust-remote-code"] if trust else []
    for command in ("predict", "embed"):
        assert cli.main([command, "--model", str(copy), "--fasta", str(new_fasta), "--out", str(tmp_path / command),
                         *options]) == 0
    assert pd.read_csv(tmp_path / "predict.sequences.tsv", sep="\t")["windows"].tolist() == [3]
    assert np.load(tmp_path / "embed.windows.npy").shape == (3, 32)
    if trust:
        capsys.readouterr()
        assert cli.main(["predict", "--model", str(copy), "--fasta", str(new_fasta), "--out",
                         str(tmp_path / "refused")]) == 1
        error = capsys.readouterr().err.strip().splitlines()
        assert error[-1].startswith("plasmidlm: error: ") and "--trust-remote-code" in error[-1]
        assert not (tmp_path / "refused.sequences.tsv").exists()


# --- hub models: fetched once on the host that runs snakemake, pinned, loaded offline -------------------------

def test_each_hub_model_is_fetched_once_before_the_jobs_and_no_job_requests_anything(stand_in_hub, families_run):
    run, _, _ = families_run
    store = run.parent.parent / "store"
    revision_calls = [path for path in stand_in_hub.paths() if "/revision/" in path]
    assert sorted(revision_calls) == sorted(f"GET /api/models/{hub_id(family)}/revision/main?blobs=true"
                                            for family in FAMILIES)
    manifests = {family: store / f"standins--{family}" / "revisions" / "main.json" for family in FAMILIES}
    last_fetch = max(path.stat().st_mtime for path in manifests.values())
    assert max(when for when, _, _ in stand_in_hub.requests) <= last_fetch
    provenance = json.loads((run / "provenance.json").read_text())
    for family, path in manifests.items():
        commit = stand_in_hub.commits[family]
        assert provenance["models"][str(path)]["commit"] == commit
        train_log = (run / "logs" / family / "train.log").read_text()
        assert f"model {hub_id(family)}@{commit} (pinned from 'main'): " in train_log
    assert stand_in_hub.commits["dnabert2"] in (run / "report" / "report.html").read_text()


def test_moved_branches_stay_pinned_and_a_new_revision_replans_only_the_jobs_that_use_the_model(
        stand_in_hub, families_run, standins):
    run, data, new_fasta = families_run
    workdir = run.parent.parent
    for family, model_config in standins.items():  # every branch moves to a second commit
        stand_in_hub.add_commit(hub_id(family), folder_files(model_config["name_or_path"]) | {"extra.json": b"{}"})
    config = families_config(standins, data, new_fasta, workdir / "store")
    second = stand_in_hub.repos[hub_id("grover")]["branches"]["main"]
    config["experiments"]["grover"]["model"]["revision"] = second
    changed = workdir / "changed_revision.yaml"
    changed.write_text(yaml.safe_dump(config))
    requests = len(stand_in_hub.requests)
    plan = snakemake("--directory", str(workdir), "--configfile", str(changed), "-n",
                     env=online_env(stand_in_hub.url, workdir / "hf_home")).stdout  # the plan, not the log
    stats = plan.split("Job stats:")[1].split("total")[0]
    jobs = {line.split()[0] for line in stats.splitlines()[3:] if line.strip()}
    assert jobs == {"fetch_model", "train", "model_evidence", "predict", "provenance", "report", "manifest", "all"}
    experiments = set(re.findall(r"experiment=(\w+)", plan))
    assert experiments == {"grover"}  # the other experiments stay pinned to their first commit
    assert f"repo=standins--grover, revision={second}" in plan
    assert len(stand_in_hub.requests) == requests
