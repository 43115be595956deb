"""Reading and validating the inputs (FASTA + label table), and writing outputs atomically."""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import zlib
from collections import Counter
from pathlib import Path
from typing import Iterator

import pandas as pd
from Bio import SeqIO

from plasmidlm import PlasmidlmError

IUPAC_NUCLEOTIDES = set("ACGTURYSWKMBDHVN")
_NON_IUPAC = re.compile(f"[^{''.join(sorted(IUPAC_NUCLEOTIDES))}]")
_IUPAC_BYTES = "".join(sorted(IUPAC_NUCLEOTIDES)).encode()


def is_iupac(sequence: str) -> bool:
    """Whether every character is an (upper-case) IUPAC nucleotide code; a byte-table pass, ~4x a regex search."""
    try:
        return not sequence.encode("ascii").translate(None, _IUPAC_BYTES)
    except UnicodeEncodeError:
        return False


GZIP_MAGIC = b"\x1f\x8b"


def open_text(path: str | Path):
    """Open a plain or gzip-compressed UTF-8 text file for reading (gzip detected by magic bytes, not suffix;
    a byte-order mark is skipped)."""
    path = Path(path)
    if not path.exists():
        raise PlasmidlmError(f"{path}: file not found")
    if path.is_dir():
        raise PlasmidlmError(f"{path}: is a directory, expected a file")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(2)
    except OSError as error:
        raise PlasmidlmError(f"{path}: cannot read: {error.strerror or error}") from None
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline=None)
    return open(path, "rt", encoding="utf-8-sig", newline=None)


def unreadable(path: str | Path, error: Exception) -> PlasmidlmError:
    """The one-line message for a file whose bytes cannot be read as (gzip-compressed) text."""
    if isinstance(error, UnicodeDecodeError):
        return PlasmidlmError(f"{path}: not a text file: byte 0x{error.object[error.start]:02x} is not UTF-8 text "
                              f"(binary data, or a text encoding other than UTF-8)")
    if isinstance(error, (gzip.BadGzipFile, EOFError, zlib.error)):
        return PlasmidlmError(f"{path}: starts like a gzip file but cannot be decompressed (damaged, truncated or "
                              f"not gzip: {error})")
    return PlasmidlmError(f"{path}: cannot read: {getattr(error, 'strerror', None) or error}")


# What reading a file's bytes as text can raise (gzip.BadGzipFile is an OSError).
READ_ERRORS = (UnicodeDecodeError, EOFError, zlib.error, OSError)


def iter_fasta(path: str | Path, ids: set[str] | None = None) -> Iterator[tuple[str, str]]:
    """Yield (id, sequence) from a FASTA file, sequences upper-cased and U read as T; with `ids`, only those.

    Raises PlasmidlmError naming the file and record for records that are not nucleotide FASTA (every
    record is checked, also those left out by `ids`).
    """
    path = Path(path)
    with open_text(path) as handle:
        try:
            first = handle.read(1)
            if first == "":
                raise PlasmidlmError(f"{path}: file is empty, expected FASTA")
            if first != ">":
                raise PlasmidlmError(
                    f"{path}: line 1: not a FASTA file (expected '>' at the start, found {first!r})"
                )
            handle.seek(0)
            for number, record in enumerate(SeqIO.parse(handle, "fasta"), start=1):
                if not record.id:
                    raise PlasmidlmError(f"{path}: record {number}: header without an ID (nothing after '>')")
                sequence = str(record.seq).upper()
                if "U" in sequence:
                    sequence = sequence.replace("U", "T")
                if not is_iupac(sequence):
                    bad = _NON_IUPAC.search(sequence)
                    raise PlasmidlmError(
                        f"{path}: record {record.id}: character {bad.group()!r} at position "
                        f"{bad.start() + 1} is not an IUPAC nucleotide code"
                    )
                if ids is None or record.id in ids:
                    yield record.id, sequence
        except READ_ERRORS as error:
            raise unreadable(path, error) from None


