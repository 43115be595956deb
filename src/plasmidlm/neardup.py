"""Finding near-identical plasmids with FracMinHash sketches, so that a split can keep them together.

Near-identical plasmids recur across isolates: split by ID alone, a test plasmid can be a near-copy of a
training one. Each sequence is sketched (sourmash FracMinHash: the canonical k-mers whose hash falls below
2^64 / scaled), pairs whose sketches overlap above a threshold are linked, and the linked plasmids form groups
that a split keeps together: connected components (no linked pair is ever split, but chains of near-copies
can merge into one giant group) or centroid clusters (each plasmid joins a representative it is linked to, so
a group never chains, but a linked pair can straddle splits).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from plasmidlm import io

MEASURES = ("containment", "jaccard")
LINKAGES = ("components", "centroid")
PAIR_COLUMNS = ["id_a", "id_b", "shared_hashes", "jaccard", "containment"]


def sketch(sequence: str, ksize: int, scaled: int) -> np.ndarray:
    """The sorted FracMinHash hashes of a sequence (both strands; k-mers with non-ACGT codes skipped)."""
    import sourmash  # imported here: only the sketch step needs it

    minhash = sourmash.MinHash(n=0, ksize=ksize, scaled=scaled)
    minhash.add_sequence(sequence, force=True)
    return np.fromiter(minhash.hashes, dtype=np.uint64, count=len(minhash))


def batches(records: Iterable[tuple[str, str]], max_bases: int) -> Iterator[list[tuple[str, str]]]:
    """Consecutive records in lists of at most `max_bases` nt (or one record, if it is longer)."""
    batch, bases = [], 0
    for record in records:
        if batch and bases + len(record[1]) > max_bases:
            yield batch
            batch, bases = [], 0
        batch.append(record)
        bases += len(record[1])
    if batch:
        yield batch


def sketch_records(records: Iterable[tuple[str, str]], *, ksize: int, scaled: int, threads: int = 1,
                   batch_bases: int = 50_000_000) -> tuple[list[str], list[np.ndarray]]:
    """Sketches of streamed records, `threads` at a time (sourmash releases the GIL while it hashes).

    Records are read in batches of about `batch_bases` nt, so memory holds one batch, not the file.
    """
    ids, sketches = [], []
    with ThreadPoolExecutor(threads) as pool:
        for batch in batches(records, batch_bases):
            ids += [record_id for record_id, _ in batch]
            sketches += pool.map(lambda record: sketch(record[1], ksize, scaled), batch)
    return ids, sketches


def write_sketches(path: str | Path, ids: list[str], sketches: list[np.ndarray], *, ksize: int, scaled: int) -> None:
    sizes = np.array([len(hashes) for hashes in sketches], dtype=np.int64)
    hashes = np.concatenate(sketches) if sketches else np.empty(0, dtype=np.uint64)

    def write(tmp):
        with open(tmp, "wb") as handle:  # a handle, so that numpy does not append .npz to the name
            np.savez(handle, ids=np.array(ids, dtype=str), sizes=sizes, hashes=hashes,
                     ksize=ksize, scaled=scaled)

    io.write_atomic(path, write)


def read_sketches(path: str | Path) -> tuple[list[str], list[np.ndarray]]:
    with np.load(path) as data:
        offsets = np.cumsum(data["sizes"])[:-1]
        return data["ids"].tolist(), np.split(data["hashes"], offsets)


def sketch_matrix(sketches: list[np.ndarray]) -> sparse.csr_matrix:
    """Sequences × the hashes found in more than one sketch, 1 where a sequence's sketch holds the hash.

    Hashes of a single sketch cannot be shared, and leaving them out keeps the matrix small: at PLSDB's
    size most hashes are unique to one plasmid.
    """
    ordered = np.concatenate(sketches) if sketches else np.empty(0, dtype=np.uint64)
    ordered.sort()
    shared = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    rows, columns = [], []
    for row, hashes in enumerate(sketches):  # one sketch at a time: no index array as long as all hashes
        if not len(shared):
            break
        positions = np.minimum(np.searchsorted(shared, hashes), len(shared) - 1)
        positions = positions[shared[positions] == hashes]
        rows.append(np.full(len(positions), row, dtype=np.int64))
        columns.append(positions)
    rows = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    columns = np.concatenate(columns) if columns else np.empty(0, dtype=np.int64)
    return sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, columns)),
                             shape=(len(sketches), len(shared)))


def similar_pairs(ids: list[str], sketches: list[np.ndarray], *, threshold: float, measure: str = "containment",
                  block_rows: int = 2048) -> pd.DataFrame:
    """Pairs of sequences whose sketches are similar at or above `threshold`.

    jaccard = shared / union; containment = shared / size of the smaller sketch (a small plasmid that sits
    inside a large one has containment 1). Shared hashes are counted by a sparse matrix product, a block of
    rows at a time, so that memory stays bounded.
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, not {measure!r}")
    matrix = sketch_matrix(sketches)
    transposed = matrix.T.tocsr()
    sizes = np.array([len(hashes) for hashes in sketches], dtype=np.int64)
    found = []
    for begin in range(0, len(ids), block_rows):
        shared = (matrix[begin : begin + block_rows] @ transposed).tocoo()
        a, b, count = shared.row + begin, shared.col, shared.data.astype(np.int64)
        upper = a < b
        a, b, count = a[upper], b[upper], count[upper]
        jaccard = count / (sizes[a] + sizes[b] - count)
        containment = count / np.minimum(sizes[a], sizes[b])
        keep = (jaccard if measure == "jaccard" else containment) >= threshold
        found.append((a[keep], b[keep], count[keep], jaccard[keep], containment[keep]))
    a, b, count, jaccard, containment = (np.concatenate(parts) for parts in zip(*found)) if found else [[]] * 5
    names = np.asarray(ids, dtype=object)
    return pd.DataFrame({"id_a": names[np.asarray(a, dtype=int)], "id_b": names[np.asarray(b, dtype=int)],
                         "shared_hashes": count, "jaccard": jaccard, "containment": containment},
                        columns=PAIR_COLUMNS)


