"""Hub models pinned to a commit, fetched once into a local store, and loaded from it with the hub switched off.

A hub model (`model.name_or_path: org/name`, `model.revision`: a commit, tag or branch) is fetched by one step on
the host that has internet (`fetch`): the revision is resolved to its commit, the files a model needs (one weight
format) are downloaded into a hidden temporary folder, checked against the hub's sizes and hashes, and renamed
into the store, `<store>/<org>--<name>/<commit>/`. Its manifest, `<store>/<org>--<name>/revisions/<revision>.json`,
records the commit, every file's size and SHA-256, the parameter count, dtype and custom code. While that file
exists the revision stays pinned to that commit: a later run, with any run name, makes no request.

A local model folder gets the same manifest (`manifest_local`, hashes and no commit), at
`<store>/local/<folder name>-<hash of its path>.json`.

Jobs that load the model call `model_folder(manifest)`: the store entry is checked against its manifest (a file
that differs is an error naming it, never a download) and the hub is switched off (`offline`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import struct
import sys
from pathlib import Path
from urllib.parse import quote

from plasmidlm import PlasmidlmError, io, versions
from plasmidlm.config import BUILTIN, PRETRAINED

logger = logging.getLogger(__name__)

COMMIT = re.compile(r"^[0-9a-f]{40}$")
# Weight formats by preference; a snapshot gets the first the repository has (with its shard index), not the others.
WEIGHT_FORMATS = (
    (re.compile(r"^(model|pytorch_model)(-\d+-of-\d+)?\.safetensors$"), "model.safetensors.index.json"),
    (re.compile(r"^pytorch_model(-\d+-of-\d+)?\.bin$"), "pytorch_model.bin.index.json"),
)
# What a model needs besides its weights: configuration, tokenizer and code files in the repository's top folder.
NEEDED = re.compile(r"^[^/]+\.(json|txt|model|py|tiktoken)$")
# Files of other frameworks and formats that transformers does not read for a PyTorch model.
NOT_NEEDED = re.compile(r"(^tf_model|^flax_model|^rust_model|\.(h5|msgpack|onnx|ot|gguf|ckpt)$|\.bin\.index\.json$|"
                        r"\.safetensors\.index\.json$)")
# The HTTP client's exceptions for a host that cannot reach the hub (httpx's names; not OSErrors)
CONNECTION_ERRORS = {"ConnectError", "TimeoutException", "NetworkError", "ProxyError"}


# --- where things lie ----------------------------------------------------------------------------------------

def model_kind(name_or_path: str) -> str:
    """"builtin", "pretrained", "local" (an existing folder) or "hub" (an org/name id)."""
    if name_or_path in (BUILTIN, PRETRAINED):
        return name_or_path
    return "local" if Path(name_or_path).expanduser().is_dir() else "hub"


def repo_folder(store, repo_id: str) -> str:
    return f"{store}/{repo_id.replace('/', '--')}"


def snapshot_dir(store, repo_id: str, commit: str) -> str:
    return f"{repo_folder(store, repo_id)}/{commit}"


def revision_manifest(store, repo_id: str, revision: str) -> str:
    """The manifest that pins `revision` of `repo_id` to a commit (a branch name like refs/pr/1 is quoted)."""
    return f"{repo_folder(store, repo_id)}/revisions/{quote(revision, safe='')}.json"


def local_manifest(store, folder) -> str:
    folder = Path(folder).expanduser().resolve()
    return f"{store}/local/{folder.name}-{hashlib.sha256(str(folder).encode()).hexdigest()[:8]}.json"


def manifest_path(store, name_or_path: str, revision: str) -> str | None:
    """The manifest a job that loads this model depends on; None for the built-in and pretrained models."""
    kind = model_kind(name_or_path)
    if kind == "hub":
        return revision_manifest(store, name_or_path, revision)
    return local_manifest(store, name_or_path) if kind == "local" else None


# --- choosing and describing files ---------------------------------------------------------------------------

def needed_files(files: list[str]) -> list[str]:
    """The files of a repository a PyTorch model needs: configuration, tokenizer and code files, and the weights
    in one format (safetensors before pytorch_model.bin; TensorFlow, Flax, ONNX and GGUF never)."""
    chosen = [name for name in files if NEEDED.match(name) and not NOT_NEEDED.search(name)]
    for weights, index in WEIGHT_FORMATS:
        found = [name for name in files if weights.match(name)]
        if found:
            return sorted(chosen + found + ([index] if index in files else []))
    return sorted(chosen)


def git_blob_sha1(path) -> str:
    """The git object id of a file (how the hub names the blob of a file not stored in LFS)."""
    digest = hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safetensors_tensors(path) -> dict[str, dict]:
    """The tensors (dtype, shape) a safetensors file holds, read from its header alone."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return header