def read_fasta(path: str | Path, ids: set[str] | None = None) -> dict[str, str]:
    """Read a FASTA into {id: sequence}; with `ids`, keep only those records."""
    sequences: dict[str, str] = {}
    for record_id, sequence in iter_fasta(path, ids):
        if record_id in sequences:
            raise PlasmidlmError(f"{path}: record {record_id}: duplicate sequence ID")
        sequences[record_id] = sequence
    return sequences


def read_labels(path: str | Path, id_column: str, label_column: str) -> pd.DataFrame:
    """Read a TSV/CSV label table into a frame with columns `id` and `label` (both strings)."""
    path = Path(path)
    try:
        with open_text(path) as handle:
            table = pd.read_csv(handle, sep=None, engine="python", dtype=str, keep_default_na=False)
    except READ_ERRORS as error:
        raise unreadable(path, error) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as error:
        raise PlasmidlmError(f"{path}: cannot read label table: {error}") from None
    missing = [column for column in (id_column, label_column) if column not in table.columns]
    if missing:
        raise PlasmidlmError(
            f"{path}: line 1: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, table.columns))})"
        )
    table = table.rename(columns={id_column: "id", label_column: "label"})
    table["id"] = table["id"].str.strip()
    table["label"] = table["label"].str.strip()
    for row, (record_id, label) in enumerate(zip(table["id"], table["label"]), start=2):
        if not record_id:
            raise PlasmidlmError(f"{path}: line {row}: empty ID")
        if not label:
            raise PlasmidlmError(f"{path}: line {row}: record {record_id}: empty label")
    table = table.drop_duplicates(subset=["id", "label"])
    duplicated = table["id"].duplicated(keep=False)
    if duplicated.any():
        record_id = table.loc[duplicated, "id"].iloc[0]
        labels = sorted(table.loc[table["id"] == record_id, "label"])
        raise PlasmidlmError(
            f"{path}: record {record_id}: ID listed with different labels ({', '.join(labels)})"
        )
    return table[["id", "label"]].reset_index(drop=True)


def temporary_path(path: Path) -> Path:
    """`path`'s name in a hidden folder beside it that no other writer uses (host, process and a random part): two
    jobs writing the same file, on one machine or on two that share the file system, never write into one
    temporary file. The name stays the file's own, so a gzip header (which records it) is the same every time."""
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}.tmp") / path.name


def remove_temporaries(folder: Path) -> None:
    """Remove what writes in `folder` that a kill stopped left behind: their hidden temporary folders."""
    for leftover in Path(folder).glob(".*.tmp"):
        if leftover.is_dir():
            shutil.rmtree(leftover)


def _sync(path: Path) -> None:
    """Wait until the file's data is on disk, so that a rename cannot show a file whose data a crash loses."""
    if path.is_file():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_paths(*paths: str | Path):
    """Hidden temporary paths beside `paths` to write (`temporary_path`); synced to disk and renamed onto `paths`
    together when the block completes, removed when it fails, so the files appear all at once or not at all."""
    paths = [Path(path) for path in paths]
    tmps = [temporary_path(path) for path in paths]
    for tmp in tmps:
        tmp.parent.mkdir(parents=True)
    try:
        yield tmps
        for tmp in tmps:
            _sync(tmp)
        for tmp, path in zip(tmps, paths):
            os.replace(tmp, path)
    finally:
        for tmp in tmps:  # whatever a failed writer left in its folder goes too, without hiding its error
            shutil.rmtree(tmp.parent, ignore_errors=True)


