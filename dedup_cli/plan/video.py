"""When two videos are the same video, and which copy of a group to keep.

Pure: fingerprints in, pairs and plans out. Candidate pairs come from frame-hash matches
found by the search engine over every kept frame of every video (never all frames
against all frames). Then, per pair of videos, each frame of the shorter one votes for
the time offset at which its nearest frame(s) of the longer one lie (ties share a vote).
A frame votes only when its nearest match stands out (matches at other offsets are
DISTINCT_BITS farther), and a frame of the longer video counts once however many frames
of the shorter one it stands in for. The pair holds when the offset with the most
votes gathers at least `min_coverage` of the shorter video's frames: a trimmed copy, a
sub-clip, another frame rate or encode all line up at one offset, while clips of one
static scene at different moments have their
nearest frames scattered over the other clip, and two clips that share only an intro
cover only the intro's share of the shorter one. Offsets agree within OFFSET_TOLERANCE,
or a fifth of the shorter video when that is less (short animations: played backwards,
the frames of a 2 s GIF all lie within 1 s of the middle). Speed is taken as 1 (frame-rate changes
keep it; a slowed-down copy is not looked for). With --isometric each pair is also tried
with one video mirrored, and the better of the two counts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dedup_cli.search import engine


DEFAULT_FRAME_BITS = 16  # frame hashes this close (inclusive) are a frame match (calibrated: bench_video.py --sweep)
MIN_COVERAGE = 0.5  # share of the shorter video's frames that must line up
OFFSET_TOLERANCE = 1.0  # seconds: votes this close to the winning offset count for it
TOLERANCE_SHARE = 0.2  # ... and at most this share of the shorter video's duration
DISTINCT_BITS = 3  # a frame's nearest match must beat matches at other offsets by this much
MIN_SPAN, MAX_SPAN = 0.1, 2.5  # seconds a kept frame may stand for in the coverage


@dataclass(frozen=True)
class VideoMatchSettings:
    """What makes two videos one."""

    frame_bits: int = DEFAULT_FRAME_BITS
    min_coverage: float = MIN_COVERAGE
    offset_tolerance: float = OFFSET_TOLERANCE

    def for_length(self, seconds: float) -> VideoMatchSettings:
        """The settings for a pair whose shorter video lasts `seconds`: the offset
        tolerance at most TOLERANCE_SHARE of it (never under MIN_SPAN). A tolerance
        as long as the clip lets any order of its frames line up: a 2 s animation played
        backwards would pass for a copy. Videos of 5 s and more keep the full tolerance."""
        tolerance = min(self.offset_tolerance, max(MIN_SPAN, TOLERANCE_SHARE * seconds))
        return self if tolerance == self.offset_tolerance else replace(self, offset_tolerance=tolerance)

    @property
    def max_bits(self) -> int:
        """The threshold the plan and report state: a video pair's distance is the median
        frame distance of its lined-up frames, never above the frame threshold."""
        return self.frame_bits


@dataclass(frozen=True)
class VideoPair:
    """Two videos (indices into the prints, first < second) judged one video."""

    first: int
    second: int
    bits: int  # median Hamming distance of the lined-up frames
    coverage: float  # share of the shorter video's frames lined up
    offset: float  # seconds: time in the longer = time in the shorter + offset
    mirrored: bool


def packed_rows(hashes: np.ndarray) -> np.ndarray:
    """uint64 hashes as the engine's packed rows (8 bytes, first bit highest)."""
    return np.ascontiguousarray(hashes.astype(">u8")).view(np.uint8).reshape(-1, 8)


