"""A second look at near misses: pairs of images whose hashes are a few bits beyond the
threshold are accepted when local features show that one picture is the other, moved,
scaled or cropped, with a part covered (a watermark, a logo).

A global 64-bit hash moves by many bits when a logo covers a third of a picture or a
crop takes 15% off each side; lifting the threshold for everyone would pair different
pictures. Local features see what is left: ORB keypoints of both pictures (decoded once
at VERIFY_SIDE pixels on the longer side, grey), matched with Lowe's ratio test, then
one similarity transform (scale, rotation, shift) fitted by RANSAC. A pair is verified
only when enough matches agree with it, the agreeing points are spread over most of BOTH
pictures (a shared logo or block of text covers a small part of two different photos),
and the transform is one a copy receives (scale within VERIFY_SCALES, nearly upright).

ORB sees grey only, so a verified pair still passes the colour checks in the view its
hash matched in (similarity.Matcher); this module only adds a veto for near misses
that the features do not confirm (VerifyingMatcher).

Feature extraction is per file, in the worker pool that hashing uses; the verdicts are
per pair of files and are remembered for the run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dedup_cli.errors import UnreadableImage
from dedup_cli.plan.similarity import Matcher, MatchSettings
from dedup_cli.search.index import IndexSettings

VERIFY_SIDE = 384  # longer side, in pixels, that features are found at
FEATURES = 768  # ORB keypoints per picture at most
RATIO = 0.8  # Lowe's ratio test: best match clearly better than the second best
RANSAC_PIXELS = 3.0  # reprojection error (at VERIFY_SIDE) within which a match agrees
MIN_INLIERS = 30  # agreeing matches below which nothing is verified
MIN_INLIER_SHARE = 0.3  # of the ratio-test matches
COVER_GRID = 8  # each picture cut into COVER_GRID x COVER_GRID cells; of its cells that hold
MIN_SPREAD = 0.5  # keypoints in the part the other shows, this share must hold agreeing ones
# The agreeing keypoints span at least this share of the shared part's width and of its
# height, in both pictures: two flat pictures with one watermark in common agree in
# every textured cell (the text is all there is) but span a fifth of the height at most.
MIN_EXTENT = 0.2
MIN_OVERLAP = 0.35  # share of each picture that the other shows, at least
VERIFY_SCALES = (0.45, 2.2)  # relative scale a copy may have (a 15% crop each side: 1.43)
MAX_ROTATION_DEGREES = 5.0  # a copy is upright (turned copies are --isometric's work)
DEFAULT_VERIFY_BITS = 6  # near misses: up to this many bits beyond the threshold
MAX_NEAR_MISSES_PER_FILE = 8  # verified per file at most, nearest first
TRIES_PER_LINK = 3  # near misses tried, nearest first, to join two groups the hash leaves apart
MAX_NEAR_MISSES = 50_000  # verified per run at most


@dataclass(frozen=True)
class Features:
    """ORB keypoints of one picture: their positions (n, 2) at the verification size, their
    descriptors (n, 32) and the size (width, height) they were found at; `error` is the
    reason when the file could not be read (no keypoints then)."""

    points: np.ndarray
    descriptors: np.ndarray
    size: tuple[int, int]
    error: str = ""
    content_share: float = 1.0  # of the picture, without uniform neutral borders (views.trim_box)


def file_features(path: str) -> Features:
    """Decode `path` once, with its longer side at VERIFY_SIDE (smaller pictures as they
    are), find its ORB keypoints on the grey picture and measure its uniform borders (the
    share of it that is picture, as --views does, so that a padded copy that features
    pair with its original ranks by its picture in the keep policy). Failures come back
    as a Features with `error`."""
    from dedup_cli.fingerprint.views import trim_box
    from dedup_cli.media.loading import load_image

    try:
        image = load_image(path, min_side=VERIFY_SIDE // 2, mode="colour").image
        image.thumbnail((VERIFY_SIDE, VERIFY_SIDE))
        grey = image.getchannel(0) if image.mode == "YCbCr" else image.convert("L")
        features = image_features(np.asarray(grey))
        left, top, right, bottom = trim_box(image) or (0, 0, image.width, image.height)
        return replace(features, content_share=(right - left) * (bottom - top) / (image.width * image.height))
    except UnreadableImage as exc:
        return _failed(exc.reason)
    except Exception as exc:  # odd pixels: one file's failure, never the run's
        return _failed(f"feature extraction failed: {type(exc).__name__}: {exc}")


def _failed(reason: str) -> Features:
    return Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), (0, 0), reason)


def image_features(grey: np.ndarray) -> Features:
    """ORB keypoints of a grey picture (height, width) uint8, spread over the picture: ORB
    keeps the strongest corners, which crowd into the busiest part (a logo, a block of
    text); here many are found and at most FEATURES / COVER_GRID² kept per cell, so that
    where the agreeing ones lie says how much of the picture agrees."""
    import cv2

    orb = cv2.ORB_create(nfeatures=4 * FEATURES, fastThreshold=7, edgeThreshold=15, patchSize=15)
    keypoints = orb.detect(np.ascontiguousarray(grey), None)
    keypoints = _strongest_per_cell(keypoints, grey.shape[::-1])
    keypoints, descriptors = orb.compute(np.ascontiguousarray(grey), keypoints)
    if descriptors is None or not len(keypoints):
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), grey.shape[::-1])
    points = np.array([point.pt for point in keypoints], dtype=np.float32)
    return Features(points, descriptors, grey.shape[::-1])


def _strongest_per_cell(keypoints, size) -> list:
    """The strongest FEATURES / COVER_GRID² of `keypoints` in each cell of the grid."""
    if not keypoints:
        return []
    points = np.array([point.pt for point in keypoints], dtype=np.float32)
    strength = np.array([point.response for point in keypoints], dtype=np.float32)
    cells = _cells(points, size)
    order = np.lexsort((-strength, cells))
    rank = np.arange(len(order)) - np.searchsorted(cells[order], cells[order])
    return [keypoints[index] for index in order[rank < FEATURES // COVER_GRID ** 2]]


def features_of_batch(paths: list[str]) -> list[Features]:
    """file_features of each path (a unit of work for a worker process)."""
    return [file_features(path) for path in paths]


@dataclass(frozen=True)
class Verdict:
    """What the features say about two pictures: verified or not, and the facts."""

    verified: bool
    inliers: int = 0
    spread: tuple[float, float] = (0.0, 0.0)  # per picture: _spread
    scale: float = 0.0
    overlap: tuple[float, float] = (0.0, 0.0)  # per picture: the share of it the other shows
    extent: tuple[float, float] = (0.0, 0.0)  # per picture: _extent


def verify_pair(first: Features, second: Features) -> Verdict:
    """Whether `second` shows the same picture as `first` (see the module's docstring)."""
    import cv2

    if min(len(first.points), len(second.points)) < MIN_INLIERS:
        return Verdict(False)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    candidates = matcher.knnMatch(first.descriptors, second.descriptors, k=2)
    good = [pair[0] for pair in candidates if len(pair) == 2 and pair[0].distance < RATIO * pair[1].distance]
    if len(good) < MIN_INLIERS:
        return Verdict(False, len(good))
    source = first.points[[match.queryIdx for match in good]]
    target = second.points[[match.trainIdx for match in good]]
    transform, agree = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC,
                                                   ransacReprojThreshold=RANSAC_PIXELS, maxIters=2000,
                                                   confidence=0.995)
    if transform is None:
        return Verdict(False)
    agree = agree.ravel().astype(bool)
    inliers = int(agree.sum())
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    rotation = float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0])))
    overlap = _overlap_shares(transform, first.size, second.size)
    inverse = cv2.invertAffineTransform(transform)
    spread = (_spread(source[agree], first.points, _apply(transform, first.points), first.size, second.size),
              _spread(target[agree], second.points, _apply(inverse, second.points), second.size, first.size))
    extent = (_extent(source[agree], _overlap_box(inverse, second.size, first.size)),
              _extent(target[agree], _overlap_box(transform, first.size, second.size)))
    verified = (inliers >= MIN_INLIERS and inliers >= MIN_INLIER_SHARE * len(good)
                and min(spread) >= MIN_SPREAD and min(overlap) >= MIN_OVERLAP and min(extent) >= MIN_EXTENT
                and VERIFY_SCALES[0] <= scale <= VERIFY_SCALES[1] and abs(rotation) <= MAX_ROTATION_DEGREES)
    return Verdict(verified, inliers, (round(spread[0], 2), round(spread[1], 2)), round(scale, 3), overlap, extent)


