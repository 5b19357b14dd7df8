"""Groups and the keep plan: rule 2 (a kept file within the threshold of every removal)
and rule 3 (a stated, deterministic keep policy)."""

import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dedup_cli.fingerprint.hashing import HashedFiles, HashSettings, hash_collection
from dedup_cli.fingerprint.signature import colour_signature
from dedup_cli.plan.grouping import connected_groups, keep_order, make_plan, plan_group, split_by_kept_file
from dedup_cli.plan.similarity import Matcher, MatchSettings
from dedup_cli.search.index import IndexSettings, hamming


def fake_hashed(bit_rows, widths=None, sizes=None, mtimes=None, paths=None, colours=None):
    """HashedFiles for hand-made hashes; by default every file has the colour signature
    of one grey gradient, so that only the hash bits decide."""
    bit_rows = np.asarray(bit_rows, dtype=np.uint8)
    count = len(bit_rows)
    grey = np.frombuffer(colour_signature(Image.linear_gradient("L").resize((64, 64))), dtype=np.uint8)
    return HashedFiles(
        settings=HashSettings("phash", 8),
        packed=np.packbits(bit_rows, axis=1),
        paths=paths or [f"/img/{i:03d}.jpg" for i in range(count)],
        width=np.asarray(widths or [100] * count),
        height=np.asarray([100] * count),
        size=np.asarray(sizes or [1000] * count),
        mtime_ns=np.asarray(mtimes or [0] * count),
        colour=np.asarray(colours if colours is not None else [grey] * count, dtype=np.uint8),
    )


def noisy_copies(rng, count: int, flip: float) -> list:
    """`count` hashes, each one centre with every bit flipped at probability `flip`."""
    centre = rng.integers(0, 2, 64)
    return [np.where(rng.random(64) < flip, 1 - centre, centre) for _ in range(count)]


def bits_with_flips(*flip_counts):
    rows = []
    for flips in flip_counts:
        row = np.zeros(64, dtype=np.uint8)
        row[:flips] = 1
        rows.append(row)
    return rows


def test_chain_never_removes_the_far_end():
    # A (0 flips) ~ B (4) ~ C (8): A-B and B-C are within 4 bits, A-C is 8 bits apart.
    hashed = fake_hashed(bits_with_flips(0, 4, 8), widths=[300, 200, 100])
    plan = make_plan(hashed, MatchSettings(4), IndexSettings())
    assert [(r.row, r.nearest_keep, r.bits) for r in plan.removals] == [(1, 0, 4)]
    assert [group.keep for group in plan.groups] == [(0,)]  # C is kept and stands alone


def test_keep_policy_resolution_then_size_then_age_then_path():
    hashed = fake_hashed(bits_with_flips(0, 0, 0, 0), widths=[100, 200, 200, 200], sizes=[9, 5, 7, 7],
                         mtimes=[0, 0, 3, 3], paths=["/d.jpg", "/c.jpg", "/b.jpg", "/a.jpg"])
    assert keep_order([0, 1, 2, 3], hashed, "resolution") == [3, 2, 1, 0]
    assert keep_order([0, 1, 2, 3], hashed, "size") == [0, 3, 2, 1]
    assert keep_order([0, 1, 2, 3], hashed, "path") == [3, 2, 1, 0]
    assert keep_order([0, 1, 2, 3], hashed, "oldest")[:2] == [1, 0]
    assert keep_order([0, 1, 2, 3], hashed, "newest")[0] == 3


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), count=st.integers(1, 30), max_bits=st.integers(0, 16),
       policy=st.sampled_from(["resolution", "size", "oldest", "newest", "path"]))
def test_every_removal_has_a_kept_file_within_the_threshold(seed, count, max_bits, policy):
    rng = np.random.default_rng(seed)
    rows = noisy_copies(rng, count, 0.12)
    hashed = fake_hashed(rows, widths=rng.integers(50, 60, count).tolist(),
                         sizes=rng.integers(1, 4, count).tolist())
    plan = make_plan(hashed, MatchSettings(max_bits), IndexSettings(), policy)
    seen = set()
    for group in plan.groups:
        assert group.keep, "a group lost every member"
        seen.update(group.rows)
        for removal in group.remove:
            assert removal.nearest_keep in group.keep
            assert int(hamming(hashed.packed[removal.row], hashed.packed[removal.nearest_keep])) == removal.bits
            assert removal.bits <= max_bits
    assert len(seen) == sum(len(g.rows) for g in plan.groups), "a file sits in two groups"


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_plan_does_not_depend_on_input_order(seed):
    rng = np.random.default_rng(seed)
    rows = [rng.integers(0, 2, 64) for _ in range(4)]
    rows += [np.where(rng.random(64) < 0.05, 1 - r, r) for r in rows]
    paths = [f"/img/{i}.jpg" for i in range(len(rows))]
    widths = rng.integers(10, 13, len(rows)).tolist()
    order = rng.permutation(len(rows))

    def summary(hashed):
        plan = make_plan(hashed, MatchSettings(8), IndexSettings())
        return sorted((tuple(sorted(hashed.paths[k] for k in g.keep)),
                       tuple(sorted(hashed.paths[r.row] for r in g.remove))) for g in plan.groups)

    shuffled = fake_hashed([rows[i] for i in order], widths=[widths[i] for i in order],
                           paths=[paths[i] for i in order])
    assert summary(fake_hashed(rows, widths=widths, paths=paths)) == summary(shuffled)