def _frame_table(prints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All kept frames of all videos: hashes, owning video, time."""
    counts = [len(p.hashes) for p in prints]
    owners = np.repeat(np.arange(len(prints)), counts)
    hashes = np.concatenate([p.hashes for p in prints]) if prints else np.zeros(0, dtype=np.uint64)
    times = np.concatenate([p.times for p in prints]) if prints else np.zeros(0, dtype=np.float32)
    return hashes.astype(np.uint64), owners, times.astype(np.float64)


def frame_spans(prints) -> np.ndarray:
    """Per kept frame (frame table order), the seconds of video it stands for: up to the
    next kept frame (the last: to the end), at most MAX_SPAN. Coverage is counted in
    these, not in frames: content sampling keeps many frames of a busy intro and few of
    a calm scene, and a shared busy intro must not look like most of a video."""
    spans = []
    for record in prints:
        ends = np.r_[record.times[1:], max(record.info.duration, float(record.times[-1]) if len(record.times) else 0)]
        spans.append(np.clip(ends - record.times, MIN_SPAN, MAX_SPAN))
    return np.concatenate(spans) if spans else np.zeros(0)


def _frame_matches(packed: np.ndarray, owners: np.ndarray, frame_bits: int, queries: np.ndarray | None = None
                   ) -> engine.Pairs:
    """Frame pairs (rows of the frame table, packed) of different videos within
    frame_bits; with `queries` (the mirrored frames, packed, in table order), the first
    frame of each pair is taken from them."""
    from dedup_cli.search import engine  # numba: loaded only when there are videos

    found = engine.pairs_within(packed, frame_bits) if queries is None else engine.cross_pairs(queries, packed,
                                                                                                 frame_bits)
    other = owners[found.first] != owners[found.second]
    return engine.Pairs(found.first[other], found.second[other], found.distances[other])


def video_pairs(prints, settings: VideoMatchSettings = VideoMatchSettings(), isometric: bool = False
                ) -> list[VideoPair]:
    """Every pair of videos that the rule of the module docstring calls one video."""
    if len(prints) < 2:
        return []
    hashes, owners, times = _frame_table(prints)
    table = _Table(prints, owners, times)
    packed = packed_rows(hashes)  # once, for every orientation
    best: dict[tuple[int, int], VideoPair] = {}
    orientations = [False, True] if isometric and all(p.mirrored is not None for p in prints) else [False]
    for mirrored in orientations:
        queries = packed_rows(np.concatenate([p.mirrored for p in prints])) if mirrored else None
        matches = _frame_matches(packed, owners, settings.frame_bits, queries)
        for first, second, verdict in _judge(matches, table, settings):
            if verdict is None:
                continue
            pair = VideoPair(first, second, *verdict, mirrored)
            if (first, second) not in best or best[first, second].coverage < pair.coverage:
                best[first, second] = pair
    return [best[key] for key in sorted(best)]


def query_pairs(query, prints, settings: VideoMatchSettings = VideoMatchSettings(), isometric: bool = False
                ) -> list[VideoPair]:
    """The videos of `prints` that are one video with `query` (a print from outside):
    only the query's frames are looked up (the engine's cross search), under the rule of
    video_pairs. In each pair, `first` is the index in `prints` and `second` is len(prints)."""
    return query_pairs_many([query], prints, settings, isometric)[0]


def query_pairs_many(queries, prints, settings: VideoMatchSettings = VideoMatchSettings(), isometric: bool = False
                     ) -> list[list[VideoPair]]:
    """query_pairs of each of `queries`, from one frame table and one cross search of all
    their frames (per turn) instead of one of each per query: a folder of query videos
    against a library costs one index of the library's frames, not one per query. The
    queries are never compared with each other."""
    from dedup_cli.search import engine

    everything = [*prints, *queries]
    hashes, owners, times = _frame_table(everything)
    table = _Table(everything, owners, times)
    packed = packed_rows(hashes)
    base = sum(len(record.hashes) for record in prints)
    starts = base + np.cumsum([0, *(len(query.hashes) for query in queries)])
    best: list[dict[int, VideoPair]] = [{} for _ in queries]
    for mirrored in (False, True) if isometric else (False,):
        turned = [(number, query.mirrored if mirrored else query.hashes) for number, query in enumerate(queries)]
        turned = [(number, frames) for number, frames in turned if frames is not None and len(frames)]
        if not turned:
            continue
        rows = np.concatenate([np.arange(starts[number], starts[number + 1]) for number, _ in turned])
        found = engine.cross_pairs(packed_rows(np.concatenate([frames for _, frames in turned])), packed[:base],
                                   settings.frame_bits)
        matches = engine.Pairs(rows[found.first], found.second, found.distances)
        for first, second, verdict in _judge(matches, table, settings):
            kept = best[second - len(prints)]
            if verdict is not None and (first not in kept or kept[first].coverage < verdict[1]):
                kept[first] = VideoPair(first, len(prints), *verdict, mirrored)
    return [[kept[key] for key in sorted(kept)] for kept in best]


class _Table:
    """The frame table's columns that the judging reads, and per video its frame count,
    duration and the seconds its frames stand for."""

    def __init__(self, prints, owners, times):
        self.owners, self.times = owners, times
        self.spans = frame_spans(prints)
        self.frame_counts = np.array([len(p.hashes) for p in prints])
        self.durations = np.array([p.info.duration for p in prints])
        self.covered = np.bincount(owners, weights=self.spans, minlength=len(prints))


def _judge(matches: engine.Pairs, table: _Table, settings):
    """(first video, second video, verdict or None) per pair of videos with frame matches."""
    if not len(matches.first):
        return
    owners, times, durations, frame_counts = table.owners, table.times, table.durations, table.frame_counts
    video_a, video_b = owners[matches.first], owners[matches.second]
    # The shorter video (fewer frames on equal durations) is the one whose frames vote.
    a_shorter = np.where(durations[video_a] == durations[video_b], frame_counts[video_a] <= frame_counts[video_b],
                         durations[video_a] < durations[video_b])
    short_frame = np.where(a_shorter, matches.first, matches.second)
    long_frame = np.where(a_shorter, matches.second, matches.first)
    low, high = np.minimum(video_a, video_b), np.maximum(video_a, video_b)
    order = np.lexsort((matches.distances, short_frame, high, low))
    low, high, short_frame, long_frame = low[order], high[order], short_frame[order], long_frame[order]
    distances = matches.distances[order].astype(np.int64)
    starts = np.flatnonzero(np.r_[True, (low[1:] != low[:-1]) | (high[1:] != high[:-1]), True])
    for start, stop in zip(starts[:-1], starts[1:]):  # noqa: B905
        shorter = owners[short_frame[start]]
        frames = short_frame[start:stop]
        verdict = lined_up(frames, times[frames], times[long_frame[start:stop]], distances[start:stop],
                           table.spans[frames], float(table.covered[shorter]),
                           settings.for_length(float(durations[shorter])), int(frame_counts[shorter]))
        yield int(low[start]), int(high[start]), verdict


def lined_up(short_frames, short_times, long_times, distances, spans, short_total: float,
             settings: VideoMatchSettings, short_count: int = 2):
    """(bits, coverage, offset) when the frame matches of one pair of videos line up at
    one offset for at least min_coverage of the shorter video's seconds (`short_total`,
    the sum of its frames' `spans`), in at least two of its frames unless it has only
    one (`short_count` kept frames), else None. The matches come sorted by short frame,
    then distance."""
    if short_total <= 0:
        return None
    first_of_frame = np.r_[True, short_frames[1:] != short_frames[:-1]]
    group = np.cumsum(first_of_frame) - 1
    nearest = np.flatnonzero(first_of_frame)[group]
    all_offsets = long_times - short_times
    # A frame votes only when its nearest match stands out: no match at a clearly other
    # offset comes within DISTINCT_BITS of it. In a still scene every moment looks like
    # every other, and a copy is told from another moment by being much nearer.
    rival = ((np.abs(all_offsets - all_offsets[nearest]) > 2 * settings.offset_tolerance)
             & (distances < distances[nearest] + DISTINCT_BITS))
    distinct = np.bincount(group, weights=rival)[group] == 0
    best = (distances == distances[nearest]) & distinct  # each frame's nearest matches, ties included
    frames, offsets, bits = short_frames[best], all_offsets[best], distances[best]
    if not len(frames):
        return None
    targets = long_times[best]
    which = np.unique(frames, return_inverse=True)[1]
    weights = spans[best] / np.bincount(which)[which]
    order = np.argsort(offsets, kind="stable")
    offsets, weights, bits, targets, frames = offsets[order], weights[order], bits[order], targets[order], frames[order]
    cumulative = np.r_[0.0, np.cumsum(weights)]
    ends = np.searchsorted(offsets, offsets + 2 * settings.offset_tolerance, side="right")
    votes = cumulative[ends] - cumulative[np.arange(len(offsets))]
    start = int(np.argmax(votes))
    window = slice(start, int(ends[start]))
    lined = len(np.unique(frames[window]))
    if lined < 2 and short_count > 1:
        # One frame is a picture in common, not a line-up: in a short clip of few kept
        # frames it can stand for half the clip (two shots in swapped order would pass).
        return None
    # One frame of the longer video standing in for many of the shorter one is a still
    # picture that looks like several moments, not a line-up: each counts once.
    one_to_one = min(1.0, len(np.unique(targets[window])) / lined)
    coverage = float(votes[start]) * one_to_one / short_total
    if coverage < settings.min_coverage:
        return None
    offset = float(np.median(offsets[window]))
    return int(np.median(bits[window])), round(coverage, 4), round(offset, 3)


class VideoMatcher:
    """The video pairs of one collection behind the interface grouping.make_plan uses
    (found_pairs, pairs(), distances(), settings.max_bits), so that videos are grouped
    and planned by the same code as images."""

    walks_in_batches = False  # the planner asks distances() file by file

    def __init__(self, pairs: list[VideoPair], settings: VideoMatchSettings):
        self.settings = settings
        self.video_pairs = pairs
        self.rejected = 65  # more than any 64-bit distance
        self._bits = {(p.first, p.second): p.bits for p in pairs}

    @property
    def found_pairs(self) -> bool:
        return True

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        as_array = np.array([(p.first, p.second, p.bits) for p in self.video_pairs], dtype=np.int64).reshape(-1, 3)
        return as_array[:, 0], as_array[:, 1], as_array[:, 2]

    def distances(self, rows, row: int) -> np.ndarray:
        """The pair distance from each of `rows` to `row`; pairs that are not one video
        get `rejected`."""
        return np.array([self._bits.get((min(r, row), max(r, row)), self.rejected) for r in rows], dtype=np.int64)


def video_keep_order(prints):
    """A keep order (grouping.keep_order's signature) for videos: the longer video first
    (in DURATION_STEP steps, so that re-encodes a frame apart tie), since removing a
    longer copy because of a shorter one would lose footage; then the policy's own
    criterion, where 'resolution' means most pixels of picture (letterbox bars left
    out), then the higher bitrate; then file size, age and path, as for images."""
    # The policy's criteria, in order, from (pixels, bitrate, size, age) negated as sort keys.
    policies = {
        "resolution": lambda pixels, bitrate, size, age: (pixels, bitrate, size, age),
        "size": lambda pixels, bitrate, size, age: (size, pixels, bitrate, age),
        "oldest": lambda pixels, bitrate, size, age: (age, pixels, bitrate, size),
        "newest": lambda pixels, bitrate, size, age: (-age, pixels, bitrate, size),
        "path": lambda pixels, bitrate, size, age: (),
    }

    def order(rows, hashed, policy: str, reference=None) -> list[int]:
        criteria = policies[policy]

        def key(row):
            record = prints[row]
            first = 0 if reference is not None and reference[row] else 1
            size, age, path = -int(hashed.size[row]), int(hashed.mtime_ns[row]), hashed.paths[row]
            return (first, -record.length_steps, *criteria(-record.content_pixels, -record.info.bitrate, size, age),
                    path)

        return sorted(rows, key=key)

    return order


def video_rows(videos, images, settings: VideoMatchSettings, mirror: bool):
    """The videos of a collection as rows to follow `images`' (a HashedFiles; a video is
    placed by its middle kept frame's hash), their pairs under the video rule, and the
    matcher that plans them: what delete and show both start from."""
    from dedup_cli.fingerprint.video import as_hashed_files

    rows = as_hashed_files(videos, images.settings, max(images.packed.shape[1], 8))
    pairs = video_pairs(videos.prints, settings, mirror)
    return rows, pairs, VideoMatcher(pairs, settings)
