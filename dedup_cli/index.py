"""Hash bits as 0/1 vectors in a KD-tree: metrics, thresholds and complete radius queries.

Pure functions on arrays, no file I/O. A hash of N bits is an N-dimensional 0/1 vector,
so Manhattan distance is the Hamming distance in bits, Euclidean its square root, a
Minkowski-p distance its p-th root, and Chebyshev is 0 for equal hashes and 1 otherwise.
Thresholds are inclusive (<=) for both trees, and both trees give identical answers
because every candidate is re-checked on the exact bit count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TREE_TYPES = ("KDTree", "cKDTree")
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
    """How the KD-tree is built and queried."""

    tree_type: str = "KDTree"
    leaf_size: int = 40
    metric: Metric = Metric("manhattan", 1.0)


def hamming(packed_a: np.ndarray, packed_b: np.ndarray) -> np.ndarray:
    """Bit differences between rows of packed uint8 hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(packed_a, packed_b)).sum(axis=-1, dtype=np.int64)


def _vectors(packed: np.ndarray, n_bits: int) -> np.ndarray:
    return np.unpackbits(packed, axis=1)[:, :n_bits].astype(np.float64)


def _radius(settings: IndexSettings, max_bits: int) -> float:
    # A hair wider than the exact metric distance, so that float rounding in the tree
    # cannot drop a pair sitting exactly on the threshold; the exact check follows.
    return float(settings.metric.from_bits(max_bits)) + 1e-6


def build_tree(vectors: np.ndarray, settings: IndexSettings):
    """A scikit-learn KDTree or a scipy cKDTree over hash vectors (see _vectors)."""
    if settings.tree_type == "cKDTree":
        from scipy.spatial import cKDTree

        return cKDTree(vectors, leafsize=settings.leaf_size)
    from sklearn.neighbors import KDTree

    metric = settings.metric
    if metric.name == "minkowski":
        return KDTree(vectors, leaf_size=settings.leaf_size, metric="minkowski", p=metric.p)
    return KDTree(vectors, leaf_size=settings.leaf_size, metric=metric.name)


def _query_radius(tree, vectors: np.ndarray, radius: float, settings: IndexSettings):
    """Rows of the tree within `radius` of each vector (inclusive), for either tree."""
    if settings.tree_type == "cKDTree":
        return tree.query_ball_point(vectors, radius, p=settings.metric.p)
    return tree.query_radius(vectors, r=radius)


def cross_pairs(packed: np.ndarray, n_bits: int, queries: np.ndarray | None, max_bits: int,
                settings: IndexSettings, accept=None, chunk: int = 256):
    """Every (query row, tree row) within `max_bits`, for many packed query hashes at once;
    `queries=None` queries the tree's own rows and keeps each pair once (query row < tree
    row). Complete whatever the group size (radius queries, not k nearest neighbours).

    The queries run in chunks and each chunk's pairs are filtered at once (exact bit
    count, then `accept(query_rows, tree_rows)` if given), so memory follows the pairs
    kept, not the candidates. Returns arrays of query rows, tree rows and Hamming distances.
    """
    empty = np.zeros(0, dtype=np.int64)
    own = queries is None
    queries = packed if own else queries
    if len(packed) == 0 or len(queries) == 0 or max_bits < 0:
        return empty, empty, empty
    tree_vectors = _vectors(packed, n_bits)
    tree = build_tree(tree_vectors, settings)
    query_vectors = tree_vectors if own else _vectors(queries, n_bits)
    radius = _radius(settings, max_bits)
    parts = [(empty, empty, empty)]
    for start in range(0, len(queries), chunk):
        found = _query_radius(tree, query_vectors[start : start + chunk], radius, settings)
        counts = np.array([len(rows) for rows in found], dtype=np.int64)
        query_rows = np.repeat(np.arange(start, start + len(found)), counts)
        tree_rows = np.concatenate([np.asarray(rows, dtype=np.int64) for rows in found])
        if own:
            upper = query_rows < tree_rows
            query_rows, tree_rows = query_rows[upper], tree_rows[upper]
        distances = hamming(queries[query_rows], packed[tree_rows])
        keep = distances <= max_bits
        query_rows, tree_rows, distances = query_rows[keep], tree_rows[keep], distances[keep]
        if accept is not None and len(query_rows):
            keep = accept(query_rows, tree_rows)
            query_rows, tree_rows, distances = query_rows[keep], tree_rows[keep], distances[keep]
        parts.append((query_rows, tree_rows, distances))
    return tuple(np.concatenate(column) for column in zip(*parts))


def pairs_within(packed: np.ndarray, n_bits: int, max_bits: int, settings: IndexSettings, accept=None):
    """Every pair (i < j) of rows within `max_bits` (see cross_pairs), sorted by i, j."""
    first, second, distances = cross_pairs(packed, n_bits, None, max_bits, settings, accept=accept)
    order = np.lexsort((second, first))
    return first[order], second[order], distances[order]
