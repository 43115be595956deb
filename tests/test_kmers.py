"""The base codes and k-mer indices that every k-mer computation builds on."""

from __future__ import annotations

import numpy as np

from plasmidlm.kmers import OTHER, base_codes, kmer_strings, place_values


def test_base_codes_are_acgt_in_order_and_other_for_every_other_code():
    assert base_codes("ACGTNRYacgt-").tolist() == [0, 1, 2, 3] + [OTHER] * 8
    assert base_codes("").tolist() == []


def test_a_kmers_index_from_its_codes_is_its_place_in_kmer_strings():
    strings = kmer_strings(3)
    assert len(strings) == 64 and strings[:2] == ["AAA", "AAC"] and strings[-1] == "TTT"
    for index, kmer in enumerate(strings):
        assert int(base_codes(kmer).astype(np.int64) @ place_values(3)) == index
        assert int("".join(str("ACGT".index(base)) for base in kmer), 4) == index