def _apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ transform[:, :2].T + transform[:, 2]


def _overlap_box(transform, other_size, size) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in a picture of `size` of the part that the other picture
    (of `other_size`, put here by `transform`) shows: the box around its corners, clipped."""
    width, height = other_size
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    moved = _apply(transform, corners)
    low, high = np.maximum(moved.min(axis=0), 0), np.minimum(moved.max(axis=0), size)
    return float(low[0]), float(low[1]), float(high[0]), float(high[1])


def _extent(points: np.ndarray, box) -> float:
    """The smaller of the width and height shares of `box` that `points` span (from their
    5th to their 95th percentile, so a stray match does not stretch it)."""
    left, top, right, bottom = box
    if len(points) < 2 or right <= left or bottom <= top:
        return 0.0
    low, high = np.percentile(points, [5, 95], axis=0)
    return round(float(min((high[0] - low[0]) / (right - left), (high[1] - low[1]) / (bottom - top))), 3)


def _cells(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The cell of a COVER_GRID x COVER_GRID grid over a picture of `size` of each point."""
    width, height = size
    column = np.clip((points[:, 0] * COVER_GRID / width).astype(int), 0, COVER_GRID - 1)
    row = np.clip((points[:, 1] * COVER_GRID / height).astype(int), 0, COVER_GRID - 1)
    return row * COVER_GRID + column


