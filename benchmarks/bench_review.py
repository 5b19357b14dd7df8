"""Time the review page and the t-SNE map: writing them, the thumbnails, and headless
Chromium opening them.

    python benchmarks/bench_review.py [IMAGES] [--groups 10000] [--show-count 3000] [--no-browser]

1. A dry run over IMAGES (default: bench-output/generated, as
   `make_transforms.py bench-output/generated --from-bench` writes it; else 2,500
   synthetic pictures), cold (--no-cache) and with a warm hash cache, each without the
   page (--review n) and with it; then `dedup review RUN` making every thumbnail, and
   again with them all made: what thumbnails would add to a cold dry run.
2. review.html of a synthetic report of --groups two-file groups (tiny real JPEGs).
3. Headless Chromium (Debian's chromium and chromium-driver, through selenium): from the
   start of navigation to the first group drawn, for both pages.
4. `dedup show` (no cache) on the 262 flags of ../shared/bench and on --show-count
   synthetic pictures, tsne.html included, and Chromium's time to draw that map.

Every figure is a median of --repeat runs; the load average is printed, since other jobs
on the machine slow every figure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DEFAULT_BENCH, REPO
from PIL import Image

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
from bench_memory import make_pictures  # noqa: E402

from dedup_cli.present.review import write_review_page  # noqa: E402

GENERATED = REPO / "bench-output" / "generated"
FLAGS = DEFAULT_BENCH / "flags" / "iso-320x240"


def dedup(*args) -> tuple[float, str]:
    """Run `python -m dedup_cli ARGS`; (seconds, stdout). Exits on failure."""
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "dedup_cli", *map(str, args)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if completed.returncode:
        sys.exit(f"dedup {' '.join(map(str, args))} failed:\n{completed.stderr}")
    return seconds, completed.stdout


def median_run(repeat: int, *args) -> tuple[float, str]:
    runs = [dedup(*args) for _ in range(repeat)]
    return statistics.median(seconds for seconds, _ in runs), runs[-1][1]


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def bench_run_page(images: Path, scratch: Path, repeat: int) -> Path:
    """Print the cost of review.html and of its thumbnails on dry runs over `images`."""
    cache, output = scratch / "hashes.sqlite", scratch / "runs"
    common = ["delete", "--images-path", images, "--output-path", output, "--no-progress"]
    cold_without, _ = median_run(repeat, *common, "--no-cache", "--review", "n")
    cold_with, out = median_run(repeat, *common, "--no-cache")
    dedup(*common, "--cache", cache, "--review", "n")  # warms the hash cache
    warm_without, _ = median_run(repeat, *common, "--cache", cache, "--review", "n")
    warm_with, _ = median_run(repeat, *common, "--cache", cache)
    folder = Path(re.search(r"Review: (.+)", out).group(1)).parent
    report = json.loads((folder / "report.json").read_text())
    files = sum(len(g["keep"]) + len(g["remove"]) for g in report["groups"])
    made, made_out = dedup("review", folder)
    reused, _ = median_run(repeat, "review", folder)
    size = (folder / "review.html").stat().st_size
    thumbs = sum(p.stat().st_size for p in (folder / "thumbs").iterdir())
    print(f"review, dry runs over {images} ({report['summary']['hashed']} files, {len(report['groups'])} groups, "
          f"{files} files in groups), median of {repeat}, {load()}:")
    print(f"  cold dry run (--no-cache): {cold_without:.2f} s with --review n, {cold_with:.2f} s with the page "
          f"({100 * (cold_with / cold_without - 1):+.1f}%)")
    print(f"  warm dry run: {warm_without:.2f} s with --review n, {warm_with:.2f} s with the page "
          f"({100 * (warm_with / warm_without - 1):+.1f}%)")
    print(f"  dedup review RUN making every thumbnail: {made:.2f} s ({made_out.splitlines()[0]}), "
          f"{100 * made / cold_without:.0f}% of the cold dry run; with them made: {reused:.2f} s")
    print(f"  review.html {size / 1e6:.2f} MB, thumbs/ {thumbs / 1e6:.1f} MB")
    return folder / "review.html"


def tiny_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 140, 200)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def synthetic_report(images: Path, groups: int) -> dict:
    """`groups` groups of a kept file and one duplicate, every file a real tiny JPEG."""
    data = tiny_jpeg()

    def picture(number: int) -> dict:
        path = images / f"{number // 1000:03d}" / f"{number:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return {"path": str(path), "width": 64, "height": 48, "size": len(data),
                "mtime_ns": path.stat().st_mtime_ns, "digest": f"{number + 1:032x}", "hash": f"{number:016x}"}

    entries = []
    for group in range(groups):
        keep, duplicate = picture(2 * group), picture(2 * group + 1)
        duplicate |= {"nearest_keep": keep["path"], "bits": 3, "distance": 3.0}
        entries.append({"id": group + 1, "keep": [keep], "remove": [duplicate]})
    settings = {"images_path": str(images), "hash_algorithm": "phash", "hash_size": 8, "threshold_bits": 14,
                "distance_metric": "manhattan", "colour_check": True, "isometric": False, "keep_policy": "resolution"}
    return {"format": "dedup-report", "format_version": 2, "created": "synthetic", "settings": settings,
            "summary": {"dry_run": True, "scanned": 2 * groups}, "groups": entries}


def bench_synthetic_page(groups: int, scratch: Path) -> Path:
    report = synthetic_report(scratch / "synthetic-images", groups)
    folder = scratch / "synthetic-run"
    folder.mkdir()
    start = time.perf_counter()
    page = write_review_page(folder, report)
    seconds = time.perf_counter() - start
    print(f"review, synthetic report of {groups} groups ({2 * groups} files): {seconds:.2f} s to write "
          f"review.html ({page.stat().st_size / 1e6:.1f} MB), {load()}")
    return page


def bench_show(folder: Path, scratch: Path, label: str, repeat: int) -> Path:
    seconds, out = median_run(repeat, "show", "--images-path", folder, "--output-path", scratch / f"show-{label}",
                              "--no-cache", "--no-progress")
    page = Path(re.search(r"interactive map: (.+)", out).group(1))
    print(f"show, {label}: {seconds:.1f} s, median of {repeat} (no cache, tsne.html included: "
          f"{page.stat().st_size / 1e6:.1f} MB), {load()}")
    return page


def browser(scratch: Path):
    """Headless Chromium as the tests start it, or None (with the reason printed)."""
    from conftest import browser_missing, start_chromium

    reason = browser_missing()
    if reason:
        print(f"browser: {reason}; no load times")
        return None
    return start_chromium(scratch / "chromium-profile")


def load_time(driver, page: Path, mark: str) -> str:
    """Wall time from driver.get to the page's ready flag, and the page's own mark (ms
    after navigation start) of its first group or first drawing."""
    start = time.perf_counter()
    driver.get(page.absolute().as_uri())
    while driver.execute_script("return document.body.dataset.ready") != "1":
        time.sleep(0.01)
    wall = time.perf_counter() - start
    marked = driver.execute_script(f"return performance.getEntriesByName('{mark}')[0].startTime") / 1000
    return f"{wall:.2f} s until ready (first drawn {marked:.2f} s after navigation start)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="?", type=Path)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--show-count", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, {load()} at the start")
    with tempfile.TemporaryDirectory(prefix="bench-review-") as scratch_name:
        scratch = Path(scratch_name)
        images = args.images or (GENERATED if GENERATED.is_dir() else None)
        if images is None:
            images = scratch / "pictures"
            make_pictures(images, 2500)
        run_page = bench_run_page(images, scratch, args.repeat)
        synthetic_page = bench_synthetic_page(args.groups, scratch)
        maps = {}
        if FLAGS.is_dir():
            maps["262 flags"] = bench_show(FLAGS, scratch, "262 flags", args.repeat)
        make_pictures(scratch / "show-pictures", args.show_count)
        label = f"{args.show_count} pictures"
        maps[label] = bench_show(scratch / "show-pictures", scratch, label, args.repeat)
        driver = None if args.no_browser else browser(scratch)
        if driver is not None:
            try:
                print(f"chromium, review.html of the dry run: {load_time(driver, run_page, 'dedup-first-group')}")
                print(f"chromium, review.html of {args.groups} groups: "
                      f"{load_time(driver, synthetic_page, 'dedup-first-group')}")
                for label, page in maps.items():
                    print(f"chromium, tsne.html of {label}: {load_time(driver, page, 'dedup-first-draw')}")
            finally:
                driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