def weight_summary(folder: Path, files: list[str]) -> tuple[int, str]:
    """(parameter count, dtype) of a model folder's weights: the most common dtype by parameters."""
    counts: dict[str, int] = {}
    for name in files:
        if name.endswith(".safetensors"):
            for tensor in safetensors_tensors(folder / name).values():
                counts[tensor["dtype"]] = counts.get(tensor["dtype"], 0) + _numel(tensor["shape"])
        elif name.endswith(".bin"):
            import torch

            for tensor in torch.load(folder / name, map_location="cpu", weights_only=True, mmap=True).values():
                dtype = str(tensor.dtype).removeprefix("torch.")
                counts[dtype] = counts.get(dtype, 0) + tensor.numel()
    if not counts:
        return 0, "none"
    return sum(counts.values()), max(counts, key=counts.get)


def _numel(shape) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def architecture(folder: Path) -> dict:
    """What the memory estimate reads from config.json: hidden size, layers, and the model's own code (auto_map)."""
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    auto_map = config.get("auto_map") or {}
    hidden = next((config[key] for key in ("hidden_size", "d_model", "n_embd", "dim") if config.get(key)), None)
    layers = next((config[key] for key in ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
                   if config.get(key)), None)
    return {"model_type": config.get("model_type"), "hidden_size": hidden, "layers": layers, "auto_map": auto_map}


def describe(folder, files: list[str]) -> dict:
    """The manifest body of a model folder: each file's size and SHA-256, parameters, dtype, custom code."""
    folder = Path(folder)
    weights_parameters, dtype = weight_summary(folder, files)
    shape = architecture(folder)
    return {
        "files": {name: {"bytes": (folder / name).stat().st_size, "sha256": io.sha256sum(folder / name)}
                  for name in files},
        "parameters": weights_parameters,
        "dtype": dtype,
        "hidden_size": shape["hidden_size"],
        "layers": shape["layers"],
        "model_type": shape["model_type"],
        "custom_code": {"auto_map": shape["auto_map"], "files": [name for name in files if name.endswith(".py")]}
        if shape["auto_map"] else None,
    }


# --- fetching ------------------------------------------------------------------------------------------------

def _hub_error(repo_id: str, revision: str, error: Exception, endpoint: str | None) -> PlasmidlmError:
    """The one-line cause of a failed hub request."""
    from huggingface_hub import constants, errors

    where = f"{repo_id}@{revision}"
    if isinstance(error, errors.GatedRepoError):
        cause = "gated model: accept its conditions on the hub page and set HF_TOKEN (or run `hf auth login`)"
    elif isinstance(error, errors.RevisionNotFoundError):
        cause = f"no revision {revision!r} in the repository (a branch, tag or full commit hash)"
    elif isinstance(error, errors.RepositoryNotFoundError):
        cause = "no such repository on the hub (or private: set HF_TOKEN)"
    elif isinstance(error, ConnectionError) or CONNECTION_ERRORS & {kind.__name__ for kind in type(error).__mro__}:
        cause = (f"cannot reach the hub at {endpoint or constants.ENDPOINT} ({type(error).__name__}); fetch on a "
                 f"host with internet (the submitting host; HF_HUB_OFFLINE must be unset there)")
    elif isinstance(error, OSError) and getattr(error, "errno", None) == 28:
        cause = f"no space left on the device of the model store: {error}"
    else:
        cause = f"download failed: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    return PlasmidlmError(f"model {where}: {cause}")


