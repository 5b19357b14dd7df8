"""A video's fingerprint: 64-bit pHashes of frames picked by time and by content, borders trimmed.

From the looked-at frames of media/video.py: black, flat and letterbox borders are found
once per video (rows and columns that stay flat in every frame, from the edges inward)
and cut away, so a letterboxed or pillarboxed copy hashes the same picture; frames that
are flat after the cut (black, a fade, a colour card) get no hash (they match anything
of their brightness). Of the rest a frame is kept when its hash differs from the last
kept one by CHANGE_BITS or more (a scene change, motion) or MAX_GAP seconds have passed.
So the kept frames follow the content, not the clock: a copy trimmed by 1.3 s or played
at half the frame rate still has a kept frame near every kept frame of the original.

The hash is a DCT hash as imagehash's phash computes it (32x32 grey, 8x8 lowest
frequencies against their median), done on all frames of a video at once in numpy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dedup_cli.media import animation
from dedup_cli.media import video as media
from dedup_cli.media.loading import content_digest

FINGERPRINT_VERSION = "v3"  # part of the cache key: bump when frames or hashes change
HASH_SIDE = 32  # pixels per side the DCT sees
LOW_SIDE = 8  # lowest frequencies kept: 64 bits
CHANGE_BITS = 8  # a frame this far from the last kept one is kept (content changed)
MAX_GAP = 2.0  # seconds: a frame is kept at least this often even in a still scene
FLAT_STD = 4.0  # grey levels: a frame (after the border cut) with less spread is flat
BORDER_STD = 6.0  # a row or column whose spread stays under this in every frame is border
MAX_BORDER = 0.3  # at most this share of the height (width) is cut on each side
DURATION_STEP = 0.5  # seconds: durations are compared in steps of this much (re-encodes a frame apart tie)


@dataclass(frozen=True)
class VideoSettings:
    """How videos are fingerprinted; part of the cache key."""

    isometric: bool = False  # also hash the mirror image of every kept frame

    @property
    def key(self) -> str:
        return f"{FINGERPRINT_VERSION}{'-mirror' if self.isometric else ''}"


@dataclass
class VideoPrint:
    """One video's fingerprint: kept frames' hashes (uint64) and times (s), in time order."""

    path: str
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    times: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    mirrored: np.ndarray | None = None  # isometric: the hashes of the mirrored frames
    info: media.VideoInfo = field(default_factory=media.VideoInfo)
    flat_frames: int = 0  # looked-at frames without content (not hashed)
    digest: bytes = b""
    error: str = ""
    content_share: float = 1.0  # of the frame's area, the part inside the borders cut

    @property
    def length_steps(self) -> int:
        """The duration in DURATION_STEPs: what "longer" means when choosing the copy to keep."""
        return max(1, int(round(self.info.duration / DURATION_STEP)))

    @property
    def content_pixels(self) -> int:
        """Pixels of picture, bars left out: what "higher resolution" means for a video."""
        return int(self.info.width * self.info.height * self.content_share)

    @property
    def representative(self) -> int:
        """The hash of the middle kept frame (0 for a video of flat frames only): the one
        hash that reports and the review page show for the video."""
        return int(self.hashes[len(self.hashes) // 2]) if len(self.hashes) else 0


def _dct_matrix(side: int) -> np.ndarray:
    """Rows are the DCT-II basis vectors (unnormalised, as scipy's dct(type=2) computes)."""
    k = np.arange(side)[:, None]
    n = np.arange(side)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * side))


_DCT = _dct_matrix(HASH_SIDE)[:LOW_SIDE]
_BIT_WEIGHTS = (np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64))


def frame_hashes(pixels: np.ndarray) -> np.ndarray:
    """64-bit DCT hashes (uint64, first bit highest) of grey frames (n, 32, 32)."""
    if not len(pixels):
        return np.zeros(0, dtype=np.uint64)
    low = np.einsum("ij,njk,lk->nil", _DCT, pixels.astype(np.float64), _DCT).reshape(len(pixels), -1)
    bits = low > np.median(low, axis=1, keepdims=True)
    return (bits.astype(np.uint64) * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint64)


