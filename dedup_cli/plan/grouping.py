"""Connected groups of near-duplicates and the keep policy, turned into a plan.

Pure: takes arrays, returns a Plan; never touches files. The plan honours rules 2 and 3
of DESIGN.md: a file is removed only when a kept file is its duplicate (within the
threshold, colours agreeing; see similarity.py), and which file is kept follows a
stated, deterministic policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dedup_cli.fingerprint.signature import grid
from dedup_cli.plan.similarity import GREY_CHROMA, Matcher, MatchSettings, chroma
from dedup_cli.search.index import IndexSettings

KEEP_POLICIES = ("resolution", "size", "oldest", "newest", "path")
# A file whose uniform borders (--views) take more than 1 - PADDED_SHARE of it counts by
# its picture's pixels, less TRIMMED_PENALTY: the box is measured on the reduced decode, a
# few percent off, and a padded copy of the same picture should not win by that error.
# (Thinner bands, a dark edge of a photo, leave the ranking alone.)
PADDED_SHARE = 0.95
TRIMMED_PENALTY = 0.1


@dataclass(frozen=True)
class Removal:
    """A file to remove and the kept file that justifies it."""

    row: int
    nearest_keep: int
    bits: int
    view: str = "whole"  # which views matched (Matcher.views_label)


@dataclass(frozen=True)
class Group:
    """Files connected by near-duplicate links; `keep` is never empty."""

    keep: tuple[int, ...]
    remove: tuple[Removal, ...]

    @property
    def rows(self) -> list[int]:
        return sorted([*self.keep, *(r.row for r in self.remove)])


@dataclass
class Plan:
    """Which files to keep and remove, group by group, for one HashedFiles."""

    max_bits: int
    keep_policy: str
    groups: list[Group] = field(default_factory=list)
    verify_bits: int = 0  # removals this far beyond max_bits stand on pairs that features verified

    @property
    def removals(self) -> list[Removal]:
        return [removal for group in self.groups for removal in group.remove]


def in_colour(hashed, rows) -> np.ndarray:
    """True per row of `rows` that is a colour picture: stored in colour and, where colour
    was decoded, with colour in it (an RGB file of a grey picture counts as grey)."""
    rows = np.asarray(rows, dtype=np.int64)
    colour = hashed.facts[rows, 0] == 0
    if hashed.settings.colour and len(hashed.colour):
        colour &= chroma(grid(hashed.colour[rows], 0)) >= GREY_CHROMA
    return colour


def keep_order(rows, hashed, policy: str, reference=None) -> list[int]:
    """`rows` sorted best-to-keep first under `policy`; files under a reference folder
    (`reference[row]` True) come first whatever the policy.

    After the policy's own criterion the better copy wins: colour over grey, more bits
    per channel (16-bit, 8-bit, CMYK, palette, 1-bit), a lossless format, more animation
    frames; then the other criteria, and ties end on the path, so the order never depends
    on how a directory listing happened to come back.
    """
    # Only the group's rows: the planner sorts every group, and the whole collection's
    # chroma per group would make planning quadratic.
    colour = dict(zip(rows, in_colour(hashed, rows).tolist()))  # noqa: B905

    def facts(row):
        pixels = int(hashed.width[row]) * int(hashed.height[row])
        share = float(hashed.content_share[row])
        if share < PADDED_SHARE:  # a padded copy counts by its picture, and loses a near tie
            pixels = int(pixels * share * (1.0 - TRIMMED_PENALTY))
        _, depth, lossless, frames = (int(v) for v in hashed.facts[row])
        better_copy = (-int(colour[row]), -depth, -lossless, -frames)
        first = 0 if reference is not None and reference[row] else 1
        return first, pixels, better_copy, int(hashed.size[row]), int(hashed.mtime_ns[row]), hashed.paths[row]

    keys = {
        "resolution": lambda f: (f[0], -f[1], f[2], -f[3], f[4], f[5]),
        "size": lambda f: (f[0], -f[3], -f[1], f[2], f[4], f[5]),
        "oldest": lambda f: (f[0], f[4], -f[1], f[2], -f[3], f[5]),
        "newest": lambda f: (f[0], -f[4], -f[1], f[2], -f[3], f[5]),
        "path": lambda f: (f[0], f[5]),
    }
    key = keys[policy]
    return sorted(rows, key=lambda row: key(facts(row)))


def connected_groups(hashed, settings: MatchSettings, index_settings: IndexSettings,
                     matcher: Matcher | None = None) -> list[np.ndarray]:
    """Rows joined by chains of duplicate links; only groups of two or more. `matcher`:
    a Matcher over `hashed` that finds the links (or has found them), or that takes over
    the verdicts reached on the distinct files.

    Files identical in everything matching looks at are collapsed first, so a burst of
    identical files costs one tree point, not a quadratic number of pairs (unless the
    matcher has its pairs already).
    """
    if len(hashed.paths) < 2:
        return []
    if matcher is not None and matcher.found_pairs:
        return _components(*matcher.pairs()[:2], np.arange(len(hashed.paths)), len(hashed.paths))
    _, representatives, inverse = np.unique(hashed.identity_keys(), axis=0, return_index=True,
                                            return_inverse=True)
    inverse = inverse.ravel()
    if len(representatives) == len(hashed.paths):  # nothing to collapse: spare the copy
        inverse = np.arange(len(hashed.paths))
        matcher = matcher or Matcher(hashed, settings, index_settings)
        first, second, _ = matcher.pairs()
    else:
        unique_matcher = Matcher(hashed.subset(representatives), settings, index_settings,
                                 pair_cache=getattr(matcher, "pair_cache", None))
        first, second, _ = unique_matcher.pairs()
        if matcher is not None:
            matcher.reuse_verdicts(unique_matcher, inverse)
    return _components(first, second, inverse, len(representatives))


def component_labels(first: np.ndarray, second: np.ndarray, n_nodes: int) -> np.ndarray:
    """Per node, the smallest node of its connected component under the undirected links
    first[k]-second[k].

    Hook and compress on arrays (no scipy import on the warm path): each link pulls the
    larger of its two labels down to the smaller, then every label jumps to its label's
    label until none moves; repeated until both ends of every link agree. Labels only
    ever decrease and stay inside their component, so the result is exact; the rounds
    grow with the logarithm of a component's size, not its diameter.
    """
    labels = np.arange(n_nodes, dtype=np.int64)
    while len(first):
        low_first, low_second = labels[first], labels[second]
        unsettled = low_first != low_second
        if not unsettled.any():
            break
        low_first, low_second = low_first[unsettled], low_second[unsettled]
        smaller = np.minimum(low_first, low_second)
        np.minimum.at(labels, np.maximum(low_first, low_second), smaller)
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        first, second = first[unsettled], second[unsettled]
    return labels


def _components(first, second, inverse, n_nodes) -> list[np.ndarray]:
    """Files grouped by the connected components of the links first-second between
    nodes; file i is node inverse[i]."""
    labels = component_labels(np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64), n_nodes)
    file_labels = labels[inverse]
    order = np.argsort(file_labels, kind="stable")
    boundaries = np.flatnonzero(np.diff(file_labels[order])) + 1
    return [members for members in np.split(order, boundaries) if len(members) > 1]


def plan_group(rows, hashed, matcher: Matcher, policy: str, reference=None, order=keep_order) -> Group:
    """Walk the group best-first: remove a file when a kept one is its duplicate (within
    the threshold, colours agreeing), otherwise keep it too (so chains A~B~C never lose C
    because of A). A file under a reference folder is never removed, and a file is never
    removed because of one with fewer animation frames (a GIF's first frame as a still)."""
    keep: list[int] = []
    removals: list[Removal] = []
    frames = hashed.frames
    walk = list(order(rows, hashed, policy, reference))
    walked = _walk_matrices(matcher, walk)
    step = {row: position for position, row in enumerate(walk)}
    for row in walk:
        protected = reference is not None and bool(reference[row])
        candidates = [kept for kept in keep if frames[kept] >= frames[row]]
        if candidates and not protected:
            if walked is None:
                distances, views = _nearest_views(matcher, candidates, row)
            else:
                distances, views = walked([step[kept] for kept in candidates], step[row], row)
            nearest = int(np.argmin(distances))
            if distances[nearest] <= matcher.settings.max_bits:
                removals.append(Removal(row, candidates[nearest], int(distances[nearest]), views(nearest)))
                continue
        keep.append(row)
    return Group(keep=tuple(keep), remove=tuple(removals))


# Groups are walked from matrices of their distances (Matcher.walk_views) while the pairs
# of views to compare stay within WALK_VIEW_PAIRS (plain pictures: groups of about 2,000
# files, three int32 matrices of 16 MB); larger groups ask file by file.
WALK_VIEW_PAIRS = 4_000_000


def _walk_matrices(matcher, walk: list[int]):
    """A function (kept positions, row position, row) -> (distances, views) that
    answers from matrices made for the whole walk at once, or None to ask file by file."""
    if not matcher.walks_in_batches or len(walk) * (len(walk) - 1) * matcher.view_pairs > WALK_VIEW_PAIRS:
        return None
    bits, first, how = matcher.walk_views(walk)

    def answer(kept, at, row):
        found_first, found_how = first[kept, at], how[kept, at]
        return bits[kept, at], lambda position: matcher.views_label(int(found_how[position]),
                                                                    int(found_first[position]) == row)
    return answer


def _nearest_views(matcher, candidates: list[int], row: int):
    """Bits from each candidate to `row`, and a function giving the views that matched for
    a candidate's position (Matcher.views_label); a matcher without views (videos) gives
    only distances, and its pairs are of the whole pictures."""
    if not hasattr(matcher, "accepted_views"):
        return matcher.distances(candidates, row), lambda position: "whole"
    distances, first, how = matcher.accepted_views(candidates, row)
    return distances, lambda position: matcher.views_label(int(how[position]), int(first[position]) == row)


def make_plan(hashed, settings: MatchSettings, index_settings: IndexSettings = IndexSettings(),
              policy: str = "resolution", matcher: Matcher | None = None, reference=None,
              order=keep_order) -> Plan:
    """Group the duplicates of `hashed` and decide what to keep and remove (`matcher`: a
    Matcher over `hashed` with these settings, perhaps with its pairs found already; its
    verdicts are reused where the planner asks again). `reference`: a boolean per file,
    True for files that must be kept (and are kept first). `order`: the keep order
    (keep_order's signature; videos have their own, plan/video.py)."""
    if policy not in KEEP_POLICIES:
        raise ValueError(f"unknown keep policy {policy!r}")
    plan = Plan(max_bits=settings.max_bits, keep_policy=policy, verify_bits=settings.verify_bits)
    matcher = matcher or Matcher(hashed, settings, index_settings)
    for members in connected_groups(hashed, settings, index_settings, matcher):
        group = plan_group(members.tolist(), hashed, matcher, policy, reference, order)
        plan.groups.extend(split_by_kept_file(group))
    plan.groups.sort(key=lambda group: hashed.paths[group.keep[0]])
    return plan


def split_by_kept_file(group: Group) -> list[Group]:
    """One group per kept file with the files removed because of it. A chain of links can
    join pictures that are not duplicates of each other (two flags through a grey copy
    that matches both); the report shows which file each removal stands on instead."""
    return [
        Group(keep=(kept,), remove=tuple(r for r in group.remove if r.nearest_keep == kept))
        for kept in group.keep
        if any(r.nearest_keep == kept for r in group.remove)
    ]