def group_ids(ids: list[str], pairs: pd.DataFrame, *, linkage: str = "components", lengths=None,
              measure: str = "containment") -> pd.Series:
    """Each ID's near-duplicate group, named after its smallest member ID.

    linkage "components": connected components of the pair graph. linkage "centroid" (greedy, as CD-HIT
    does): plasmids are taken longest first (`lengths`, same order as `ids`; ties by ID); each joins the
    representative it is most similar to (by `measure`) among the earlier representatives it is linked
    to, or else becomes a representative itself.
    """
    if linkage not in LINKAGES:
        raise ValueError(f"linkage must be one of {LINKAGES}, not {linkage!r}")
    position = {record_id: index for index, record_id in enumerate(ids)}
    rows = pairs["id_a"].map(position).to_numpy(dtype=int)
    columns = pairs["id_b"].map(position).to_numpy(dtype=int)
    if linkage == "components":
        graph = sparse.coo_matrix((np.ones(len(rows)), (rows, columns)), shape=(len(ids), len(ids)))
        _, label = connected_components(graph, directed=False)
    else:
        label = _centroid_clusters(ids, rows, columns, pairs[measure].to_numpy(dtype=float), lengths=lengths)
    members = pd.Series(ids, index=ids)
    return members.groupby(label).transform("min").rename("group")


def _centroid_clusters(ids, rows, columns, similarity, *, lengths) -> np.ndarray:
    lengths = np.zeros(len(ids)) if lengths is None else np.asarray(lengths, dtype=float)
    order = sorted(range(len(ids)), key=lambda index: (-lengths[index], ids[index]))
    rank = np.empty(len(ids), dtype=int)
    rank[order] = np.arange(len(ids))
    # every pair once, as (later, earlier) in the processing order, so each plasmid sees its earlier neighbours
    later = np.where(rank[rows] > rank[columns], rows, columns)
    earlier = np.where(rank[rows] > rank[columns], columns, rows)
    graph = sparse.csr_matrix((similarity + 1.0, (later, earlier)), shape=(len(ids), len(ids)))  # +1: keep zeros
    representative = np.full(len(ids), -1)
    for index in order:
        start, end = graph.indptr[index], graph.indptr[index + 1]
        neighbours, values = graph.indices[start:end], graph.data[start:end]
        is_representative = representative[neighbours] == neighbours
        if is_representative.any():
            candidates, values = neighbours[is_representative], values[is_representative]
            best = max(range(len(candidates)), key=lambda i: (values[i], -rank[candidates[i]]))
            representative[index] = candidates[best]
        else:
            representative[index] = index
    return representative


def group_diameters(ids: list[str], sketches: list[np.ndarray], groups: pd.Series, *, names,
                    block_rows: int = 1024) -> pd.DataFrame:
    """For each group in `names`: the lowest containment and the lowest jaccard between two of its members.

    A diameter far below the linking threshold means that chains of near-copies merged plasmids that are
    not near-copies of each other. Member pairs are compared a block of rows at a time, so memory stays
    bounded for groups of thousands.
    """
    position = {record_id: index for index, record_id in enumerate(ids)}
    rows = []
    for name in names:
        members = [position[record_id] for record_id in groups.index[groups == name]]
        sizes = np.array([len(sketches[index]) for index in members], dtype=np.int64)
        matrix = sketch_matrix([sketches[index] for index in members]).astype(np.int64)
        transposed = matrix.T.tocsc()
        lowest = {"min_containment": 1.0, "min_jaccard": 1.0}
        for begin in range(0, len(members) - 1, block_rows):
            shared = (matrix[begin : begin + block_rows] @ transposed).toarray()
            a, b = np.nonzero(np.arange(len(members))[None, :] > np.arange(begin, begin + len(shared))[:, None])
            count, a = shared[a, b], a + begin
            smaller, union = np.minimum(sizes[a], sizes[b]), sizes[a] + sizes[b] - count
            lowest["min_containment"] = min(lowest["min_containment"],
                                            float(np.min(np.divide(count, smaller, out=np.zeros(len(a)),
                                                                   where=smaller > 0))))
            lowest["min_jaccard"] = min(lowest["min_jaccard"],
                                        float(np.min(np.divide(count, union, out=np.zeros(len(a)), where=union > 0))))
        rows.append({"group": name, "size": len(members)} | lowest)
    return pd.DataFrame(rows, columns=["group", "size", "min_containment", "min_jaccard"])
