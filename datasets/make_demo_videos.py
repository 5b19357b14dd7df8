#!/usr/bin/env python3
"""Build ``datasets/demo-videos/``: a few tiny clips for the README's video commands.

Two slideshows rendered from the demo's own originals (``datasets/demo/originals``, whose
sources and licences ``datasets/demo/LICENSES/SOURCES.md`` lists), each 6 s at 12 frames
a second and 240x136 pixels, and edited copies of the first (trimmed, letterboxed,
mirrored, cut to a sub-clip, half the size), made with ``dedup_cli.video_benchmark`` and
PyAV; ``truth.csv`` labels them (file, group, note). Small on purpose (a few hundred KB
in all): the benchmark set is made by ``benchmarks/bench_video.py`` and never committed.

    .venv/bin/python datasets/make_demo_videos.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dedup_cli import video_benchmark

HERE = Path(__file__).resolve().parent
ORIGINALS = HERE / "demo" / "originals"
TARGET = HERE / "demo-videos"
EDITS = ("trim", "letterbox", "mirror", "subclip", "resize")


def main() -> None:
    shutil.rmtree(TARGET, ignore_errors=True)
    photos = sorted(str(p) for p in ORIGINALS.glob("*.jpg"))
    first = video_benchmark.render_slideshow(photos[0:3], seconds_each=2.0, fps=12, size=(240, 136), seed=1)
    second = video_benchmark.render_slideshow(photos[3:6], seconds_each=2.0, fps=12, size=(240, 136), seed=2)
    rows = video_benchmark.make_edited_set({"walk": first}, TARGET, edits=EDITS)
    video_benchmark.write_clip(TARGET / "other.mp4", second)
    rows.append(("other.mp4", "other", "original"))
    video_benchmark.write_truth(TARGET, rows)


if __name__ == "__main__":
    main()