def _listed_digest(sibling) -> tuple[str, str]:
    """(kind, digest) the hub lists for a file: SHA-256 for LFS files, the git blob id for the others."""
    if sibling.lfs is not None:
        return "sha256", sibling.lfs.sha256
    return "git-sha1", sibling.blob_id


def _check_download(folder: Path, name: str, sibling) -> None:
    path = folder / name
    size = sibling.lfs.size if sibling.lfs is not None else sibling.size
    if size is not None and path.stat().st_size != size:
        raise PlasmidlmError(f"{name}: {path.stat().st_size} bytes, the hub lists {size}")
    kind, expected = _listed_digest(sibling)
    if expected:
        actual = io.sha256sum(path) if kind == "sha256" else git_blob_sha1(path)
        if actual != expected:
            raise PlasmidlmError(f"{name}: {kind} {actual} differs from the hub's {expected}")


def _download(repo_id: str, commit: str, siblings: dict, folder: Path, *, token, endpoint) -> None:
    """Download `siblings` (name -> the hub's listing) of `commit` into `folder` and check each against the hub."""
    from huggingface_hub import hf_hub_download

    for name in sorted(siblings):
        hf_hub_download(repo_id, name, revision=commit, local_dir=folder, token=token, endpoint=endpoint)
        _check_download(folder, name, siblings[name])
    shutil.rmtree(folder / ".cache", ignore_errors=True)  # the client's download metadata, not the model's


def _write_manifest(out, manifest: dict) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    io.write_json(manifest, out)


def fetch(repo_id: str, revision: str, store, *, out_manifest, token=None, endpoint: str | None = None) -> dict:
    """Resolve `revision` of hub model `repo_id` to its commit, download what the model needs into the store (unless
    that commit is there already) and write `out_manifest`. A failed download leaves nothing in the store.

    `token` and `endpoint` (a hub mirror) default to huggingface_hub's (HF_TOKEN, HF_ENDPOINT)."""
    if COMMIT.match(revision) and Path(snapshot_dir(store, repo_id, revision)).is_dir():
        commit, siblings = revision, None  # a commit already in the store: no request at all
    else:
        commit, siblings = _resolve(repo_id, revision, token=token, endpoint=endpoint)
    pinned_from = None if revision == commit else revision
    if pinned_from:
        logger.info(f"model {repo_id}: revision {revision!r} resolved to commit {commit}; pinned until "
                    f"model.revision changes")
    entry = Path(snapshot_dir(store, repo_id, commit))
    if entry.is_dir():
        logger.info(f"model {repo_id}@{commit}: already in the store at {entry}; nothing downloaded")
    else:
        _fetch_snapshot(repo_id, commit, siblings, entry, token=token, endpoint=endpoint)
    files = sorted(str(path.relative_to(entry)) for path in entry.rglob("*") if path.is_file())
    manifest = {"repository": repo_id, "revision": revision, "commit": commit, "pinned_from": pinned_from,
                "path": str(entry), **describe(entry, files), "fetched_with": versions.library_versions()}
    _write_manifest(out_manifest, manifest)
    logger.info(f"model {repo_id}@{commit}: {manifest['parameters']:,} parameters ({manifest['dtype']}), "
                f"{len(files)} files" + (f"; custom code: {', '.join(manifest['custom_code']['files'])}"
                                         if manifest["custom_code"] else ""))
    return manifest


def _resolve(repo_id: str, revision: str, *, token, endpoint) -> tuple[str, dict]:
    """(commit, {file name: the hub's listing of it}) of a revision: one request."""
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=endpoint).model_info(repo_id, revision=revision, files_metadata=True, token=token)
    except Exception as error:  # the hub's HTTP errors, and the HTTP client's connection errors (not OSErrors)
        raise _hub_error(repo_id, revision, error, endpoint) from None
    return info.sha, {sibling.rfilename: sibling for sibling in info.siblings or []}