def _spread(agreeing: np.ndarray, points: np.ndarray, moved: np.ndarray, size, other_size) -> float:
    """The share of the cells that hold keypoints of this picture inside the part the other
    picture shows (`moved`: the keypoints in the other's frame) that hold an agreeing one."""
    inside = ((moved[:, 0] >= 0) & (moved[:, 0] < other_size[0]) & (moved[:, 1] >= 0) & (moved[:, 1] < other_size[1]))
    textured = np.unique(_cells(points[inside], size))
    if not len(textured):
        return 0.0
    return len(np.intersect1d(_cells(agreeing, size), textured)) / len(textured)


def _overlap_shares(transform, first_size, second_size) -> tuple[float, float]:
    """The share of each picture that the other covers under `transform` (first -> second)."""
    import cv2

    def corners(size):
        width, height = size
        return np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)

    inverse = cv2.invertAffineTransform(transform)
    second_in_first = cv2.transform(corners(second_size)[None], inverse)[0]
    first_in_second = cv2.transform(corners(first_size)[None], transform)[0]
    shares = []
    for outline, size in ((second_in_first, first_size), (first_in_second, second_size)):
        area, _ = cv2.intersectConvexConvex(np.ascontiguousarray(outline), corners(size))
        shares.append(round(float(area) / (size[0] * size[1]), 3))
    return tuple(shares)


_FEATURE_BATCH = 16  # files per unit of work sent to a worker
_PAIR_CHUNK = 2_000  # near misses verified at once
_FEATURES_HELD = 4_096  # files whose features are held at most (about 60 KB each)
VERIFIED_HOW = 1 << 20  # added to a pair's view code (Matcher's `how`) when features verified it
FEATURES_LABEL = "features"


