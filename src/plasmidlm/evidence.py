"""Evidence beyond accuracy: composition features, shuffled controls, calibration, strand flips, contig lengths.

Plain numpy/pandas over window tables and probability arrays; nothing here loads a model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plasmidlm.windows import rng_for

COMPOSITION_BASELINES = {"composition_gc": "GC content", "composition_2mer": "2-mer frequencies",
                         "composition_4mer": "4-mer frequencies"}
PROBABILITY_FLOOR = 1e-12  # log of a probability that underflowed to 0 in float32


def gc_content(sequences) -> np.ndarray:
    """Share of G and C among the A, C, G and T of each sequence, as a one-column feature matrix."""
    out = np.zeros((len(sequences), 1))
    for row, sequence in enumerate(sequences):
        acgt = sum(sequence.count(base) for base in "ACGT")
        out[row, 0] = (sequence.count("G") + sequence.count("C")) / acgt if acgt else 0.5
    return out


def _last_edges_form_tree(last: dict, end: str) -> bool:
    """Whether following every vertex's last exit edge leads to `end` (no cycle)."""
    for vertex in last:
        seen = set()
        while vertex != end:
            if vertex in seen:
                return False
            seen.add(vertex)
            vertex = last[vertex]
    return True


def dinucleotide_shuffle(sequence: str, rng: np.random.Generator) -> str:
    """A random sequence with exactly the dinucleotide counts (and first and last base) of `sequence`.

    Altschul & Erickson (1985), by a random Eulerian path: each base's successors are shuffled, except that
    every base but the last leaves by a randomly chosen last edge, redrawn until those edges form a tree
    towards the final base, so the walk uses every edge once.
    """
    if len(sequence) < 3:
        return sequence
    successors: dict[str, list[str]] = {}
    for a, b in zip(sequence, sequence[1:]):
        successors.setdefault(a, []).append(b)
    end = sequence[-1]
    while True:
        last_index = {vertex: int(rng.integers(len(edges))) for vertex, edges in successors.items() if vertex != end}
        if _last_edges_form_tree({vertex: successors[vertex][i] for vertex, i in last_index.items()}, end):
            break
    order = {}
    for vertex, edges in successors.items():
        if vertex in last_index:
            rest = edges[: last_index[vertex]] + edges[last_index[vertex] + 1 :]
            order[vertex] = [rest[i] for i in rng.permutation(len(rest))] + [edges[last_index[vertex]]]
        else:
            order[vertex] = [edges[i] for i in rng.permutation(len(edges))]
    position = dict.fromkeys(order, 0)
    out = [sequence[0]]
    for _ in range(len(sequence) - 1):
        vertex = out[-1]
        out.append(order[vertex][position[vertex]])
        position[vertex] += 1
    return "".join(out)


