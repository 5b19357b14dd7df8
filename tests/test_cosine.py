"""The blocked cosine pair search against a brute force on the full similarity matrix."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup_cli.search import cosine
from dedup_cli.search.cosine import cross_pairs_above, leading_coordinates, pairs_above

# float32 sums in another order may put a pair this close to the threshold on either side.
NEAR = 1e-5


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def make_vectors(seed: int, count: int, dims: int, clustered: bool) -> np.ndarray:
    """Random unit vectors, or noisy copies of a few centres (many pairs near any threshold)."""
    rng = np.random.default_rng(seed)
    if not clustered or not count:
        return unit(rng.standard_normal((count, dims)) + 1e-3)
    centres = rng.standard_normal((max(1, count // 5), dims))
    noise = rng.standard_normal((count, dims)) * rng.uniform(0, 0.8, (count, 1))
    return unit(centres[rng.integers(0, len(centres), count)] + noise)


def brute(queries: np.ndarray, vectors: np.ndarray, threshold: float, own: bool):
    """(sure pairs, pairs within NEAR of the threshold) from the whole matrix in float64."""
    similarity = queries.astype(np.float64) @ vectors.astype(np.float64).T
    first, second = np.nonzero(similarity >= threshold - NEAR)
    if own:
        keep = first < second
        first, second = first[keep], second[keep]
    values = similarity[first, second]
    sure = {(i, j) for i, j, v in zip(first.tolist(), second.tolist(), values.tolist()) if v >= threshold + NEAR}
    near = {(i, j) for i, j, v in zip(first.tolist(), second.tolist(), values.tolist()) if v < threshold + NEAR}
    return sure, near


def check(found, queries, vectors, threshold, own):
    pairs = list(zip(found.first.tolist(), found.second.tolist()))
    assert len(pairs) == len(set(pairs)), "a pair came twice"
    sure, near = brute(queries, vectors, threshold, own)
    assert sure <= set(pairs) <= sure | near
    expected = np.sum(queries[found.first].astype(np.float64) * vectors[found.second], axis=1)
    np.testing.assert_allclose(found.similarity, expected, atol=1e-5)


vector_sets = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000),
    "count": st.integers(0, 60),
    "dims": st.sampled_from([2, 7, 64, 300]),
    "clustered": st.booleans(),
    "threshold": st.sampled_from([-0.5, 0.0, 0.3, 0.8, 0.95, 0.999, 1.0]),
})


@settings(max_examples=40, deadline=None)
@given(vector_sets, st.sampled_from([3, 16, 2048]), st.sampled_from([0, 10**9]))
def test_pairs_above_equals_brute_force(case, block_rows, rotate_pairs):
    vectors = make_vectors(case["seed"], case["count"], case["dims"], case["clustered"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cosine, "BLOCK_ROWS", block_rows)  # blocks that cut through the rows
        patch.setattr(cosine, "ROTATE_PAIRS", rotate_pairs)  # with and without the rotation and bound
        found = pairs_above(vectors, case["threshold"])
    check(found, vectors, vectors, case["threshold"], own=True)
    assert np.all(found.first < found.second)


@settings(max_examples=30, deadline=None)
@given(vector_sets, st.integers(0, 20), st.sampled_from([4, 2048]), st.sampled_from([0, 10**9]))
def test_cross_pairs_equal_brute_force_sorted_nearest_first(case, query_count, block_rows, rotate_pairs):
    vectors = make_vectors(case["seed"], case["count"], case["dims"], case["clustered"])
    rng = np.random.default_rng(case["seed"] + 1)
    queries = vectors[rng.integers(0, len(vectors), query_count)] if len(vectors) else vectors
    if len(queries):  # near copies of rows of the set, and one outsider
        queries = unit(queries + rng.normal(0, 0.1, queries.shape))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cosine, "BLOCK_ROWS", block_rows)
        patch.setattr(cosine, "ROTATE_PAIRS", rotate_pairs)
        found = cross_pairs_above(queries, vectors, case["threshold"])
    check(found, queries, vectors, case["threshold"], own=False)
    for query in np.unique(found.first):
        mine = found.similarity[found.first == query]
        assert np.all(np.diff(mine) <= 0)


def test_float16_rows_give_the_pairs_of_their_float32_values():
    vectors = make_vectors(5, 300, 1280, clustered=True).astype(np.float16)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cosine, "ROTATE_PAIRS", 0)
        found = pairs_above(vectors, 0.8)
    check(found, vectors.astype(np.float32), vectors.astype(np.float32), 0.8, own=True)
    assert len(found.first) > 100


def test_the_bound_skips_work_on_random_vectors_and_less_on_concentrated_ones():
    # Random 1280-d vectors need about a third of the coordinates before the rest's norm
    # bounds a pair below 0.8; vectors that live in a few directions need few.
    spread = make_vectors(1, 2000, 1280, clustered=False)
    assert 256 <= leading_coordinates(spread, 0.8) <= 512
    rng = np.random.default_rng(2)
    concentrated = unit(rng.standard_normal((2000, 40)) @ rng.standard_normal((40, 1280)))
    turned = concentrated @ cosine.rotation(concentrated)
    assert leading_coordinates(turned, 0.8) <= 64