class VerifyingMatcher(Matcher):
    """A Matcher that also pairs near misses which local features verify.

    `settings.max_bits` is the hash threshold and `settings.verify_bits` the margin beyond
    it. The pairs within max_bits + verify_bits are found and colour-checked as a Matcher
    with that wider threshold would (nearest accepted pair of views first); those beyond
    max_bits that would join two groups the hash alone leaves apart are then verified by
    features in the worker pool, at most `per_file` of them per file (nearest first). The
    planner, walking a group, may ask about other near misses inside it: those are
    verified when asked (in this process; a group holds few). At most `total` near misses
    are verified in a run; one that was not verified counts as no match, so a file is
    removed on a near miss only when the features vouched for that very pair.
    """

    def __init__(self, hashed, settings: MatchSettings, index_settings: IndexSettings = IndexSettings(),
                 workers: int = 1, per_file: int = MAX_NEAR_MISSES_PER_FILE, total: int = MAX_NEAR_MISSES):
        wide = replace(settings, max_bits=settings.max_bits + settings.verify_bits)
        super().__init__(hashed, wide, index_settings)
        self.hash_bits = settings.max_bits
        self.workers, self.per_file, self.total = workers, per_file, total
        self._verdicts: dict[int, bool] = {}  # pair key -> verified
        self._features_by_row: dict[int, Features] = {}  # at most _FEATURES_HELD
        self.failures: dict[str, str] = {}  # path -> why its features could not be found
        self.over_budget = 0  # near misses left unverified because `total` were
        self._notes: list[str] = []

    @property
    def notes(self) -> list[str]:
        """What the run should tell: unreadable files, near misses left unverified."""
        notes = list(self._notes)
        if self.over_budget:
            notes.append(f"--verify: {self.over_budget} more near misses were not verified (at most {self.total} "
                         "in a run); they count as no match")
        return notes + [f"Cannot verify '{path}' by features: {reason} (its near misses count as no match)"
                        for path, reason in sorted(self.failures.items())]

    @property
    def whole_pictures_only(self) -> bool:
        return False  # the planner must see which pairs the features verified

    @property
    def found_pairs(self) -> bool:
        # Found on first use: the planner groups by these pairs, never by a plain Matcher
        # over the distinct files (which would know nothing of the features).
        return True

    def _pair_keys(self, first: np.ndarray, second: np.ndarray) -> list[int]:
        count = len(self.hashed.paths)
        first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
        return (np.minimum(first, second) * count + np.maximum(first, second)).tolist()

    def _find_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        first, second, bits = super()._find_pairs()
        near = bits > self.hash_bits
        links, worth = _near_misses(first, second, bits, near, len(self.hashed.paths), self.per_file)
        if len(links) < worth:
            self._notes.append(f"--verify: of {worth} near misses between groups, the nearest {len(links)} "
                               f"could be verified (at most {self.per_file} per file); the rest count as no match")
        from dedup_cli.fingerprint.hashing import worker_pool

        kept = ~near
        joined = np.zeros(len(links), dtype=bool)  # per near miss: its two groups are joined already
        with worker_pool(min(self.workers, max(1, len(links) // _FEATURE_BATCH))) as pool:
            for attempt in range(TRIES_PER_LINK):
                now = np.flatnonzero((links.attempt == attempt) & ~joined)
                verified = now[self._verify(first[links.position[now]], second[links.position[now]], pool)]
                kept[links.position[verified]] = True
                joined |= np.isin(links.link, links.link[verified])
        return first[kept], second[kept], bits[kept]

    def _verify(self, first: np.ndarray, second: np.ndarray, pool=None) -> np.ndarray:
        """Feature verdicts on the pairs first[i]-second[i] (remembered), the features found
        over `pool` (or here) a chunk of pairs at a time, so that memory stays bounded."""
        keys = self._pair_keys(first, second)
        verdicts = np.zeros(len(keys), dtype=bool)
        unknown = [index for index, key in enumerate(keys) if key not in self._verdicts]
        for start in range(0, len(unknown), _PAIR_CHUNK):
            part = unknown[start:start + _PAIR_CHUNK]
            allowed = max(0, self.total - len(self._verdicts))
            self.over_budget += max(0, len(part) - allowed)
            part = part[:allowed]
            rows = sorted({int(first[index]) for index in part} | {int(second[index]) for index in part})
            self._load_features(rows, pool)
            for index in part:
                self._verdicts[keys[index]] = verify_pair(self._features_by_row[int(first[index])],
                                                          self._features_by_row[int(second[index])]).verified
        for index, key in enumerate(keys):
            verdicts[index] = self._verdicts.get(key, False)
        return verdicts

    def _load_features(self, rows: list[int], pool) -> None:
        missing = [row for row in rows if row not in self._features_by_row]
        if len(self._features_by_row) + len(missing) > _FEATURES_HELD:
            self._features_by_row = {row: self._features_by_row[row] for row in rows if row in self._features_by_row}
        paths = [self.hashed.paths[row] for row in missing]
        if pool is None or len(paths) < 2 * _FEATURE_BATCH:
            found = features_of_batch(paths)
        else:
            batches = [paths[start:start + _FEATURE_BATCH] for start in range(0, len(paths), _FEATURE_BATCH)]
            found = [features for batch in pool.map(features_of_batch, batches) for features in batch]
        for row, path, features in zip(missing, paths, found):
            self._features_by_row[row] = features
            # The keep policy reads it (plan/grouping.py); --views measured it already.
            if self.hashed.views is None:
                self.hashed.content_share[row] = features.content_share
            if features.error:
                self.failures[path] = features.error

    def accepted_views(self, rows, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Matcher.accepted_views, where a pair beyond the hash threshold counts only when
        features verify it (its `how` then carries VERIFIED_HOW, for views_label). The
        planner takes the nearest of `rows`, so when one is within the hash threshold the
        near misses are not looked at (and count as no match)."""
        self.pairs()
        bits, first, how = super().accepted_views(rows, row)
        near = np.flatnonzero((bits > self.hash_bits) & (bits < self.rejected))
        if len(near) and (bits <= self.hash_bits).any():
            bits[near] = self.rejected
        elif len(near):
            rows = np.asarray(rows, dtype=np.int64)
            verified = self._verify(rows[near], np.full(len(near), row))
            bits[near[~verified]] = self.rejected
            how[near[verified]] += VERIFIED_HOW
        return bits, first, how

    def views_label(self, how: int, removed_first: bool) -> str:
        """Matcher.views_label, then ', features' for a pair that features verified."""
        if how < VERIFIED_HOW:
            return super().views_label(how, removed_first)
        return f"{super().views_label(how - VERIFIED_HOW, removed_first)}, {FEATURES_LABEL}"


@dataclass(frozen=True)
class _NearMisses:
    """Near misses worth a second look, nearest first: `position` in the pair arrays,
    `link` (which two groups the pair would join) and `attempt` (0 for the nearest pair
    of its two groups, 1 for the next ...)."""

    position: np.ndarray
    link: np.ndarray
    attempt: np.ndarray

    def __len__(self) -> int:
        return len(self.position)


def _near_misses(first, second, bits, near, count: int, per_file: int) -> tuple[_NearMisses, int]:
    """The near misses whose two files the pairs within the hash threshold leave in
    different groups (a near miss inside a group changes no grouping), at most
    `per_file` for each file and TRIES_PER_LINK for each two groups, nearest first; and
    how many there were before the per-file cap. One verified pair is enough to join two
    groups, so the later attempts are only made where the earlier ones failed."""
    from dedup_cli.plan.grouping import component_labels

    within = np.flatnonzero(~near)
    labels = component_labels(first[within].astype(np.int64), second[within].astype(np.int64), count)
    low, high = np.minimum(labels[first], labels[second]), np.maximum(labels[first], labels[second])
    candidates = np.flatnonzero(near & (low != high))
    candidates = candidates[np.lexsort((bits[candidates], high[candidates], low[candidates]))]
    link = low[candidates].astype(np.int64) * count + high[candidates]
    attempt = np.arange(len(candidates)) - np.searchsorted(link, link)
    tried = np.flatnonzero(attempt < TRIES_PER_LINK)
    candidates, link, attempt = candidates[tried], link[tried], attempt[tried]
    order = np.argsort(bits[candidates], kind="stable")
    taken = np.zeros(count, dtype=np.int64)
    chosen = []
    for index in order.tolist():
        a, b = int(first[candidates[index]]), int(second[candidates[index]])
        if taken[a] < per_file and taken[b] < per_file:
            taken[a] += 1
            taken[b] += 1
            chosen.append(index)
    chosen = np.array(chosen, dtype=np.int64)
    return _NearMisses(candidates[chosen], link[chosen], attempt[chosen]), len(candidates)
