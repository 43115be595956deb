"""Near-duplicate detection: FracMinHash sketches, similar pairs, connected groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import random_sequence

from plasmidlm.neardup import (
    batches,
    group_diameters,
    group_ids,
    read_sketches,
    similar_pairs,
    sketch,
    sketch_records,
    write_sketches,
)
from plasmidlm.windows import reverse_complement


def mutate(rng: np.random.Generator, sequence: str, rate: float) -> str:
    bases = np.array(list(sequence))
    positions = rng.random(len(bases)) < rate
    bases[positions] = [{"A": "C", "C": "G", "G": "T", "T": "A"}[base] for base in bases[positions]]
    return "".join(bases)


@pytest.fixture(scope="module")
def family():
    """A 20 kbp plasmid, a copy with 1 SNP per 2 kbp, a 4 kbp piece of it, and two unrelated plasmids."""
    rng = np.random.default_rng(0)
    original = random_sequence(rng, 20_000)
    return {
        "original": original,
        "snp_copy": mutate(rng, original, 0.0005),
        "fragment": original[5_000:9_000],
        "unrelated": random_sequence(rng, 20_000),
        "other": random_sequence(rng, 6_000),
    }


def sketches_of(records: dict[str, str], ksize=21, scaled=20):
    return list(records), [sketch(sequence, ksize, scaled) for sequence in records.values()]


def test_sketch_is_sorted_strand_independent_and_skips_ambiguous_kmers(family):
    hashes = sketch(family["original"], 21, 20)
    assert len(hashes) > 500 and (np.diff(hashes.astype(np.float64)) > 0).all()
    assert np.array_equal(sketch(reverse_complement(family["original"]), 21, 20), hashes)
    with_n = family["original"][:10_000] + "N" + family["original"][10_000:]
    assert set(sketch(with_n, 21, 20)) <= set(hashes)


def test_containment_links_copies_and_fragments_not_unrelated_plasmids(family):
    ids, sketches = sketches_of(family)
    pairs = similar_pairs(ids, sketches, threshold=0.95, measure="containment")
    linked = {frozenset(pair) for pair in zip(pairs["id_a"], pairs["id_b"])}
    assert linked == {frozenset(pair) for pair in
                      [("original", "snp_copy"), ("original", "fragment"), ("snp_copy", "fragment")]}
    fragment = pairs[(pairs["id_a"] == "original") & (pairs["id_b"] == "fragment")].iloc[0]
    assert fragment["containment"] >= 0.95 and fragment["jaccard"] < 0.3


def test_jaccard_links_copies_but_not_fragments(family):
    ids, sketches = sketches_of(family)
    pairs = similar_pairs(ids, sketches, threshold=0.9, measure="jaccard")
    assert list(zip(pairs["id_a"], pairs["id_b"])) == [("original", "snp_copy")]


def test_pairs_do_not_depend_on_the_block_size(family):
    ids, sketches = sketches_of(family)
    whole = similar_pairs(ids, sketches, threshold=0.1)
    pd.testing.assert_frame_equal(similar_pairs(ids, sketches, threshold=0.1, block_rows=2), whole)


def test_empty_sketches_and_no_pairs():
    pairs = similar_pairs(["a", "b"], [np.empty(0, dtype=np.uint64)] * 2, threshold=0.95)
    assert pairs.empty and list(pairs.columns) == ["id_a", "id_b", "shared_hashes", "jaccard", "containment"]
    assert group_ids(["a", "b"], pairs).tolist() == ["a", "b"]


def test_groups_are_connected_components_named_after_their_smallest_id():
    pairs = pd.DataFrame({"id_a": ["p3", "p2"], "id_b": ["p2", "p5"]})
    groups = group_ids(["p5", "p1", "p2", "p3", "p4"], pairs)
    assert groups.to_dict() == {"p5": "p2", "p1": "p1", "p2": "p2", "p3": "p2", "p4": "p4"}


def test_sketch_file_round_trip(tmp_path, family):
    ids, sketches = sketches_of(family)
    ids.append("too_short")
    sketches.append(np.empty(0, dtype=np.uint64))
    write_sketches(tmp_path / "sketches.npz", ids, sketches, ksize=21, scaled=20)
    read_ids, read_hashes = read_sketches(tmp_path / "sketches.npz")
    assert read_ids == ids
    assert all(np.array_equal(a, b) for a, b in zip(read_hashes, sketches))
    assert [path.name for path in tmp_path.iterdir()] == ["sketches.npz"]


def test_sketching_in_threads_and_batches_gives_the_same_sketches(family):
    ids, sketches = sketches_of(family)
    threaded_ids, threaded = sketch_records(iter(family.items()), ksize=21, scaled=20, threads=2, batch_bases=10_000)
    assert threaded_ids == ids
    assert all(np.array_equal(a, b) for a, b in zip(threaded, sketches))


def test_batches_hold_at_most_max_bases_unless_one_record_is_longer():
    records = [("a", "A" * 5), ("b", "A" * 5), ("c", "A" * 12), ("d", "A" * 1)]
    assert [[name for name, _ in batch] for batch in batches(iter(records), 10)] == [["a", "b"], ["c"], ["d"]]


def chain(rng: np.random.Generator, links: int, length: int = 20_000, turnover: float = 0.03) -> dict[str, str]:
    """Plasmids each derived from the previous one by replacing `turnover` of it: a chain of near-copies."""
    sequences = {"c0": random_sequence(rng, length)}
    for i in range(1, links + 1):
        previous = sequences[f"c{i - 1}"]
        start = int(rng.integers(0, length - int(turnover * length)))
        end = start + int(turnover * length)
        sequences[f"c{i}"] = previous[:start] + random_sequence(rng, end - start) + previous[end:]
    return sequences


def test_components_chain_near_copies_and_centroid_clusters_do_not():
    ids, sketches = sketches_of(chain(np.random.default_rng(3), 6))
    pairs = similar_pairs(ids, sketches, threshold=0.95)
    linked = set(zip(pairs["id_a"], pairs["id_b"]))
    assert {(f"c{i}", f"c{i + 1}") for i in range(6)} <= linked and ("c0", "c6") not in linked
    components = group_ids(ids, pairs)
    assert components.nunique() == 1
    [diameter] = group_diameters(ids, sketches, components, names=["c0"]).to_dict("records")
    assert diameter["size"] == 7 and diameter["min_containment"] < 0.9 and diameter["min_jaccard"] < 0.9
    centroid = group_ids(ids, pairs, linkage="centroid", lengths=[1] * len(ids))  # equal lengths: taken in ID order
    assert centroid.nunique() > 1
    for name, members in centroid.groupby(centroid).groups.items():
        for member in members:  # every member is linked to the group's representative, the first in order
            assert member == name or (name, member) in linked or (member, name) in linked


def test_centroid_representatives_are_the_longest_and_members_join_the_most_similar():
    pairs = pd.DataFrame({"id_a": ["a", "b", "a"], "id_b": ["b", "c", "c"], "containment": [0.96, 0.99, 0.97]})
    # b is longest: it represents; a and c are both linked to it
    assert (group_ids(["a", "b", "c"], pairs, linkage="centroid", lengths=[1, 3, 2]).to_dict()
            == {"a": "a", "b": "a", "c": "a"})
    # a, then c, then b: a represents, c joins a; b is linked only to c, a member, so it represents itself
    pairs = pd.DataFrame({"id_a": ["a", "b"], "id_b": ["c", "c"], "containment": [0.97, 0.99]})
    assert (group_ids(["a", "b", "c"], pairs, linkage="centroid", lengths=[3, 1, 2]).to_dict()
            == {"a": "a", "b": "b", "c": "a"})


def test_group_diameters_do_not_depend_on_the_block_size(family):
    ids, sketches = sketches_of(family)
    groups = pd.Series(["g", "g", "g", "u", "o"], index=ids)
    whole = group_diameters(ids, sketches, groups, names=["g"])
    pd.testing.assert_frame_equal(group_diameters(ids, sketches, groups, names=["g"], block_rows=1), whole)
    assert whole["min_containment"].iloc[0] >= 0.95 and whole["min_jaccard"].iloc[0] < 0.3  # the fragment