def write_atomic(path: str | Path, write) -> None:
    """Call `write(tmp_path)` and rename the result to `path` only when it completed."""
    with atomic_paths(path) as (tmp,):
        write(tmp)


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a TSV (gzip when the name ends in .gz) atomically and reproducibly (no gzip mtime)."""
    compression = {"method": "gzip", "mtime": 0} if str(path).endswith(".gz") else None
    write_atomic(path, lambda tmp: table.to_csv(tmp, sep="\t", index=False, compression=compression))


def write_tables(tables, path: str | Path) -> None:
    """Write DataFrames of the same columns one after another as one TSV, as `write_table` writes their
    concatenation; from a generator, one table is held at a time."""

    def write(tmp):
        with gzip.GzipFile(tmp, "wb", mtime=0) if str(path).endswith(".gz") else open(tmp, "wb") as handle:
            for index, table in enumerate(tables):
                table.to_csv(handle, sep="\t", index=False, header=index == 0)

    write_atomic(path, write)


def read_table(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"id": str, "plasmid_id": str, "label": str})


def iter_table(path: str | Path, columns: list[str], chunk_rows: int = 100_000):
    """The table's `columns` in pieces of `chunk_rows` rows (DataFrames): memory bounded by a piece."""
    yield from pd.read_csv(path, sep="\t", usecols=columns, chunksize=chunk_rows,
                           dtype={"id": str, "plasmid_id": str, "label": str})


def write_json(data, path: str | Path) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, default=str) + "\n"))


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def sha256sum(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file, read in chunks (memory stays flat for large checkpoints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def validate_inputs(
    fasta: str | Path,
    labels: str | Path,
    *,
    id_column: str,
    label_column: str,
    min_length: int,
    short_sequences: str = "skip",
    labels_without_sequence: str = "error",
) -> tuple[pd.DataFrame, dict]:
    """Check FASTA against label table; return the table of usable records and a summary.

    The table has `id`, `label`, `length`. Sequences shorter than `min_length` are skipped and counted
    (`short_sequences="skip"`) or an error (`"error"`).
    """
    label_table = read_labels(labels, id_column, label_column)
    rows, seen, short = _usable_records(fasta, labels, dict(zip(label_table["id"], label_table["label"])),
                                        min_length=min_length, short_sequences=short_sequences)
    unmatched = [record_id for record_id in label_table["id"] if record_id not in seen]
    if unmatched and labels_without_sequence == "error":
        raise PlasmidlmError(
            f"{labels}: record {unmatched[0]}: label without a sequence in {fasta} "
            f"({len(unmatched)} such record(s))"
        )
    table = pd.DataFrame(rows, columns=["id", "label", "length"])
    summary = {
        "fasta": str(fasta),
        "labels": str(labels),
        "sequences": len(seen),
        "usable": len(table),
        "skipped_short": len(short),
        "skipped_short_by_label": dict(sorted(Counter(short).items())),
        "labels_without_sequence": len(unmatched),
        "total_length": int(table["length"].sum()),
    }
    return table, summary


def _usable_records(fasta: str | Path, labels: str | Path, label_of: dict[str, str], *, min_length: int,
                    short_sequences: str) -> tuple[list[tuple[str, str, int]], set[str], list[str]]:
    """Read `fasta` against the labels: the (id, label, length) of each usable record, the IDs seen, and the label
    of each sequence skipped as shorter than `min_length`."""
    rows, seen, short, longest = [], set(), [], 0
    for record_id, sequence in iter_fasta(fasta):
        if record_id in seen:
            raise PlasmidlmError(f"{fasta}: record {record_id}: duplicate sequence ID")
        seen.add(record_id)
        if not sequence:
            raise PlasmidlmError(f"{fasta}: record {record_id}: empty sequence")
        if record_id not in label_of:
            raise PlasmidlmError(f"{fasta}: record {record_id}: no label in {labels}")
        longest = max(longest, len(sequence))
        if len(sequence) < min_length:
            if short_sequences == "error":
                raise PlasmidlmError(
                    f"{fasta}: record {record_id}: sequence of {len(sequence)} nt is shorter "
                    f"than the window length {min_length}"
                )
            short.append(label_of[record_id])
            continue
        rows.append((record_id, label_of[record_id], len(sequence)))
    if not seen:
        raise PlasmidlmError(f"{fasta}: no FASTA records found")
    if not rows:
        raise PlasmidlmError(
            f"{fasta}: all {len(seen)} sequences are shorter than the window length {min_length} nt "
            f"(windows.length); the longest is {longest:,} nt"
        )
    return rows, seen, short
