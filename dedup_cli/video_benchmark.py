"""Labelled edited copies of videos, made with PyAV, for `dedup evaluate --media video`.

Sources are real clips (decoded) or videos rendered from still photos (a slideshow that
pans and zooms over each photo). Each source gets the edits named in EDITS; hard
negatives are added that a frame-by-frame matcher confuses: two different moments of one
static camera (a still scene with something moving through it) and two clips that open
with the same intro. truth.csv lists file, group and the kind of edit (`note`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


@dataclass
class Clip:
    """RGB frames (n, h, w, 3) at `fps`."""

    frames: np.ndarray
    fps: float

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


def write_clip(path: str | os.PathLike, clip: Clip, codec: str = "libx264", crf: int = 23) -> None:
    """Encode `clip` to `path` (the container follows the file name). Writes a file."""
    import av

    height, width = clip.frames.shape[1:3]
    width, height = width - width % 2, height - height % 2
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(clip.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        elif codec == "libvpx":
            stream.options = {"deadline": "realtime", "cpu-used": "8", "crf": str(crf), "b": "1M"}
        else:
            stream.bit_rate = 1_500_000
        for pixels in clip.frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels[:height, :width]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_clip(path: str | os.PathLike, width: int = 640, max_seconds: float = 12.0) -> Clip:
    """Decode a video's frames as RGB, scaled to `width` (even height), at most `max_seconds`."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 24)
        height = None
        frames = []
        for frame in container.decode(stream):
            if height is None:
                height = int(round(frame.height * width / frame.width / 2)) * 2
            frames.append(frame.to_ndarray(width=width, height=height, format="rgb24"))
            if len(frames) >= max_seconds * fps:
                break
    return Clip(np.stack(frames), fps)


def render_slideshow(photos: list[str], seconds_each: float = 3.0, fps: float = 24.0,
                     size: tuple[int, int] = (640, 360), seed: int = 0) -> Clip:
    """A video from still photos: each shown for `seconds_each` while the view slowly
    zooms and pans over it (Ken Burns), with hard cuts between photos."""
    rng = np.random.default_rng(seed)
    frames = []
    count = int(seconds_each * fps)
    for photo in photos:
        with Image.open(photo) as image:
            image = image.convert("RGB")
            image.thumbnail((size[0] * 2, size[1] * 2))
            zoom_from, zoom_to = rng.uniform(1.0, 1.15), rng.uniform(1.2, 1.45)
            pan = rng.uniform(-0.5, 0.5, size=2)
            for step in range(count):
                share = step / max(1, count - 1)
                zoom = zoom_from + (zoom_to - zoom_from) * share
                crop_w, crop_h = image.width / zoom, image.height / zoom
                centre_x = image.width / 2 + pan[0] * share * (image.width - crop_w)
                centre_y = image.height / 2 + pan[1] * share * (image.height - crop_h)
                box = (centre_x - crop_w / 2, centre_y - crop_h / 2, centre_x + crop_w / 2, centre_y + crop_h / 2)
                frames.append(np.asarray(image.resize(size, Image.BILINEAR, box=box)))
    return Clip(np.stack(frames), fps)


def render_static_camera(photo: str, seconds: float, start: float, fps: float = 24.0,
                         size: tuple[int, int] = (640, 360), seed: int = 0) -> Clip:
    """A fixed camera on one scene from `start` to `start + seconds` of its timeline: the
    photo with a few dark figures walking across it and a light noise. Two windows of one
    timeline are different videos of the same scene (a hard negative)."""
    with Image.open(photo) as image:
        background = image.convert("RGB").resize(size, Image.BILINEAR)
    rng = np.random.default_rng(seed)
    walkers = rng.uniform(0, 1, size=(6, 4))  # x0, y, speed, phase
    frames = []
    for step in range(int(seconds * fps)):
        moment = start + step / fps
        canvas = background.copy()
        draw = ImageDraw.Draw(canvas)
        for x0, y, speed, phase in walkers:
            x = ((x0 + moment * (0.03 + 0.08 * speed) + phase) % 1.2 - 0.1) * size[0]
            top = (0.35 + 0.5 * y) * size[1]
            draw.rectangle((x, top, x + size[0] * 0.05, top + size[1] * 0.2), fill=(30, 30, 40))
        noisy = np.asarray(canvas).astype(np.int16) + rng.integers(-3, 4, size=(size[1], size[0], 1))
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return Clip(np.stack(frames), fps)


