"""Memory and run time requests: from input sizes, growing with the attempt; the Slurm profile leaves them to
the rules."""

from __future__ import annotations

import gzip
import re

import yaml

from conftest import REPO_ROOT
from plasmidlm import resources


def test_requests_grow_with_the_input_and_the_attempt(tmp_path):
    small, large = tmp_path / "small.tsv", tmp_path / "large.tsv"
    small.write_text("x" * 1_000_000)
    large.write_text("x" * 50_000_000)
    fixed, per_mb = resources.MEMORY["train"][0], resources.MEMORY["train"][1]["windows"]
    sizes = resources.input_mb([("windows", str(large)), ("val", [])])
    assert sizes == {"windows": 50.0, "val": 0}
    first = resources.mem_mb("train", sizes)
    assert first >= fixed + 50 * per_mb and first % resources.ROUND_MB == 0
    assert resources.mem_mb("train", resources.input_mb([("windows", str(small))])) < first
    assert resources.mem_mb("train", sizes, attempt=2) >= 2 * first - resources.ROUND_MB
    assert resources.runtime("kmer_coverage", {"fasta": 6000}, attempt=2) == 2 * resources.runtime(
        "kmer_coverage", {"fasta": 6000})


def test_gzip_inputs_count_as_their_uncompressed_size_and_directories_as_their_files(tmp_path):
    with gzip.open(tmp_path / "windows.tsv.gz", "wb") as handle:
        handle.write(b"ACGT" * 1000)
    compressed = (tmp_path / "windows.tsv.gz").stat().st_size / 1e6
    assert resources.input_mb([("w", str(tmp_path / "windows.tsv.gz"))])["w"] == compressed * resources.GZ_EXPANSION
    checkpoint = tmp_path / "checkpoint-5"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"0" * 3_000_000)
    (checkpoint / "config.json").write_bytes(b"0" * 1_000)
    assert resources.input_mb([("checkpoint", str(checkpoint))])["checkpoint"] == 3.001


def test_a_missing_input_raises_file_not_found_naming_it(tmp_path):
    missing = str(tmp_path / "not_yet.tsv.gz")
    try:
        resources.input_mb([("w", missing)])
    except FileNotFoundError as error:  # what Snakemake needs to evaluate the request once the input exists
        assert error.filename == missing
    else:
        raise AssertionError("no FileNotFoundError")


def test_training_plasmids_are_counted_from_the_split(tmp_path):
    (tmp_path / "split.tsv").write_text("id\tlabel\tsplit\tlength\na\tx\ttrain\t10\nb\tx\ttest\t10\nc\ty\ttrain\t5\n")
    assert resources.training_plasmids(str(tmp_path / "split.tsv")) == 2


def test_every_rule_derives_its_requests_and_the_slurm_profile_leaves_them_to_the_rules():
    text = "\n".join(path.read_text() for path in sorted((REPO_ROOT / "rules").glob("*.smk")))
    blocks = dict(re.findall(r"^(?:rule|checkpoint) (\w+):\n(.*?)(?=^\S|\Z)", text, re.MULTILINE | re.DOTALL))
    for rule, body in blocks.items():
        if "resources:" in body:
            assert re.search(rf'mem_mb=memory\("{rule}"', body) and re.search(rf'runtime=minutes\("{rule}"', body), rule
            assert rule in resources.MEMORY, rule
    profile = yaml.safe_load((REPO_ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    for rule, settings in profile["set-resources"].items():
        assert not {"mem_mb", "runtime"} & set(settings), rule