def _fetch_snapshot(repo_id: str, commit: str, siblings: dict, entry: Path, *, token, endpoint) -> None:
    """Download the needed files of a commit into a hidden temporary folder, check them, and rename it to `entry`."""
    wanted = needed_files(list(siblings))
    skipped = sorted(set(siblings) - set(wanted))
    logger.info(f"model {repo_id}@{commit}: downloading {len(wanted)} file(s) into {entry}"
                + (f"; not needed: {', '.join(skipped)}" if skipped else ""))
    tmp = io.temporary_path(entry)
    try:
        tmp.mkdir(parents=True)
        _download(repo_id, commit, {name: siblings[name] for name in wanted}, tmp, token=token, endpoint=endpoint)
        _check_code_references(tmp)
        try:
            os.replace(tmp, entry)
        except OSError:
            if not entry.is_dir():  # else another fetch put the same commit there first
                raise
    except PlasmidlmError as error:
        raise PlasmidlmError(f"model {repo_id}@{commit}: {error}") from None
    except Exception as error:
        raise _hub_error(repo_id, commit, error, endpoint) from None
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def _check_code_references(folder: Path) -> None:
    """A model whose auto_map names another repository ("org/repo--module.Class") would load code that is not pinned
    with the weights and needs the hub in every job: refused."""
    references = sorted({value.split("--")[0] for value in architecture(folder)["auto_map"].values()
                         if isinstance(value, str) and "--" in value})
    if references:
        raise PlasmidlmError(f"its auto_map loads code from another repository ({', '.join(references)}), which "
                             f"cannot be pinned with the weights; use a copy of the model with its code files")


def folder_files(folder) -> list[str]:
    """The files of a local model folder, hidden ones (tool and temporary files) left out, sorted."""
    folder = Path(folder).expanduser().resolve()
    return sorted(str(path) for path in folder.rglob("*")
                  if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts))


def manifest_local(folder, *, out_manifest) -> dict:
    """The manifest of a local model folder: every file's size and SHA-256 (no commit)."""
    folder = Path(folder).expanduser().resolve()
    files = [str(Path(path).relative_to(folder)) for path in folder_files(folder)]
    manifest = {"repository": None, "revision": None, "commit": None, "pinned_from": None, "path": str(folder),
                **describe(folder, files), "fetched_with": versions.library_versions()}
    _write_manifest(out_manifest, manifest)
    logger.info(f"model folder {folder}: {len(files)} files, {manifest['parameters']:,} parameters")
    return manifest


# --- loading -------------------------------------------------------------------------------------------------

def offline() -> None:
    """Switch the hub off for this process: no request, whether huggingface_hub is imported yet or not."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


def model_name(manifest: dict) -> str:
    return f"{manifest['repository']}@{manifest['commit']}" if manifest["repository"] else manifest["path"]


def verify(manifest: dict) -> list[str]:
    """One line per file of the store entry that is missing or differs from the manifest (empty: all good)."""
    folder = Path(manifest["path"])
    problems = []
    for name, listed in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != listed["bytes"]:
            problems.append(f"{path}: {path.stat().st_size} bytes, the manifest lists {listed['bytes']}")
        elif io.sha256sum(path) != listed["sha256"]:
            problems.append(f"{path}: SHA-256 differs from the manifest")
    return problems


def model_folder(manifest_path) -> str:
    """The checked local folder of the model a manifest describes, with the hub switched off for this process."""
    offline()
    manifest = io.read_json(manifest_path)
    problems = verify(manifest)
    if problems:
        how = ("delete that folder and its revisions/ manifest to fetch it again" if manifest["repository"]
               else "restore the folder, or delete the manifest to record its new content")
        raise PlasmidlmError(f"model {model_name(manifest)}: the store no longer matches {manifest_path}: "
                             f"{problems[0]}{f' (and {len(problems) - 1} more)' if len(problems) > 1 else ''}; {how}")
    pinned = f" (pinned from {manifest['pinned_from']!r})" if manifest.get("pinned_from") else ""
    logger.info(f"model {model_name(manifest)}{pinned}: {len(manifest['files'])} files checked, loaded offline "
                f"from {manifest['path']}")
    return manifest["path"]


def provenance_entry(manifest: dict) -> dict:
    """What the run's provenance records of a model: repository, revision, commit, files with their hashes."""
    return {key: manifest.get(key) for key in ("repository", "revision", "commit", "pinned_from", "path",
                                               "parameters", "dtype", "custom_code", "files", "fetched_with")}
