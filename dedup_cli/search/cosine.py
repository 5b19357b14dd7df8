"""Exact pair search on unit vectors (CNN embeddings): every pair whose cosine similarity
is at least a threshold, without an N x N matrix.

Pure: float arrays in (rows of unit length, any float dtype; float16 is widened a block
at a time), (first, second, similarity) arrays out. Nothing here knows about files.

The work is blocked matrix products over float32 blocks of rows (numpy's BLAS, every
core), so memory stays at a few blocks whatever the number of rows. Before the products
the vectors are turned by one orthogonal rotation (the eigenvectors of their second-moment
matrix, strongest first), which keeps every dot product. A first product over the leading
`k` rotated coordinates then bounds each pair from above, by Cauchy-Schwarz on the rest:

    cos(a, b) = a[:k].b[:k] + a[k:].b[k:] <= a[:k].b[:k] + |a[k:]| |b[k:]|

and only pairs whose bound reaches the threshold get the exact rest. Real embeddings put
most of their energy in few directions, so k is small; `k` is chosen so that a typical
pair's bound already falls below the threshold (random vectors need about a third of the
coordinates). Sums are float32, so a pair within about 1e-5 of the threshold may fall on
either side (as it would for a brute force in another summation order); SLACK keeps the
bound from dropping a pair that the exact sum would keep.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

BLOCK_ROWS = 2048  # rows per block: a block product is 2048 x 2048 float32 (16 MB)
SLACK = 1e-4  # float32 rounding allowance on the upper bound
STEP = 32  # the leading coordinates come in multiples of this
ROTATE_PAIRS = 4 * BLOCK_ROWS * BLOCK_ROWS  # fewer pairs are compared whole, unturned


class CosinePairs(NamedTuple):
    """Row pairs (first < second within one set; query row and row across two) and their
    cosine similarity (float32)."""

    first: np.ndarray
    second: np.ndarray
    similarity: np.ndarray


def rotation(vectors: np.ndarray, sample: int = 8192, seed: int = 0) -> np.ndarray:
    """(d, d) orthogonal matrix whose columns are the eigenvectors of the vectors' second
    moment, strongest first (from a sample of rows; any orthogonal matrix keeps the
    results exact, a good one only makes the search faster)."""
    rng = np.random.default_rng(seed)
    rows = vectors if len(vectors) <= sample else vectors[np.sort(rng.choice(len(vectors), sample, replace=False))]
    from scipy.linalg import eigh

    rows = np.asarray(rows, dtype=np.float32)
    # The divide-and-conquer driver: several times faster than numpy's at d = 1280.
    _, eigenvectors = eigh((rows.T @ rows).astype(np.float64), driver="evd")
    return np.ascontiguousarray(eigenvectors[:, ::-1], dtype=np.float32)


def leading_coordinates(rotated: np.ndarray, min_similarity: float) -> int:
    """Smallest multiple of STEP whose rest leaves the median row's squared norm under
    three quarters of the threshold (then a typical pair's bound is below it)."""
    dims = rotated.shape[1]
    if min_similarity <= 0 or len(rotated) == 0:
        return dims
    energy = np.median(np.cumsum(rotated.astype(np.float32) ** 2, axis=1), axis=0)
    rest = 1.0 - energy
    enough = np.flatnonzero(rest <= 0.75 * min_similarity)
    k = int(enough[0]) + 1 if len(enough) else dims
    return min(dims, -(-k // STEP) * STEP)


class _Prepared(NamedTuple):
    bound: np.ndarray  # (n, k + 1) float32: the leading rotated coordinates, then |rest|
    tail: np.ndarray  # (n, d - k) float32: the rest


def _prepare(vectors: np.ndarray, turn: np.ndarray, k: int) -> _Prepared:
    """The rotated rows split at k; a product of two `bound` arrays is the upper bound of
    the module docstring (the last column multiplies the norms of the rests)."""
    bound = np.empty((len(vectors), k + 1), dtype=np.float32)
    tail = np.empty((len(vectors), turn.shape[1] - k), dtype=np.float32)
    for start in range(0, len(vectors), BLOCK_ROWS):  # widened a block at a time
        rotated = np.asarray(vectors[start:start + BLOCK_ROWS], dtype=np.float32) @ turn
        bound[start:start + BLOCK_ROWS, :k] = rotated[:, :k]
        bound[start:start + BLOCK_ROWS, k] = np.linalg.norm(rotated[:, k:], axis=1)
        tail[start:start + BLOCK_ROWS] = rotated[:, k:]
    return _Prepared(bound, tail)


def _block_pairs(a: _Prepared, b: _Prepared, rows_a: slice, rows_b: slice, min_similarity: float,
                 upper_only: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of one block of rows of `a` against one of `b` (row numbers of a and b)."""
    admitted = (a.bound[rows_a] @ b.bound[rows_b].T) >= min_similarity - SLACK
    if upper_only:
        admitted[np.tril_indices(admitted.shape[0], 0, admitted.shape[1])] = False
    some = np.flatnonzero(admitted.any(axis=1))  # np.nonzero on the whole block costs more than its product
    first, second = np.nonzero(admitted[some])
    first = some[first] + rows_a.start
    second = second + rows_b.start
    k = a.bound.shape[1] - 1
    similarity = (np.einsum("ij,ij->i", a.bound[first, :k], b.bound[second, :k])
                  + np.einsum("ij,ij->i", a.tail[first], b.tail[second])).astype(np.float32)
    keep = similarity >= min_similarity
    return first[keep], second[keep], similarity[keep]


def _collect(found: list) -> CosinePairs:
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return CosinePairs(empty, empty.copy(), np.zeros(0, dtype=np.float32))
    first, second, similarity = (np.concatenate(column) for column in zip(*found))
    order = np.lexsort((second, first))
    return CosinePairs(first[order].astype(np.int64), second[order].astype(np.int64), similarity[order])


def pairs_above(vectors: np.ndarray, min_similarity: float) -> CosinePairs:
    """Every pair i < j of unit rows with cosine >= min_similarity (inclusive), sorted by
    (i, j). Memory: the rotated rows in float32 plus one block product."""
    vectors = np.asarray(vectors)
    if len(vectors) < 2:
        return _collect([])
    turn, k = _plan(vectors, len(vectors) * len(vectors) // 2, min_similarity)
    prepared = _prepare(vectors, turn, k)
    found = []
    for start_a in range(0, len(vectors), BLOCK_ROWS):
        rows_a = slice(start_a, min(len(vectors), start_a + BLOCK_ROWS))
        for start_b in range(start_a, len(vectors), BLOCK_ROWS):
            rows_b = slice(start_b, min(len(vectors), start_b + BLOCK_ROWS))
            pairs = _block_pairs(prepared, prepared, rows_a, rows_b, min_similarity, start_a == start_b)
            if len(pairs[0]):
                found.append(pairs)
    return _collect(found)


def cross_pairs_above(queries: np.ndarray, vectors: np.ndarray, min_similarity: float) -> CosinePairs:
    """Every (query row, row) with cosine >= min_similarity, sorted by query, then by
    similarity (highest first), then by row."""
    queries, vectors = np.asarray(queries), np.asarray(vectors)
    if not len(queries) or not len(vectors):
        return _collect([])
    turn, k = _plan(vectors, len(queries) * len(vectors), min_similarity)
    prepared_queries, prepared = _prepare(queries, turn, k), _prepare(vectors, turn, k)
    found = []
    for start_a in range(0, len(queries), BLOCK_ROWS):
        rows_a = slice(start_a, min(len(queries), start_a + BLOCK_ROWS))
        for start_b in range(0, len(vectors), BLOCK_ROWS):
            rows_b = slice(start_b, min(len(vectors), start_b + BLOCK_ROWS))
            pairs = _block_pairs(prepared_queries, prepared, rows_a, rows_b, min_similarity, False)
            if len(pairs[0]):
                found.append(pairs)
    pairs = _collect(found)
    order = np.lexsort((pairs.second, -pairs.similarity, pairs.first))
    return CosinePairs(pairs.first[order], pairs.second[order], pairs.similarity[order])


def _plan(vectors: np.ndarray, pair_count: int, min_similarity: float) -> tuple[np.ndarray, int]:
    """The rotation and the leading coordinates k; below ROTATE_PAIRS pairs the rotation
    (an eigendecomposition at d = 1280, about a second) costs more than it saves."""
    dims = vectors.shape[1]
    if pair_count < ROTATE_PAIRS:
        return np.eye(dims, dtype=np.float32), dims
    turn = rotation(vectors)
    return turn, leading_coordinates(_sample_rotated(vectors, turn), min_similarity)


def _sample_rotated(vectors: np.ndarray, turn: np.ndarray, sample: int = 2000) -> np.ndarray:
    step = max(1, len(vectors) // sample)
    return np.asarray(vectors[::step][:sample], dtype=np.float32) @ turn