def _map_frames(clip: Clip, change: Callable[[Image.Image], Image.Image]) -> Clip:
    return Clip(np.stack([np.asarray(change(Image.fromarray(f))) for f in clip.frames]), clip.fps)


def _letterbox(clip: Clip) -> Clip:
    """The picture placed in a 4:3 frame with black bars above and below (a wide clip;
    one taller than 4:3 is cut to it), unscaled."""
    height, width = clip.frames.shape[1:3]
    canvas_h = int(width * 3 / 4) // 2 * 2
    scaled_h = height if height <= canvas_h else canvas_h
    top = (canvas_h - scaled_h) // 2
    out = np.zeros((len(clip.frames), canvas_h, width, 3), dtype=np.uint8)
    out[:, top:top + scaled_h] = clip.frames[:, :scaled_h]
    return Clip(out, clip.fps)


def _watermark(image: Image.Image) -> Image.Image:
    draw = ImageDraw.Draw(image)
    w, h = image.size
    draw.rectangle((int(w * 0.68), int(h * 0.82), int(w * 0.97), int(h * 0.95)), fill=(240, 240, 240))
    draw.text((int(w * 0.7), int(h * 0.84)), "dedup 2026", fill=(20, 20, 20))
    return image


def _crop(image: Image.Image) -> Image.Image:
    w, h = image.size
    return image.crop((int(w * 0.03), int(h * 0.03), w - int(w * 0.03), h - int(h * 0.03)))


def _part(clip: Clip, start: float, stop: float) -> Clip:
    n = len(clip.frames)
    return Clip(clip.frames[int(n * start):int(n * stop)], clip.fps)


