"""The results manifest (plasmidlm.manifest), and a finished results folder moved to a new place."""

from __future__ import annotations

import hashlib
import os
import shutil

import pandas as pd
import pytest

from plasmidlm import PlasmidlmError
from plasmidlm.io import sha256sum
from plasmidlm.manifest import (
    COLUMNS,
    MANIFEST_NAME,
    read_manifest,
    run_files,
    verify_manifest,
    write_manifest,
)


@pytest.fixture
def run_dir(tmp_path):
    """A small results folder with nested files, hidden files and the manifest job's own log."""
    run = tmp_path / "results" / "demo"
    files = {
        "report/report.html": b"<!DOCTYPE html>",
        "data/split.tsv": b"id\tlabel\tsplit\na\tx\ttrain\n",
        "first/model/checkpoint-3/model.safetensors": os.urandom(3000),
        "first/eval/checkpoint-3/metrics.json": b"{}",
        "logs/report.log": b"done\n",
        "logs/manifest.log": b"being written\n",  # the manifest job's own log: never listed
        "first/model/.snakemake_timestamp": b"",  # hidden: never listed
        ".snakemake/metadata/x": b"",
        "with space/name.txt": b"ok",
    }
    for name, content in files.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(content)
    return run


def test_manifest_lists_every_result_file_with_size_and_checksum(run_dir):
    path = write_manifest(run_dir)
    assert path == run_dir / MANIFEST_NAME
    table = pd.read_csv(path, sep="\t", dtype={"bytes": int})
    assert tuple(table.columns) == COLUMNS
    assert list(table["path"]) == ["data/split.tsv", "first/eval/checkpoint-3/metrics.json",
                                   "first/model/checkpoint-3/model.safetensors", "logs/report.log",
                                   "report/report.html", "with space/name.txt"]
    for row in table.itertuples():
        content = (run_dir / row.path).read_bytes()
        assert row.bytes == len(content)
        assert row.sha256 == hashlib.sha256(content).hexdigest()
    assert not list(run_dir.glob(".*partial"))


def test_manifest_is_not_listed_in_itself_when_rewritten(run_dir):
    write_manifest(run_dir)
    first = (run_dir / MANIFEST_NAME).read_bytes()
    write_manifest(run_dir)
    assert (run_dir / MANIFEST_NAME).read_bytes() == first
    assert MANIFEST_NAME not in {str(path) for path in run_files(run_dir)}


def test_sha256_reads_in_chunks(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(10_000))
    assert sha256sum(path, chunk_bytes=64) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_moved_folder_verifies(run_dir, tmp_path):
    write_manifest(run_dir)
    moved = tmp_path / "colleague" / "demo"
    shutil.move(run_dir, moved)
    assert not run_dir.exists()
    assert verify_manifest(moved) == []


def test_verify_reports_every_kind_of_mismatch(run_dir):
    write_manifest(run_dir)
    (run_dir / "data" / "split.tsv").write_bytes(b"id\tlabel\tsplit\na\ty\ttrain\n")  # same size
    (run_dir / "report" / "report.html").write_bytes(b"<html>")
    (run_dir / "logs" / "report.log").unlink()
    (run_dir / "extra.tsv").write_text("new\n")
    (run_dir / ".hidden").write_text("ignored\n")
    (run_dir / "logs" / "manifest.log").write_text("more lines\n")  # unlisted by design
    assert sorted(verify_manifest(run_dir)) == [
        "checksum differs: data/split.tsv",
        "missing: logs/report.log",
        "not in manifest: extra.tsv",
        "size differs: report/report.html (6 bytes, listed 15)",
    ]


def test_missing_or_malformed_manifest_is_a_clear_error(run_dir):
    with pytest.raises(PlasmidlmError, match="no manifest"):
        verify_manifest(run_dir)
    (run_dir / MANIFEST_NAME).write_text("file\tsize\nx\t1\n")
    with pytest.raises(PlasmidlmError, match="columns"):
        read_manifest(run_dir / MANIFEST_NAME)


# --- a finished workflow run (the shared reduced demo run) -------------------------------------------------

def test_workflow_writes_a_manifest_of_the_whole_run(finished_run):
    run = finished_run.run
    listed = {row["path"] for row in read_manifest(run / MANIFEST_NAME)}
    for path in ("data/split.tsv", "report/report.html", "report/comparison.tsv", "provenance.json",
                 "config.yaml", "first/model/checkpoint-6/model.safetensors", "logs/report.log"):
        assert path in listed
    assert all(not path.startswith("/") and ".." not in path.split("/") for path in listed)
    assert "logs/manifest.log" not in listed and (run / "logs" / "manifest.log").is_file()
    assert verify_manifest(run) == []
    # written after everything else: no listed file is newer than the manifest
    manifest_time = (run / MANIFEST_NAME).stat().st_mtime
    assert max((run / path).stat().st_mtime for path in listed) <= manifest_time


def test_moved_results_folder_verifies_and_its_checkpoints_predict(finished_run, tmp_path):
    from plasmidlm.cli import main

    moved = shutil.copytree(finished_run.run, tmp_path / "shared" / "e2e")
    assert verify_manifest(moved) == []
    # only relative paths inside: no result file names the folder's original place (the report is regenerated
    # from a moved folder in test_workflow.py)
    for path in moved.rglob("*"):
        if path.suffix in {".json", ".tsv", ".yaml", ".html"}:
            assert str(finished_run.run) not in path.read_text(errors="replace"), path

    checkpoint = sorted((moved / "random" / "model").glob("checkpoint-*"))[-1]
    fasta = finished_run.workdir / "new.fasta"
    for name, model in (("moved", checkpoint), ("original", finished_run.run / checkpoint.relative_to(moved))):
        assert main(["predict", "--model", str(model), "--fasta", str(fasta), "--out", str(tmp_path / name)]) == 0
    moved_predictions = pd.read_csv(tmp_path / "moved.sequences.tsv", sep="\t")
    assert list(moved_predictions["sequence_id"]) == ["new_1", "new_2", "tiny"]
    pd.testing.assert_frame_equal(moved_predictions, pd.read_csv(tmp_path / "original.sequences.tsv", sep="\t"))
