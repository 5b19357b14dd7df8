"""Hashing throughput and memory: dedup (cold and warm cache) against imagehash and the
JPEG decode floor, on the same files with the same number of processes.

    python benchmarks/bench_hashing.py [FOLDER] [--workers N] [--repeat 3] [--algorithm phash] [--hash-size 8]
    python benchmarks/bench_hashing.py --camera-jpegs 60   # 9 MP baseline JPEGs made from FOLDER

FOLDER defaults to ../shared/bench/wallpapers (skipped with a message when absent).
Each contender runs in its own subprocess, so its peak RSS (the process plus its largest
worker) is its own; each is run --repeat times and its median time is kept (a starts
from an empty cache every time). Prints images/s, peak memory and the ratios a/c, a/d, b/a.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from common import DEFAULT_BENCH, REPO, own_peak_rss_mb

sys.path.insert(0, str(REPO))

from dedup_cli.fingerprint.hashing import default_workers  # noqa: E402

DEFAULT_FOLDER = DEFAULT_BENCH / "wallpapers"
STAGES = {
    "a": "dedup, cold cache",
    "e": "dedup, cold cache, --colour n",
    "b": "dedup, warm cache",
    "c": "imagehash.phash(Image.open(path)) loop",
    "d": "floor: draft('L') decode only",
}


def imagehash_one(path: str) -> str:
    import imagehash
    from PIL import Image

    return str(imagehash.phash(Image.open(path)))


def decode_floor_one(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft("L", (image.width // 8, image.height // 8))
        image.load()
        return image.size


def run_pool(function, paths, workers):
    if workers <= 1:
        return [function(p) for p in paths]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, paths, chunksize=4))


def stage(name: str, paths: list[str], workers: int, algorithm: str, hash_size: int, cache_file: str) -> dict:
    """Run one contender and time it (imports done before the clock starts)."""
    import imagehash  # noqa: F401  (import cost kept out of every contender's time)
    import scipy.fftpack  # noqa: F401

    from dedup_cli.fingerprint.cache import HashCache
    from dedup_cli.fingerprint.hashing import HashSettings, hash_collection

    start = time.perf_counter()
    if name in ("a", "b", "e"):
        cache = HashCache(cache_file)
        settings = HashSettings(algorithm, hash_size, colour=name != "e")
        hashed = hash_collection(paths, settings, workers=workers, cache=cache)
        cache.close()
        count, failures = len(hashed.paths), len(hashed.failures)
    elif name == "c":
        count, failures = len(run_pool(imagehash_one, paths, workers)), 0
    else:
        count, failures = len(run_pool(decode_floor_one, paths, workers)), 0
    seconds = time.perf_counter() - start
    own = own_peak_rss_mb()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"stage": name, "files": count, "failures": failures, "seconds": seconds,
            "peak_rss_mb": round(own + children, 1), "main_rss_mb": round(own, 1),
            "largest_worker_rss_mb": round(children, 1)}


def image_files(folder: Path) -> list[str]:
    sys.path.insert(0, str(REPO))
    from dedup_cli.media.scan import scan_images

    return [str(p) for p in scan_images(folder).files]


def run_stage_subprocess(name, list_file, args, cache_file) -> dict:
    command = [sys.executable, __file__, "--stage", name, "--files-from", list_file, "--workers", str(args.workers),
               "--algorithm", args.algorithm, "--hash-size", str(args.hash_size), "--cache-file", cache_file]
    completed = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO,
                               env=os.environ | {"PYTHONPATH": str(REPO)})
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--algorithm", default="phash")
    parser.add_argument("--hash-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--camera-jpegs", type=int, default=0, metavar="N",
                        help="benchmark N camera-like 9 MP baseline JPEGs made from FOLDER's images instead")
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--files-from", help=argparse.SUPPRESS)
    parser.add_argument("--cache-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        paths = Path(args.files_from).read_text().splitlines()
        result = stage(args.stage, paths, args.workers, args.algorithm, args.hash_size, args.cache_file)
        print(json.dumps(result))
        return 0
    if not args.folder.is_dir():
        print(f"skipped: benchmark folder {args.folder} is absent (pass a folder of images)")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        paths = image_files(args.folder)
        if args.camera_jpegs:
            paths = make_camera_jpegs(paths, args.camera_jpegs, Path(scratch) / "camera")
        for path in paths:  # same page-cache state for every contender
            Path(path).read_bytes()
        print(f"{len(paths)} images from {args.folder}{' as 9 MP JPEGs' if args.camera_jpegs else ''} "
              f"({_megapixels(paths):.0f} MP in all), {args.workers} processes, {args.algorithm} {args.hash_size}")
        list_file = os.path.join(scratch, "files.txt")
        Path(list_file).write_text("\n".join(paths))
        results = {}
        for name in ("d", "c", "e", "a", "b"):
            runs = []
            for attempt in range(args.repeat):
                # every cold run (a, e) starts from an empty cache; warm runs (b) reuse a's last
                cache_name = f"{name}{attempt}" if name in ("a", "e") else f"a{args.repeat - 1}"
                cache_file = os.path.join(scratch, f"cache-{cache_name}.sqlite")
                runs.append(run_stage_subprocess(name, list_file, args, cache_file))
            runs.sort(key=lambda r: r["seconds"])
            results[name] = runs[len(runs) // 2] | {"peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
    print(f"{'':3}{'contender':42}{'images/s':>10}{'seconds':>9}{'peak RSS MB':>13}")
    for name in ("a", "e", "b", "c", "d"):
        r = results[name]
        rate = r["files"] / r["seconds"] if r["seconds"] else float("inf")
        r["rate"] = rate
        print(f"({name}) {STAGES[name]:42}{rate:>10.1f}{r['seconds']:>9.2f}{r['peak_rss_mb']:>13.0f}")
    a, b, c, d = (results[n]["rate"] for n in "abcd")
    runs = sorted(whole_dry_run(args.folder, attempt) for attempt in range(args.repeat))
    whole = runs[len(runs) // 2]
    print(f"(f) whole cold dry run, dedup delete (start-up, scan, hashing, pairs, colour checks, plan, "
          f"report): {whole:.2f} s = {whole / results['d']['seconds']:.2f} x the decode pass (d) (target <= 1.2)")
    print(f"start-up: dedup --help {startup_seconds('--help'):.3f} s, dedup --version "
          f"{startup_seconds('--version'):.3f} s (best of 5; target < 0.3 s)")
    print(f"a/c = {a / c:.2f}  (target >= 4)")
    print(f"a/d = {a / d:.2f}  (target >= 0.8); e/d = {results['e']['rate'] / d:.2f} (colour check off)")
    print(f"b/a = {b / a:.1f}  (target >= 20)")
    return 0


def whole_dry_run(folder: Path, attempt: int) -> float:
    """Wall time of a whole `dedup delete` dry run over `folder` from an empty cache."""
    script = Path(sys.executable).with_name("dedup")
    with tempfile.TemporaryDirectory() as scratch:
        dedup = [str(script)] if script.exists() else [sys.executable, "-m", "dedup_cli"]
        command = [*dedup, "delete", "--images-path", str(folder), "--output-path", os.path.join(scratch, "out")]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=REPO,
                       env=os.environ | {"XDG_CACHE_HOME": os.path.join(scratch, f"cache{attempt}")})
        return time.perf_counter() - start


def startup_seconds(flag: str) -> float:
    """Wall time of `dedup FLAG` through the installed console script (best of 5)."""
    script = Path(sys.executable).with_name("dedup")
    command = [str(script), flag] if script.exists() else [sys.executable, "-m", "dedup_cli", flag]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=REPO)
        best = min(best, time.perf_counter() - start)
    return best


def make_camera_jpegs(sources, count: int, folder: Path) -> list[str]:
    """`count` 3648x2432 (8.9 MP) baseline JPEGs at quality 90, like a camera's, made from
    the source images (cycled; later rounds mirrored so that no two files are equal)."""
    from PIL import Image, ImageOps

    folder.mkdir(parents=True)
    made = []
    for number in range(count):
        with Image.open(sources[number % len(sources)]) as source:
            picture = ImageOps.fit(ImageOps.exif_transpose(source).convert("RGB"), (3648, 2432))
        if (number // len(sources)) % 2:
            picture = ImageOps.mirror(picture)
        path = folder / f"camera_{number:04d}.jpg"
        picture.save(path, quality=90)
        made.append(str(path))
    return made


def _megapixels(paths) -> float:
    from PIL import Image

    total = 0
    for path in paths:
        with Image.open(path) as image:
            total += image.width * image.height
    return total / 1e6


if __name__ == "__main__":
    sys.exit(main())