def content_box(thumbs: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the part of the frames that is not border: rows and
    columns flat in every frame are cut from each edge inward, at most MAX_BORDER."""
    row_spread = thumbs.std(axis=2).max(axis=0)
    column_spread = thumbs.std(axis=1).max(axis=0)
    side = thumbs.shape[1]
    limit = int(side * MAX_BORDER)

    def inward(spread: np.ndarray) -> int:
        flat = spread[:limit] < BORDER_STD
        return int(np.argmin(flat)) if not flat.all() else limit

    top, bottom = inward(row_spread), side - inward(row_spread[::-1])
    return top, bottom, inward(column_spread), side - inward(column_spread[::-1])


def _resized(thumbs: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The box of every thumbnail resized to HASH_SIDE square (bilinear, all frames at once)."""
    top, bottom, left, right = box
    crop = thumbs[:, top:bottom, left:right].astype(np.float32)
    rows = np.linspace(0, crop.shape[1] - 1, HASH_SIDE)
    columns = np.linspace(0, crop.shape[2] - 1, HASH_SIDE)
    r0 = np.floor(rows).astype(int)
    c0 = np.floor(columns).astype(int)
    r1, c1 = np.minimum(r0 + 1, crop.shape[1] - 1), np.minimum(c0 + 1, crop.shape[2] - 1)
    fr, fc = (rows - r0)[None, :, None], (columns - c0)[None, None, :]
    top_row = crop[:, r0][:, :, c0] * (1 - fc) + crop[:, r0][:, :, c1] * fc
    bottom_row = crop[:, r1][:, :, c0] * (1 - fc) + crop[:, r1][:, :, c1] * fc
    return top_row * (1 - fr) + bottom_row * fr


def _content_share(box: tuple[int, int, int, int], side: int) -> float:
    """The share of the frame inside the borders, a little under rather than over: the
    thumbnail row (column) next to a cut border mixes bar and picture, so it is counted
    as bar. A letterboxed copy then never outranks the same picture without bars."""
    top, bottom, left, right = box
    height = bottom - top - (top > 0) - (bottom < side)
    width = right - left - (left > 0) - (right < side)
    return max(height, 1) * max(width, 1) / float(side * side)


def keep_frames(hashes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Indices of the frames to keep: the first, then each one CHANGE_BITS or more from the
    last kept one or MAX_GAP seconds after it."""
    kept: list[int] = []
    for index in range(len(hashes)):
        if (not kept or times[index] - times[kept[-1]] >= MAX_GAP
                or int(np.bitwise_count(hashes[index] ^ hashes[kept[-1]])) >= CHANGE_BITS):
            kept.append(index)
    return np.array(kept, dtype=np.int64)


def fingerprint_frames(path: str, sampled: media.SampledFrames, settings: VideoSettings) -> VideoPrint:
    """The fingerprint of decoded frames (pure: no file is read)."""
    box = content_box(sampled.thumbs)
    pixels = _resized(sampled.thumbs, box)
    content = pixels.reshape(len(pixels), -1).std(axis=1) >= FLAT_STD
    rows = np.flatnonzero(content)
    hashes = frame_hashes(pixels[rows])
    kept = keep_frames(hashes, sampled.times[rows])
    mirrored = frame_hashes(pixels[rows[kept], :, ::-1]) if settings.isometric else None
    share = _content_share(box, sampled.thumbs.shape[1])
    return VideoPrint(path, hashes[kept], sampled.times[rows[kept]].astype(np.float32), mirrored, sampled.info,
                      flat_frames=int(len(pixels) - len(rows)), content_share=round(share, 4))


def fingerprint_video(path: str, settings: VideoSettings) -> VideoPrint:
    """Decode and fingerprint one video; a failure comes back as a VideoPrint with `error`."""
    try:
        digest = content_digest(path)
        # Animated GIF and WebP: Pillow's frames (FFmpeg cannot decode animated WebP).
        sampled = animation.sample_animation(path) if animation.is_animation_name(path) else media.sample_frames(path)
        record = fingerprint_frames(path, sampled, settings)
    except OSError as exc:
        return VideoPrint(path, error=(exc.strerror or str(exc)).lower())
    except media.VideoError as exc:
        return VideoPrint(path, error=str(exc))
    except Exception as exc:  # one odd file is one file's failure, never the run's
        return VideoPrint(path, error=f"video decoding failed: {type(exc).__name__}: {exc}")
    record.digest = digest
    return record


def _fingerprint_batch(batch: tuple[list[str], VideoSettings]) -> list[VideoPrint]:
    paths, settings = batch
    return [fingerprint_video(path, settings) for path in paths]


@dataclass
class VideoCollection:
    """Fingerprints of the videos of a collection, in path order, and those that failed."""

    prints: list[VideoPrint] = field(default_factory=list)
    stats: list = field(default_factory=list)  # hashing.FileStat per print
    failures: list[tuple[str, str]] = field(default_factory=list)
    from_cache: int = 0


def fingerprint_collection(paths: Sequence[str | os.PathLike], settings: VideoSettings, workers: int = 1,
                           cache=None, on_progress: Callable[[int], None] | None = None) -> VideoCollection:
    """Fingerprint every video (from `cache` when size and mtime match), one video per task
    over `workers` processes (a video is seconds of work, so batches of one balance best)."""
    from dedup_cli.fingerprint.hashing import gather_batches, stat_files, worker_pool

    stats, failures = stat_files(str(p) for p in paths)
    cached = cache.lookup_videos(stats, settings) if cache is not None else {}
    if on_progress and cached:
        on_progress(len(cached))
    to_do = [stat.path for stat in stats if stat.path not in cached]
    batches = [([path], settings) for path in to_do]
    with worker_pool(min(workers, len(batches)) if len(batches) > 1 else 1) as pool:
        records = gather_batches(pool.map(_fingerprint_batch, batches), [], on_progress)
    fresh: dict[str, VideoPrint] = {record.path: record for record in records}
    if cache is not None:
        cache.store_videos([(stat, fresh[stat.path]) for stat in stats
                            if stat.path in fresh and not fresh[stat.path].error], settings)
    result = VideoCollection(failures=list(failures), from_cache=len(cached))
    for stat in stats:
        record = cached.get(stat.path) or fresh[stat.path]
        if record.error:
            result.failures.append((stat.path, record.error))
            continue
        result.prints.append(record)
        result.stats.append(stat)
    result.failures.sort()
    return result


def as_hashed_files(videos: VideoCollection, settings, n_bytes: int):
    """The videos as rows of a hashing.HashedFiles (hash: the representative frame's, in
    `n_bytes`, zero-padded), so that grouping, reports and actions treat a video as a
    file like any other. No colour signature (zeros): videos have their own keep order
    and pair rule (plan/video.py) and never meet the image checks. The length in
    DURATION_STEPs stands in the facts' frame count, so that the planner's rule "never
    removed because of a file with fewer frames" keeps a video from being removed
    because of a shorter one (a sub-clip in a reference folder, say)."""
    from dedup_cli.fingerprint.hashing import HashedFiles

    count = len(videos.prints)
    packed = np.zeros((count, n_bytes), dtype=np.uint8)
    for row, record in enumerate(videos.prints):
        packed[row, :8] = np.frombuffer(np.array([record.representative], dtype=">u8").tobytes(), dtype=np.uint8)
    stats = videos.stats
    hashed = HashedFiles(
        settings=settings,
        paths=[record.path for record in videos.prints],
        packed=packed,
        width=np.array([record.info.width for record in videos.prints], dtype=np.int64),
        height=np.array([record.info.height for record in videos.prints], dtype=np.int64),
        size=np.array([stat.size for stat in stats], dtype=np.int64),
        mtime_ns=np.array([stat.mtime_ns for stat in stats], dtype=np.int64),
        digest=np.array([np.frombuffer(record.digest, dtype=np.uint8) for record in videos.prints],
                        dtype=np.uint8).reshape(count, -1),
        facts=np.array([(0, 8, 0, record.length_steps) for record in videos.prints], dtype=np.int32).reshape(-1, 4),
        failures=list(videos.failures),
        from_cache=videos.from_cache,
    )
    hashed.colour = np.zeros((count, hashed.colour.shape[1]), dtype=np.uint8)
    return hashed
