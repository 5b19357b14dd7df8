"""Pairs of hashes within a threshold: metrics, thresholds, and the three exact engines.

Pure functions on arrays, no file I/O. A hash of N bits is an N-dimensional 0/1 vector,
so Manhattan distance is the Hamming distance in bits, Euclidean its square root, a
Minkowski-p distance its p-th root, and Chebyshev is 0 for equal hashes and 1 otherwise.
Every metric therefore reduces to a largest number of differing bits (Metric.to_bits),
and the engines search by bits: `mih` (multi-index hashing compiled with numba,
engine.py; the default and the fastest), `KDTree` and `cKDTree` (trees over the hash
blocks' distinct values, block_trees.py). Thresholds are inclusive (<=) and all three
give identical answers: every candidate is checked on the exact bit count.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

TREE_TYPES = ("mih", "KDTree", "cKDTree")
METRIC_ALIASES = {
    "euclidean": "euclidean",
    "l2": "euclidean",
    "minkowski": "minkowski",
    "p": "minkowski",
    "manhattan": "manhattan",
    "cityblock": "manhattan",
    "l1": "manhattan",
    "chebyshev": "chebyshev",
    "infinity": "chebyshev",
}
# Unit of --threshold per metric, shown in --help and the README.
METRIC_UNITS = {
    "manhattan": "bits (Hamming distance)",
    "euclidean": "sqrt(bits)",
    "minkowski": "bits ** (1/p)",
    "chebyshev": "0 = identical hash, 1 = any difference",
}


@dataclass(frozen=True)
class Metric:
    """A distance on 0/1 vectors, expressed through the Hamming distance in bits."""

    name: str
    p: float = 2.0

    @classmethod
    def from_option(cls, name: str, p: float = 2.0) -> Metric:
        canonical = METRIC_ALIASES[name.lower()]
        order = {"manhattan": 1.0, "euclidean": 2.0, "chebyshev": math.inf}.get(canonical, p)
        return cls(canonical, float(order))

    def from_bits(self, bits):
        """Distance under this metric for Hamming distances `bits` (scalar or array)."""
        bits = np.asarray(bits, dtype=np.float64)
        if math.isinf(self.p):
            return (bits > 0).astype(np.float64)
        return bits ** (1.0 / self.p)

    def to_bits(self, threshold: float, n_bits: int) -> int:
        """Largest Hamming distance whose metric distance is <= threshold (inclusive)."""
        if threshold < 0:
            return -1
        if math.isinf(self.p):
            return n_bits if threshold >= 1 else 0
        if threshold >= n_bits ** (1.0 / self.p):
            return n_bits  # every pair; also keeps threshold ** p from overflowing
        return min(n_bits, int(math.floor(threshold**self.p + 1e-9)))


@dataclass(frozen=True)
class IndexSettings:
    """Which engine finds the pairs (TREE_TYPES), the KD-trees' leaf size, the metric the
    threshold was given in, and where the engine runs: here, or through `cluster`, an
    object whose iter_pairs(packed, queries, max_bits, tree_type, leaf_size) finds the
    same pairs elsewhere (distributed.ClusterSearch: block-pair tasks on a Dask cluster).
    Not part of the settings' identity."""

    tree_type: str = "mih"
    leaf_size: int = 40
    metric: Metric = Metric("manhattan", 1.0)
    cluster: object = field(default=None, compare=False, repr=False)