def shuffled_windows(windows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same windows, each dinucleotide-shuffled with its own generator (seed, window_id)."""
    shuffled = windows.copy()
    shuffled["sequence"] = [dinucleotide_shuffle(sequence, rng_for(seed, "shuffle", window_id))
                            for window_id, sequence in zip(windows["window_id"], windows["sequence"])]
    return shuffled


def scale_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) from probabilities: log p differs from the logits by a per-row constant."""
    logits = np.log(np.clip(proba, PROBABILITY_FLOOR, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def negative_log_likelihood(proba: np.ndarray, y_true: np.ndarray) -> float:
    return float(-np.log(np.clip(proba[np.arange(len(y_true)), y_true], PROBABILITY_FLOOR, None)).mean())


def fit_temperature(proba: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature (0.05 to 20) that minimises the negative log-likelihood of class indices `y_true`."""
    from scipy.optimize import minimize_scalar

    result = minimize_scalar(lambda log_t: negative_log_likelihood(scale_temperature(proba, np.exp(log_t)), y_true),
                             bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def reliability(proba: np.ndarray, y_true: np.ndarray, n_bins: int = 10) -> dict:
    """Expected calibration error of the top-class probability and its equal-width bins.

    ECE = sum over bins of (share of predictions in the bin) x |accuracy - mean confidence| in it.
    """
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    rows = []
    ece = 0.0
    for index in range(n_bins):
        inside = bins == index
        if not inside.any():
            continue
        accuracy, mean_confidence = float(correct[inside].mean()), float(confidence[inside].mean())
        ece += inside.mean() * abs(accuracy - mean_confidence)
        rows.append({"low": index / n_bins, "high": (index + 1) / n_bins, "n": int(inside.sum()),
                     "confidence": mean_confidence, "accuracy": accuracy})
    return {"ece": float(ece), "n": int(len(y_true)), "bins": rows}


def sequence_means(plasmid_ids, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique plasmid IDs and the mean probability row of each plasmid's windows."""
    ids, inverse = np.unique(np.asarray(plasmid_ids), return_inverse=True)
    sums = np.zeros((len(ids), proba.shape[1]))
    np.add.at(sums, inverse, proba)
    return ids, sums / np.bincount(inverse)[:, None]


def calibration_report(val: pd.DataFrame, val_proba: np.ndarray, test: pd.DataFrame, test_proba: np.ndarray,
                       *, classes: list[str], n_bins: int = 10) -> dict:
    """Temperature fitted on validation windows; test ECE and reliability bins before and after it.

    Sequence level: a plasmid's probabilities are the mean of its (scaled) test windows', as in the report
    and in `predict`.
    """
    from plasmidlm.metrics import class_indices

    temperature = fit_temperature(val_proba, class_indices(val["label"], classes))
    y_true = class_indices(test["label"], classes)
    label_of = dict(zip(test["plasmid_id"], test["label"]))
    out = {"temperature": temperature, "bins": n_bins}
    for level in ("window", "sequence"):
        out[level] = {}
        for stage, proba in (("before", test_proba), ("after", scale_temperature(test_proba, temperature))):
            if level == "window":
                out[level][stage] = reliability(proba, y_true, n_bins)
            else:
                ids, means = sequence_means(test["plasmid_id"], proba)
                out[level][stage] = reliability(means, class_indices([label_of[i] for i in ids], classes), n_bins)
    return out


def strand_flip_fraction(forward: np.ndarray, reverse: np.ndarray) -> float:
    """Share of windows whose predicted class differs between the window and its reverse complement."""
    return float((forward.argmax(axis=1) != reverse.argmax(axis=1)).mean()) if len(forward) else 0.0


def abstain(proba: np.ndarray, classes: list[str], min_confidence: float | None) -> list[str]:
    """The predicted class of each row, or `uncertain` where its top probability is below `min_confidence`."""
    predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    if min_confidence is not None:
        predicted[proba.max(axis=1) < min_confidence] = "uncertain"
    return predicted.tolist()


TILE_COLUMNS = ["tile_id", "plasmid_id", "label", "start", "sequence"]


def tiles(records, plasmids: pd.DataFrame, length: int) -> pd.DataFrame:
    """Non-overlapping windows at 0, length, 2 x length … of each plasmid (forward strand), in one pass."""
    label_of = dict(zip(plasmids["id"], plasmids["label"]))
    rows = []
    for plasmid_id, sequence in records:
        if plasmid_id in label_of:
            rows += [(plasmid_id, label_of[plasmid_id], start, sequence[start : start + length])
                     for start in range(0, len(sequence) - length + 1, length)]
    table = pd.DataFrame(rows, columns=TILE_COLUMNS[1:])
    table.insert(0, "tile_id", [f"tile_{index:07d}" for index in range(len(table))])
    return table


def contigs(plasmid_lengths: dict[str, int], contig_lengths: list[int], window: int, seed: int) -> pd.DataFrame:
    """Sub-sequences ("contigs") of every plasmid at each length: as many non-overlapping ones as fit.

    A plasmid of length N holds N // L contigs of length L, laid end to end from a seeded offset that is a
    multiple of the window length, so that each contig is a whole number of tiles (`tiles`).
    """
    rows = []
    for plasmid_id, plasmid_length in plasmid_lengths.items():
        for contig_length in contig_lengths:
            n_contigs = plasmid_length // contig_length
            if not n_contigs:
                continue
            spare_tiles = (plasmid_length - n_contigs * contig_length) // window
            offset = int(rng_for(seed, "contigs", plasmid_id, str(contig_length)).integers(spare_tiles + 1)) * window
            rows += [(plasmid_id, contig_length, offset + index * contig_length) for index in range(n_contigs)]
    return pd.DataFrame(rows, columns=["plasmid_id", "contig_length", "start"])


def contig_proba(tile_table: pd.DataFrame, tile_proba: np.ndarray, contig_table: pd.DataFrame,
                 window: int) -> np.ndarray:
    """Mean probability of the whole tiles inside each contig (prefix sums per plasmid)."""
    out = np.zeros((len(contig_table), tile_proba.shape[1]))
    tile_rows = tile_table.groupby("plasmid_id", sort=False).indices
    for plasmid_id, rows in contig_table.groupby("plasmid_id", sort=False).indices.items():
        tile_index = tile_rows[plasmid_id][np.argsort(tile_table["start"].to_numpy()[tile_rows[plasmid_id]])]
        cumulative = np.vstack([np.zeros(tile_proba.shape[1]), np.cumsum(tile_proba[tile_index], axis=0)])
        first = contig_table["start"].to_numpy()[rows] // window
        n_tiles = contig_table["contig_length"].to_numpy()[rows] // window
        out[rows] = (cumulative[first + n_tiles] - cumulative[first]) / n_tiles[:, None]
    return out


def contig_curve(contig_table: pd.DataFrame, proba: np.ndarray, labels: dict[str, str], *, classes: list[str],
                 n_bootstrap: int, seed: int) -> pd.DataFrame:
    """Accuracy and balanced accuracy per contig length, with 95% bootstrap intervals over plasmids."""
    from plasmidlm.metrics import bootstrap_intervals, class_indices

    rows = []
    for contig_length, table in contig_table.groupby("contig_length", sort=True):
        index = table.index.to_numpy()
        y_true = class_indices(table["plasmid_id"].map(labels), classes)
        predicted = proba[index].argmax(axis=1)
        row = {"contig_length": int(contig_length), "contigs": len(table), "plasmids": table["plasmid_id"].nunique(),
               "accuracy": float((predicted == y_true).mean()),
               "balanced_accuracy": float(np.mean([(predicted[y_true == c] == c).mean()
                                                   for c in np.unique(y_true)]))}
        if n_bootstrap:
            groups = [np.asarray(rows) for rows in table.reset_index(drop=True).groupby("plasmid_id").indices.values()]
            intervals = bootstrap_intervals(groups, y_true, proba[index], n_classes=len(classes),
                                            n_resamples=n_bootstrap, rng=rng_for(seed, "contigs", str(contig_length)))
            for name in ("accuracy", "balanced_accuracy"):
                row[f"{name}_ci_low"], row[f"{name}_ci_high"] = intervals[name]
        rows.append(row)
    columns = ["contig_length", "contigs", "plasmids", "accuracy", "balanced_accuracy"]
    if n_bootstrap:
        columns += [f"{name}_ci_{end}" for name in ("accuracy", "balanced_accuracy") for end in ("low", "high")]
    return pd.DataFrame(rows, columns=columns)  # no rows when no test plasmid is as long as the shortest contig
