"""Animated GIF and WebP as short videos: the cheap "animated?" probe, frames composited
and timed by Pillow, and delete/apply/undo/search/--media on small animations drawn in
the test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import delete_report, groups_by_name, photo, run, tree_digest
from PIL import Image, ImageDraw

from dedup_cli.fingerprint import video as fingerprint
from dedup_cli.media import animation
from dedup_cli.media import video as media
from dedup_cli.media.scan import scan_images
from dedup_cli.plan.video import video_pairs

SIDE = 64


def moving_shapes(seed: int, count: int = 20) -> list[Image.Image]:
    """`count` RGB frames: three discs crossing a smooth random background."""
    rng = np.random.default_rng(seed)
    background = photo(seed, size=(SIDE, SIDE))
    start, speed = rng.uniform(0, SIDE, size=(3, 2)), rng.uniform(-6, 6, size=(3, 2))
    colours = [tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(3)]
    frames = []
    for step in range(count):
        frame = background.copy()
        draw = ImageDraw.Draw(frame)
        for (x, y), colour in zip((start + speed * step) % SIDE, colours):  # noqa: B905
            draw.ellipse((x - 10, y - 10, x + 10, y + 10), fill=colour)
        frames.append(frame)
    return frames


def save(path: Path, frames: list[Image.Image], duration=100, **options) -> Path:
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration, loop=0, **options)
    return path


@pytest.fixture
def animations(tmp_path) -> Path:
    """An animated GIF, its lossy WebP copy and a half-size GIF copy; the same animation
    played backwards; another animation that opens on the same first frame; another
    animation; a still GIF and its PNG copy; a GIF cut off half way."""
    root = tmp_path / "animations"
    root.mkdir()
    frames, other = moving_shapes(1), moving_shapes(2)
    save(root / "clip.gif", frames)
    save(root / "clip.webp", frames, quality=80)
    save(root / "clip_small.gif", [frame.resize((SIDE // 2, SIDE // 2)) for frame in frames])
    save(root / "reversed.gif", frames[::-1])
    save(root / "same_start.gif", [frames[0], *other[1:]])
    save(root / "other.webp", moving_shapes(3), quality=80)
    still = photo(9, size=(SIDE, SIDE))
    still.save(root / "still.gif")
    still.save(root / "still.png")
    data = save(tmp_path / "whole.gif", moving_shapes(4)).read_bytes()
    (root / "broken.gif").write_bytes(data[: len(data) // 2])
    return root


def test_the_probe_reads_structure_only_and_tells_animations_from_stills(animations, tmp_path):
    assert animation.is_animated(animations / "clip.gif") and animation.is_animated(animations / "clip.webp")
    assert not animation.is_animated(animations / "still.gif")
    photo(1, size=(SIDE, SIDE)).save(tmp_path / "still.webp")
    save(tmp_path / "one_frame.webp", moving_shapes(5, count=1))
    assert not animation.is_animated(tmp_path / "still.webp") and not animation.is_animated(tmp_path / "one_frame.webp")
    # By content, not by name: a GIF saved as .webp is still an animated GIF.
    (tmp_path / "named_wrong.webp").write_bytes((animations / "clip.gif").read_bytes())
    assert animation.is_animated(tmp_path / "named_wrong.webp")
    (tmp_path / "empty.gif").write_bytes(b"")
    assert not animation.is_animated(tmp_path / "empty.gif") and not animation.is_animated(tmp_path / "missing.gif")
    scan = scan_images(animations)
    assert sorted(p.name for p in scan.videos) == ["broken.gif", "clip.gif", "clip.webp", "clip_small.gif",
                                                   "other.webp", "reversed.gif", "same_start.gif"]
    assert sorted(p.name for p in scan.files) == ["still.gif", "still.png"]


def test_frames_are_composited_timed_and_flattened_on_white(tmp_path):
    # Discs moving on a transparent canvas, each frame replacing the last (disposal 2):
    # what a browser shows is the disc alone on white.
    frames = []
    for step in range(6):
        frame = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 0))
        ImageDraw.Draw(frame).ellipse((step * 8, 10, step * 8 + 20, 30), fill=(200, 30, 30, 255))
        frames.append(frame)
    durations = [100, 100, 300, 0, 100, 100]  # 0: played as 100 ms, as browsers do
    path = save(tmp_path / "disc.gif", frames, duration=durations, disposal=2)
    sampled = animation.sample_animation(path)
    # Frames start at 0, 0.1, 0.2, 0.5, 0.6, 0.7 s; those under 0.2 s after the last looked-at one are skipped.
    assert sampled.times.tolist() == pytest.approx([0.0, 0.2, 0.5, 0.7])
    assert sampled.info.duration == pytest.approx(0.8) and (sampled.info.width, sampled.info.height) == (SIDE, SIDE)
    assert sampled.info.codec == "gif"
    for thumb, source in zip(sampled.thumbs, [frames[i] for i in (0, 2, 3, 5)]):  # noqa: B905
        on_white = Image.alpha_composite(Image.new("RGBA", source.size, "white"), source).convert("L")
        expected = 16 + np.asarray(on_white.resize(thumb.shape[::-1], Image.Resampling.BOX), float) * 219 / 255
        assert np.abs(thumb.astype(float) - expected).max() <= 6  # palette rounding only: no trail of old discs


def test_a_gif_its_webp_and_resized_copies_pair_but_not_reversed_or_same_start_animations(animations):
    names = ["clip.gif", "clip.webp", "clip_small.gif", "reversed.gif", "same_start.gif", "other.webp"]
    prints = [fingerprint.fingerprint_video(str(animations / name), fingerprint.VideoSettings(isometric=True))
              for name in names]
    assert not any(p.error for p in prints)
    pairs = sorted((names[p.first], names[p.second]) for p in video_pairs(prints, isometric=True))
    assert pairs == [("clip.gif", "clip.webp"), ("clip.gif", "clip_small.gif"), ("clip.webp", "clip_small.gif")]


def test_delete_groups_animations_as_videos_and_reports_the_broken_one(animations, tmp_path):
    result = run("delete", "--images-path", animations, "--output-path", tmp_path / "out", "--no-progress")
    assert result.exit_code == 0, result.output
    reason = "truncated or damaged image data at frame"
    assert f"Cannot decode video '{animations / 'broken.gif'}': {reason}" in result.output
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    report = json.loads((folder / "report.json").read_text())
    # The GIF is kept: as long and as large as the WebP, and more bits a second (lossless);
    # the still GIF pairs with its PNG as images do, never with the animation it opens.
    assert groups_by_name(report) == [("clip.gif", ["clip.webp", "clip_small.gif"]), ("still.png", ["still.gif"])]
    video_group = next(g for g in report["groups"] if g.get("media") == "video")
    assert [m["length_steps"] for m in video_group["keep"]] == [4]
    assert report["summary"]["videos"] == {"scanned": 7, "fingerprinted": 6, "from_cache": 0, "unreadable": 1,
                                           "groups": 1, "remove": 2}
    ((unreadable,),) = [report["unreadable"]]
    assert unreadable["path"] == str(animations / "broken.gif") and "at frame" in unreadable["reason"]


def test_a_warm_run_decodes_no_animation(animations, tmp_path, monkeypatch):
    cache = tmp_path / "cache.sqlite"
    first = delete_report(animations, tmp_path / "out", "--cache", cache, "--parallel", "n", "--media", "video")

    decoded = []

    def no_decoding(path, *args, **kwargs):
        decoded.append(Path(path).name)
        raise AssertionError(f"decoded {path} again")  # caught as that file's failure: `decoded` tells

    monkeypatch.setattr(media, "sample_frames", no_decoding)
    monkeypatch.setattr(animation, "sample_animation", no_decoding)
    second = delete_report(animations, tmp_path / "out", "--cache", cache, "--parallel", "n", "--media", "video")
    assert decoded == ["broken.gif"]  # all but the broken one come from the cache; it is tried again
    assert second["summary"]["videos"]["from_cache"] == 6
    assert groups_by_name(second) == groups_by_name(first) == [("clip.gif", ["clip.webp", "clip_small.gif"])]


def test_media_image_leaves_animations_out_and_says_so(animations, tmp_path):
    result = run("delete", "--images-path", animations, "--output-path", tmp_path / "out", "--no-progress",
                 "--media", "image")
    assert result.exit_code == 0, result.output
    note = "7 videos (7 of them animated GIF/WebP) not looked at (--media video or all to include them)"
    assert note in result.output
    assert "Scanned 2 images" in result.output and "videos:" not in result.output
    folder = max(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert groups_by_name(json.loads((folder / "report.json").read_text())) == [("still.png", ["still.gif"])]


def test_an_animation_never_pairs_with_a_still_of_its_first_frame(tmp_path):
    frames = moving_shapes(6)
    save(tmp_path / "clip.gif", frames)
    frames[0].save(tmp_path / "first_frame.png")
    frames[0].save(tmp_path / "first_frame_copy.png")
    assert groups_by_name(delete_report(tmp_path, tmp_path / "out")) == [("first_frame.png", ["first_frame_copy.png"])]


def test_apply_and_undo_move_a_duplicate_animation_and_put_it_back(animations, tmp_path):
    before = tree_digest(animations)
    report = delete_report(animations, tmp_path / "out", "--media", "video", "--safe-deletion", "n")
    assert report["summary"]["removed"] == 2
    remaining = sorted(p.name for p in animations.iterdir())
    assert "clip.webp" not in remaining and "clip_small.gif" not in remaining and "clip.gif" in remaining
    folder = max(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert run("undo", folder).exit_code == 0
    assert tree_digest(animations) == before


def test_search_with_an_animated_query_finds_its_copies(animations):
    result = run("search", "--images-path", animations, "--query", animations / "clip.webp", "--format", "json",
                 "--no-progress")
    assert result.exit_code == 0, result.output
    assert sorted(Path(m["path"]).name for m in json.loads(result.stdout)["matches"]) == ["clip.gif",
                                                                                          "clip_small.gif"]
    refused = run("search", "--images-path", animations, "--query", animations / "clip.webp", "--media", "image")
    assert refused.exit_code != 0
    assert "is an animated GIF/WebP (a short video) and --media image leaves videos out" in refused.output


def test_a_gif_and_an_mp4_made_from_it_are_one_video_and_the_gif_is_kept(tmp_path):
    pytest.importorskip("av")
    from dedup_cli.video_benchmark import Clip, write_clip

    frames = moving_shapes(7)
    save(tmp_path / "clip.gif", frames)
    write_clip(tmp_path / "clip.mp4", Clip(np.stack([np.asarray(f) for f in frames]), 10))
    # Same length and size: the GIF's far higher bitrate (it is lossless) keeps it.
    assert groups_by_name(delete_report(tmp_path, tmp_path / "out")) == [("clip.gif", ["clip.mp4"])]


def test_a_cut_off_webp_animation_is_refused_with_the_reason(tmp_path):
    data = save(tmp_path / "whole.webp", moving_shapes(8), quality=80).read_bytes()
    (tmp_path / "cut.webp").write_bytes(data[: len(data) // 3])
    assert animation.is_animated(tmp_path / "cut.webp")  # its first chunks are intact
    with pytest.raises(media.VideoError, match="damaged or truncated animation"):
        animation.sample_animation(tmp_path / "cut.webp")
    (tmp_path / "empty.webp").write_bytes(b"")
    with pytest.raises(media.VideoError, match="empty file"):
        animation.sample_animation(tmp_path / "empty.webp")


def test_one_frame_in_common_is_no_line_up_even_when_it_stands_for_half_a_short_clip():
    """Regression (bench_video.py --animations): the excerpt of a slideshow played
    backwards is its two near-still shots in swapped order; one kept frame of the first
    shot, standing for 1.75 s of a 3 s clip, matched the other's second shot alone."""
    from dedup_cli.plan.video import VideoMatchSettings, lined_up

    frames = np.array([0, 1, 1, 1, 2, 2, 2])
    short_times = np.array([0.0, 1.75, 1.75, 1.75, 2.75, 2.75, 2.75])
    long_times = np.array([1.5, 1.25, 0.75, 0.0, 0.0, 0.75, 1.25])
    distances = np.array([6, 2, 6, 12, 2, 6, 12])
    spans = np.array([1.75, 1.0, 1.0, 1.0, 0.25, 0.25, 0.25])
    settings = VideoMatchSettings().for_length(3.0)
    assert settings.offset_tolerance == pytest.approx(0.6)
    assert lined_up(frames, short_times, long_times, distances, spans, 3.0, settings, short_count=3) is None
    # A clip of one kept frame is all in that frame: it still pairs by it.
    assert lined_up(frames[:1], short_times[:1], long_times[:1], distances[:1], np.array([3.0]), 3.0, settings,
                    short_count=1) == (6, 1.0, 1.5)


def test_animations_need_no_pyav(animations, tmp_path, monkeypatch):
    import dedup_cli.pipeline as pipeline

    monkeypatch.setattr(pipeline, "av_available", lambda: False)
    monkeypatch.setitem(sys.modules, "av", None)  # importing PyAV fails, as where it is not installed
    report = delete_report(animations, tmp_path / "out", "--media", "video")
    assert groups_by_name(report) == [("clip.gif", ["clip.webp", "clip_small.gif"])]
