"""Input validation (FASTA + label table) and atomic, reproducible output writing."""

from __future__ import annotations

import gzip
import os
import re

import numpy as np
import pandas as pd
import pytest
from conftest import write_fasta

from plasmidlm import PlasmidlmError
from plasmidlm.io import (atomic_paths, iter_fasta, read_fasta, read_labels, read_table, validate_inputs, write_atomic,
                          write_table)


def write_labels(path, rows, header=("id", "label"), sep="\t"):
    lines = [sep.join(header)] + [sep.join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def validate(fasta, labels, min_length=1, **kwargs):
    return validate_inputs(fasta, labels, id_column="id", label_column="label", min_length=min_length, **kwargs)


@pytest.fixture
def two_labels(tmp_path):
    return write_labels(tmp_path / "labels.tsv", [("a", "x"), ("b", "y")])


# --- happy paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["synthetic", "synthetic_gz"])
def test_validate_inputs_accepts_plain_and_gzip_fasta(dataset, request):
    data = request.getfixturevalue(dataset)
    table, summary = validate(data.fasta, data.labels, min_length=300)
    assert list(table.columns) == ["id", "label", "length"]
    pd.testing.assert_frame_equal(table, data.table)
    assert summary["sequences"] == summary["usable"] == len(data.table) == 33
    assert summary["skipped_short"] == 0
    assert summary["labels_without_sequence"] == 0
    assert summary["total_length"] == sum(len(s) for s in data.sequences.values())


def test_gzip_detected_by_magic_bytes_not_suffix(synthetic_gz, tmp_path):
    renamed = tmp_path / "sequences.fa"  # gzip content, no .gz suffix
    renamed.write_bytes(synthetic_gz.fasta.read_bytes())
    assert dict(iter_fasta(renamed)) == synthetic_gz.sequences


def test_plain_and_gzip_fasta_read_identically(synthetic, synthetic_gz):
    assert read_fasta(synthetic.fasta) == read_fasta(synthetic_gz.fasta) == synthetic.sequences


def test_lowercase_bases_are_uppercased_and_u_read_as_t(tmp_path):
    fasta = write_fasta(tmp_path / "x.fa", [("a", "acgtnRyu")])
    assert list(iter_fasta(fasta)) == [("a", "ACGTNRYT")]


@pytest.mark.parametrize("compress", [False, True])
def test_windows_line_endings_and_wrapped_lines(tmp_path, compress):
    sequence = "ACGT" * 30 + "GG"
    fasta = write_fasta(tmp_path / "crlf.fa", [("a", sequence), ("b", "TTTT")],
                        compress=compress, width=7, newline="\r\n")
    assert b"\r\n" in (gzip.decompress(fasta.read_bytes()) if compress else fasta.read_bytes())
    assert dict(iter_fasta(fasta)) == {"a": sequence, "b": "TTTT"}


def test_record_id_is_first_word_of_header(tmp_path, two_labels):
    fasta = tmp_path / "x.fa"
    fasta.write_text(">a some description here\nACGT\n>b\nGG\n")
    table, _ = validate(fasta, two_labels)
    assert list(table["id"]) == ["a", "b"]


def test_read_fasta_keeps_only_requested_ids(synthetic):
    wanted = set(list(synthetic.sequences)[:3])
    assert read_fasta(synthetic.fasta, ids=wanted) == {i: synthetic.sequences[i] for i in wanted}


def test_demo_data_validates(demo_data):
    table, summary = validate(demo_data.fasta, demo_data.labels, min_length=1000)
    assert summary["sequences"] == summary["usable"] == 410
    assert table["label"].value_counts().to_dict() == {"plasmid": 205, "chromosome": 205}
    lengths = pd.read_csv(demo_data.labels, sep="\t", dtype={"id": str}).set_index("id")["length"]
    assert (table.set_index("id")["length"] == lengths.loc[table["id"]]).all()


# --- label table ------------------------------------------------------------------------------------


def test_read_labels_renames_columns_and_strips_whitespace(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("sample\tother\tclass\n a \t1\tx \nb\t2\ty\n")
    table = read_labels(path, "sample", "class")
    assert table.to_dict("list") == {"id": ["a", "b"], "label": ["x", "y"]}


def test_read_labels_accepts_csv(tmp_path):
    path = write_labels(tmp_path / "labels.csv", [("a", "x"), ("b", "y")], sep=",")
    assert read_labels(path, "id", "label").to_dict("list") == {"id": ["a", "b"], "label": ["x", "y"]}


def test_read_labels_keeps_ids_that_look_numeric_as_strings(tmp_path):
    path = write_labels(tmp_path / "labels.tsv", [("007", "x"), ("NA", "y")])
    assert list(read_labels(path, "id", "label")["id"]) == ["007", "NA"]


def test_missing_label_column_names_file_and_column(tmp_path):
    path = write_labels(tmp_path / "labels.tsv", [("a", "x")], header=("id", "class"))
    with pytest.raises(PlasmidlmError, match=r"labels\.tsv: line 1: missing column\(s\) label"):
        read_labels(path, "id", "label")


def test_duplicate_id_with_different_labels_is_an_error(tmp_path):
    path = write_labels(tmp_path / "labels.tsv", [("a", "x"), ("b", "y"), ("a", "z")])
    with pytest.raises(PlasmidlmError, match=r"labels\.tsv: record a: ID listed with different labels \(x, z\)"):
        read_labels(path, "id", "label")


def test_duplicate_id_with_same_label_is_collapsed(tmp_path):
    path = write_labels(tmp_path / "labels.tsv", [("a", "x"), ("b", "y"), ("a", "x")])
    assert read_labels(path, "id", "label").to_dict("list") == {"id": ["a", "b"], "label": ["x", "y"]}


def test_empty_label_is_an_error(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("id\tlabel\na\tx\nb\t\n")
    with pytest.raises(PlasmidlmError, match=r"labels\.tsv: line 3: record b: empty label"):
        read_labels(path, "id", "label")


def test_missing_label_file_is_an_error(tmp_path):
    with pytest.raises(PlasmidlmError, match="nope.tsv: file not found"):
        read_labels(tmp_path / "nope.tsv", "id", "label")


# --- FASTA errors -----------------------------------------------------------------------------------


def test_empty_fasta_is_an_error(tmp_path, two_labels):
    fasta = tmp_path / "empty.fa"
    fasta.write_text("")
    with pytest.raises(PlasmidlmError, match=r"empty\.fa: file is empty"):
        validate(fasta, two_labels)


def test_empty_gzip_fasta_is_an_error(tmp_path, two_labels):
    fasta = tmp_path / "empty.fa.gz"
    fasta.write_bytes(gzip.compress(b""))
    with pytest.raises(PlasmidlmError, match=r"empty\.fa\.gz: file is empty"):
        validate(fasta, two_labels)


@pytest.mark.parametrize(
    "name, text, found",
    [
        ("genbank.gb", "LOCUS       a   8 bp    DNA\nORIGIN\n        1 acgtacgt\n//\n", "'L'"),
        ("table.csv", "id,sequence\na,ACGT\n", "'i'"),
    ],
)
def test_non_fasta_input_is_an_error(tmp_path, two_labels, name, text, found):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PlasmidlmError, match=rf"{name}: line 1: not a FASTA file .*found {found}"):
        validate(path, two_labels)


def _random_bytes(n=4000, seed=0):
    return np.random.default_rng(seed).bytes(n)


def _truncated_gzip():
    sequence = "".join(np.random.default_rng(0).choice(list("ACGT"), 20_000))
    data = gzip.compress(f">a\n{sequence}\n>b\n{sequence}\n".encode())
    return data[: len(data) // 2]


BINARY_INPUTS = {
    "random.bin": lambda: _random_bytes(),
    "random_after_header.fa": lambda: b">a\n" + _random_bytes(),  # starts like FASTA
    "gzip_of_random.fa.gz": lambda: gzip.compress(_random_bytes()),  # a valid gzip of binary data
    "latin1_header.fa": lambda: ">a caf\xe9\nACGT\n>b\nACGT\n".encode("latin-1"),
    "utf16.fa": lambda: ">a\nACGT\n>b\nACGT\n".encode("utf-16"),
}
BROKEN_GZIP = {
    "gzip_looking.fa.gz": lambda: b"\x1f\x8b" + _random_bytes(),  # gzip magic, then noise
    "truncated.fa.gz": _truncated_gzip,
    "bad_crc.fa.gz": lambda: gzip.compress(b">a\nACGT\n>b\nACGT\n")[:-8] + bytes(8),
}


@pytest.mark.parametrize("name", BINARY_INPUTS)
def test_binary_or_non_utf8_fasta_is_one_line_naming_the_file(tmp_path, two_labels, name):
    path = tmp_path / name
    path.write_bytes(BINARY_INPUTS[name]())
    with pytest.raises(PlasmidlmError) as error:
        validate(path, two_labels)
    message = str(error.value)
    assert message.startswith(f"{path}: not a text file: byte 0x") and "is not UTF-8 text" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", BROKEN_GZIP)
def test_damaged_or_fake_gzip_fasta_is_one_line_naming_the_file(tmp_path, two_labels, name):
    path = tmp_path / name
    path.write_bytes(BROKEN_GZIP[name]())
    with pytest.raises(PlasmidlmError, match=rf"^{re.escape(str(path))}: starts like a gzip file but cannot be "
                                             r"decompressed \(damaged, truncated or not gzip: [^\n]+\)$"):
        validate(path, two_labels)


@pytest.mark.parametrize("name", [*BINARY_INPUTS, *BROKEN_GZIP])
def test_binary_label_table_is_one_line_naming_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes({**BINARY_INPUTS, **BROKEN_GZIP}[name]())
    with pytest.raises(PlasmidlmError, match=rf"^{re.escape(str(path))}: (not a text file|starts like a gzip)"):
        read_labels(path, "id", "label")


def test_directory_given_as_fasta_or_labels_is_an_error(tmp_path, two_labels):
    with pytest.raises(PlasmidlmError, match=rf"^{re.escape(str(tmp_path))}: is a directory, expected a file$"):
        validate(tmp_path, two_labels)
    with pytest.raises(PlasmidlmError, match=rf"^{re.escape(str(tmp_path))}: is a directory, expected a file$"):
        read_labels(tmp_path, "id", "label")


def test_header_without_id_is_an_error_naming_the_record_number(tmp_path, two_labels):
    """Not 'record : no label' (the consequence: an empty ID has no label)."""
    fasta = tmp_path / "x.fa"
    fasta.write_text(">a\nACGT\n>\nACGT\n")
    with pytest.raises(PlasmidlmError, match=r"x\.fa: record 2: header without an ID \(nothing after '>'\)"):
        validate(fasta, two_labels)


def test_byte_order_mark_is_skipped_in_fasta_and_label_table(tmp_path):
    """Windows editors write one; it is not part of the '>' or of the first column's name."""
    fasta = tmp_path / "bom.fa"
    fasta.write_bytes("\ufeff>a\nACGT\n>b\nGGCC\n".encode("utf-8"))
    labels = tmp_path / "bom.tsv"
    labels.write_bytes("\ufeffid\tlabel\na\tx\nb\ty\n".encode("utf-8"))
    table, _ = validate(fasta, labels)
    assert list(table["id"]) == ["a", "b"] and list(table["label"]) == ["x", "y"]


def test_gzip_label_table_is_read_whatever_its_name(tmp_path):
    labels = tmp_path / "labels.tsv"  # gzip content, plain name: detected by content, as for FASTA
    labels.write_bytes(gzip.compress(b"id,label\na,x\nb,y\n"))
    assert read_labels(labels, "id", "label").to_dict("list") == {"id": ["a", "b"], "label": ["x", "y"]}


def test_duplicate_sequence_id_is_an_error(tmp_path, two_labels):
    fasta = write_fasta(tmp_path / "dup.fa", [("a", "ACGT"), ("b", "GG"), ("a", "ACGT")])
    with pytest.raises(PlasmidlmError, match=r"dup\.fa: record a: duplicate sequence ID"):
        validate(fasta, two_labels)
    with pytest.raises(PlasmidlmError, match=r"dup\.fa: record a: duplicate sequence ID"):
        read_fasta(fasta)


def test_sequence_without_label_is_an_error(tmp_path, two_labels):
    fasta = write_fasta(tmp_path / "x.fa", [("a", "ACGT"), ("b", "GG"), ("c", "TTT")])
    with pytest.raises(PlasmidlmError, match=r"x\.fa: record c: no label in .*labels\.tsv"):
        validate(fasta, two_labels)


def test_label_without_sequence_is_an_error_by_default(tmp_path, two_labels):
    fasta = write_fasta(tmp_path / "x.fa", [("a", "ACGT")])
    with pytest.raises(PlasmidlmError, match=r"labels\.tsv: record b: label without a sequence in .*x\.fa"):
        validate(fasta, two_labels)


def test_label_without_sequence_is_counted_when_warn(tmp_path, two_labels):
    fasta = write_fasta(tmp_path / "x.fa", [("a", "ACGT")])
    table, summary = validate(fasta, two_labels, labels_without_sequence="warn")
    assert list(table["id"]) == ["a"]
    assert summary["labels_without_sequence"] == 1


def test_empty_sequence_is_an_error(tmp_path, two_labels):
    fasta = tmp_path / "x.fa"
    fasta.write_text(">a\n>b\nACGT\n")
    with pytest.raises(PlasmidlmError, match=r"x\.fa: record a: empty sequence"):
        validate(fasta, two_labels)


@pytest.mark.parametrize("character", ["X", "-", "*", "1"])
def test_non_iupac_character_is_an_error_naming_record_and_position(tmp_path, two_labels, character):
    fasta = write_fasta(tmp_path / "x.fa", [("a", "ACGT"), ("b", f"ACG{character}T")])
    with pytest.raises(PlasmidlmError, match=rf"x\.fa: record b: character '{re.escape(character)}' at position 4 "
                                             r"is not an IUPAC nucleotide code"):
        validate(fasta, two_labels)


def test_iupac_ambiguity_codes_are_accepted(tmp_path):
    fasta = write_fasta(tmp_path / "x.fa", [("a", "ACGTURYSWKMBDHVN")])
    assert dict(iter_fasta(fasta)) == {"a": "ACGTTRYSWKMBDHVN"}


def test_missing_fasta_is_an_error(tmp_path, two_labels):
    with pytest.raises(PlasmidlmError, match=r"nope\.fa: file not found"):
        validate(tmp_path / "nope.fa", two_labels)


# --- short sequences --------------------------------------------------------------------------------


def test_short_sequences_are_skipped_and_counted(tmp_path):
    labels = write_labels(tmp_path / "labels.tsv", [("a", "x"), ("b", "y"), ("c", "x")])
    fasta = write_fasta(tmp_path / "x.fa", [("a", "A" * 100), ("b", "C" * 99), ("c", "G" * 150)])
    table, summary = validate(fasta, labels, min_length=100)
    assert list(table["id"]) == ["a", "c"]
    assert list(table["length"]) == [100, 150]
    assert summary["sequences"] == 3
    assert summary["usable"] == 2
    assert summary["skipped_short"] == 1
    assert summary["total_length"] == 250
    assert summary["labels_without_sequence"] == 0  # a skipped sequence still has its label matched


def test_short_sequences_are_counted_by_class(tmp_path):
    labels = write_labels(tmp_path / "labels.tsv", [("a", "x"), ("b", "y"), ("c", "y"), ("d", "x")])
    fasta = write_fasta(tmp_path / "x.fa", [("a", "A" * 100), ("b", "C" * 99), ("c", "G" * 50), ("d", "T" * 10)])
    _, summary = validate(fasta, labels, min_length=100)
    assert summary["skipped_short_by_label"] == {"x": 1, "y": 2}


def test_window_longer_than_every_sequence_names_the_cause(tmp_path):
    """Not 'selection leaves 0 class(es)' from the next step: every sequence was skipped as too short."""
    labels = write_labels(tmp_path / "labels.tsv", [("a", "x"), ("b", "y"), ("c", "x")])
    fasta = write_fasta(tmp_path / "x.fa", [("a", "A" * 1200), ("b", "C" * 99), ("c", "G" * 5000)])
    with pytest.raises(PlasmidlmError, match=r"^.*x\.fa: all 3 sequences are shorter than the window length "
                                             r"100000 nt \(windows\.length\); the longest is 5,000 nt$"):
        validate(fasta, labels, min_length=100_000)


def test_short_sequences_are_an_error_when_requested(tmp_path):
    labels = write_labels(tmp_path / "labels.tsv", [("a", "x"), ("b", "y")])
    fasta = write_fasta(tmp_path / "x.fa", [("a", "A" * 100), ("b", "C" * 99)])
    with pytest.raises(PlasmidlmError, match=r"x\.fa: record b: sequence of 99 nt is shorter than .* 100"):
        validate(fasta, labels, min_length=100, short_sequences="error")


# --- writing ----------------------------------------------------------------------------------------


def example_table():
    return pd.DataFrame({"id": ["p1", "p2", "p3"], "label": ["x", "y", "x"], "value": [0.5, 1.25, 3.0]})


@pytest.mark.parametrize("name", ["table.tsv", "table.tsv.gz"])
def test_write_table_round_trips_and_leaves_no_temporary_file(tmp_path, name):
    path = tmp_path / "sub" / name
    write_table(example_table(), path)
    pd.testing.assert_frame_equal(read_table(path), example_table())
    assert sorted(p.name for p in path.parent.iterdir()) == [name]


def test_write_table_gzip_is_byte_identical_across_writes(tmp_path):
    first, second = tmp_path / "one" / "t.tsv.gz", tmp_path / "two" / "t.tsv.gz"
    write_table(example_table(), first)
    before = first.read_bytes()
    write_table(example_table(), second)
    write_table(example_table(), first)  # overwrite in place
    assert first.read_bytes() == before == second.read_bytes()
    assert before[:2] == b"\x1f\x8b"
    assert before[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime is zero


def test_write_atomic_keeps_previous_file_when_writer_fails(tmp_path):
    path = tmp_path / "out.tsv"
    path.write_text("old content\n")

    def failing_writer(tmp):
        with open(tmp, "w") as handle:
            handle.write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(path, failing_writer)
    assert path.read_text() == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tsv"]


def test_write_atomic_creates_nothing_when_writer_fails(tmp_path):
    path = tmp_path / "new.tsv"

    def failing_writer(tmp):
        tmp.write_text("partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        write_atomic(path, failing_writer)
    assert list(tmp_path.iterdir()) == []


def test_atomic_paths_write_several_files_together_or_none(tmp_path):
    first, second = tmp_path / "sub" / "a.tsv", tmp_path / "sub" / "b.tsv"
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_paths(first, second) as (first_tmp, second_tmp):
            first_tmp.write_text("a")
            raise RuntimeError("interrupted")
    assert list((tmp_path / "sub").iterdir()) == []
    with atomic_paths(first, second) as (first_tmp, second_tmp):
        first_tmp.write_text("a")
        second_tmp.write_text("b")
        assert list((tmp_path / "sub").glob("*.tsv")) == []
    assert (first.read_text(), second.read_text()) == ("a", "b")
    assert sorted(path.name for path in (tmp_path / "sub").iterdir()) == ["a.tsv", "b.tsv"]


def test_two_writers_of_one_file_write_into_temporary_files_of_their_own(tmp_path):
    """Two jobs writing the same output at once (beside each other on a shared file system): each writes its own
    temporary file, and the file ends up as one writer's whole content, never a mix."""
    path = tmp_path / "out.tsv"
    with atomic_paths(path) as (first,), atomic_paths(path) as (second,):
        assert first.parent != second.parent and first.name == second.name == "out.tsv"
        assert first.parent.parent == second.parent.parent == tmp_path and first.parent.name.startswith(".out.tsv.")
        first.write_text("first\n" * 1000)
        second.write_text("second\n" * 10)
    assert path.read_text() == "first\n" * 1000
    assert [entry.name for entry in tmp_path.iterdir()] == ["out.tsv"]


def test_files_are_synced_to_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
                        or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda source, target: events.append(("replace", str(source)))
                        or real_replace(source, target))
    with atomic_paths(tmp_path / "a.tsv", tmp_path / "b.tsv") as tmps:
        for tmp in tmps:
            tmp.write_text("data")
    names = [str(tmp) for tmp in tmps]
    assert events == [("fsync", names[0]), ("fsync", names[1]), ("replace", names[0]), ("replace", names[1])]


def test_write_table_replaces_existing_file(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("stale\n")
    write_table(example_table(), path)
    assert path.read_text().splitlines()[0] == "id\tlabel\tvalue"