def hamming(packed_a: np.ndarray, packed_b: np.ndarray) -> np.ndarray:
    """Bit differences between rows of packed uint8 hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(packed_a, packed_b)).sum(axis=-1, dtype=np.int64)


def iter_pairs(packed: np.ndarray, n_bits: int, queries: np.ndarray | None, max_bits: int,
               settings: IndexSettings, threads: int | None = None) -> Iterator:
    """Every (query row, row) of packed hashes at most `max_bits` bits apart, exactly once,
    as chunks of (first, second, distances) integer arrays in no particular order; queries
    None pairs the rows of `packed` among themselves (first < second). `n_bits` is the
    hash length (the packed rows may end in zero padding). `threads`: the mih engine's
    threads (None: every CPU). With settings.cluster the chunks come from the cluster,
    however few the hashes (--scheduler asks for it), sorted by first, then second."""
    if n_bits > 8 * packed.shape[1]:
        raise ValueError(f"{n_bits}-bit hashes cannot be packed in {packed.shape[1]} bytes")
    if settings.tree_type not in TREE_TYPES:
        raise ValueError(f"unknown tree type {settings.tree_type!r}: one of {', '.join(TREE_TYPES)}")
    if settings.cluster is not None:
        yield from settings.cluster.iter_pairs(packed, queries, max_bits, settings.tree_type, settings.leaf_size)
    elif settings.tree_type == "mih" and _small(packed, queries):
        yield from _numpy_pairs(packed, queries, max_bits)
    elif settings.tree_type == "mih":
        from dedup_cli.search import engine

        if queries is None:
            yield from engine.iter_pairs_within(packed, max_bits, workers=threads)
        else:
            yield from engine.iter_cross_pairs(queries, packed, max_bits, workers=threads)
    else:
        from dedup_cli.search.block_trees import iter_tree_pairs

        yield from iter_tree_pairs(packed, queries, max_bits, settings.tree_type, settings.leaf_size)


# Below this many hash comparisons `mih` compares every pair in numpy instead: importing
# the compiled engine (numba) and loading its compiled search cost about 0.42 s on this
# project's 2-core machine, while numpy compares 64-bit hashes at about 3.7 ns a pair
# (100 million in 0.37 s; 2,521 files with --views and --isometric ask 85 million).
SMALL_COMPARISONS = 100_000_000
_NUMPY_QUERY_ROWS = 256


def _small(packed: np.ndarray, queries: np.ndarray | None) -> bool:
    count = len(packed) if queries is None else len(queries)
    return count * len(packed) <= SMALL_COMPARISONS


def _numpy_pairs(packed: np.ndarray, queries: np.ndarray | None, max_bits: int) -> Iterator:
    """Brute force in numpy, a block of query rows at a time (the same pairs as the
    engine: exact, each once, first < second when queries is None). The hashes are
    compared as 64-bit words (one popcount for a 64-bit hash instead of 8 and a sum), and
    a block of a set paired with itself only against the rows from its own on."""
    own = queries is None
    stored = _words(packed)
    queries = stored if own else _words(queries)
    for start in range(0, len(queries), _NUMPY_QUERY_ROWS):
        block = queries[start:start + _NUMPY_QUERY_ROWS]
        offset = start if own else 0
        counts = np.bitwise_count(np.bitwise_xor(block[:, None, :], stored[None, offset:, :]))
        distances = counts[..., 0] if counts.shape[2] == 1 else counts.sum(axis=2, dtype=np.uint16)
        if own:  # only pairs with second > first
            distances[np.arange(len(block))[:, None] >= np.arange(len(stored) - offset)[None, :]] = max_bits + 1
        first, second = np.nonzero(distances <= max_bits)
        yield ((first + start).astype(np.int32), (second + offset).astype(np.int32),
               distances[first, second].astype(np.int32))


def _words(packed: np.ndarray) -> np.ndarray:
    """Packed uint8 hash rows as rows of uint64 words (zero-padded to a whole word: the
    padding is equal in every row, so it adds no differing bits)."""
    width = -(-packed.shape[1] // 8) * 8
    if width != packed.shape[1]:
        packed = np.concatenate([packed, np.zeros((len(packed), width - packed.shape[1]), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(packed, dtype=np.uint8).view(np.uint64)


def cross_pairs(packed: np.ndarray, n_bits: int, queries: np.ndarray | None, max_bits: int,
                settings: IndexSettings, accept=None):
    """Every (query row, stored row) within `max_bits`, for many packed query hashes at
    once; `queries=None` pairs the stored rows among themselves and keeps each pair once
    (query row < stored row). Complete whatever the group size.

    The pairs come in chunks, and each chunk is filtered at once by `accept(query_rows,
    stored_rows)` if given (int64 arrays in, a boolean mask out), so memory follows the
    pairs kept, not the pairs found. Returns int64 arrays of query rows, stored rows and
    Hamming distances, sorted by query row, then stored row.
    """
    parts = [(np.zeros(0, dtype=np.int64),) * 3]
    for chunk in iter_pairs(packed, n_bits, queries, max_bits, settings):
        first, second, distances = (column.astype(np.int64) for column in chunk)
        if accept is not None:
            keep = accept(first, second)
            first, second, distances = first[keep], second[keep], distances[keep]
        parts.append((first, second, distances))
    first, second, distances = (np.concatenate(column) for column in zip(*parts))
    order = np.argsort(first * len(packed) + second)
    return first[order], second[order], distances[order]


def pairs_within(packed: np.ndarray, n_bits: int, max_bits: int, settings: IndexSettings, accept=None):
    """Every pair (i < j) of rows within `max_bits` (see cross_pairs), sorted by i, j."""
    return cross_pairs(packed, n_bits, None, max_bits, settings, accept=accept)
