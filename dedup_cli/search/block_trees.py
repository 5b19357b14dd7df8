"""Exact pair search with KD-trees over hash blocks (scikit-learn KDTree or scipy cKDTree).

A KD-tree over all the bits of a hash prunes almost nothing at the radii that matter (a
64-dimensional 0/1 cube), so the search was quadratic. Here the bits are cut into the
blocks of a multi-index (engine.MultiIndex: at most 16 bits, probe radii by the pigeonhole
rule) and each block's DISTINCT values become a tree of low-dimensional 0/1 vectors. A
radius query per distinct query value finds the block values within the block's radius;
the rows behind each pair of values are candidates, verified by popcount on the packed
words, and a pair is kept only in the first block that admits it, so each pair comes out
once. Same results as the table engine (engine.py); it exists for people who want the
trees, and as an independent check of that engine.

Pure numpy on arrays; scikit-learn and scipy are imported only when a tree is built.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dedup_cli.cpus import available_cpus
from dedup_cli.search.engine import Block, MultiIndex, Pairs, block_values, hash_words

VALUES_PER_QUERY = 4096  # distinct query values sent to the tree at once
CANDIDATES_PER_CHUNK = 1 << 21  # row pairs verified at once (memory: ~100 bytes each)
# Nanoseconds, measured here: a radius query, plus per point of the block's value space
# and unit of radius (the trees prune poorly on 0/1 data); a candidate row pair verified.
TREE_QUERY_COST, TREE_POINT_COST, TREE_CANDIDATE_COST = 3000.0, 1.0, 40.0


def build_tree(vectors: np.ndarray, tree_type: str, leaf_size: int = 40):
    """A scikit-learn KDTree or a scipy cKDTree over 0/1 vectors, for Manhattan (= Hamming)
    radius queries."""
    if tree_type == "cKDTree":
        from scipy.spatial import cKDTree

        return cKDTree(vectors, leafsize=leaf_size)
    if tree_type == "KDTree":
        from sklearn.neighbors import KDTree

        return KDTree(vectors, leaf_size=leaf_size, metric="manhattan")
    raise ValueError(f"unknown tree type {tree_type!r}: KDTree or cKDTree")


def iter_tree_pairs(packed: np.ndarray, queries: np.ndarray | None, max_bits: int, tree_type: str,
                    leaf_size: int = 40, workers: int | None = None) -> Iterator[Pairs]:
    """Every (query row, row) of packed uint8 hashes at most max_bits bits apart, exactly
    once, in chunks (not sorted). queries None pairs the rows of `packed` among themselves
    (first < second). `workers` threads for cKDTree queries (default: every CPU)."""
    own = queries is None
    queries = packed if own else queries
    if max_bits < 0 or not len(packed) or not len(queries):
        return
    index = tree_split(8 * packed.shape[1], max_bits, len(packed), len(queries))
    search = _BlockSearch(hash_words(packed), hash_words(queries), own, max_bits, index)
    for number, block in enumerate(index.blocks):
        if block.radius >= 0:
            yield from search.block_pairs(number, block, tree_type, leaf_size, workers or available_cpus())


def tree_split(n_bits: int, max_bits: int, n_rows: int, n_queries: int) -> MultiIndex:
    """The split of the hash into blocks with the least expected work for the trees:
    wider blocks mean fewer candidates but slower tree queries."""
    def cost(index: MultiIndex) -> float:
        total = 0.0
        for block in index.blocks:
            if block.radius >= 0:
                size = 2**block.width
                query = TREE_QUERY_COST + TREE_POINT_COST * size * (block.radius + 1)
                total += min(size, n_queries) * query + TREE_CANDIDATE_COST * n_queries * n_rows * block.within() / size
        return total

    return min(MultiIndex.splits(n_bits, max_bits), key=cost)




class _Values:
    """The distinct values of one block over some rows: `values` ascending, and the rows
    holding each (`rows[starts[k]:starts[k] + counts[k]]`)."""

    def __init__(self, keys: np.ndarray):
        self.rows = np.argsort(keys, kind="stable").astype(np.int32)
        self.values, self.starts, self.counts = np.unique(keys[self.rows], return_index=True, return_counts=True)

    def vectors(self, width: int) -> np.ndarray:
        """Each value's bits as a 0/1 float vector of `width` dimensions."""
        bits = (self.values[:, None] >> np.arange(width, dtype=np.uint32)) & 1
        return bits.astype(np.float64)


