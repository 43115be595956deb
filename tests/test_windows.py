"""Window cutting: lengths, strands, strategies, circular wrap-around, balance, leakage checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import SRC
from plasmidlm import PlasmidlmError
from plasmidlm.windows import (
    WINDOW_COLUMNS,
    WindowPolicy,
    assert_no_plasmid_leakage,
    canonical,
    canonical_kmer_codes,
    cut,
    draw_balanced_windows,
    draw_windows,
    reverse_complement,
    rng_for,
    sequence_hashes,
    shared_window_sequences,
    windows_covered_by_kmers,
)

LENGTH = 100
LINEAR = WindowPolicy(LENGTH)
CIRCULAR = WindowPolicy(LENGTH, circular=True)


def plasmids_of(dataset) -> pd.DataFrame:
    return dataset.table[["id", "label"]]


def expected_window(sequence: str, start: int, strand: str, length: int, circular: bool) -> str:
    forward = (sequence + sequence)[start : start + length] if circular else sequence[start : start + length]
    return forward if strand == "+" else reverse_complement(forward)


# --- reverse complement / cut -----------------------------------------------------------------------


def test_reverse_complement_of_plain_bases():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("ACCTG") == "CAGGT"
    assert reverse_complement("") == ""


def test_reverse_complement_of_iupac_codes():
    # R=A/G <-> Y=C/T, K=G/T <-> M=A/C, B=not A <-> V=not T, D=not C <-> H=not G; S, W, N self-complementary.
    assert reverse_complement("RYKMBVDHSWN") == "NWSDHBVKMRY"


def test_double_reverse_complement_is_identity():
    rng = np.random.default_rng(0)
    for _ in range(20):
        sequence = "".join(rng.choice(list("ACGTRYSWKMBDHVN"), size=int(rng.integers(1, 200))))
        assert reverse_complement(reverse_complement(sequence)) == sequence


def test_canonical_is_strand_independent():
    assert canonical("AAAC") == canonical("GTTT") == "AAAC"


def test_cut_linear_inside_sequence():
    assert cut("ACGTACGGTT", 2, 4, circular=False) == "GTAC"


def test_cut_linear_past_the_end_is_short():
    assert cut("ACGTACGGTT", 8, 4, circular=False) == "TT"


def test_cut_circular_wraps_around_the_end():
    assert cut("ACGTACGGTT", 8, 4, circular=True) == "TTAC"
    assert cut("ACGTACGGTT", 9, 10, circular=True) == "TACGTACGGT"


def test_cut_circular_inside_sequence_does_not_wrap():
    assert cut("ACGTACGGTT", 1, 4, circular=True) == "CGTA"


# --- draw_windows -----------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["first", "random"])
@pytest.mark.parametrize("circular", [False, True])
def test_windows_have_requested_length_and_match_their_source(synthetic, strategy, circular):
    windows = draw_windows(synthetic.sequences, plasmids_of(synthetic), WindowPolicy(LENGTH, circular=circular),
                           strategy=strategy, per_plasmid=4, reverse_complement_p=0.5, seed=(0, "windows"))
    assert list(windows.columns) == WINDOW_COLUMNS
    assert len(windows) == 4 * len(synthetic.table)
    assert windows["window_id"].is_unique
    assert (windows["sequence"].str.len() == LENGTH).all()
    assert set(windows["strand"]) == {"+", "-"}
    labels = synthetic.table.set_index("id")["label"]
    assert (windows["label"].to_numpy() == labels.loc[windows["plasmid_id"]].to_numpy()).all()
    for row in windows.itertuples():
        sequence = synthetic.sequences[row.plasmid_id]
        assert row.sequence == expected_window(sequence, row.start, row.strand, LENGTH, circular)


def test_minus_strand_window_is_reverse_complement_of_forward_slice(synthetic):
    windows = draw_windows(synthetic.sequences, plasmids_of(synthetic), LINEAR, strategy="random", per_plasmid=3,
                           reverse_complement_p=1.0, seed=(1, "windows"))
    assert (windows["strand"] == "-").all()
    for row in windows.itertuples():
        forward = synthetic.sequences[row.plasmid_id][row.start : row.start + LENGTH]
        assert row.sequence == reverse_complement(forward)


def test_first_strategy_always_starts_at_zero(synthetic):
    windows = draw_windows(synthetic.sequences, plasmids_of(synthetic), LINEAR, strategy="first", per_plasmid=3,
                           reverse_complement_p=0.0, seed=(0, "windows"))
    assert (windows["start"] == 0).all()
    assert (windows["strand"] == "+").all()
    for row in windows.itertuples():
        assert row.sequence == synthetic.sequences[row.plasmid_id][:LENGTH]


def test_random_strategy_starts_within_valid_range_linear(synthetic):
    windows = draw_windows(synthetic.sequences, plasmids_of(synthetic), LINEAR, strategy="random", per_plasmid=20,
                           reverse_complement_p=0.5, seed=(0, "windows"))
    sizes = windows["plasmid_id"].map({k: len(v) for k, v in synthetic.sequences.items()})
    assert (windows["start"] >= 0).all()
    assert (windows["start"] <= sizes - LENGTH).all()
    assert windows["start"].nunique() > len(windows) // 2  # starts really vary


def test_random_strategy_circular_can_start_anywhere_and_wraps(synthetic):
    windows = draw_windows(synthetic.sequences, plasmids_of(synthetic), CIRCULAR, strategy="random", per_plasmid=20,
                           reverse_complement_p=0.0, seed=(0, "windows"))
    sizes = windows["plasmid_id"].map({k: len(v) for k, v in synthetic.sequences.items()})
    assert (windows["start"] < sizes).all()
    wrapped = windows[windows["start"] > sizes - LENGTH]
    assert len(wrapped) > 0  # some windows cross the origin
    for row in wrapped.itertuples():
        sequence = synthetic.sequences[row.plasmid_id]
        assert row.sequence == sequence[row.start :] + sequence[: LENGTH - (len(sequence) - row.start)]


def test_same_seed_gives_identical_windows(synthetic):
    def draw(seed):
        return draw_windows(synthetic.sequences, plasmids_of(synthetic), CIRCULAR, strategy="random", per_plasmid=5,
                            reverse_complement_p=0.5, seed=(seed, "windows"))

    pd.testing.assert_frame_equal(draw(0), draw(0))
    assert not draw(0)["start"].equals(draw(1)["start"])


def test_rng_for_gives_the_same_draws_in_every_process():
    """Not only twice in one process: another interpreter, with other string hashes (PYTHONHASHSEED), draws the
    same, as a re-run or a Slurm job must (Python's hash() of the purpose would not)."""
    code = ("from plasmidlm.windows import rng_for; "
            "print(rng_for(0, 'windows', 'p1').integers(1 << 30, size=5).tolist())")
    here = rng_for(0, "windows", "p1").integers(1 << 30, size=5).tolist()
    for hash_seed in ("1", "2"):
        environment = os.environ | {"PYTHONHASHSEED": hash_seed,
                                    "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                                check=True)
        assert json.loads(result.stdout) == here


def test_rng_for_is_independent_per_purpose():
    assert rng_for(0, "windows").integers(1 << 30, size=5).tolist() != \
        rng_for(0, "test").integers(1 << 30, size=5).tolist()
    assert rng_for(0, "windows").integers(1 << 30, size=5).tolist() != \
        rng_for(1, "windows").integers(1 << 30, size=5).tolist()


def test_reverse_complement_probability_is_about_one_half(synthetic):
    windows = draw_windows(synthetic.sequences, plasmids_of(synthetic), LINEAR, strategy="random", per_plasmid=120,
                           reverse_complement_p=0.5, seed=(0, "windows"))
    fraction = (windows["strand"] == "-").mean()
    assert len(windows) == 3960
    assert 0.45 < fraction < 0.55  # binomial sd ~0.008


@pytest.mark.parametrize("probability, strand", [(0.0, "+"), (1.0, "-")])
def test_reverse_complement_probability_extremes(synthetic, probability, strand):
    windows = draw_windows(synthetic.sequences, plasmids_of(synthetic), LINEAR, strategy="random", per_plasmid=5,
                           reverse_complement_p=probability, seed=(0, "windows"))
    assert (windows["strand"] == strand).all()


def test_window_longer_than_sequence_is_an_error():
    sequences = {"p1": "ACGT" * 10}
    plasmids = pd.DataFrame({"id": ["p1"], "label": ["x"]})
    with pytest.raises(PlasmidlmError, match="record p1: sequence of 40 nt is shorter than the window length 100"):
        draw_windows(sequences, plasmids, WindowPolicy(100), strategy="first", per_plasmid=1, seed=(0, "w"))


def test_unknown_strategy_is_an_error(synthetic):
    with pytest.raises(PlasmidlmError, match="unknown value 'middle'"):
        draw_windows(synthetic.sequences, plasmids_of(synthetic), LINEAR, strategy="middle", per_plasmid=1,
                     seed=(0, "w"))


def test_window_ids_use_prefix_and_are_sequential(synthetic):
    windows = draw_windows(synthetic.sequences, plasmids_of(synthetic).head(2), LINEAR, strategy="first",
                           per_plasmid=2, seed=(0, "w"), prefix="train")
    assert list(windows["window_id"]) == ["train0000000", "train0000001", "train0000002", "train0000003"]


# --- draw_balanced_windows --------------------------------------------------------------------------


def test_balanced_windows_equal_per_class_and_per_plasmid(synthetic):
    windows = draw_balanced_windows(synthetic.sequences, plasmids_of(synthetic), LINEAR, count=200,
                                    seed=(0, "test"))
    assert len(windows) == 200
    assert windows["label"].value_counts().to_dict() == {"alpha": 50, "beta": 50, "gamma": 50, "delta": 50}
    per_plasmid = windows.groupby(["label", "plasmid_id"]).size()
    for label, n_plasmids in {"alpha": 12, "beta": 9, "gamma": 7, "delta": 5}.items():
        counts = per_plasmid.loc[label]
        assert len(counts) == n_plasmids  # every plasmid is used
        assert counts.max() - counts.min() <= 1
    for row in windows.itertuples():
        assert row.sequence == expected_window(synthetic.sequences[row.plasmid_id], row.start, row.strand,
                                               LENGTH, circular=False)


def test_balanced_windows_fewer_than_plasmids_uses_each_at_most_once(synthetic):
    windows = draw_balanced_windows(synthetic.sequences, plasmids_of(synthetic), LINEAR, count=20,
                                    seed=(0, "test"))
    assert (windows["label"].value_counts() == 5).all()
    assert windows["plasmid_id"].is_unique


def test_balanced_windows_remainder_goes_to_first_classes_by_name(synthetic):
    windows = draw_balanced_windows(synthetic.sequences, plasmids_of(synthetic), LINEAR, count=42,
                                    seed=(0, "test"))
    # sorted labels: alpha, beta, delta, gamma -> the two extra windows go to alpha and beta
    assert windows["label"].value_counts().to_dict() == {"alpha": 11, "beta": 11, "delta": 10, "gamma": 10}


def test_balanced_windows_are_deterministic(synthetic):
    def draw():
        return draw_balanced_windows(synthetic.sequences, plasmids_of(synthetic), CIRCULAR, count=60,
                                     seed=(3, "val"), prefix="v")

    pd.testing.assert_frame_equal(draw(), draw())


# --- leakage ----------------------------------------------------------------------------------------


def window_frame(rows):
    return pd.DataFrame(rows, columns=["plasmid_id", "sequence"])


def test_assert_no_plasmid_leakage_passes_for_disjoint_plasmids():
    assert_no_plasmid_leakage(window_frame([("p1", "AC")]), window_frame([("p2", "AC")]), "training windows")


def test_assert_no_plasmid_leakage_raises_for_shared_plasmid():
    test = window_frame([("p1", "AC"), ("p3", "GG"), ("p2", "TT")])
    train = window_frame([("p4", "AC"), ("p3", "CC"), ("p2", "AA")])
    with pytest.raises(PlasmidlmError, match=r"leakage: 2 test plasmid\(s\) also in training windows \(e.g. p2\)"):
        assert_no_plasmid_leakage(test, train, "training windows")


def test_shared_window_sequences_counts_both_strands():
    train = window_frame([("t1", "AAACCG"), ("t2", "GGGTTA")])
    test = window_frame([
        ("s1", "AAACCG"),                   # identical
        ("s2", reverse_complement("GGGTTA")),  # reverse complement of a training window
        ("s3", "ACACAC"),                   # not present
        ("s4", "AAACCC"),                   # one base off
    ])
    assert shared_window_sequences(test["sequence"], sequence_hashes(train["sequence"])) == 2
    assert shared_window_sequences(test["sequence"], sequence_hashes([])) == 0


# --- near-copy measure: test windows covered by training k-mers ----------------------------------------

def test_canonical_kmer_codes_are_strand_independent():
    sequence = "".join(np.random.default_rng(3).choice(list("ACGT"), size=300))
    forward = canonical_kmer_codes(sequence, 31)
    assert len(forward) == 300 - 31 + 1
    assert sorted(forward) == sorted(canonical_kmer_codes(reverse_complement(sequence), 31))


def test_canonical_kmer_codes_equal_the_two_bit_numbers_of_both_strands():
    sequence = "".join(np.random.default_rng(5).choice(list("ACGT"), size=80)) + "N" + "ACGTTGCAAC" * 3
    digits = {"A": 0, "C": 1, "G": 2, "T": 3}
    expected = [min(int("".join(str(digits[b]) for b in kmer), 4), int("".join(str(digits[b]) for b in
                    reverse_complement(kmer)), 4))
                for kmer in (sequence[i : i + 31] for i in range(len(sequence) - 30)) if "N" not in kmer]
    assert canonical_kmer_codes(sequence, 31).tolist() == expected


def test_references_longer_than_a_chunk_are_covered_across_chunk_boundaries(monkeypatch):
    import plasmidlm.windows as windows

    rng = np.random.default_rng(6)
    training = "".join(rng.choice(list("ACGT"), size=1000))
    across = [training[i : i + 100] for i in (0, 150, 170, 200, 900)]
    monkeypatch.setattr(windows, "KMER_CHUNK", 200)
    assert windows_covered_by_kmers(across, iter([training]), 31).all()


def test_kmers_with_ambiguous_bases_are_left_out():
    assert len(canonical_kmer_codes("ACGTA" + "N" + "ACGTAC", 5)) == 1 + 2


def test_window_from_a_training_plasmid_is_covered_and_a_fresh_one_is_not():
    rng = np.random.default_rng(4)
    training = "".join(rng.choice(list("ACGT"), size=2000))
    near_copy = training[500:600]
    fresh = "".join(rng.choice(list("ACGT"), size=100))
    covered = windows_covered_by_kmers([near_copy, reverse_complement(near_copy), fresh, near_copy[:50] + fresh[:50]],
                                       iter([fresh[:20], training]), 31)
    assert covered.tolist() == [True, True, False, False]


# --- streaming and ambiguity policy ------------------------------------------------------------------

def test_streamed_records_in_any_order_give_the_same_windows_as_a_mapping(synthetic):
    plasmids = plasmids_of(synthetic)
    expected = draw_windows(synthetic.sequences, plasmids, LINEAR, per_plasmid=3, seed=(0, "w"))
    reversed_stream = iter(list(synthetic.sequences.items())[::-1])
    pd.testing.assert_frame_equal(draw_windows(reversed_stream, plasmids, LINEAR, per_plasmid=3, seed=(0, "w")),
                                  expected)


def test_a_plasmids_windows_do_not_depend_on_the_other_plasmids(synthetic):
    plasmids = plasmids_of(synthetic)
    everyone = draw_windows(synthetic.sequences, plasmids, LINEAR, per_plasmid=3, seed=(0, "w"))
    alone = draw_windows(synthetic.sequences, plasmids.iloc[[4]], LINEAR, per_plasmid=3, seed=(0, "w"))
    columns = ["plasmid_id", "start", "strand", "sequence"]
    pd.testing.assert_frame_equal(alone[columns],
                                  everyone.loc[everyone["plasmid_id"] == plasmids["id"].iloc[4], columns]
                                  .reset_index(drop=True))


def test_missing_record_is_an_error_naming_it(synthetic):
    plasmids = pd.concat([plasmids_of(synthetic), pd.DataFrame({"id": ["ghost"], "label": ["alpha"]})])
    with pytest.raises(PlasmidlmError, match="windows: record ghost: no sequence"):
        draw_windows(synthetic.sequences, plasmids, LINEAR, per_plasmid=1, seed=(0, "w"))


def n_rich_plasmid() -> dict[str, str]:
    """600 nt: clean, then 200 nt of N, then clean with one R every 10 nt."""
    rng = np.random.default_rng(0)
    clean = "".join(rng.choice(list("ACGT"), size=200))
    with_r = "".join(base if i % 10 else "R" for i, base in enumerate(rng.choice(list("ACGT"), size=200)))
    return {"p": clean + "N" * 200 + with_r}


@pytest.mark.parametrize("ambiguous, max_n_fraction, allowed", [
    ("keep", 0.1, set("ACGTNR")),      # up to 10 ambiguous bases per 100 window: the N run's edges, R-rich windows
    ("replace_n", 0.1, set("ACGTN")),  # the same, with R written as N
    ("drop", 0.1, set("ACGT")),        # no ambiguous base at all
])
def test_ambiguity_policy(ambiguous, max_n_fraction, allowed):
    plasmids = pd.DataFrame({"id": ["p"], "label": ["x"]})
    windows = draw_windows(n_rich_plasmid(), plasmids, WindowPolicy(LENGTH, ambiguous=ambiguous,
                           max_n_fraction=max_n_fraction), per_plasmid=30, reverse_complement_p=0.0, seed=(1, "w"))
    assert len(windows) == 30
    for sequence in windows["sequence"]:
        assert set(sequence) <= allowed
        assert len(sequence) - sum(sequence.count(base) for base in "ACGT") <= 10
    if ambiguous != "drop":
        assert any(set(sequence) - set("ACGT") for sequence in windows["sequence"])


def test_plasmid_without_acceptable_windows_gives_fewer_and_counts_them():
    plasmids = pd.DataFrame({"id": ["good", "bad"], "label": ["x", "x"]})
    sequences = {"good": "ACGT" * 50, "bad": "ACGT" * 5 + "N" * 180}
    windows = draw_windows(sequences, plasmids, WindowPolicy(LENGTH, max_n_fraction=0.1), per_plasmid=4,
                           seed=(0, "w"))
    assert windows["plasmid_id"].tolist() == ["good"] * 4
    assert windows.attrs["missing"] == 4
    first = draw_windows(sequences, plasmids, WindowPolicy(LENGTH, ambiguous="drop"), strategy="first",
                         per_plasmid=2, seed=(0, "w"))
    assert first["plasmid_id"].tolist() == ["good"] * 2 and first.attrs["missing"] == 2


def test_unknown_ambiguity_policy_is_an_error():
    with pytest.raises(PlasmidlmError, match="windows.ambiguous: unknown value 'ignore'"):
        WindowPolicy(LENGTH, ambiguous="ignore")


def test_window_policy_reads_its_keys_of_a_windows_config_section():
    section = {"length": 60, "circular": True, "ambiguous": "drop", "max_n_fraction": 0.2, "per_plasmid": 8}
    assert WindowPolicy.from_config(section) == WindowPolicy(60, circular=True, ambiguous="drop", max_n_fraction=0.2)
