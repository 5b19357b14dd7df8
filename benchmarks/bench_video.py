"""Video near-duplicates: accuracy per kind of edit, speed and memory, next to the PyAV floors.

    python benchmarks/bench_video.py [--work DIR] [--shared ../shared/bench/video] [--no-mirror]
    python benchmarks/bench_video.py --animations   (the sources as animated GIF and WebP)

Makes (once, into --work) a labelled set of edited copies with dedup_cli.video_benchmark:
real clips from --shared and slideshows rendered from the bench photos, each re-encoded,
resized, re-containered, cropped, grey, brighter, trimmed, watermarked, at half the frame
rate, letterboxed, mirrored and cut to a sub-clip, plus hard negatives (two moments of one
static camera, two clips with one intro). Then runs `dedup evaluate --media video`'s code
on it cold (no cache) and warm (cache), and on --shared's own truth, and prints pair
precision/recall, recall per kind of edit, wall time, x real time, peak RSS, and the
decode-everything and keyframes-only floors of PyAV on the same files.
Run no other benchmark at the same time.
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from dedup_cli import video_benchmark
from dedup_cli.evaluate import run_evaluate
from dedup_cli.fingerprint.hashing import HashSettings
from dedup_cli.pipeline import CollectionOptions, collect

ISSUE_BASELINES = """Baselines of issue 12 (held-out set of 132 clips, 1,683 s, 2 cores):
  perception framewise PHash: precision 0.93, recall 0.775 (mirror 0/8, letterbox 0/8, crop 4/8,
    sub-clip 6/8), 36 different-moment false pairs, 27.5 s (61x real time)
  perception TMK L1/L2: recall 0.73, 55-62 s, up to 1.1 GB
  vPDQ: precision 1.0, recall 0.56, 45 s
  PyAV decode everything: 41 s on one core (41x real time); keyframes only 3.7 s"""
PHOTO_FOLDERS = ("mate-backgrounds/usr/share/backgrounds/mate/nature", "lomiri-wallpapers-20.04/usr/share/backgrounds")


def photos(bench_root: Path) -> list[str]:
    found = []
    for folder in PHOTO_FOLDERS:
        found += sorted(glob.glob(str(bench_root / "wallpapers" / folder / "*.jpg")))
    return found


def make_set(work: Path, shared: Path | None, bench_root: Path) -> Path:
    """The generated set in work/generated (made once; delete the folder to remake it)."""
    folder = work / "generated"
    if (folder / "truth.csv").exists():
        return folder
    pictures = photos(bench_root)
    if len(pictures) < 15:
        sys.exit(f"need the bench photos under {bench_root / 'wallpapers'}")
    rows = video_benchmark.make_edited_set(sources(shared, pictures), folder,
                                           on_file=lambda f: print(f"  made {f}", file=sys.stderr))
    rows += video_benchmark.make_hard_negatives(pictures[10:15], folder)
    video_benchmark.write_truth(folder, rows)
    return folder


def sources(shared: Path | None, pictures: list[str]) -> dict:
    """The source clips: the real ones of --shared, and slideshows of photos 0-9 (10-14
    are for the hard negatives)."""
    clips = {}
    if shared is not None:
        for name in ("v1.m4v", "v2.m4v", "extra_channel_attached_pic.mp4"):
            if (shared / name).exists():
                clips[f"real_{Path(name).stem[:10]}"] = video_benchmark.read_clip(shared / name, width=640)
    for number in range(5):
        chosen = pictures[2 * number:2 * number + 2]
        clips[f"slides{number}"] = video_benchmark.render_slideshow(chosen, seconds_each=4.5, seed=number)
    return clips


def animation_set(work: Path, shared: Path | None, bench_root: Path) -> None:
    """The same sources shared as animated GIF and WebP (work/animated, made once):
    scored per kind, with each source's excerpt played backwards as a hard negative."""
    folder = work / "animated"
    if not (folder / "truth.csv").exists():
        rows = video_benchmark.make_animation_set(sources(shared, photos(bench_root)), folder,
                                                  on_file=lambda f: print(f"  made {f} animations", file=sys.stderr))
        video_benchmark.write_truth(folder, rows)
    print(f"\nanimated set: {sum(1 for _ in folder.glob('*.gif')) + sum(1 for _ in folder.glob('*.webp'))} "
          f"GIF/WebP files and {sum(1 for _ in folder.glob('*.mp4'))} source videos, in {folder}")
    result, seconds = evaluate(folder, None, mirror=True)
    report("animated GIF/WebP copies of the sources, cold (mirrored matching on)", result, seconds, 0)
    print(f"wall {seconds:.2f} s (the source videos included)")
    animation_speed(sorted([*folder.glob("*.gif"), *folder.glob("*.webp")]))
    probe_cost(work / "probe")


