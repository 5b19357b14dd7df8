"""The pair engines against a numpy brute force: multi-index hashing (every split), the
compiled brute force, and the KD-trees over blocks; each pair exactly once."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup_cli.search import engine
from dedup_cli.search.block_trees import iter_tree_pairs, tree_split
from dedup_cli.search.engine import BruteForce, MultiIndex, choose_strategy


def make_hashes(seed: int, count: int, n_bytes: int, clustered: bool, used_bits: int | None = None) -> np.ndarray:
    """Uniform random hashes, or copies of a few centres with up to n_bits / 8 bits flipped
    (so that many pairs sit near any threshold). used_bits < 8 * n_bytes leaves the last
    bits zero, as np.packbits pads a hash of 36 bits."""
    rng = np.random.default_rng(seed)
    n_bits = 8 * n_bytes
    bits = rng.integers(0, 2, size=(count, n_bits), dtype=np.uint8)
    if clustered and count:
        centres = bits[rng.integers(0, max(1, count // 5), count)]
        flips = rng.random((count, n_bits)) < rng.uniform(0, 0.15, (count, 1))
        bits = centres ^ flips
    bits[:, used_bits or n_bits :] = 0
    return np.packbits(bits, axis=1)


def brute_force(queries: np.ndarray, packed: np.ndarray, max_bits: int, own: bool) -> list[tuple[int, int, int]]:
    if not len(queries) or not len(packed):
        return []
    distances = np.bitwise_count(queries[:, None, :] ^ packed[None, :, :]).sum(axis=-1)
    first, second = np.nonzero(distances <= max_bits)
    keep = first < second if own else np.ones(len(first), dtype=bool)
    return sorted(zip(first[keep].tolist(), second[keep].tolist(), distances[first[keep], second[keep]].tolist()))


def as_list(pairs) -> list[tuple[int, int, int]]:
    return list(zip(pairs.first.tolist(), pairs.second.tolist(), pairs.distances.tolist()))


def chunked(chunks) -> list[tuple[int, int, int]]:
    """All pairs of the chunks, asserting that none comes twice."""
    found = [pair for chunk in chunks for pair in as_list(chunk)]
    assert len(found) == len(set(found))
    return sorted(found)


hash_sets = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000),
    "count": st.integers(0, 30),
    "n_bytes": st.sampled_from([1, 2, 5, 8, 9, 32, 128]),  # 8 to 1024 bits; 72 bits straddle words
    "clustered": st.booleans(),
})


def threshold_and_split(data, n_bytes: int) -> tuple[int, MultiIndex]:
    n_bits = 8 * n_bytes
    max_bits = data.draw(st.integers(0, n_bits + 2), label="max_bits")
    options = MultiIndex.splits(n_bits, max_bits)
    return max_bits, options[data.draw(st.integers(0, len(options) - 1), label="split")]


@settings(max_examples=60, deadline=None)
@given(hash_sets, st.data())
def test_pairs_within_equal_the_brute_force_for_every_split(hashes, data):
    packed = make_hashes(**hashes)
    max_bits, split = threshold_and_split(data, hashes["n_bytes"])
    expected = brute_force(packed, packed, max_bits, own=True)
    for strategy in (None, BruteForce(), split):
        assert as_list(engine.pairs_within(packed, max_bits, strategy=strategy)) == expected
    # Tiny tasks and buffers: every task stops part-way and resumes, and rows outgrow buffers.
    assert chunked(engine.iter_pairs_within(packed, max_bits, strategy=split, chunk_rows=3, chunk_pairs=1)) == expected


@settings(max_examples=60, deadline=None)
@given(hash_sets, st.integers(0, 20), st.data())
def test_cross_pairs_equal_the_brute_force_for_every_split(hashes, query_count, data):
    packed = make_hashes(**hashes)
    # Queries near the stored hashes (copies with flips) and some of their own.
    queries = np.concatenate([make_hashes(hashes["seed"] + 1, query_count, hashes["n_bytes"], True), packed[:5]])
    max_bits, split = threshold_and_split(data, hashes["n_bytes"])
    expected = brute_force(queries, packed, max_bits, own=False)
    for strategy in (None, BruteForce(), split):
        assert as_list(engine.cross_pairs(queries, packed, max_bits, strategy=strategy)) == expected
    assert chunked(engine.iter_cross_pairs(queries, packed, max_bits, strategy=split, chunk_rows=2,
                                           chunk_pairs=1)) == expected


@settings(max_examples=25, deadline=None)
@given(hash_sets, st.sampled_from(["KDTree", "cKDTree"]), st.booleans(), st.data())
def test_block_trees_equal_the_brute_force(hashes, tree_type, own, data):
    packed = make_hashes(**hashes)
    queries = packed if own else make_hashes(hashes["seed"] + 1, 12, hashes["n_bytes"], True)
    max_bits = data.draw(st.integers(0, 8 * hashes["n_bytes"] + 2), label="max_bits")
    found = iter_tree_pairs(packed, None if own else queries, max_bits, tree_type, leaf_size=3)
    assert chunked(found) == brute_force(queries, packed, max_bits, own)


def test_padding_bits_of_short_hashes_never_count():
    # hash_size 6: 36 bits packed into 5 bytes, the last 4 bits zero in every row.
    packed = make_hashes(3, 40, 5, True, used_bits=36)
    for max_bits in (0, 3, 9, 36):
        expected = brute_force(packed, packed, max_bits, own=True)
        assert as_list(engine.pairs_within(packed, max_bits)) == expected
        assert chunked(iter_tree_pairs(packed, None, max_bits, "KDTree")) == expected


def test_identical_rows_admitted_by_every_block_come_out_once():
    packed = np.repeat(make_hashes(1, 3, 8, False), 40, axis=0)
    for strategy in (MultiIndex.split(64, 12, 4), MultiIndex.split(64, 12, 13), BruteForce()):
        pairs = engine.pairs_within(packed, 12, strategy=strategy)
        assert len(pairs.first) == 3 * 40 * 39 // 2
        assert len(set(zip(pairs.first.tolist(), pairs.second.tolist()))) == len(pairs.first)


def test_verification_without_sorted_copies(monkeypatch):
    # Past COPY_BUDGET_BYTES the tables verify against the hashes in their own order.
    monkeypatch.setattr(engine, "COPY_BUDGET_BYTES", 0)
    packed = make_hashes(5, 60, 32, True)
    for max_bits in (5, 31, 70):
        split = MultiIndex.cheapest(256, max_bits, 60)
        assert as_list(engine.pairs_within(packed, max_bits, strategy=split)) == brute_force(packed, packed,
                                                                                              max_bits, True)


def test_chunks_come_in_the_same_order_with_one_worker_or_two():
    packed = make_hashes(7, 3000, 8, True)
    runs = [[as_list(chunk) for chunk in engine.iter_pairs_within(packed, 12, workers=workers, chunk_rows=100)]
            for workers in (1, 2)]
    assert runs[0] == runs[1] and sum(map(len, runs[0])) > 100


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2048), st.integers(-1, 300), st.data())
def test_every_split_covers_the_bits_once_and_meets_the_pigeonhole_rule(n_bits, max_bits, data):
    fewest = -(-n_bits // engine.MAX_BLOCK_BITS)
    split = MultiIndex.split(n_bits, max_bits, data.draw(st.integers(fewest, max(fewest, n_bits // 4))))
    assert [block.start for block in split.blocks] == np.cumsum([0] + [b.width for b in split.blocks])[:-1].tolist()
    assert sum(block.width for block in split.blocks) == n_bits
    assert all(1 <= block.width <= engine.MAX_BLOCK_BITS for block in split.blocks)
    # Were every block radius + 1 bits apart, the hashes would be more than max_bits apart.
    assert sum(block.radius + 1 for block in split.blocks) == max_bits + 1


def test_split_refuses_blocks_wider_than_the_tables_allow():
    with pytest.raises(ValueError, match="blocks"):
        MultiIndex.split(64, 10, 3)


def test_the_cost_model_picks_tables_at_scale_and_brute_force_for_huge_thresholds():
    at_scale = choose_strategy(64, 10, 1_000_000)
    assert isinstance(at_scale, MultiIndex)
    assert [block.width for block in at_scale.blocks] == [16, 16, 16, 16]
    assert isinstance(choose_strategy(64, 64, 1_000_000), BruteForce)  # every pair: nothing to prune
    assert isinstance(choose_strategy(64, 40, 50_000), BruteForce)
    assert isinstance(choose_strategy(256, 31, 100_000), MultiIndex)
    # The trees take narrower blocks than the tables: their queries cost more per value.
    assert max(block.width for block in tree_split(64, 10, 100_000, 100_000).blocks) <= 13


def test_rows_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="one length"):
        engine.cross_pairs(np.zeros((2, 8), np.uint8), np.zeros((2, 32), np.uint8), 3)
