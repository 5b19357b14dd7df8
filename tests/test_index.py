"""Distances on unpacked hash bits, inclusive thresholds, mih == KDTree == cKDTree, completeness."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup_cli.search.block_trees import build_tree
from dedup_cli.search.index import TREE_TYPES, IndexSettings, Metric, cross_pairs, hamming, pairs_within

METRICS = ["manhattan", "euclidean", "minkowski", "chebyshev"]


def random_packed(seed: int, count: int, n_bytes: int = 8, flips: int = 3) -> np.ndarray:
    """Hashes clustered around a few centres, so that many pairs sit near any threshold."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, size=(max(1, count // 4), n_bytes), dtype=np.uint8)
    bits = np.unpackbits(centres[rng.integers(0, len(centres), count)], axis=1)
    for row in bits:
        row[rng.integers(0, bits.shape[1], flips)] ^= 1
    return np.packbits(bits, axis=1)


def brute_force_pairs(packed, max_bits):
    return {
        (i, j)
        for i, j in itertools.combinations(range(len(packed)), 2)
        if int(hamming(packed[i], packed[j])) <= max_bits
    }


@given(st.binary(min_size=8, max_size=8), st.binary(min_size=8, max_size=8))
def test_manhattan_on_unpacked_bits_is_hamming(first, second):
    a, b = np.frombuffer(first, np.uint8), np.frombuffer(second, np.uint8)
    expected = bin(int.from_bytes(first, "big") ^ int.from_bytes(second, "big")).count("1")
    vectors = np.unpackbits(np.stack([a, b]), axis=1).astype(float)
    assert np.abs(vectors[0] - vectors[1]).sum() == expected
    assert int(hamming(a, b)) == expected
    assert np.isclose(np.sqrt(((vectors[0] - vectors[1]) ** 2).sum()), Metric.from_option("l2").from_bits(expected))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(0, 40), max_bits=st.integers(0, 12),
       metric=st.sampled_from(METRICS))
def test_every_engine_finds_exactly_the_brute_force_pairs(seed, count, max_bits, metric):
    packed = random_packed(seed, count)
    expected = brute_force_pairs(packed, max_bits if metric != "chebyshev" else min(max_bits, 0))
    chosen = Metric.from_option(metric, p=3.0)
    bits = max_bits if metric != "chebyshev" else 0
    for tree in TREE_TYPES:
        first, second, distances = pairs_within(packed, 64, bits, IndexSettings(tree, 2, chosen))
        assert set(zip(first.tolist(), second.tolist())) == expected
        assert distances.tolist() == [int(hamming(packed[i], packed[j])) for i, j in zip(first, second)]


@pytest.mark.parametrize("metric", ["manhattan", "euclidean", "minkowski"])
@pytest.mark.parametrize("tree", TREE_TYPES)
def test_threshold_is_inclusive(metric, tree):
    base = np.zeros(64, dtype=np.uint8)
    other = base.copy()
    other[:5] = 1  # exactly 5 bits apart
    packed = np.packbits(np.stack([base, other]), axis=1)
    chosen = Metric.from_option(metric, p=3.0)
    threshold = float(chosen.from_bits(5))  # 5, sqrt(5) or 5 ** (1/3)
    assert chosen.to_bits(threshold, 64) == 5
    first, _, _ = pairs_within(packed, 64, chosen.to_bits(threshold, 64), IndexSettings(tree, 40, chosen))
    assert len(first) == 1
    assert chosen.to_bits(threshold * 0.999, 64) == 4


@pytest.mark.parametrize("tree", TREE_TYPES)
def test_large_group_is_found_whatever_k(tree):
    # 30 identical-ish hashes: a k-nearest query with k=5 would miss most of them.
    packed = random_packed(1, 30)
    packed[:] = packed[0]
    first, second, _ = pairs_within(packed, 64, 0, IndexSettings(tree))
    assert len(first) == 30 * 29 // 2


def test_cross_pairs_finds_every_stored_hash_within_the_threshold_of_a_query():
    rng = np.random.default_rng(5)
    query = rng.integers(0, 256, 8, dtype=np.uint8)
    bits = np.unpackbits(query)
    rows = []
    for flips in (6, 0, 3, 11, 3):
        row = bits.copy()
        row[:flips] ^= 1
        rows.append(row)
    packed = np.packbits(np.stack(rows), axis=1)
    for tree in TREE_TYPES:
        query_rows, found, distances = cross_pairs(packed, 64, query[None, :], 6, IndexSettings(tree))
        assert query_rows.tolist() == [0, 0, 0, 0]
        assert found.tolist() == [0, 1, 2, 4] and distances.tolist() == [6, 0, 3, 3]


def test_each_tree_type_is_the_one_asked_for():
    from scipy.spatial import cKDTree
    from sklearn.neighbors import KDTree

    vectors = np.unpackbits(random_packed(2, 10), axis=1).astype(np.float64)
    assert isinstance(build_tree(vectors, "cKDTree"), cKDTree)
    assert isinstance(build_tree(vectors, "KDTree"), KDTree)
    with pytest.raises(ValueError, match="unknown tree type"):
        build_tree(vectors, "BallTree")


def test_mih_is_the_default_engine():
    assert IndexSettings().tree_type == "mih" == TREE_TYPES[0]


def test_empty_and_single_inputs():
    empty = np.zeros((0, 8), dtype=np.uint8)
    assert len(pairs_within(empty, 64, 10, IndexSettings())[0]) == 0
    assert len(pairs_within(random_packed(0, 1), 64, 10, IndexSettings("cKDTree"))[0]) == 0


def test_huge_thresholds_admit_every_pair_instead_of_overflowing():
    # Regression: threshold ** p overflowed to an OverflowError traceback.
    assert Metric.from_option("euclidean").to_bits(1e200, 64) == 64
    assert Metric.from_option("minkowski", p=400.0).to_bits(12, 64) == 64
    assert Metric.from_option("minkowski", p=400.0).to_bits(1.005, 64) == 7


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(1, 60), max_bits=st.integers(0, 64),
       cross=st.booleans())
def test_the_numpy_path_for_small_collections_equals_the_compiled_engine(seed, count, max_bits, cross):
    from dedup_cli.search import engine
    from dedup_cli.search.index import _numpy_pairs

    rng = np.random.default_rng(seed)
    centre = rng.integers(0, 2, 64)
    packed = np.packbits(np.where(rng.random((count, 64)) < 0.15, 1 - centre, centre), axis=1).astype(np.uint8)
    queries = packed[rng.permutation(count)[: max(1, count // 2)]] if cross else None
    chunks = list(_numpy_pairs(packed, queries, max_bits))
    mine = sorted(zip(*(np.concatenate(c).tolist() for c in zip(*chunks)))) if chunks else []
    if cross:
        theirs = engine.cross_pairs(queries, packed, max_bits)
    else:
        theirs = engine.pairs_within(packed, max_bits)
    assert mine == sorted(zip(*(np.asarray(column).tolist() for column in theirs)))