class _BlockSearch:
    """The candidates of one block at a time, verified and deduplicated against the
    blocks before it."""

    def __init__(self, set_words, query_words, own, max_bits, index: MultiIndex):
        self.set_words, self.query_words, self.own, self.max_bits = set_words, query_words, own, max_bits
        probed = [(number, block) for number, block in enumerate(index.blocks) if block.radius >= 0]
        self.set_keys = {number: block_values(set_words, block) for number, block in probed}
        self.query_keys = self.set_keys if own else {n: block_values(query_words, b) for n, b in probed}
        self.radii = {number: block.radius for number, block in probed}

    def block_pairs(self, number: int, block: Block, tree_type: str, leaf_size: int, workers: int) -> Iterator[Pairs]:
        stored = _Values(self.set_keys[number])
        asked = stored if self.own else _Values(self.query_keys[number])
        tree = build_tree(stored.vectors(block.width), tree_type, leaf_size)
        query_vectors = asked.vectors(block.width)
        radius = block.radius + 0.5  # distances are whole bits: the half keeps float error out
        for start in range(0, len(asked.values), VALUES_PER_QUERY):
            found = _query(tree, query_vectors[start : start + VALUES_PER_QUERY], radius, tree_type, workers)
            counts = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
            asked_values = np.repeat(np.arange(start, start + len(found)), counts)
            stored_values = np.concatenate([np.asarray(hits, dtype=np.int64) for hits in found])
            if self.own:  # each pair of values once: the pair (b, a) gives the same row pairs
                keep = asked_values <= stored_values
                asked_values, stored_values = asked_values[keep], stored_values[keep]
            yield from self._verified(number, asked, stored, asked_values, stored_values)

    def _verified(self, number, asked: _Values, stored: _Values, asked_values, stored_values) -> Iterator[Pairs]:
        """The row pairs behind pairs of values, in chunks, within max_bits and admitted by
        no earlier block."""
        sizes = asked.counts[asked_values] * stored.counts[stored_values]
        for pair, offset in _candidate_chunks(sizes, CANDIDATES_PER_CHUNK):
            across = stored.counts[stored_values[pair]]
            query_rows = asked.rows[asked.starts[asked_values[pair]] + offset // across]
            rows = stored.rows[stored.starts[stored_values[pair]] + offset % across]
            if self.own:
                keep = (asked_values[pair] != stored_values[pair]) | (query_rows < rows)
                query_rows, rows = np.minimum(query_rows, rows)[keep], np.maximum(query_rows, rows)[keep]
            query_rows, rows, distances = self._within(query_rows, rows)
            keep = ~self._admitted_before(number, query_rows, rows)
            if keep.any():
                yield Pairs(query_rows[keep], rows[keep], distances[keep].astype(np.int32))

    def _within(self, query_rows: np.ndarray, rows: np.ndarray):
        """The row pairs within max_bits and their distances, counted word by word so
        that most pairs are dropped after reading one word."""
        distances = np.zeros(len(rows), dtype=np.int64)
        for word in range(self.set_words.shape[1]):
            distances += np.bitwise_count(self.query_words[query_rows, word] ^ self.set_words[rows, word])
            keep = distances <= self.max_bits
            query_rows, rows, distances = query_rows[keep], rows[keep], distances[keep]
        return query_rows, rows, distances

    def _admitted_before(self, number: int, query_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
        admitted = np.zeros(len(rows), dtype=bool)
        for earlier, radius in self.radii.items():
            if earlier < number:
                differing = np.bitwise_count(self.query_keys[earlier][query_rows] ^ self.set_keys[earlier][rows])
                admitted |= differing <= radius
        return admitted


def _query(tree, vectors: np.ndarray, radius: float, tree_type: str, workers: int):
    """For each vector, the indices of the tree's points within `radius` (Manhattan)."""
    if tree_type == "cKDTree":
        return tree.query_ball_point(vectors, radius, p=1, workers=workers, return_sorted=False)
    return tree.query_radius(vectors, r=radius)


def _candidate_chunks(sizes: np.ndarray, limit: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Cut the candidates of groups of `sizes` into chunks of at most `limit`: for each
    candidate its group and its offset within the group (a group may span chunks)."""
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if len(ends) else 0
    for chunk_start in range(0, total, limit):
        chunk_end = min(chunk_start + limit, total)
        groups = np.arange(np.searchsorted(ends, chunk_start, side="right"),
                           np.searchsorted(ends, chunk_end - 1, side="right") + 1)
        group_starts = ends[groups] - sizes[groups]
        taken = np.minimum(ends[groups], chunk_end) - np.maximum(group_starts, chunk_start)
        group = np.repeat(groups, taken)
        yield group, np.arange(chunk_start, chunk_end) - (ends[group] - sizes[group])
