"""A manifest of a results folder: the relative path, size and SHA-256 of every file in it.

`write_manifest` lists a finished `results/<run>/` folder in `manifest.tsv` (columns `path`, `bytes`, `sha256`;
paths relative to the folder, with `/`). A copied, moved or shared folder is then checked with
`verify_manifest`, which needs nothing but the folder itself.
"""

from __future__ import annotations

import logging
import csv
import os
from pathlib import Path, PurePosixPath

from plasmidlm import PlasmidlmError, layout
from plasmidlm.io import sha256sum, write_atomic

logger = logging.getLogger(__name__)

MANIFEST_NAME = layout.MANIFEST
# The log of the job that writes the manifest (rule manifest, whose paths are layout.manifest and
# layout.manifest_log) is still being written while the files are hashed, so it is left out, like the
# manifest itself.
UNLISTED = frozenset({PurePosixPath(layout.MANIFEST), PurePosixPath(layout.MANIFEST_LOG)})
COLUMNS = ("path", "bytes", "sha256")


def is_listed(relative: PurePosixPath) -> bool:
    """Whether a file (path relative to the run folder) belongs in the manifest: not one of UNLISTED, and
    not hidden. Hidden names (a part starting with '.') are temporary or tool files, e.g. Snakemake's
    `.snakemake_timestamp`, NFS `.nfs*` files or editor swap files; they are not results.
    """
    return relative not in UNLISTED and not any(part.startswith(".") for part in relative.parts)


def run_files(run_dir) -> list[PurePosixPath]:
    """The relative paths of the files of `run_dir` that the manifest lists, sorted."""
    run_dir = Path(run_dir)
    found = []
    for folder, subfolders, files in os.walk(run_dir):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in files:
            relative = PurePosixPath(Path(folder, name).relative_to(run_dir).as_posix())
            if is_listed(relative) and (run_dir / relative).is_file():
                found.append(relative)
    return sorted(found)


def build_manifest(run_dir) -> list[dict]:
    """One row (path, bytes, sha256) per listed file of `run_dir`, sorted by path."""
    run_dir = Path(run_dir)
    return [{"path": str(relative), "bytes": (run_dir / relative).stat().st_size,
             "sha256": sha256sum(run_dir / relative)}
            for relative in run_files(run_dir)]


def write_manifest(run_dir) -> Path:
    """Write `run_dir/manifest.tsv` and return its path."""
    out = Path(layout.manifest(run_dir))
    rows = build_manifest(run_dir)

    def write(tmp):  # io.write_atomic's temporary name is hidden, so never listed itself
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(out, write)
    logger.info(f"manifest: {len(rows)} files, {sum(row['bytes'] for row in rows)} bytes -> {out}")
    return out


def read_manifest(path) -> list[dict]:
    """The rows of a manifest.tsv, `bytes` as int."""
    path = Path(path)
    if not path.is_file():
        raise PlasmidlmError(f"{path}: no manifest (written by the workflow's last step, rule manifest)")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise PlasmidlmError(f"{path}: columns {reader.fieldnames}, expected {list(COLUMNS)}")
        return [{"path": row["path"], "bytes": int(row["bytes"]), "sha256": row["sha256"]} for row in reader]


def verify_manifest(run_dir, manifest=None) -> list[str]:
    """Check a results folder against its manifest; return one line per mismatch (empty: all good).

    Mismatches: a listed file that is missing, or has another size or checksum; a file that is not listed
    (except hidden files and UNLISTED). Works wherever the folder now lies: paths are relative.
    """
    run_dir = Path(run_dir)
    listed = read_manifest(run_dir / MANIFEST_NAME if manifest is None else manifest)
    problems = []
    for row in listed:
        path = run_dir / row["path"]
        if not path.is_file():
            problems.append(f"missing: {row['path']}")
        elif path.stat().st_size != row["bytes"]:
            problems.append(f"size differs: {row['path']} ({path.stat().st_size} bytes, listed {row['bytes']})")
        elif sha256sum(path) != row["sha256"]:
            problems.append(f"checksum differs: {row['path']}")
    known = {row["path"] for row in listed}
    problems.extend(f"not in manifest: {relative}" for relative in run_files(run_dir)
                    if str(relative) not in known)
    return problems
