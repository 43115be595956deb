"""Finding near-identical plasmids with FracMinHash sketches, so that a split can keep them together.

Near-identical plasmids recur across isolates: split by ID alone, a test plasmid can be a near-copy of a
training one. Each sequence is sketched (sourmash FracMinHash: the canonical k-mers whose hash falls below
2^64 / scaled), pairs whose sketches overlap above a threshold are linked, and connected components become
groups that a split keeps together.
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


def sketch_records(records: Iterable[tuple[str, str]], ksize: int, scaled: int, threads: int = 1,
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


def write_sketches(path: str | Path, ids: list[str], sketches: list[np.ndarray], ksize: int, scaled: int) -> None:
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


def similar_pairs(ids: list[str], sketches: list[np.ndarray], threshold: float, measure: str = "containment",
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


def group_ids(ids: list[str], pairs: pd.DataFrame) -> pd.Series:
    """Connected components of the pair graph; each ID's group is named after its smallest member ID."""
    position = {record_id: index for index, record_id in enumerate(ids)}
    rows = pairs["id_a"].map(position).to_numpy(dtype=int)
    columns = pairs["id_b"].map(position).to_numpy(dtype=int)
    graph = sparse.coo_matrix((np.ones(len(rows)), (rows, columns)), shape=(len(ids), len(ids)))
    _, component = connected_components(graph, directed=False)
    members = pd.Series(ids, index=ids)
    return members.groupby(component).transform("min").rename("group")
