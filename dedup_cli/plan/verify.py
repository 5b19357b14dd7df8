"""A second look at near misses (--verify): pairs of images whose hashes are a few bits
beyond the threshold, or within it but vetoed by the colour checks, are accepted when
local features show that one picture is the other, moved, scaled or cropped, with a
part covered (a watermark, a logo).

A global 64-bit hash moves by many bits when a logo covers a third of a picture or a
crop takes 15% off each side; lifting the threshold for everyone would pair different
pictures. Local features see what is left: ORB keypoints of both pictures (decoded once
at VERIFY_SIDE pixels on the longer side, grey, spread over the picture), matched with
Lowe's ratio test, then one similarity transform (scale, rotation, shift) fitted by
RANSAC. A pair is verified only when both pictures are textured (MIN_KEYPOINTS: a flat
flag or icon is matched by its outline and a few edges alone), enough matches agree, the agreeing points
are found in most textured cells of the part the pictures share and span a good part
of it, in BOTH pictures (a shared logo or block of text covers a small part of two
different photos), and the transform is one a copy receives (scale within
VERIFY_SCALES, nearly upright).

ORB sees grey only, so a near miss must also pass the colour checks in the view its
hash matched in (similarity.Matcher). A large logo, though, is another colour in part of
the picture, and the local colour check vetoes it even within the hash threshold; such
a pair is "rescued" only when the features verify it and the colour checks accept the
two pictures aligned by the features once the cells that a white, grey or black overlay
covers are left out (overlay_rescue), while they veto them with those cells: the
overlay must be what explains the difference. A recoloured region, a skin tone or a flag's coloured
emblem is no such overlay.

Feature extraction is per file, in the worker pool that hashing uses; the verdicts are
per pair of files and are remembered for the run (VerifyingMatcher).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dedup_cli.errors import MissingDependency, UnreadableImage
from dedup_cli.fingerprint.signature import colour_signature
from dedup_cli.plan.grouping import PADDED_SHARE, component_labels
from dedup_cli.plan.similarity import Matcher, MatchSettings, _run_starts, vetoed
from dedup_cli.search.index import IndexSettings, hamming

VERIFY_SIDE = 384  # longer side, in pixels, that features are found at
COLOUR_SIDE = 128  # longer side of the pixels kept for the aligned colour check (grids of 16x16 at most)
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
# A pair the colour checks veto in the hash's view (a large logo is another colour in
# part of the picture) gets them again on the pictures aligned by the features, with
# the cells where the features say one of them is covered left out: at most this share
# of the cells.
OCCLUDED_POINTS = 3
MAX_OCCLUDED_SHARE = 0.25
# Both pictures must be this textured (keypoints of FEATURES) for features to vouch for
# them: a flat picture (a flag, an emoji, an icon) is matched by its outline and a few
# edges alone, which many different ones share (Austria's flag fits Latvia's narrower
# stripes under a stretch; Singapore's is Indonesia's with a white crescent).
MIN_KEYPOINTS = 300
OVERLAY_CHROMA_SLACK = 4.0  # Cb, Cr levels by which an overlay may seem more colourful (JPEG noise)
DEFAULT_VERIFY_BITS = 6  # near misses: up to this many bits beyond the threshold
MAX_NEAR_MISSES_PER_FILE = 8  # verified per file at most, nearest first
TRIES_PER_LINK = 3  # near misses tried, nearest first, to join two groups the hash leaves apart
MAX_NEAR_MISSES = 50_000  # verified per run at most


OPENCV_MISSING = "--verify needs OpenCV: pip install 'dedup-cli[verify]' (the opencv-python-headless package)"


def require_opencv() -> None:
    """Raise MissingDependency, saying what to install, when OpenCV cannot be imported."""
    try:
        import cv2  # noqa: F401
    except ImportError as exc:
        raise MissingDependency(OPENCV_MISSING) from exc


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
    colour: np.ndarray | None = None  # RGB pixels, the longer side COLOUR_SIDE: overlay_rescue


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
        small = image.copy()
        small.thumbnail((COLOUR_SIDE, COLOUR_SIDE))
        return replace(features, content_share=(right - left) * (bottom - top) / (image.width * image.height),
                       colour=np.asarray(small.convert("RGB")))
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
    transform: np.ndarray | None = None  # 2x3, first picture -> second
    # Per cell of the grid over the first picture: keypoints there and not one agreeing,
    # in the first picture (covered_first) or the second (covered_second, mapped there).
    covered_first: np.ndarray | None = None
    covered_second: np.ndarray | None = None
    keypoints: tuple[int, int] = (0, 0)  # found in each picture


def verify_pair(first: Features, second: Features) -> Verdict:
    """Whether `second` shows the same picture as `first` (see the module's docstring)."""
    import cv2

    if min(len(first.points), len(second.points)) < MIN_KEYPOINTS:
        return Verdict(False, keypoints=(len(first.points), len(second.points)))
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
    return Verdict(verified, inliers, (round(spread[0], 2), round(spread[1], 2)), round(scale, 3), overlap, extent,
                   transform, _occluded_cells(first.points, _apply(transform, first.points), second.size,
                                              source[agree], first.size),
                   _occluded_cells(_apply(inverse, second.points), second.points, second.size,
                                   _apply(inverse, target[agree]), first.size),
                   (len(first.points), len(second.points)))


def _occluded_cells(points: np.ndarray, in_other: np.ndarray, other_size, agreeing: np.ndarray, size) -> np.ndarray:
    """Cells of the grid over a picture of `size` (COVER_GRID² booleans) that hold at
    least OCCLUDED_POINTS keypoints inside the part both pictures show (`in_other`: the
    same points in the frame of the other picture, of `other_size`) and not one agreeing:
    something covers one picture there (a logo, text)."""
    inside = ((points[:, 0] >= 0) & (points[:, 0] < size[0]) & (points[:, 1] >= 0) & (points[:, 1] < size[1])
              & (in_other[:, 0] >= 0) & (in_other[:, 0] < other_size[0])
              & (in_other[:, 1] >= 0) & (in_other[:, 1] < other_size[1]))
    counts = np.bincount(_cells(points[inside], size), minlength=COVER_GRID ** 2)
    agree = np.bincount(_cells(agreeing, size), minlength=COVER_GRID ** 2) if len(agreeing) else 0
    return (counts >= OCCLUDED_POINTS) & (agree == 0)


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


def overlay_rescue(first: Features, second: Features, verdict: Verdict,
                   settings: MatchSettings) -> tuple[float, float] | None:
    """Whether an overlay explains why the colour checks (similarity.vetoed) rule out two
    pictures that features verified (`verdict`): the share of the cells that the overlay
    covers in the first and in the second picture, or None when it does not.

    The second picture is warped onto the first and both are cut to the part they share.
    A cell where one picture has keypoints and none agrees is covered in it; it is left
    out (taken from the first in both) only when the covering picture is there no more
    colourful than the other, in the same hue: what a white, grey or black watermark or
    logo does. A flag's coloured emblem is not excused. An overlay explains the veto
    only when the aligned pictures differ in colour with those cells and agree without
    them, and at most MAX_OCCLUDED_SHARE of the cells are left out."""
    if verdict.transform is None or not verdict.verified:
        return None
    first_pixels, aligned, box = _aligned_pixels(first, second, verdict.transform)
    if box is None:
        return None
    excused, covering = _overlay_cells(first_pixels, aligned, verdict)
    if not excused.any() or excused.mean() > MAX_OCCLUDED_SHARE:
        return None
    if not _colour_vetoed(first_pixels, aligned, box, settings):
        return None  # they agree as they are: the hash's own verdict stands, nothing to excuse
    height, width = first_pixels.shape[:2]
    for cell in np.flatnonzero(excused).tolist():
        rows, columns = _cell_slices(cell, height, width)
        aligned[rows, columns] = first_pixels[rows, columns]
    if _colour_vetoed(first_pixels, aligned, box, settings):
        return None
    return float((covering == 0).mean()), float((covering == 1).mean())


def covered_shares(first: Features, second: Features, verdict: Verdict) -> tuple[float, float]:
    """The share of the cells that a colourless overlay covers in each of two pictures
    features verified (see overlay_rescue), whatever the colour checks say."""
    first_pixels, aligned, box = _aligned_pixels(first, second, verdict.transform)
    if box is None:
        return 0.0, 0.0
    _, covering = _overlay_cells(first_pixels, aligned, verdict)
    return float((covering == 0).mean()), float((covering == 1).mean())


def _aligned_pixels(first: Features, second: Features, transform: np.ndarray):
    """The first picture's colour pixels, the second's warped onto them, and the box of
    the part both show (None when it is too small to compare)."""
    import cv2

    transform = _scaled(transform, first, second)
    first, second = first.colour, second.colour
    height, width = first.shape[:2]
    aligned = cv2.warpAffine(second, transform, (width, height), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP)
    left, top, right, bottom = (round(value) for value in _overlap_box(
        cv2.invertAffineTransform(transform), second.shape[1::-1], (width, height)))
    box = (left + 1, top + 1, right - 1, bottom - 1)  # the warp's edge blends with black
    return first, aligned, box if box[2] - box[0] >= 8 and box[3] - box[1] >= 8 else None


def _scaled(transform: np.ndarray, first: Features, second: Features) -> np.ndarray:
    """`transform` (between the keypoint frames) between the two pictures' colour pixels."""
    to_first = first.colour.shape[1] / first.size[0]
    to_second = second.colour.shape[1] / second.size[0]
    scaled = transform * to_second
    scaled[:, :2] /= to_first
    return scaled


def _cell_slices(cell: int, height: int, width: int) -> tuple[slice, slice]:
    row, column = divmod(cell, COVER_GRID)
    return (slice(row * height // COVER_GRID, (row + 1) * height // COVER_GRID),
            slice(column * width // COVER_GRID, (column + 1) * width // COVER_GRID))


def _overlay_cells(first: np.ndarray, aligned: np.ndarray, verdict: Verdict) -> tuple[np.ndarray, np.ndarray]:
    """The covered cells (verdict) where the covering picture is no more colourful than
    the other, in the same hue (within OVERLAY_CHROMA_SLACK levels of Cb and Cr); and per
    cell which picture covers it there (0 the first, 1 the second, -1 none)."""
    height, width = first.shape[:2]
    covering = np.full(COVER_GRID ** 2, -1)
    for cell in np.flatnonzero(verdict.covered_first | verdict.covered_second).tolist():
        rows, columns = _cell_slices(cell, height, width)
        chroma = [_mean_chroma(pixels[rows, columns]) for pixels in (first, aligned)]
        for side, covered in ((0, verdict.covered_first), (1, verdict.covered_second)):
            if covered[cell] and _shrunk_towards_grey(chroma[side], chroma[1 - side]):
                covering[cell] = side
    return covering >= 0, covering


def _mean_chroma(pixels: np.ndarray) -> np.ndarray:
    """Mean (Cb, Cr) about neutral grey of RGB pixels (JPEG's YCbCr)."""
    red, green, blue = pixels.reshape(-1, 3).astype(np.float32).mean(axis=0)
    return np.array([-0.168736 * red - 0.331264 * green + 0.5 * blue,
                     0.5 * red - 0.418688 * green - 0.081312 * blue])


def _shrunk_towards_grey(covering: np.ndarray, other: np.ndarray) -> bool:
    """True when `covering` lies between `other` and neutral grey, channel by channel."""
    slack = OVERLAY_CHROMA_SLACK
    same_side = (covering * other >= 0) | (np.abs(covering) <= slack)
    return bool(np.all(same_side & (np.abs(covering) <= np.abs(other) + slack)))


def _colour_vetoed(first: np.ndarray, second: np.ndarray, box, settings: MatchSettings) -> bool:
    from PIL import Image

    signatures = [np.frombuffer(colour_signature(Image.fromarray(pixels), box), dtype=np.uint8)[None]
                  for pixels in (first, second)]
    return bool(vetoed(*signatures, settings)[0])


_FEATURE_BATCH = 16  # files per unit of work sent to a worker
_PAIR_CHUNK = 2_000  # near misses verified at once
MAX_RECORDED_VETOES = 1_000_000  # colour-vetoed pairs kept for a rescue (16 bytes each, twice)
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

    walks_in_batches = False  # accepted_views verifies near misses when the planner asks

    def __init__(self, hashed, settings: MatchSettings, index_settings: IndexSettings = IndexSettings(),
                 workers: int = 1, per_file: int = MAX_NEAR_MISSES_PER_FILE, total: int = MAX_NEAR_MISSES):
        wide = replace(settings, max_bits=settings.max_bits + settings.verify_bits)
        super().__init__(hashed, wide, index_settings)
        self.hash_bits = settings.max_bits
        self.hash_settings = settings  # what the hash alone accepts (self.settings is the wider search)
        self.workers, self.per_file, self.total = workers, per_file, total
        self._verdicts: dict[int, bool] = {}  # pair key * 2 + rescue -> verified
        self._rescued: dict[int, int] = {}  # pair key -> bits, for colour-vetoed pairs the features rescued
        self._vetoed_pairs: list | None = None  # (first, second, how) ruled out while pairs are found
        self._hash_groups: np.ndarray | None = None  # per file, its group by the hash (and colour) alone
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
    def found_pairs(self) -> bool:
        # Found on first use: the planner groups by these pairs, never by a plain Matcher
        # over the distinct files (which would know nothing of the features).
        return True

    def _hash_within(self, bits: np.ndarray, how: np.ndarray) -> np.ndarray:
        """Whether pairs at `bits` matched `how` are matches by the hash alone: within the
        hash threshold as plain pictures, VIEW_MARGIN closer in other views (as a Matcher
        without --verify has it)."""
        return np.asarray(bits) <= np.where(np.asarray(how) == 0, self.hash_bits, self.hash_settings.view_max_bits)

    def _pair_keys(self, first: np.ndarray, second: np.ndarray) -> list[int]:
        return self._pair_key_array(first, second).tolist()

    def _pair_key_array(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """One key per pair of files, the same both ways round."""
        first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
        return np.minimum(first, second) * len(self.hashed.paths) + np.maximum(first, second)

    def _vetoed(self, first: np.ndarray, second: np.ndarray, how: np.ndarray) -> np.ndarray:
        ruled_out = super()._vetoed(first, second, how)
        if self._vetoed_pairs is not None and self._vetoed_pairs[0] < MAX_RECORDED_VETOES:
            picked = np.flatnonzero(ruled_out)[:MAX_RECORDED_VETOES - self._vetoed_pairs[0]]
            self._vetoed_pairs[0] += len(picked)
            self._vetoed_pairs.append((first[picked], second[picked], how[picked]))
        return ruled_out

    def _find_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._vetoed_pairs = [0]
        first, second, bits = super()._find_pairs()
        how = self._pair_views[0] if self._pair_views is not None else np.zeros(len(first), dtype=np.int64)
        vetoed_first, vetoed_second, vetoed_bits = self._colour_vetoed_pairs(first, second)
        self._vetoed_pairs = None
        count = len(first)
        first, second = np.concatenate([first, vetoed_first]), np.concatenate([second, vetoed_second])
        bits = np.concatenate([bits, vetoed_bits])
        rescue = np.arange(len(first)) >= count
        # A pair accepted in another view than the plain pictures is a near miss beyond
        # the hash threshold less the view margin. (Its plain pair, further apart, may be
        # within the threshold: then it goes to the features too; it is rare.)
        within = ~rescue & self._hash_within(bits, np.concatenate([how, np.zeros(len(first) - count, dtype=np.int64)]))
        links, worth, self._hash_groups = _near_misses(first, second, bits, within, rescue, len(self.hashed.paths),
                                                       self.per_file)
        if len(links) < worth:
            self._notes.append(f"--verify: of {worth} pairs worth a second look (near misses and colour-vetoed "
                               f"pairs between groups), {len(links)} could be (at most {self.per_file} per file); "
                               "the rest count as no match")
        from dedup_cli.fingerprint.hashing import worker_pool  # PIL: not on the start-up path (cli imports this module)

        kept = within.copy()
        joined = np.zeros(len(links), dtype=bool)  # per near miss: its two groups are joined already
        with worker_pool(min(self.workers, max(1, len(links) // _FEATURE_BATCH))) as pool:
            for attempt in range(TRIES_PER_LINK):
                now = links.position[(links.attempt == attempt) & ~joined]
                verified = now[self._verify(first[now], second[now], rescue[now], pool)]
                kept[verified] = True
                joined |= np.isin(links.link, links.link[np.isin(links.position, verified)])
        rescued = np.flatnonzero(kept & rescue)
        self._rescued.update(zip(self._pair_keys(first[rescued], second[rescued]), bits[rescued].tolist()))
        return first[kept], second[kept], bits[kept]

    def _colour_vetoed_pairs(self, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, ...]:
        """The pairs of files within the hash threshold that the colour checks ruled out in
        every view tried (none of `first`-`second`, the accepted pairs), each once, with
        its fewest bits. Features may overrule the colour checks only where the hash
        agrees: beyond the threshold they would overrule both."""
        recorded = [part for part in self._vetoed_pairs[1:] if len(part[0])]
        if not recorded:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        low, high, how = (np.concatenate(column).astype(np.int64) for column in zip(*recorded))
        bits = self._view_bits(low, high, how)
        low, high = np.minimum(low, high), np.maximum(low, high)
        keys = self._pair_key_array(low, high)
        order = np.lexsort((bits, keys))
        firsts = order[_run_starts(keys[order])]
        fresh = firsts[~np.isin(keys[firsts], self._pair_key_array(first, second))
                       & self._hash_within(bits[firsts], how[firsts])]
        return low[fresh], high[fresh], bits[fresh]

    def _view_bits(self, first: np.ndarray, second: np.ndarray, how: np.ndarray) -> np.ndarray:
        """Bits between the views of pairs matched `how` (Matcher's view codes)."""
        query, index = np.divmod(how, self._index_views)
        at = np.arange(len(first))
        return hamming(self._query_hashes(first)[at, query], self._index_hashes(second)[at, index]).astype(np.int64)

    def _verify(self, first: np.ndarray, second: np.ndarray, rescue: np.ndarray, pool=None) -> np.ndarray:
        """Verdicts on the pairs first[i]-second[i] (remembered): features verify them and,
        where `rescue` (the colour checks vetoed them), overlay_rescue finds an overlay.
        Features are found over `pool` (or here) a chunk of pairs at a time, so that
        memory stays bounded."""
        keys = [2 * key + int(flag) for key, flag in zip(self._pair_keys(first, second), np.asarray(rescue).tolist())]
        unknown = [index for index, key in enumerate(keys) if key not in self._verdicts]
        for start in range(0, len(unknown), _PAIR_CHUNK):
            part = unknown[start:start + _PAIR_CHUNK]
            allowed = max(0, self.total - len(self._verdicts))
            self.over_budget += max(0, len(part) - allowed)
            part = part[:allowed]
            rows = sorted({int(first[index]) for index in part} | {int(second[index]) for index in part})
            self._load_features(rows, pool)
            for index in part:
                self._verdicts[keys[index]] = self._judge(int(first[index]), int(second[index]), bool(rescue[index]))
        return np.array([self._verdicts.get(key, False) for key in keys], dtype=bool)

    def _judge(self, first: int, second: int, rescue: bool) -> bool:
        features = self._features_by_row[first], self._features_by_row[second]
        verdict = verify_pair(*features)
        if not verdict.verified:
            return False
        covered = overlay_rescue(*features, verdict, self.settings) if rescue else covered_shares(*features, verdict)
        if covered is None:
            return False
        # The keep policy (plan/grouping.py) ranks a padded copy by its picture and a copy
        # under a watermark or logo below the clean one; with --views hashing measured
        # the borders already.
        for row, share in zip((first, second), covered):
            if self.hashed.views is None:
                self.hashed.content_share[row] = min(self.hashed.content_share[row],
                                                     self._features_by_row[row].content_share)
            if share:
                self.hashed.content_share[row] = min(self.hashed.content_share[row], (1 - share) * PADDED_SHARE)
        return True

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
            if features.error:
                self.failures[path] = features.error

    def accepted_views(self, rows, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Matcher.accepted_views, where a pair beyond the hash threshold counts only when
        features verify it, and a pair the colour checks veto counts when the features
        rescued it (see overlay_rescue); either way its `how` then carries
        VERIFIED_HOW, for views_label. The planner takes the nearest of `rows`, so when one
        is within the hash threshold the others are not looked at (and count as no match);
        when none is accepted, the nearest few colour-vetoed ones get a rescue. Only files
        that the hash alone puts in other groups than `row` get this second look."""
        self.pairs()
        rows = np.asarray(rows, dtype=np.int64)
        bits, first, how = super().accepted_views(rows, row)
        within = self._hash_within(bits, how)
        near = ~within & (bits < self.rejected)
        other = self._hash_groups[rows] != self._hash_groups[row]
        bits[near & ~other] = self.rejected  # the hash's own group: walked as without features
        near = np.flatnonzero(near & other)
        if within.any():  # the nearest is taken anyway
            bits[near] = self.rejected
            return bits, first, how
        if len(near):
            verified = self._verify(rows[near], np.full(len(near), row), np.zeros(len(near), dtype=bool))
            bits[near[~verified]] = self.rejected
            how[near[verified]] += VERIFIED_HOW
        if (bits < self.rejected).any():
            return bits, first, how
        self._rescue(rows, row, bits, first, how)
        return bits, first, how

    def _rescue(self, rows: np.ndarray, row: int, bits, first, how) -> None:
        """Fill in, for the colour-vetoed pairs of `rows` with `row`, those the features
        rescued (already, or now: the nearest TRIES_PER_LINK within max_bits)."""
        whole = hamming(self.hashed.packed[rows], self.hashed.packed[row][None]).astype(np.int64)
        keys = self._pair_keys(rows, np.full(len(rows), row))
        known = np.array([key in self._rescued for key in keys], dtype=bool)
        other = self._hash_groups[rows] != self._hash_groups[row]
        tried = np.flatnonzero(~known & other & (whole <= self.hash_bits))
        tried = tried[np.argsort(whole[tried], kind="stable")][:TRIES_PER_LINK]
        if len(tried):
            rescued = tried[self._verify(rows[tried], np.full(len(tried), row), np.ones(len(tried), dtype=bool))]
            self._rescued.update((keys[index], int(whole[index])) for index in rescued.tolist())
            known[rescued] = True
        for index in np.flatnonzero(known).tolist():
            bits[index], first[index], how[index] = self._rescued[keys[index]], row, VERIFIED_HOW

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


def _near_misses(first, second, bits, within, later, count: int, per_file: int
                 ) -> tuple[_NearMisses, int, np.ndarray]:
    """The pairs not `within` (near misses, and pairs the colour checks vetoed) whose two
    files the pairs `within` the hash threshold (accepted) leave in different groups (a
    pair inside a group changes no grouping), at most `per_file` for each file and
    TRIES_PER_LINK for each two groups, nearest first; how many there were before the
    per-file cap; and each file's group by the pairs `within`. One verified pair is
    enough to join two groups, so the later attempts are only made where the earlier
    ones failed; pairs marked `later` (colour-vetoed ones, which need more to be
    accepted) come after the others of their two groups."""
    linked = np.flatnonzero(within)
    labels = component_labels(first[linked].astype(np.int64), second[linked].astype(np.int64), count)
    low, high = np.minimum(labels[first], labels[second]), np.maximum(labels[first], labels[second])
    candidates = np.flatnonzero(~within & (low != high))
    candidates = candidates[np.lexsort((bits[candidates], later[candidates], high[candidates], low[candidates]))]
    link = low[candidates].astype(np.int64) * count + high[candidates]
    attempt = np.arange(len(candidates)) - np.searchsorted(link, link)
    tried = np.flatnonzero(attempt < TRIES_PER_LINK)
    candidates, link, attempt = candidates[tried], link[tried], attempt[tried]
    order = np.lexsort((bits[candidates], later[candidates], attempt))  # every link's first try first
    taken = np.zeros(count, dtype=np.int64)
    chosen = []
    for index in order.tolist():
        a, b = int(first[candidates[index]]), int(second[candidates[index]])
        if taken[a] < per_file and taken[b] < per_file:
            taken[a] += 1
            taken[b] += 1
            chosen.append(index)
    chosen = np.array(chosen, dtype=np.int64)
    return _NearMisses(candidates[chosen], link[chosen], attempt[chosen]), len(candidates), labels
