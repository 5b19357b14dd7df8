"""What a video file is and which of its frames a fingerprint looks at (PyAV, imported lazily).

Decoding is the cost of a video fingerprint, so a frame is only turned into pixels when
it can matter: frames closer than CHECK_GAP seconds to the last one looked at are decoded
(the codec needs them) but never scaled or copied, and non-reference frames (most
B-frames) are not decoded at all (their neighbours carry the same picture within a few
hundredths of a second). What comes out is a small grey thumbnail per looked-at frame
plus its mean chroma; the fingerprint (fingerprint/video.py) trims borders, hashes and
picks the frames to keep from these.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})
ANIMATED_EXTENSIONS = frozenset({".gif", ".webp"})  # short videos when they hold more than one frame
THUMB_SIDE = 48  # thumbnails are THUMB_SIDE x THUMB_SIDE grey (aspect squashed, as the hash's resize does)
CHECK_GAP = 0.2  # seconds: at most this many frames a second are looked at
MAX_CHECKED = 20_000  # looked-at frames per video (an hour at CHECK_GAP is 18,000)
AV_MISSING = "PyAV is not installed (pip install av, or pip install 'dedup-cli' again with its dependencies)"


class VideoError(Exception):
    """A video that cannot be used; the message is the reason shown to the user."""


@dataclass
class VideoInfo:
    """What the container says about the video stream a fingerprint is taken from."""

    duration: float = 0.0  # seconds
    width: int = 0
    height: int = 0
    bitrate: int = 0  # bits per second of the whole file (the container's figure, or size / duration)
    codec: str = ""
    fps: float = 0.0


@dataclass
class SampledFrames:
    """Looked-at frames in time order: times (s), grey thumbnails (n, side, side) and the
    mean Cb, Cr of each frame (n, 2), which tells flat frames of different colours apart."""

    info: VideoInfo
    times: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    thumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, THUMB_SIDE, THUMB_SIDE), dtype=np.uint8))
    chroma: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.uint8))


def is_video_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def av_available() -> bool:
    """True when PyAV can be imported (checked without importing FFmpeg's libraries twice)."""
    import importlib.util

    return importlib.util.find_spec("av") is not None


def sample_frames(path: str | os.PathLike) -> SampledFrames:
    """Decode `path` and return its looked-at frames (see the module docstring).

    Raises VideoError with a short reason for anything that is not a decodable video:
    an empty file, no video stream, a corrupt or truncated stream with no frame at all.
    A stream that breaks off after some frames keeps the frames decoded before the break.
    (Animated GIF and WebP files are decoded by Pillow: media/animation.py.)
    """
    try:
        import av
    except ImportError as exc:
        raise VideoError(AV_MISSING) from exc
    size = os.path.getsize(path)
    if size == 0:
        raise VideoError("empty file (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise VideoError(f"not a video FFmpeg can read ({_reason(exc)})") from exc
    with container:
        stream = _main_stream(container)
        info = _info(container, stream, size)
        times, thumbs, chroma = _decode(container, stream, av)
    if not times:
        raise VideoError("no frame could be decoded")
    return SampledFrames(info, np.array(times, dtype=np.float32), np.stack(thumbs), np.array(chroma, dtype=np.uint8))


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip().lower() or type(exc).__name__


def _main_stream(container):
    """The longest video stream that is not a cover picture (an attached MP4 poster)."""
    import av

    streams = [s for s in container.streams.video
               if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not streams:
        raise VideoError("no video stream (audio only, or only a cover picture)")
    return max(streams, key=lambda s: (s.frames or 0, s.duration or 0))


def _info(container, stream, file_size: int) -> VideoInfo:
    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    if duration <= 0 and container.duration:
        duration = container.duration / 1_000_000
    bitrate = int(container.bit_rate or 0) or (int(file_size * 8 / duration) if duration > 0 else 0)
    fps = float(stream.average_rate or 0)
    return VideoInfo(duration, int(stream.codec_context.width or 0), int(stream.codec_context.height or 0),
                     bitrate, stream.codec_context.name or "", fps)


def upright(thumb: np.ndarray, rotation: int) -> np.ndarray:
    """The thumbnail as it is shown: a phone stores a portrait video as landscape frames
    with a display matrix (PyAV's frame.rotation: degrees counterclockwise), and a
    messenger's re-encode of it has the picture turned upright in its pixels."""
    turns = int(round((rotation or 0) / 90)) % 4
    return np.ascontiguousarray(np.rot90(thumb, k=turns)) if turns else thumb.copy()


def _decode(container, stream, av) -> tuple[list, list, list]:
    """Times, thumbnails and mean chroma of the frames at least CHECK_GAP apart."""
    stream.thread_type = "AUTO"
    stream.codec_context.skip_frame = "NONREF"
    times, thumbs, chroma = [], [], []
    last = -np.inf
    start = None
    try:
        for frame in container.decode(stream):
            if frame.pts is None or frame.time_base is None:
                continue
            seconds = float(frame.pts * frame.time_base)
            start = seconds if start is None else start
            seconds -= start  # times from the first frame: containers may start anywhere
            if seconds - last < CHECK_GAP:
                continue
            last = seconds
            planes = frame.reformat(width=THUMB_SIDE, height=THUMB_SIDE, format="yuv420p",
                                    interpolation="AREA").to_ndarray()
            thumbs.append(upright(planes[:THUMB_SIDE], frame.rotation))
            # yuv420p as one array: the Y rows, then Cb and Cr each folded into side / 4 rows.
            quarter = THUMB_SIDE // 4
            chroma.append((int(planes[THUMB_SIDE:THUMB_SIDE + quarter].mean()),
                           int(planes[THUMB_SIDE + quarter:].mean())))
            times.append(seconds)
            if len(times) >= MAX_CHECKED:
                break
    except av.FFmpegError:
        # A stream that breaks off keeps what came before the break; with nothing at all
        # the caller reports the file as undecodable.
        pass
    return times, thumbs, chroma


def picture_of(path: str, width: int, height: int, decode_side: int):
    """An RGB PIL picture of an image or video file for a thumbnail that fits width x
    height: a video's middle frame (video_still), or the image decoded at a shorter side
    of at least `decode_side` (loading.load_image). Raises VideoError or UnreadableImage."""
    if is_video_name(path):
        return video_still(path, width, height).convert("RGB")
    from dedup_cli.media.loading import load_image

    return load_image(path, min_side=decode_side, mode="RGB").image


def video_still(path: str | os.PathLike, width: int, height: int):
    """A PIL RGB picture of the frame nearest the middle of the video, fitting width x
    height (for thumbnails). Raises VideoError when there is none."""
    try:
        import av
    except ImportError as exc:
        raise VideoError(AV_MISSING) from exc
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = _main_stream(container)
            middle = _info(container, stream, os.path.getsize(path)).duration / 2
            if stream.time_base and middle > 0:
                container.seek(int(middle / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                image = frame.to_image()
                image.thumbnail((width, height))
                return image
    except (av.FFmpegError, OSError) as exc:
        raise VideoError(_reason(exc)) from exc
    raise VideoError("no frame could be decoded")
