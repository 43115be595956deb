"""plasmidlm.hub against a local stand-in of the hub (tests/hub_server.py): a revision pinned to its commit, fetched
once into the store, checked, loaded offline; clear errors; the memory a model's size asks for."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from conftest import logged_messages
from hub_server import HubServer, folder_files
from plasmidlm import PlasmidlmError, hub, io, resources, versions
from plasmidlm.model import build_or_load, load_checkpoint
from standins import write_standin

REPO = "standins/dnabert2"
CLASSES = ["alpha", "beta"]
CORPUS = ["ACGTTGCAAGGCTTAACCGGTA" * 40, "TTGACCAGGATCCAGTACGTAC" * 40]


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """The DNABERT-2 stand-in (custom code) as a folder, and its model config block."""
    folder = tmp_path_factory.mktemp("standin") / "dnabert2"
    return folder, write_standin("dnabert2", folder, CORPUS)


@pytest.fixture
def server(standin, monkeypatch):
    """The stand-in hub with the model at a commit of branch main, files of other formats beside its weights; the
    hub client allowed online (conftest switches it off for the other tests)."""
    from huggingface_hub import constants

    folder, _ = standin
    hub_server = HubServer()
    files = folder_files(folder) | {"tf_model.h5": b"tf weights", "pytorch_model.bin": b"torch weights",
                                    "README.md": b"# card"}
    hub_server.first = hub_server.add_commit(REPO, files)
    hub_server.files = files
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield hub_server
    hub_server.stop()


def move_branch(server: HubServer) -> str:
    """A second commit on main whose model code differs."""
    changed = dict(server.files)
    changed["modeling_fusedbert.py"] += b"\n# changed in the second commit\n"
    return server.add_commit(REPO, changed)


def fetch(server, store, revision="main", *, repo=REPO, out=None):
    out = out or hub.revision_manifest(store, repo, revision)
    return hub.fetch(repo, revision, store, out_manifest=out, endpoint=server.url), out


def test_branch_is_pinned_to_its_commit_with_only_the_files_a_model_needs(server, standin, tmp_path):
    with logged_messages() as messages:
        manifest, path = fetch(server, tmp_path / "store")
    folder, _ = standin
    assert manifest["commit"] == server.first and manifest["pinned_from"] == "main"
    assert any(f"revision 'main' resolved to commit {server.first}" in message for message in messages)
    assert sorted(manifest["files"]) == sorted(path.name for path in folder.iterdir())  # no tf, bin, README
    entry = tmp_path / "store" / "standins--dnabert2" / server.first
    assert manifest["path"] == str(entry)
    for name, listed in manifest["files"].items():
        assert listed == {"bytes": (folder / name).stat().st_size, "sha256": io.sha256sum(folder / name)}
    model, _ = build_or_load({"name_or_path": str(folder), "trust_remote_code": True, "kmer": None}, 60, CLASSES,
                             seed=0)
    assert manifest["parameters"] == sum(p.numel() for p in model.base_model.parameters())
    assert manifest["dtype"] == "F32"
    assert manifest["custom_code"]["files"] == ["configuration_fusedbert.py", "modeling_fusedbert.py"]
    assert manifest["custom_code"]["auto_map"]["AutoModel"] == "modeling_fusedbert.FusedBertModel"
    assert io.read_json(path) == json.loads(json.dumps(manifest))
    assert [entry.name for entry in (tmp_path / "store" / "standins--dnabert2").iterdir()] != []
    assert not list((tmp_path / "store" / "standins--dnabert2").glob(".*"))  # no temporary folder left


def test_a_fetched_commit_is_never_requested_again(server, tmp_path):
    fetch(server, tmp_path / "store")
    before = len(server.requests)
    manifest, _ = fetch(server, tmp_path / "store", server.first)
    assert server.paths()[before:] == []
    assert manifest["commit"] == server.first and manifest["pinned_from"] is None


def test_pinned_model_loads_with_the_code_of_its_commit_after_the_branch_moved_and_the_server_stopped(
        server, tmp_path):
    _, path = fetch(server, tmp_path / "store")
    move_branch(server)
    server.stop()
    folder = hub.model_folder(path)
    assert b"changed in the second commit" not in (tmp_path / folder / "modeling_fusedbert.py").read_bytes()
    model, _ = build_or_load({"name_or_path": folder, "trust_remote_code": True, "kmer": None}, 60, CLASSES, seed=0)
    assert any(name.endswith("Wqkv.weight") for name in model.state_dict())


def test_moving_the_branch_gives_a_new_revision_its_own_commit(server, tmp_path):
    fetch(server, tmp_path / "store")
    second = move_branch(server)
    manifest, _ = fetch(server, tmp_path / "store", second)
    assert manifest["commit"] == second
    assert "changed in the second commit" in (tmp_path / "store" / "standins--dnabert2" / second /
                                              "modeling_fusedbert.py").read_text()
    assert manifest["files"]["modeling_fusedbert.py"] != io.read_json(
        hub.revision_manifest(tmp_path / "store", REPO, "main"))["files"]["modeling_fusedbert.py"]


def test_a_store_file_that_no_longer_matches_its_manifest_is_an_error_naming_it(server, tmp_path):
    manifest, path = fetch(server, tmp_path / "store")
    weights = tmp_path / "store" / "standins--dnabert2" / server.first / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    requests = len(server.requests)
    with pytest.raises(PlasmidlmError, match=rf"model {REPO}@{server.first}: the store no longer matches .*"
                                             rf"{weights}: SHA-256 differs from the manifest"):
        hub.model_folder(path)
    assert len(server.requests) == requests  # never a silent download


@pytest.mark.parametrize("repo, revision, cause", [
    ("standins/missing", "main", "no such repository on the hub"),
    (REPO, "v9", "no revision 'v9' in the repository"),
])
def test_unknown_repository_or_revision_is_one_line_naming_the_model(repo, revision, cause, server, tmp_path):
    with pytest.raises(PlasmidlmError, match=rf"^model {repo}@{revision}: {cause}[^\n]*$"):
        fetch(server, tmp_path / "store", revision, repo=repo, out=tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "store").exists()


def test_gated_model_without_a_token_says_how_to_get_access(server, tmp_path):
    server.gated.add(REPO)
    with pytest.raises(PlasmidlmError, match=rf"^model {REPO}@main: gated model: .*HF_TOKEN"):
        fetch(server, tmp_path / "store", out=tmp_path / "m.json")


def test_no_network_on_the_fetching_host_is_named(server, tmp_path):
    server.stop()
    with pytest.raises(PlasmidlmError, match=rf"^model {REPO}@main: cannot reach the hub at .*host with internet"):
        fetch(server, tmp_path / "store", out=tmp_path / "m.json")


def test_a_download_cut_short_leaves_nothing_in_the_store(server, tmp_path):
    server.truncate.add("model.safetensors")
    with pytest.raises(PlasmidlmError, match=rf"^model {REPO}@{server.first}: download failed: .*model.safetensors"):
        fetch(server, tmp_path / "store")
    assert list((tmp_path / "store").rglob("*")) in ([], [tmp_path / "store" / "standins--dnabert2"])
    assert not (tmp_path / "store" / "standins--dnabert2" / "revisions").exists()


def test_local_folder_gets_a_manifest_with_hashes_and_no_commit(standin, tmp_path):
    folder, _ = standin
    out = hub.local_manifest(tmp_path / "store", folder)
    manifest = hub.manifest_local(folder, out_manifest=out)
    assert manifest["commit"] is None and manifest["path"] == str(folder.resolve())
    assert manifest["files"]["config.json"]["sha256"] == io.sha256sum(folder / "config.json")
    assert hub.model_folder(out) == str(folder.resolve())


def test_a_checkpoint_read_by_other_library_versions_logs_one_line_naming_them(tiny_checkpoint, tmp_path):
    checkpoint = shutil.copytree(tiny_checkpoint[0], tmp_path / "checkpoint")
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["plasmidlm"]["versions"] == versions.library_versions()
    config["plasmidlm"]["versions"] |= {"transformers": "4.29.0", "peft": "0.10.0"}
    (checkpoint / "config.json").write_text(json.dumps(config))
    with logged_messages() as messages:
        load_checkpoint(checkpoint)
    changed = [message for message in messages if "other library versions" in message]
    assert changed == [f"warning: checkpoint {checkpoint} was made with other library versions: peft 0.10.0 -> "
                       f"{versions.library_versions()['peft']}, transformers 4.29.0 -> "
                       f"{versions.library_versions()['transformers']}"]


def test_train_memory_of_a_100m_parameter_model_adds_the_documented_formula(tmp_path):
    model = {"parameters": 100_000_000, "hidden_size": 768, "layers": 12}
    batch, tokens = 32, 100
    builtin = resources.mem_mb("train", {"windows": 10.0})
    hub_model = resources.mem_mb(
        "train", {"windows": 10.0, "model": resources.model_mb("train", model, batch_size=batch, tokens=tokens)})
    fixed_and_windows = 3000 + 6.0 * 10.0
    formula = (100_000_000 * 12 + batch * tokens * 768 * 12 * 16 * 4) / 1e6  # the module docstring's, training
    assert builtin == 3100
    assert hub_model == math.ceil((fixed_and_windows + formula) / 100) * 100 == 6200


def test_revision_reaches_the_training_record_of_hub_models_only():
    from plasmidlm.config import resolve_experiments
    from plasmidlm.plan import experiment_model

    config = {"windows": {}, "train": {}, "model": {"name_or_path": "builtin", "revision": "main"},  # as validated
              "experiments": {"builtin": {}, "hub": {"model": {"name_or_path": REPO, "revision": "v2"}}}}
    experiments = resolve_experiments(config)
    assert "revision" not in experiment_model(config, experiments["builtin"], "pretrain/model")
    assert experiment_model(config, experiments["hub"], "pretrain/model")["revision"] == "v2"
