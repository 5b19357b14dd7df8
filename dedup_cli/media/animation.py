"""Animated GIF and WebP as short videos: which files are animated, and their frames (Pillow).

FFmpeg cannot decode animated WebP, so both formats go through Pillow, which gives every
frame composited on the canvas (GIF disposal and partial frames applied) and its
duration. The frames come out as media/video.py's SampledFrames (the same CHECK_GAP
sampling, thumbnail size and luma range as FFmpeg's), so the fingerprint, cache, pair
rule and keep policy of videos apply to them unchanged. A file with one frame is a
still image and never comes here.
"""

from __future__ import annotations

import os
import struct
import warnings

import numpy as np
from PIL import Image

from dedup_cli.media.loading import describe_error, flatten_transparency
from dedup_cli.media.video import (
    ANIMATED_EXTENSIONS,
    CHECK_GAP,
    MAX_CHECKED,
    THUMB_SIDE,
    SampledFrames,
    VideoError,
    VideoInfo,
)

# Browsers and FFmpeg's GIF reader play a frame delay under 20 ms as 100 ms (many GIFs
# store 0): what the viewer sees is what the times mean.
MIN_DURATION_MS, DEFAULT_DURATION_MS = 20, 100
_WEBP_HEADER = 12  # "RIFF", size, "WEBP"
_CHECK_GAP_MS = round(CHECK_GAP * 1000)


def is_animation_name(name: str | os.PathLike) -> bool:
    return os.path.splitext(str(name))[1].lower() in ANIMATED_EXTENSIONS


def is_animated(path: str | os.PathLike) -> bool:
    """True when a GIF or WebP file (told by its first bytes, whatever its name) holds
    more than one frame. Reads only the file's structure, never a frame's pixels: a GIF's
    blocks up to its second image, a WebP's chunk headers up to its second ANMF. A file
    that cannot be read is not animated here (the image loader then says why)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_WEBP_HEADER)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _webp_frames_at_least(handle, 2)
        if head[:4] == b"GIF8":
            with Image.open(path) as img:
                return bool(img.format == "GIF" and img.is_animated)  # skips frame data, decodes nothing
    except Exception:  # any damage: left to the image loader, which names it
        return False
    return False


def _webp_frames_at_least(handle, wanted: int) -> bool:
    """Walk the RIFF chunks after the header (seeking over payloads) until `wanted`
    animation frames (ANMF chunks) are seen."""
    found = 0
    while found < wanted:
        header = handle.read(8)
        if len(header) < 8:
            return False
        kind, size = header[:4], struct.unpack("<I", header[4:])[0]
        found += kind == b"ANMF"
        handle.seek(size + (size & 1), os.SEEK_CUR)
    return True


def sample_animation(path: str | os.PathLike) -> SampledFrames:
    """The looked-at frames of an animated GIF or WebP, as media/video.sample_frames gives
    them for a video: times from the frame durations, from 0 at the first frame.

    Raises VideoError with the reason for a file that is not a readable animation,
    including one that breaks off part way (a truncated download): a damaged file is
    reported, never fingerprinted from the frames before the damage.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise VideoError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", message="Palette images with Transparency")
            with Image.open(path) as img:
                return _sample(img, size)
    except VideoError:
        raise
    except Exception as exc:  # Pillow raises many types; each one is this file's failure
        raise VideoError(_reason(exc)) from exc


def _reason(exc: Exception) -> str:
    """describe_error's reason, saying what a bare decoder error means for a file that
    opened as GIF or WebP (libwebp refuses a cut-off animation with "could not create
    decoder object")."""
    reason = describe_error(exc)
    if reason.startswith(("OSError", "ValueError", "SyntaxError")):
        return f"damaged or truncated animation ({reason})"
    return reason


def _sample(img: Image.Image, file_size: int) -> SampledFrames:
    frame_count = int(getattr(img, "n_frames", 1) or 1)
    times, thumbs, chroma = [], [], []
    elapsed_ms, last_ms = 0, None  # whole milliseconds, as the files store them: no rounding drift
    for index in range(frame_count):
        try:
            img.seek(index)
            img.load()
        except Exception as exc:
            # (frame_count is what the file holds up to the damage: not worth stating)
            raise VideoError(f"{_reason(exc)} at frame {index + 1}") from exc
        start_ms = elapsed_ms
        duration = int(img.info.get("duration") or 0)
        elapsed_ms += duration if duration >= MIN_DURATION_MS else DEFAULT_DURATION_MS
        if (last_ms is not None and start_ms - last_ms < _CHECK_GAP_MS) or len(times) >= MAX_CHECKED:
            continue  # decoded (the next frame is drawn over it) but not looked at
        last_ms = start_ms
        thumb, frame_chroma = _thumbnail(img)
        times.append(start_ms / 1000)
        thumbs.append(thumb)
        chroma.append(frame_chroma)
    duration_s = elapsed_ms / 1000
    width, height = img.size
    info = VideoInfo(duration_s, width, height, int(file_size * 8 / duration_s), (img.format or "").lower(),
                     round(frame_count / duration_s, 3))
    return SampledFrames(info, np.array(times, dtype=np.float32), np.stack(thumbs), np.array(chroma, dtype=np.uint8))


def _thumbnail(frame: Image.Image) -> tuple[np.ndarray, tuple[int, int]]:
    """The composited frame shrunk to THUMB_SIDE square by area (as FFmpeg's AREA does
    for videos), transparency flattened as for images; its luma in the limited range
    (16-235) a video's Y plane has, and its mean Cb, Cr."""
    small = frame.convert("RGBA").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
    planes = np.asarray(flatten_transparency(small).convert("YCbCr"), dtype=np.float32)
    luma = np.rint(16 + planes[..., 0] * (219 / 255)).astype(np.uint8)
    return luma, (int(planes[..., 1].mean()), int(planes[..., 2].mean()))