def test_every_engine_gives_identical_plans():
    rng = np.random.default_rng(3)
    centres = [rng.integers(0, 2, 64) for _ in range(6)]
    rows = [np.where(rng.random(64) < 0.08, 1 - c, c) for c in centres for _ in range(5)]
    hashed = fake_hashed(rows)
    plans = [make_plan(hashed, MatchSettings(10), IndexSettings(tree)) for tree in ("mih", "KDTree", "cKDTree")]
    assert plans[0].groups == plans[1].groups == plans[2].groups
    assert plans[0].groups


@pytest.mark.parametrize("isometric", [False, True])
def test_a_plan_from_links_found_beforehand_is_the_same_plan(small_library, isometric):
    # Identical copies exercise the collapsing path that links found by a caller skip;
    # the caller's matcher also lends the planner the colour verdicts it reached.
    for seed in range(3):
        shutil.copy(small_library / f"pic{seed}.png", small_library / f"pic{seed}_again.png")
    paths = sorted(str(p) for p in small_library.rglob("*") if p.is_file())
    hashed = hash_collection(paths, HashSettings(isometric=isometric))
    settings = MatchSettings(12)
    matcher = Matcher(hashed, settings)
    matcher.pairs()
    plan = make_plan(hashed, settings)
    assert plan.groups and make_plan(hashed, settings, matcher=matcher).groups == plan.groups
    # Both plans reuse verdicts; planned with a matcher that remembers none, the same plan.
    fresh = [group for members in connected_groups(hashed, settings, IndexSettings())
             for group in split_by_kept_file(plan_group(members.tolist(), hashed, Matcher(hashed, settings),
                                                        "resolution"))]
    assert sorted(fresh, key=lambda group: hashed.paths[group.keep[0]]) == plan.groups


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), nodes=st.integers(1, 300), links=st.integers(0, 400))
def test_component_labels_equal_scipys_connected_components(seed, nodes, links):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from dedup_cli.plan.grouping import component_labels

    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, nodes, links), rng.integers(0, nodes, links)
    if seed % 3 == 0:  # long chains: the worst case for label propagation
        order = rng.permutation(nodes)
        first, second = order[:-1], order[1:]
    labels = component_labels(first, second, nodes)
    _, expected = connected_components(coo_matrix((np.ones(len(first)), (first, second)), shape=(nodes, nodes)),
                                       directed=False)
    # the same partition, each component labelled by its smallest node
    for component in np.unique(expected):
        members = np.flatnonzero(expected == component)
        assert (labels[members] == members.min()).all()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), count=st.integers(2, 25), max_bits=st.integers(0, 16),
       policy=st.sampled_from(["resolution", "size", "oldest", "newest", "path"]))
def test_references_and_animations_are_never_removed_and_no_group_keeps_nothing(seed, count, max_bits, policy):
    rng = np.random.default_rng(seed)
    rows = noisy_copies(rng, count, 0.1)
    hashed = fake_hashed(rows, widths=rng.integers(50, 60, count).tolist(), sizes=rng.integers(1, 4, count).tolist(),
                         mtimes=rng.integers(0, 5, count).tolist())
    hashed.facts[:, 3] = rng.integers(1, 4, count)  # animation frames
    hashed.facts[:, 1] = rng.choice([1, 6, 7, 8, 16], count)  # bit depth
    reference = rng.random(count) < 0.3
    plan = make_plan(hashed, MatchSettings(max_bits), IndexSettings(), policy, reference=reference)
    for group in plan.groups:
        assert group.keep
        for removal in group.remove:
            assert not reference[removal.row]
            assert hashed.frames[removal.nearest_keep] >= hashed.frames[removal.row]
            assert removal.nearest_keep in group.keep and removal.bits <= max_bits


def test_remembered_verdicts_answer_every_distance_as_a_fresh_judgement(tmp_path):
    # A matcher that found its pairs keeps only the accepted ones: every other unturned
    # pair within the threshold counts as vetoed. Asked about every pair, including
    # identical copies (one row of the collapsed matcher) and colour-vetoed pairs, it
    # must answer as a matcher that judges each pair afresh.
    from conftest import DEMO

    folder = tmp_path / "library"
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("LICENSES", "*.csv", "*.md"))
    for source in sorted(folder.rglob("*.jpg"))[:3]:
        shutil.copy(source, source.with_name("again_" + source.name))
        red, green, blue = Image.open(source).convert("RGB").split()  # same layout, other colours
        Image.merge("RGB", (blue, red, green)).save(source.with_name("recoloured_" + source.name))
    hashed = hash_collection(sorted(str(p) for p in folder.rglob("*") if p.is_file()), HashSettings())
    settings = MatchSettings(14)
    remembering = Matcher(hashed, settings)
    connected_groups(hashed, settings, IndexSettings(), remembering)  # lends the collapsed verdicts
    rows = np.arange(len(hashed.paths))
    fresh, remembered = ([matcher.distances(rows, row) for row in rows]
                         for matcher in (Matcher(hashed, settings), remembering))
    assert np.array_equal(np.array(fresh), np.array(remembered))
    vetoed = np.array(fresh) == remembering.rejected
    near = hamming(hashed.packed[:, None, :], hashed.packed[None, :, :]) <= 14
    assert (vetoed & near).any() and (~vetoed & near & ~np.eye(len(rows), dtype=bool)).any()
