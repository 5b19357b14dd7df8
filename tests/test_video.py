"""Videos: frame hashes, border trimming, the pair rule, and delete/apply/undo/evaluate on
small clips encoded in the test with PyAV."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import BENCH, delete_report, groups_by_name, photo, run, tree_digest
from PIL import Image

pytest.importorskip("av")

from dedup_cli.fingerprint import video as fingerprint  # noqa: E402
from dedup_cli.media import video as media  # noqa: E402
from dedup_cli.plan.video import video_pairs  # noqa: E402
from dedup_cli.present.review import THUMB_SIDE  # noqa: E402
from dedup_cli.video_benchmark import Clip, render_static_camera, write_clip  # noqa: E402

FPS = 12
SIZE = (160, 96)


def scenes(seed: int, seconds: float, scene_seconds: float = 1.0) -> Clip:
    """A clip of `seconds` made of scenes (a smooth random picture each) that the camera
    pans across, a cut every `scene_seconds`: distinct content a hash can follow."""
    frames = []
    per_scene = int(scene_seconds * FPS)
    for step in range(int(seconds * FPS)):
        scene = photo(seed * 100 + step // per_scene, size=(SIZE[0] * 2, SIZE[1] * 2))
        shift = int((step % per_scene) * SIZE[0] / (2 * per_scene))
        frames.append(np.asarray(scene)[: SIZE[1], shift : shift + SIZE[0]])
    return Clip(np.stack(frames), FPS)


@pytest.fixture
def clips(tmp_path) -> Path:
    """An 8 s original, its 40% sub-clip at another resolution, a re-encode with a
    letterbox, an unrelated clip, and two files that are no video."""
    root = tmp_path / "videos"
    root.mkdir()
    original = scenes(1, 8.0)
    write_clip(root / "original.mp4", original)
    part = original.frames[int(0.3 * len(original.frames)) : int(0.7 * len(original.frames))]
    sharper = np.stack([np.asarray(Image.fromarray(f).resize((320, 192))) for f in part])
    write_clip(root / "subclip.mov", Clip(sharper, FPS))
    boxed = np.zeros((len(original.frames), 128, SIZE[0], 3), dtype=np.uint8)
    boxed[:, 16:112] = original.frames
    write_clip(root / "letterboxed.mkv", Clip(boxed, FPS), crf=30)
    write_clip(root / "other.mp4", scenes(2, 6.0))
    (root / "garbage.mp4").write_bytes(b"this is not a video" * 100)
    data = (root / "original.mp4").read_bytes()
    (root / "truncated.avi").write_bytes(data[: len(data) // 40])
    return root


def test_frame_hashes_equal_imagehash_phash_on_the_same_pixels():
    import imagehash

    rng = np.random.default_rng(3)
    for _ in range(5):
        pixels = np.asarray(photo(int(rng.integers(1000)), size=(32, 32)).convert("L"))
        ours = fingerprint.frame_hashes(pixels[None].astype(np.float64))[0]
        theirs = imagehash.phash(Image.fromarray(pixels), hash_size=8)
        assert f"{int(ours):016x}" == str(theirs)


def test_content_box_cuts_letterbox_bars_and_keeps_a_full_frame():
    frames = np.random.default_rng(0).integers(0, 255, size=(4, 48, 48)).astype(np.uint8)
    assert fingerprint.content_box(frames) == (0, 48, 0, 48)
    boxed = frames.copy()
    boxed[:, :6] = 0
    boxed[:, 42:] = 16
    assert fingerprint.content_box(boxed) == (6, 42, 0, 48)


def test_sub_clip_and_letterboxed_copy_pair_with_the_original_and_the_longer_video_is_kept(clips, tmp_path):
    report = delete_report(clips, tmp_path / "out")
    assert groups_by_name(report) == [("original.mp4", ["letterboxed.mkv", "subclip.mov"])]
    assert report["groups"][0]["media"] == "video"
    # The sub-clip has 4x the pixels, but keeping it would lose 60% of the footage.
    assert report["summary"]["videos"] == {"scanned": 6, "fingerprinted": 4, "from_cache": 0, "unreadable": 2,
                                           "groups": 1, "remove": 2}


def test_undecodable_videos_are_reported_with_the_reason_and_the_run_goes_on(clips, tmp_path):
    result = run("delete", "--images-path", clips, "--output-path", tmp_path / "out", "--no-progress")
    assert result.exit_code == 0
    assert f"Cannot decode video '{clips / 'garbage.mp4'}': not a video FFmpeg can read" in result.output
    assert f"Cannot decode video '{clips / 'truncated.avi'}'" in result.output
    assert "2 groups" not in result.output and "1 groups of the same video, 2 to remove" in result.output


def test_a_second_run_decodes_no_video(clips, tmp_path, monkeypatch):
    cache = tmp_path / "cache.sqlite"
    first = delete_report(clips, tmp_path / "out", "--cache", cache, "--parallel", "n")

    def no_decoding(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(media, "sample_frames", no_decoding)
    second = delete_report(clips, tmp_path / "out", "--cache", cache, "--parallel", "n")
    assert second["summary"]["videos"]["from_cache"] == 4
    assert groups_by_name(second) == groups_by_name(first)


def test_different_moments_of_one_static_camera_do_not_pair(tmp_path):
    scene = tmp_path / "scene.png"
    photo(7, size=(320, 192)).save(scene)
    prints = []
    for number, start in enumerate((0.0, 20.0)):
        path = tmp_path / f"moment{number}.mp4"
        write_clip(path, render_static_camera(str(scene), 5.0, start, fps=FPS, size=SIZE, seed=1))
        prints.append(fingerprint.fingerprint_video(str(path), fingerprint.VideoSettings()))
    copy = tmp_path / "copy.mp4"
    write_clip(copy, render_static_camera(str(scene), 5.0, 0.0, fps=FPS, size=SIZE, seed=1), crf=32)
    prints.append(fingerprint.fingerprint_video(str(copy), fingerprint.VideoSettings()))
    pairs = [(p.first, p.second) for p in video_pairs(prints)]
    assert pairs == [(0, 2)]  # the re-encode of moment 0, not the other moment


def test_a_mirrored_copy_pairs_unless_isometric_is_n(tmp_path):
    # Videos are matched mirrored by default (images are not): --isometric n turns it off.
    clip = scenes(4, 5.0)
    write_clip(tmp_path / "clip.mp4", clip)
    write_clip(tmp_path / "flipped.mp4", Clip(np.ascontiguousarray(clip.frames[:, :, ::-1]), FPS))
    assert delete_report(tmp_path, tmp_path / "out", "--media", "video", "--isometric", "n")["groups"] == []
    for extra in ((), ("--isometric", "y")):
        report = delete_report(tmp_path, tmp_path / "out", "--media", "video", *extra)
        ((kept, removed),) = groups_by_name(report)
        assert sorted([kept, *removed]) == ["clip.mp4", "flipped.mp4"]
        assert report["settings"]["video_mirror"] is True


def test_a_video_never_pairs_with_an_image_and_media_image_leaves_videos_alone(tmp_path):
    clip = scenes(5, 3.0)
    write_clip(tmp_path / "clip.mp4", clip)
    for number in (0, 1):  # a frame of the video as a still, twice
        Image.fromarray(clip.frames[len(clip.frames) // 2]).save(tmp_path / f"still{number}.png")
    report = delete_report(tmp_path, tmp_path / "out")
    assert groups_by_name(report) == [("still0.png", ["still1.png"])]
    result = run("delete", "--images-path", tmp_path, "--output-path", tmp_path / "out", "--no-progress",
                 "--media", "image")
    assert "1 videos not looked at (--media video or all to include them)" in result.output
    assert "Scanned 2 images" in result.output and "videos:" not in result.output


def test_media_video_without_pyav_says_what_to_install(clips, tmp_path, monkeypatch):
    import dedup_cli.pipeline as pipeline

    monkeypatch.setattr(pipeline, "av_available", lambda: False)
    result = run("delete", "--images-path", clips, "--output-path", tmp_path / "out", "--media", "video")
    assert result.exit_code == 1
    assert "--media video needs PyAV: PyAV is not installed (pip install av" in result.output


def test_apply_and_undo_move_a_duplicate_video_and_put_it_back(clips, tmp_path):
    before = tree_digest(clips)
    run("delete", "--images-path", clips, "--output-path", tmp_path / "out", "--no-progress")
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    assert tree_digest(clips) == before
    decisions = tmp_path / "decisions.json"
    # Keep the letterboxed copy instead: the original now stands on it (they pair).
    decisions.write_text(json.dumps({str(clips / "original.mp4"): "remove",
                                     str(clips / "letterboxed.mkv"): "keep"}))
    assert run("apply", folder, "--decisions", decisions).exit_code == 0
    remaining = sorted(p.name for p in clips.iterdir())
    assert "original.mp4" not in remaining and "letterboxed.mkv" in remaining
    # The sub-clip goes too: it pairs with the letterboxed copy as well (the report says so).
    report = json.loads((folder / "report.json").read_text())
    (subclip,) = [r for g in report["groups"] for r in g["remove"] if r["path"].endswith("subclip.mov")]
    assert str(clips / "letterboxed.mkv") in subclip["pairs_with"] and "subclip.mov" not in remaining
    assert run("undo", folder).exit_code == 0
    assert tree_digest(clips) == before


def test_evaluate_reports_video_recall_by_kind(clips, tmp_path):
    truth = clips / "truth.csv"
    truth.write_text("file,group,note\noriginal.mp4,a,original\nsubclip.mov,a,subclip\n"
                     "letterboxed.mkv,a,letterbox\nother.mp4,b,other\n")
    result = run("evaluate", "--images-path", clips, "--truth", truth, "--media", "video", "--format", "json",
                 "--no-progress")
    scored = json.loads(result.output)
    assert scored["pair_precision"] == 1.0 and scored["pair_recall"] == 1.0
    assert scored["recall_by_kind"]["subclip"] == {"files": 1, "found": 1, "recall": 1.0}


@pytest.mark.skipif(not (BENCH / "video" / "truth.csv").exists(), reason="needs ../shared/bench/video")
def test_shared_real_clips_pair_as_their_truth_says(tmp_path):
    folder = tmp_path / "real"
    shutil.copytree(BENCH / "video", folder)
    result = run("evaluate", "--images-path", folder, "--truth", folder / "truth.csv", "--media", "video",
                 "--format", "json", "--no-progress")
    scored = json.loads(result.output)
    assert scored["false_pairs"] == 0 and scored["pair_recall"] == 1.0


def test_search_with_a_video_query_lists_its_copies_nearest_first(clips, tmp_path):
    result = run("search", "--images-path", clips, "--query", clips / "subclip.mov", "--format", "json",
                 "--no-progress")
    assert result.exit_code == 0, result.output
    matches = json.loads(result.stdout)["matches"]
    found = [Path(m["path"]).name for m in matches]
    assert sorted(found) == ["letterboxed.mkv", "original.mp4"]
    distances = [m["distance"] for m in matches]
    assert distances == sorted(distances)  # nearest first


def test_show_draws_videos_as_their_middle_frame(clips, tmp_path):
    result = run("show", "--images-path", clips, "--output-path", tmp_path / "out", "--no-progress")
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    rows = (folder / "tsne.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and any("subclip.mov" in row for row in rows)
    # Every point has its picture on the map: the videos' middle frames were decoded.
    text = (folder / "tsne.html").read_text()
    data = json.loads(text.split('<script id="map-data" type="application/json">', 1)[1].split("</script>", 1)[0])
    assert data["count"] == 4 and not data["missing"]


def test_search_with_a_query_folder_looks_up_its_videos_too(clips, tmp_path):
    queries = tmp_path / "queries"
    queries.mkdir()
    shutil.copy(clips / "subclip.mov", queries / "wanted.mov")
    result = run("search", "--images-path", clips, "--query", queries, "--format", "csv", "--no-progress")
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()[1:]
    assert sorted(Path(row.split(",")[1]).name for row in rows) == ["letterboxed.mkv", "original.mp4", "subclip.mov"]


def test_many_video_queries_are_judged_from_one_search(clips, monkeypatch):
    from dedup_cli.plan import video as plan_video
    from dedup_cli.search import engine

    settings = fingerprint.VideoSettings(isometric=True)
    library = [fingerprint.fingerprint_video(str(clips / name), settings)
               for name in ("original.mp4", "letterboxed.mkv", "other.mp4")]
    queries = [fingerprint.fingerprint_video(str(clips / name), settings) for name in ("subclip.mov", "other.mp4")]
    one_by_one = [plan_video.query_pairs(query, library, isometric=True) for query in queries]
    searches = []
    real = engine.cross_pairs
    monkeypatch.setattr(engine, "cross_pairs", lambda *a, **k: searches.append(1) or real(*a, **k))
    together = plan_video.query_pairs_many(queries, library, isometric=True)
    assert together == one_by_one and len(searches) == 2  # one search per turn, not per query
    assert [pair.first for pair in together[0]] == [0, 1] and [pair.first for pair in together[1]] == [2]


def test_review_makes_thumbnails_of_videos_from_their_middle_frame(clips, tmp_path):
    report = delete_report(clips, tmp_path / "out")
    folder = max(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    result = run("review", folder)
    assert result.exit_code == 0, result.output
    grouped = [entry["path"] for group in report["groups"] for entry in group["keep"] + group["remove"]]
    assert len(grouped) == 3 and "0 unreadable" in result.output, result.output
    thumbs = sorted((folder / "thumbs").iterdir())
    assert len(thumbs) == 3
    for thumb in thumbs:
        with Image.open(thumb) as picture:
            assert max(picture.size) <= THUMB_SIDE and np.asarray(picture).std() > 5  # a real frame, not a blank


def test_the_review_page_gives_the_video_keep_order_as_the_reason(clips, tmp_path):
    # Regression: video groups were explained by the image keep order (animation frames,
    # or "the facts in the report disagree"), though videos are kept longest first.
    from dedup_cli.present.review import page_data

    delete_report(clips, tmp_path / "out")
    folder = max(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    data = page_data(folder, json.loads((folder / "report.json").read_text()))
    reasons = {Path(f["path"]).name: f["reason"] for group in data["groups"] for f in group["files"] if "reason" in f}
    assert reasons["subclip.mov"].startswith("kept file chosen by: the longer video (8 s against")
    assert all("longer video" in reason or "as long a video" in reason for reason in reasons.values())


def test_frames_of_a_rotated_phone_video_are_turned_as_shown():
    thumb = np.zeros((4, 4), dtype=np.uint8)
    thumb[0] = 255  # a bright top row
    # PyAV: rotation is the counterclockwise turn the display matrix applies
    assert media.upright(thumb, 90)[:, 0].tolist() == [255] * 4
    assert media.upright(thumb, -90)[:, 3].tolist() == [255] * 4
    assert media.upright(thumb, 180)[3].tolist() == [255] * 4
    assert np.array_equal(media.upright(thumb, 0), thumb)


def test_a_sub_clip_in_a_reference_folder_never_removes_the_longer_video(clips, tmp_path):
    reference = clips / "reference"
    reference.mkdir()
    (clips / "subclip.mov").rename(reference / "subclip.mov")
    report = delete_report(clips, tmp_path / "out", "--reference", reference)
    removed = {Path(r["path"]).name for g in report["groups"] for r in g["remove"]}
    kept = {Path(k["path"]).name for g in report["groups"] for k in g["keep"]}
    assert "original.mp4" in kept and "subclip.mov" not in removed
    assert removed == {"letterboxed.mkv"}


def test_apply_decisions_never_remove_a_video_because_of_a_shorter_one(clips, tmp_path):
    run("delete", "--images-path", clips, "--output-path", tmp_path / "out", "--no-progress")
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    decisions = tmp_path / "decisions.json"
    decisions.write_text(json.dumps({str(clips / "original.mp4"): "remove", str(clips / "letterboxed.mkv"): "remove",
                                     str(clips / "subclip.mov"): "keep"}))
    result = run("apply", folder, "--decisions", decisions)
    assert result.exit_code == 0
    # The original stays (only the shorter sub-clip is kept), and then the letterboxed
    # copy, as long as the original, stands on it.
    assert f"'{clips / 'original.mp4'}': no kept file within the threshold after the decisions; kept" in result.output
    assert sorted(p.name for p in clips.iterdir() if p.suffix != ".avi" and p.name != "garbage.mp4") == [
        "original.mp4", "other.mp4", "subclip.mov"]


def test_the_copy_without_bars_is_kept_over_its_letterboxed_copy_of_the_same_picture(tmp_path):
    # datasets/demo-videos: walk_letterbox.mp4 is walk.mp4 (240x136) in a 240x180 frame.
    report = delete_report(Path(__file__).resolve().parent.parent / "datasets" / "demo-videos", tmp_path / "out",
                           "--media", "video", "--isometric", "n")  # (the mirrored copy aside)
    assert groups_by_name(report) == [("walk.mp4", ["walk_letterbox.mp4", "walk_resize.mp4", "walk_subclip.m4v",
                                                    "walk_trim.mov"])]


def test_method_cnn_groups_images_by_embeddings_and_still_videos_by_the_video_rule(cnn, tmp_path):
    """No video is embedded: under --method cnn the images pair by cosine similarity and the
    videos by their frames at the video rule's own threshold (a cosine --threshold says
    nothing about frame hashes); each kind keeps its own distance in the report."""
    from dedup_cli.plan.video import VideoMatchSettings

    original = scenes(6, 4.0)
    write_clip(tmp_path / "original.mp4", original)
    half = original.frames[: len(original.frames) // 2]
    write_clip(tmp_path / "first_half.mp4", Clip(np.stack([np.asarray(Image.fromarray(f).resize((96, 58)))
                                                          for f in half]), FPS), crf=34)
    write_clip(tmp_path / "other.mp4", scenes(7, 3.0))
    picture = photo(8)
    picture.save(tmp_path / "picture.png")
    picture.resize((160, 120)).save(tmp_path / "picture_small.jpg", quality=80)
    output = tmp_path / "out"
    result = run("delete", "--images-path", tmp_path, "--output-path", output, "--no-progress",
                 "--method", "cnn", "--threshold", "0.85")
    assert result.exit_code == 0, result.output
    frame_bits = VideoMatchSettings().frame_bits
    assert (f"Threshold: cosine similarity >= 0.85 (CNN embeddings, EfficientNet-Lite0); "
            f"video frames: {frame_bits} bits of 64.") in result.output
    (folder,) = [p for p in output.iterdir() if p.is_dir()]
    report = json.loads((folder / "report.json").read_text())
    assert report["settings"]["method"] == "cnn" and report["settings"]["video_frame_bits"] == frame_bits
    assert groups_by_name(report) == [("original.mp4", ["first_half.mp4"]), ("picture.png", ["picture_small.jpg"])]
    video, image = sorted(report["groups"], key=lambda group: group.get("media", "image") != "video")
    assert video["media"] == "video" and "media" not in image
    ((half,),) = [video["remove"]]
    assert half["pairs_with"] == [str(tmp_path / "original.mp4")]
    assert 0 < half["distance"] == half["bits"] <= frame_bits  # frame hash bits, not cosine units
    ((small,),) = [image["remove"]]
    assert small["distance"] == pytest.approx(small["bits"] / 10000) and small["distance"] <= 0.15
    assert report["summary"]["videos"]["groups"] == 1 and report["summary"]["videos"]["remove"] == 1
    # The review page tells the video group apart, so it does not state the cosine rule there.
    from dedup_cli.present.review import page_data

    data = page_data(folder, report)
    assert sorted(group["media"] for group in data["groups"]) == ["image", "video"]
    assert data["settings"]["method"] == "cnn" and data["settings"]["video_frame_bits"] == frame_bits


@pytest.mark.parametrize("output_format", ["csv", "json", "table"])
def test_search_with_views_prints_video_hits_which_have_no_view(clips, tmp_path, output_format):
    # Regression: with --views y a video hit (view None) crashed the CSV and table output.
    queries = tmp_path / "queries"
    queries.mkdir()
    shutil.copy(clips / "subclip.mov", queries / "wanted.mov")
    for query in (queries, queries / "wanted.mov"):
        result = run("search", "--images-path", clips, "--query", query, "--format", output_format, "--views", "y",
                     "--no-progress")
        assert result.exit_code == 0, result.output
        assert "original.mp4" in result.stdout