def probe_cost(folder: Path) -> None:
    """What telling animated GIF/WebP from stills adds to a scan: 2,000 still WebP, 500
    still GIF and 200 animations (made once into `folder`), scanned with and without the
    check (best of 5: the disk cache is warm after the first)."""
    import numpy as np
    from PIL import Image

    from dedup_cli.media import animation, scan

    if not (folder / "done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for number in range(2700):
            frames = [Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
                      for _ in range(10 if number >= 2500 else 1)]
            suffix = ".webp" if number < 2000 or number % 2 else ".gif"
            frames[0].save(folder / f"{number}{suffix}", save_all=True, append_images=frames[1:], duration=100)
        (folder / "done").touch()
    probe = animation.is_animated  # scan imports it from there at each GIF or WebP
    for label, check in (("with the check", probe), ("without it (every GIF/WebP an image)", lambda path: False)):
        animation.is_animated = check
        best = min(_timed(lambda: scan.scan_images(folder)) for _ in range(5))
        found = scan.scan_images(folder)
        print(f"scan of {len(found.files) + len(found.videos)} GIF/WebP files {label}: {best * 1000:.0f} ms "
              f"({len(found.videos)} animations)")
    animation.is_animated = probe


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def animation_speed(files: list[Path]) -> None:
    """Pillow decoding is the cost of an animation's fingerprint: seconds of animation
    fingerprinted per second, one process, per format."""
    from dedup_cli.fingerprint.video import VideoSettings, fingerprint_video

    for suffix in (".gif", ".webp"):
        chosen = [path for path in files if path.suffix == suffix]
        start = time.perf_counter()
        records = [fingerprint_video(str(path), VideoSettings(isometric=True)) for path in chosen]
        took = time.perf_counter() - start
        length = sum(record.info.duration for record in records)
        frames = sum(round(record.info.duration * record.info.fps) for record in records)
        size = sum(path.stat().st_size for path in chosen) / 1e6
        print(f"{suffix[1:].upper()}: {len(chosen)} files, {length:.0f} s, {frames} frames, {size:.1f} MB: "
              f"fingerprinted in {took:.2f} s, one process ({length / took:.0f}x real time, "
              f"{frames / took:.0f} frames/s)")


def total_duration(folder: Path) -> tuple[float, list[str]]:
    import av

    seconds, files = 0.0, []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"):
            continue
        with av.open(str(path)) as container:
            seconds += (container.duration or 0) / 1_000_000
        files.append(str(path))
    return seconds, files


def decode_floor(files: list[str], keyframes_only: bool) -> float:
    """Seconds PyAV takes to decode every frame (or keyframes only) of `files`, one process."""
    import av

    start = time.perf_counter()
    for path in files:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if keyframes_only:
                stream.codec_context.skip_frame = "NONKEY"
            for _ in container.decode(stream):
                pass
    return time.perf_counter() - start


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def evaluate(folder: Path, cache: Path | None, mirror: bool, frame_bits: int | None = None) -> tuple[dict, float]:
    options = CollectionOptions(folder, hash_settings=HashSettings(), cache_path=cache, media="video",
                                threshold=frame_bits, video_mirror=mirror)
    start = time.perf_counter()
    result = run_evaluate(options, folder / "truth.csv")
    return result, time.perf_counter() - start


def report(title: str, result: dict, seconds: float, video_seconds: float) -> None:
    print(f"\n== {title}")
    print(f"files {result['files']}, truth {result['files_in_truth']}, unreadable {result['unreadable_in_truth']}")
    print(f"pair precision {result['pair_precision']:.4f}, recall {result['pair_recall']:.4f} "
          f"({result['correct_pairs']}/{result['true_pairs']}, {result['false_pairs']} false); "
          f"linked precision {result['linked_precision']:.4f}, recall {result['linked_recall']:.4f}")
    print(f"removal precision {result['removal_precision']:.4f}, groups losing every member "
          f"{len(result['groups_losing_every_member'])}")
    for kind, counts in result["recall_by_kind"].items():
        print(f"  {kind:<18} {counts['found']}/{counts['files']}")
    edits = [c for kind, c in result["recall_by_kind"].items() if kind != "original"]
    if edits:
        found, files = sum(c["found"] for c in edits), sum(c["files"] for c in edits)
        print(f"edited copies found (grouped with their own): {found}/{files} = {found / files:.4f}")
    if result["false_pair_examples"]:
        print("false pairs:", *(f"{Path(a).name}~{Path(b).name}" for a, b in result["false_pair_examples"]))
    if video_seconds:
        print(f"wall {seconds:.2f} s for {video_seconds:.0f} s of video: {seconds / video_seconds * 60:.2f} s per "
              f"minute, {video_seconds / seconds:.0f}x real time")


def hd_speed(work: Path, bench_root: Path, seconds: float) -> None:
    """Cold fingerprinting of one 1920x1080 clip against the PyAV floors on it: phone
    videos are HD, and decoding, not matching, is then the whole cost."""
    from dedup_cli.fingerprint.video import VideoSettings, fingerprint_video

    path = work / f"hd-{int(seconds)}s.mp4"
    if not path.exists():
        pictures = photos(bench_root)
        clip = video_benchmark.render_slideshow(pictures[:int(seconds // 5) or 1], seconds_each=5.0, fps=30.0,
                                                size=(1920, 1080))
        video_benchmark.write_clip(path, clip)
    start = time.perf_counter()
    record = fingerprint_video(str(path), VideoSettings())
    took = time.perf_counter() - start
    full = decode_floor([str(path)], keyframes_only=False)
    keyframes = decode_floor([str(path)], keyframes_only=True)
    duration = record.info.duration
    print(f"\n== one 1920x1080 30 fps H.264 clip of {duration:.0f} s, one process")
    print(f"fingerprint {took:.2f} s ({duration / took:.0f}x real time, {len(record.hashes)} frames kept); "
          f"PyAV decode everything {full:.2f} s ({duration / full:.0f}x), keyframes only {keyframes:.2f} s "
          f"({duration / keyframes:.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dedup-video-bench")
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared/bench/video")
    parser.add_argument("--no-mirror", dest="mirror", action="store_false",
                        help="leave mirrored copies out, as `--isometric n` does (the default matches them)")
    parser.add_argument("--sweep", type=int, nargs="*", default=[],
                        help="frame thresholds (bits) to score too, from the warm cache (calibration)")
    parser.add_argument("--hd", type=float, default=0, metavar="SECONDS",
                        help="also time one 1920x1080 clip of this length (rendered once into --work)")
    parser.add_argument("--animations", action="store_true",
                        help="only score the sources shared as animated GIF and WebP (made once into --work)")
    args = parser.parse_args()
    shared = args.shared if (args.shared / "truth.csv").exists() else None
    bench_root = args.shared.parent
    if args.animations:
        print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        animation_set(args.work, shared, bench_root)
        return
    folder = make_set(args.work, shared, bench_root)
    video_seconds, files = total_duration(folder)
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"generated set: {len(files)} videos, {video_seconds:.0f} s of video, in {folder}")
    cache = args.work / f"cache-{os.getpid()}.sqlite"
    result, cold = evaluate(folder, cache, args.mirror)
    report(f"generated set, cold (mirrored matching {'on' if args.mirror else 'off'})", result, cold, video_seconds)
    print(f"peak RSS {peak_rss_mb():.0f} MB (this process or its largest worker)")
    warm_options = CollectionOptions(folder, video_mirror=args.mirror,
                                     cache_path=cache, media="video")
    start = time.perf_counter()
    warm = collect(warm_options).videos
    print(f"warm collect: {time.perf_counter() - start:.2f} s, {warm.from_cache} of {len(warm.prints)} "
          f"fingerprints from the cache ({len(warm.prints) - warm.from_cache} videos decoded)")
    for bits in args.sweep:
        swept, _ = evaluate(folder, cache, args.mirror, bits)
        kinds = ", ".join(f"{kind} {c['found']}/{c['files']}" for kind, c in swept["recall_by_kind"].items()
                          if c["found"] < c["files"])
        print(f"frame threshold {bits:>2}: pair precision {swept['pair_precision']:.4f}, recall "
              f"{swept['pair_recall']:.4f}, {swept['false_pairs']} false pairs; missed: {kinds or 'none'}")
    cache.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(cache) + suffix).unlink(missing_ok=True)
    full = decode_floor(files, keyframes_only=False)
    keyframes = decode_floor(files, keyframes_only=True)
    print(f"PyAV floors on the same files, one process: decode everything {full:.2f} s "
          f"({video_seconds / full:.0f}x real time), keyframes only {keyframes:.2f} s "
          f"({video_seconds / keyframes:.0f}x)")
    if shared is not None:
        shared_seconds, _ = total_duration(shared)
        result, seconds = evaluate(shared, None, args.mirror)
        report(f"{shared} (its own truth.csv)", result, seconds, shared_seconds)
    if args.hd:
        hd_speed(args.work, bench_root, args.hd)
    print()
    print(ISSUE_BASELINES)


if __name__ == "__main__":
    main()