# kind of edit -> (file suffix, codec, crf, how the frames change)
EDITS: dict[str, tuple[str, str, int, Callable[[Clip], Clip]]] = {
    "reencode": (".mp4", "libx264", 35, lambda c: c),
    "resize": (".mp4", "libx264", 23, lambda c: _map_frames(c, lambda i: i.resize((i.width // 2, i.height // 2)))),
    "codec": (".avi", "mpeg4", 0, lambda c: c),
    "crop": (".mp4", "libx264", 23, lambda c: _map_frames(c, _crop)),
    "grey": (".mp4", "libx264", 23, lambda c: _map_frames(c, lambda i: i.convert("L").convert("RGB"))),
    "brightness": (".mp4", "libx264", 23,
                   lambda c: Clip(np.clip(c.frames.astype(np.int16) * 11 // 10, 0, 255).astype(np.uint8), c.fps)),
    "trim": (".mov", "libx264", 23, lambda c: _part(c, 0.1, 0.9)),
    "watermark": (".mp4", "libx264", 23, lambda c: _map_frames(c, _watermark)),
    "half_fps": (".mkv", "libx264", 23, lambda c: Clip(c.frames[::2], c.fps / 2)),
    "letterbox": (".mp4", "libx264", 23, _letterbox),
    "mirror": (".mp4", "libx264", 23, lambda c: Clip(np.ascontiguousarray(c.frames[:, :, ::-1]), c.fps)),
    "subclip": (".m4v", "libx264", 23, lambda c: _part(c, 0.3, 0.7)),
}


def make_edited_set(sources: dict[str, Clip], folder: str | os.PathLike, edits=tuple(EDITS),
                    on_file: Callable[[str], None] | None = None) -> list[tuple[str, str, str]]:
    """Write each source (`name -> Clip`) as `name.mp4` and its edits as `name_<edit>.*`
    into `folder`; returns the (file, group, kind) rows of the truth. Writes files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, clip in sources.items():
        write_clip(folder / f"{name}.mp4", clip)
        rows.append((f"{name}.mp4", name, "original"))
        for kind in edits:
            suffix, codec, crf, change = EDITS[kind]
            file = f"{name}_{kind}{suffix}"
            write_clip(folder / file, change(clip), codec, crf)
            rows.append((file, name, kind))
            if on_file:
                on_file(file)
    return rows


def make_hard_negatives(photos: list[str], folder: str | os.PathLike, seed: int = 0) -> list[tuple[str, str, str]]:
    """Two moments of one static camera, and two clips with the same intro, each its own
    group, from photos[:5] (give photos no source uses). Writes files; returns truth rows."""
    folder = Path(folder)
    rows = []
    for number, photo in enumerate(photos[:2]):
        for moment, start in enumerate((0.0, 20.0)):
            file = f"camera{number}_moment{moment}.mp4"
            write_clip(folder / file, render_static_camera(photo, 6.0, start, seed=seed + number))
            rows.append((file, f"camera{number}-moment{moment}", "different_moment"))
    intro = render_slideshow(photos[2:3], seconds_each=2.0, seed=seed)
    for number, photo in enumerate(photos[3:5]):
        rest = render_slideshow([photo], seconds_each=6.0, seed=seed + number)
        file = f"intro_clip{number}.mp4"
        write_clip(folder / file, Clip(np.concatenate([intro.frames, rest.frames]), intro.fps))
        rows.append((file, f"intro-clip{number}", "same_intro"))
    return rows


# kind -> (file suffix, WebP quality, how the frames change): what sharing a clip as an
# animation does (half size, half frame rate, Pillow's palette or lossy WebP), and a 3 s
# excerpt as GIFs are usually cut. Files of these kinds pair with their source video.
ANIMATION_EDITS: dict[str, tuple[str, int, Callable[[Clip], Clip]]] = {
    "gif": (".gif", 0, lambda c: _as_shared(c)),
    "webp": (".webp", 70, lambda c: _as_shared(c)),
    "gif_excerpt": (".gif", 0, lambda c: _as_shared(_excerpt(c))),
}
EXCERPT_SECONDS, EXCERPT_START = 3.0, 0.35


def _as_shared(clip: Clip) -> Clip:
    """Half size, every other frame: what a clip shared as an animation usually is."""
    half = _map_frames(clip, lambda i: i.resize((i.width // 2, i.height // 2)))
    return Clip(half.frames[::2], clip.fps / 2)


def _excerpt(clip: Clip) -> Clip:
    start = int(len(clip.frames) * EXCERPT_START)
    return Clip(clip.frames[start:start + int(EXCERPT_SECONDS * clip.fps)], clip.fps)


def write_animation(path: str | os.PathLike, clip: Clip, quality: int = 0) -> None:
    """`clip` as an animated GIF or WebP (the file name says which) through Pillow. Frame
    durations are whole hundredths (all a GIF stores), rounded from the frame times so
    that the animation keeps the clip's length. Writes a file."""
    ends = np.round(np.arange(1, len(clip.frames) + 1) * 100 / clip.fps).astype(int) * 10
    durations = np.diff(np.r_[0, ends]).tolist()
    images = [Image.fromarray(frame) for frame in clip.frames]
    options = {"quality": quality} if str(path).lower().endswith(".webp") else {}
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0, **options)


def make_animation_set(sources: dict[str, Clip], folder: str | os.PathLike,
                       on_file: Callable[[str], None] | None = None) -> list[tuple[str, str, str]]:
    """Each source as `name.mp4`, its ANIMATION_EDITS as `name_<kind>.gif|webp`, and as a
    hard negative its excerpt played backwards (`name_reversed.gif`, a group of its own:
    the same frames in the opposite order are another animation). Writes files; returns
    the (file, group, kind) rows of the truth."""
    folder = Path(folder)
    rows = make_edited_set(sources, folder, edits=())  # the sources themselves
    for name, clip in sources.items():
        for kind, (suffix, quality, change) in ANIMATION_EDITS.items():
            write_animation(folder / f"{name}_{kind}{suffix}", change(clip), quality)
            rows.append((f"{name}_{kind}{suffix}", name, kind))
        excerpt = _as_shared(_excerpt(clip))
        write_animation(folder / f"{name}_reversed.gif", Clip(excerpt.frames[::-1], excerpt.fps))
        rows.append((f"{name}_reversed.gif", f"{name}-reversed", "reversed"))
        if on_file:
            on_file(name)
    return rows


def write_truth(folder: str | os.PathLike, rows: list[tuple[str, str, str]]) -> Path:
    """truth.csv (file, group, note) in `folder`. Writes a file."""
    path = Path(folder) / "truth.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "group", "note"])
        writer.writerows(rows)
    return path
